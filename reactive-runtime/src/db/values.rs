//! Bound argument values and row values as JSON scalars.
//!
//! sqlx keeps bound arguments opaque for most databases, but `AnyArguments` exposes
//! its buffer (`values.0`, a `Vec<AnyValueKind>`; public though `#[doc(hidden)]`).
//! We read it only through `AnyValue` (public struct, public `kind` field) and the
//! regular `Value`/`Decode` API, so no internal type is named. This is the reason the
//! runtime resolves parameter values from what was actually bound rather than only
//! from the bindings the macro traced.

use serde_json::Value as Json;
use sqlx::any::{AnyArguments, AnyTypeInfoKind, AnyValue};
use sqlx::{Row, Value, ValueRef};

/// The value bound at 1-based position `index`, as a JSON scalar; `None` when there
/// is no such argument or its type has no key meaning (blobs).
pub fn arg_value(args: Option<&AnyArguments>, index: usize) -> Option<Json> {
    let kind = args?.values.0.get(index.checked_sub(1)?)?.clone();
    any_to_json(&AnyValue { kind })
}

/// A copy of bound arguments (`AnyArguments` is not `Clone`, its buffer is).
pub fn clone_args(args: &AnyArguments) -> AnyArguments {
    let mut out = AnyArguments::default();
    out.values.0.clone_from(&args.values.0);
    out
}

/// The given 1-based positions of `args`, in order, as a new argument list.
pub fn select_args(args: &AnyArguments, positions: &[usize]) -> Option<AnyArguments> {
    let mut out = AnyArguments::default();
    for &p in positions {
        out.values
            .0
            .push(args.values.0.get(p.checked_sub(1)?)?.clone());
    }
    Some(out)
}

/// Converts a value of the `Any` driver to a JSON scalar.
pub fn any_to_json(value: &AnyValue) -> Option<Json> {
    if value.is_null() {
        return Some(Json::Null);
    }
    let kind = value.type_info().kind();
    let v = value.clone();
    Some(match kind {
        AnyTypeInfoKind::Null => Json::Null,
        AnyTypeInfoKind::Bool => Json::Bool(v.try_decode_unchecked::<bool>().ok()?),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            Json::from(v.try_decode_unchecked::<i64>().ok()?)
        }
        AnyTypeInfoKind::Real => Json::from(f64::from(v.try_decode_unchecked::<f32>().ok()?)),
        AnyTypeInfoKind::Double => Json::from(v.try_decode_unchecked::<f64>().ok()?),
        AnyTypeInfoKind::Text => Json::String(v.try_decode_unchecked::<String>().ok()?),
        AnyTypeInfoKind::Blob => return None,
    })
}

/// Column `index` of a row as a JSON scalar (`None`: a type without key meaning).
pub fn row_value(row: &sqlx::any::AnyRow, index: usize) -> Option<Json> {
    let raw = row.try_get_raw(index).ok()?;
    any_to_json(&ValueRef::to_owned(&raw))
}

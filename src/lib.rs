//! # reactive
//!
//! Make any SQL database reactive. Annotate async sqlx functions with
//! `#[reactive_function]`; the macro infers what each one reads, the runtime
//! caches results and invalidates exactly what a write can affect, and an SSE
//! endpoint tells clients what changed.
//!
//! This crate is the facade users depend on: it re-exports the runtime and the
//! macros. See the README for the full picture.

pub use reactive_macros::*;
pub use reactive_runtime::*;

mod encode;

/// Support for the code `#[reactive_function]` and `#[derive(Relations)]` generate.
/// Not public API: names here may change in any release.
#[doc(hidden)]
pub mod __private {
    use std::collections::HashSet;

    pub use ::inventory;
    pub use ::serde;
    pub use ::serde_json;
    pub use ::ts_rs;
    pub use reactive_runtime::registry::{
        BoxFuture, DbHandle, FunctionDef, InputError, Prepared, Registration, TsTypes,
    };
    pub use reactive_runtime::{Error, ReactiveDb, Result};
    pub use std::sync::OnceLock;

    use ::serde::Serialize;
    use ::serde::de::DeserializeOwned;
    use ::ts_rs::TS;

    /// The edges `#[derive(Relations)]` submits (defined by the runtime's engine).
    pub use reactive_runtime::engine::RelationsDef;

    /// Compile-time facts about a function, implemented by the companion type
    /// `#[reactive_function]` emits (and by a fallback for plain functions).
    pub trait ReactiveFn {
        /// `true` for a `#[reactive_function]`.
        const IS_REACTIVE: bool;
        /// The procedure name (`""` for a plain function); a caller's registration
        /// lists it, and the registry adds this function's tables to the caller's model.
        const NAME: &'static str;
        /// Tables read, including those of called reactive functions (may repeat):
        /// what a caller's `dependencies(...)` is checked against.
        const DEPS: &'static [&'static str];
    }

    /// Decode a function's JSON input; the error carries the path of the bad field.
    pub fn decode_input<T: DeserializeOwned>(
        value: serde_json::Value,
    ) -> std::result::Result<T, InputError> {
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            InputError {
                path,
                message: error.into_inner().to_string(),
            }
        })
    }

    /// A function without input accepts `null` (or nothing) and `{}`.
    pub fn decode_no_input(value: serde_json::Value) -> std::result::Result<(), InputError> {
        match value {
            serde_json::Value::Null => Ok(()),
            serde_json::Value::Object(map) if map.is_empty() => Ok(()),
            _ => Err(InputError {
                path: ".".into(),
                message: "this function takes no input".into(),
            }),
        }
    }

    // ---- key values of bindings ----

    /// The JSON value of one key binding: `binding_value!(&input.organization_id)`
    /// evaluates to a [`serde_json::Value`] (it cannot fail).
    ///
    /// - For a field of a [`KeySafe`] type (`String`, `str`, `Box<str>`,
    ///   `Arc<str>`, `Cow<str>`, the integers, `bool`, `uuid::Uuid` with the `uuid`
    ///   feature, and `&T` / `Option<T>` of those), the value's JSON form
    ///   (`None` → `null`), which is what serde gives.
    /// - For a field of any other type, the **unknown marker**: the empty JSON
    ///   object `{}`. The runtime has no key form for objects, so it drops every key
    ///   predicate on this binding: the read is keyed on fewer columns and more
    ///   writes invalidate it (wider, never stale).
    ///
    /// Why not serde for every type: the key must be the value the *database*
    /// compares, and a field is bound through its `sqlx::Encode`, not its
    /// `Serialize`. The two agree for the types above and nothing guarantees it for
    /// the others: a user enum with `#[derive(Serialize, sqlx::Type)]` may
    /// serialize as `"InProgress"` but be sent as `'in_progress'`, a timestamp's
    /// serde text differs from the database's, a newtype may serialize however its
    /// author chose. A cached read keyed on `"InProgress"` would never meet a write
    /// of `'in_progress'`: the write would miss it and the cache would serve stale
    /// data. So only types known to agree give a value.
    ///
    /// How: autoref specialization on the field's static type. The call is
    /// `(&&KeyProbe(value)).reactive_key_value()`: method lookup first tries
    /// [`KnownKey`], implemented on `&KeyProbe<T>` for `T: KeySafe`, and only when
    /// that does not apply auto-derefs to [`UnknownKey`] on `KeyProbe<T>` (any `T`).
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __reactive_binding_value {
        ($value:expr) => {{
            #[allow(unused_imports)]
            use $crate::__private::{KnownKey as _, UnknownKey as _};
            (&&$crate::__private::KeyProbe($value)).reactive_key_value()
        }};
    }
    pub use crate::__reactive_binding_value as binding_value;

    /// The unknown key marker (see [`binding_value`]): `{}`.
    pub fn unknown_key() -> serde_json::Value {
        serde_json::Value::Object(serde_json::Map::new())
    }

    /// Types whose JSON form (as [`KeySafe::key_json`] gives it, and as the runtime
    /// canonicalizes it) is the value the database compares when one is bound.
    /// Deliberately closed: see [`binding_value`].
    pub trait KeySafe {
        /// The value as JSON (a scalar, or `null`).
        fn key_json(&self) -> serde_json::Value;
    }

    macro_rules! key_safe_via_from {
        ($($ty:ty),*) => {$(
            impl KeySafe for $ty {
                fn key_json(&self) -> serde_json::Value {
                    serde_json::Value::from(*self)
                }
            }
        )*};
    }
    key_safe_via_from!(i8, i16, i32, i64, u8, u16, u32, u64, isize, usize, bool);

    impl KeySafe for str {
        fn key_json(&self) -> serde_json::Value {
            serde_json::Value::String(self.to_owned())
        }
    }

    // The string types deref to `str`; their JSON form is that `str`'s (implemented
    // here rather than through `Serialize`, which `Arc<str>` has only with serde's
    // `rc` feature).
    macro_rules! key_safe_via_str {
        ($($ty:ty),*) => {$(
            impl KeySafe for $ty {
                fn key_json(&self) -> serde_json::Value {
                    str::key_json(self)
                }
            }
        )*};
    }
    key_safe_via_str!(
        String,
        Box<str>,
        std::sync::Arc<str>,
        std::borrow::Cow<'_, str>
    );

    /// Serialized (and displayed) as the hyphenated lowercase text, which is also
    /// what PostgreSQL prints for a `uuid` and what a text column stores.
    #[cfg(feature = "uuid")]
    impl KeySafe for ::uuid::Uuid {
        fn key_json(&self) -> serde_json::Value {
            serde_json::Value::String(self.hyphenated().to_string())
        }
    }

    impl<T: KeySafe + ?Sized> KeySafe for &T {
        fn key_json(&self) -> serde_json::Value {
            T::key_json(self)
        }
    }

    impl<T: KeySafe> KeySafe for Option<T> {
        fn key_json(&self) -> serde_json::Value {
            match self {
                Some(value) => value.key_json(),
                None => serde_json::Value::Null,
            }
        }
    }

    /// The receiver of [`binding_value`]'s specialization: a reference to the field.
    pub struct KeyProbe<'a, T: ?Sized>(pub &'a T);

    /// The specific case of [`binding_value`]: a [`KeySafe`] field gives its value.
    pub trait KnownKey {
        /// The field's JSON value.
        fn reactive_key_value(&self) -> serde_json::Value;
    }

    impl<T: KeySafe + ?Sized> KnownKey for &KeyProbe<'_, T> {
        fn reactive_key_value(&self) -> serde_json::Value {
            self.0.key_json()
        }
    }

    /// The fallback of [`binding_value`]: any other field gives the unknown marker.
    pub trait UnknownKey {
        /// [`unknown_key`].
        fn reactive_key_value(&self) -> serde_json::Value;
    }

    impl<T: ?Sized> UnknownKey for KeyProbe<'_, T> {
        fn reactive_key_value(&self) -> serde_json::Value {
            unknown_key()
        }
    }

    /// Serialize a handler's output to JSON bytes (straight from the typed value: no
    /// intermediate `serde_json::Value`; the bytes `serde_json::to_vec` writes, with
    /// less work, see `encode`).
    pub fn encode_output<T: Serialize>(output: Result<T>) -> Result<Vec<u8>> {
        Ok(crate::encode::to_vec(&output?)?)
    }

    /// Box the run closure (`Prepared::run`). It takes the handle the function was
    /// written for (`D`, a `ReactiveDb<..>`) back out of the boxed [`DbHandle`]; the
    /// runtime checks [`FunctionDef::backend`] before it calls, so the downcast holds.
    #[allow(clippy::type_complexity)]
    pub fn boxed_run<D, F, Fut>(
        run: F,
    ) -> Box<dyn FnOnce(DbHandle) -> BoxFuture<'static, Result<Vec<u8>>> + Send>
    where
        D: 'static,
        F: FnOnce(D) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Vec<u8>>> + Send + 'static,
    {
        Box::new(move |db: DbHandle| match db.downcast::<D>() {
            Ok(db) => Box::pin(run(*db)),
            Err(_) => Box::pin(async {
                Err(Error::Internal(
                    "a reactive function was called with another database handle type".into(),
                ))
            }),
        })
    }

    /// The `TypeId` of the handle type a function takes (`FunctionDef::backend`).
    pub fn backend_of<D: 'static>() -> std::any::TypeId {
        std::any::TypeId::of::<D>()
    }

    /// Collects the TypeScript declarations a function's input and output need.
    #[derive(Default)]
    pub struct TsCollector {
        seen: HashSet<std::any::TypeId>,
        out: Vec<(String, String)>,
    }

    impl ts_rs::TypeVisitor for TsCollector {
        fn visit<T: TS + 'static + ?Sized>(&mut self) {
            if !self.seen.insert(std::any::TypeId::of::<T>()) {
                return;
            }
            // Types with a file of their own (derived) have a declaration; wrappers
            // (`Vec<T>`, `Option<T>`) don't, but their dependencies may.
            if T::output_path().is_some() {
                let cfg = ts_config();
                self.out.push((T::ident(&cfg), T::decl(&cfg)));
            }
            T::visit_dependencies(self);
        }
    }

    impl TsCollector {
        /// The finished [`TsTypes`], declarations sorted and deduplicated by name.
        pub fn finish(self, input: String, output: String) -> TsTypes {
            let mut declarations = self.out;
            declarations.sort_by(|a, b| a.0.cmp(&b.0));
            declarations.dedup_by(|a, b| a.0 == b.0);
            TsTypes {
                input,
                output,
                declarations,
            }
        }
    }

    /// Collect `T`'s declarations (and its dependencies'); returns its TypeScript name.
    /// Rustc checks `T: TS` at the user's type through this function.
    pub fn ts_collect<T: TS + 'static>(collector: &mut TsCollector) -> String {
        ts_rs::TypeVisitor::visit::<T>(collector);
        T::visit_dependencies(collector);
        T::visit_generics(collector);
        T::name(&ts_config())
    }

    /// ts-rs settings of the generated client: 64-bit integers are `number`, which is
    /// what `JSON.parse` gives for the numbers serde_json writes (not `bigint`).
    pub fn ts_config() -> ts_rs::Config {
        ts_rs::Config::new().with_large_int("number")
    }

    /// The TypeScript input of a function without input.
    pub fn ts_collect_no_input(_: &mut TsCollector) -> String {
        "null".to_owned()
    }

    // ---- compile-time checks of `dependencies(...)` against called functions ----

    /// Length of `parts` joined.
    pub const fn join_len(parts: &[&str]) -> usize {
        let mut len = 0;
        let mut i = 0;
        while i < parts.len() {
            len += parts[i].len();
            i += 1;
        }
        len
    }

    /// `parts` joined (a panic message naming a missing table); `N` is [`join_len`].
    pub const fn join_bytes<const N: usize>(parts: &[&str]) -> [u8; N] {
        let mut out = [0u8; N];
        let mut at = 0;
        let mut i = 0;
        while i < parts.len() {
            let part = parts[i].as_bytes();
            let mut j = 0;
            while j < part.len() {
                out[at] = part[j];
                at += 1;
                j += 1;
            }
            i += 1;
        }
        out
    }

    /// The bytes of [`join_bytes`] as a `str` (always valid: joined from `str`s).
    pub const fn utf8(bytes: &'static [u8]) -> &'static str {
        match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => panic!("reactive: joined invalid UTF-8 (a bug in reactive-macros)"),
        }
    }

    /// Total length of several lists.
    pub const fn lists_len(lists: &[&[&'static str]]) -> usize {
        let mut len = 0;
        let mut i = 0;
        while i < lists.len() {
            len += lists[i].len();
            i += 1;
        }
        len
    }

    /// Several lists concatenated; `N` is [`lists_len`].
    pub const fn lists_concat<const N: usize>(lists: &[&[&'static str]]) -> [&'static str; N] {
        let mut out = [""; N];
        let mut at = 0;
        let mut i = 0;
        while i < lists.len() {
            let mut j = 0;
            while j < lists[i].len() {
                out[at] = lists[i][j];
                at += 1;
                j += 1;
            }
            i += 1;
        }
        out
    }

    const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The first table of `needed` not in `listed`, or `""`.
    pub const fn first_missing(listed: &[&str], needed: &[&'static str]) -> &'static str {
        let mut i = 0;
        while i < needed.len() {
            let mut found = false;
            let mut j = 0;
            while j < listed.len() {
                if str_eq(listed[j], needed[i]) {
                    found = true;
                }
                j += 1;
            }
            if !found {
                return needed[i];
            }
            i += 1;
        }
        ""
    }
}

#[cfg(test)]
mod tests {
    //! `binding_value!` as the generated `__reactive_prepare` calls it: on a
    //! reference to a field of the decoded input.

    use std::borrow::Cow;
    use std::sync::Arc;

    use serde::Serialize;
    use serde_json::{Value, json};

    use crate::__private::{binding_value, unknown_key};

    /// Serializes as `"InProgress"`; with `#[sqlx(rename_all = "snake_case")]` it
    /// would be sent as `'in_progress'`.
    #[derive(Serialize)]
    enum Status {
        InProgress,
    }

    /// Stands for `chrono::NaiveDate` and other types whose serde text is not the
    /// database's.
    #[derive(Serialize)]
    struct Date {
        year: i32,
        month: u8,
        day: u8,
    }

    #[derive(Serialize)]
    struct UserId(i64);

    #[derive(Serialize)]
    struct Input {
        name: String,
        id: i64,
        maybe: Option<i64>,
        none: Option<i64>,
        status: Status,
        date: Date,
        user: UserId,
        nested: Nested,
    }

    #[derive(Serialize)]
    struct Nested {
        flag: bool,
        label: Option<String>,
        tags: Vec<String>,
        raw: Value,
    }

    fn input() -> Input {
        Input {
            name: "acme".into(),
            id: 42,
            maybe: Some(-7),
            none: None,
            status: Status::InProgress,
            date: Date {
                year: 2024,
                month: 2,
                day: 29,
            },
            user: UserId(5),
            nested: Nested {
                flag: true,
                label: Some("x".into()),
                tags: vec!["a".into()],
                raw: json!("in_progress"),
            },
        }
    }

    #[test]
    fn the_unknown_marker_is_an_empty_object() {
        assert_eq!(unknown_key(), json!({}));
    }

    #[test]
    fn strings_integers_bools_and_options_of_them_give_their_value() {
        let input = input();
        assert_eq!(binding_value!(&input.name), json!("acme"));
        assert_eq!(binding_value!(&input.id), json!(42));
        assert_eq!(binding_value!(&input.maybe), json!(-7));
        assert_eq!(binding_value!(&input.none), Value::Null);
        assert_eq!(binding_value!(&input.nested.flag), json!(true));
        assert_eq!(binding_value!(&input.nested.label), json!("x"));
        assert_eq!(binding_value!(&&input.name), json!("acme"));
        assert_eq!(binding_value!(input.name.as_str()), json!("acme"));
    }

    #[test]
    fn every_string_type_and_integer_width_gives_its_value() {
        let boxed: Box<str> = "b".into();
        let arc: Arc<str> = "a".into();
        let cow: Cow<'_, str> = Cow::Borrowed("c");
        let owned: Option<Cow<'_, str>> = Some(Cow::Owned("o".into()));
        assert_eq!(binding_value!(&boxed), json!("b"));
        assert_eq!(binding_value!(&arc), json!("a"));
        assert_eq!(binding_value!(&cow), json!("c"));
        assert_eq!(binding_value!(&owned), json!("o"));
        assert_eq!(binding_value!(&-1i8), json!(-1));
        assert_eq!(binding_value!(&2i16), json!(2));
        assert_eq!(binding_value!(&3i32), json!(3));
        assert_eq!(binding_value!(&4u8), json!(4));
        assert_eq!(binding_value!(&5u16), json!(5));
        assert_eq!(binding_value!(&6u32), json!(6));
        assert_eq!(binding_value!(&u64::MAX), json!(u64::MAX));
        assert_eq!(binding_value!(&-8isize), json!(-8));
        assert_eq!(binding_value!(&9usize), json!(9));
    }

    #[test]
    fn enums_dates_newtypes_json_and_vectors_are_unknown() {
        let input = input();
        // Each of these serializes fine, but not necessarily as the database compares.
        assert_eq!(
            serde_json::to_value(&input.status).unwrap(),
            json!("InProgress")
        );
        assert_eq!(binding_value!(&input.status), json!({}));
        assert_eq!(binding_value!(&input.date), json!({}));
        assert_eq!(binding_value!(&input.user), json!({}));
        assert_eq!(binding_value!(&input.nested.tags), json!({}));
        assert_eq!(binding_value!(&input.nested.raw), json!({}));
        assert_eq!(binding_value!(&Some(Status::InProgress)), json!({}));
        assert_eq!(binding_value!(&1.5f64), json!({}));
        // The whole input (`Json(input)` patterns) is an object: unknown too.
        assert_eq!(binding_value!(&input), json!({}));
    }

    #[cfg(feature = "uuid")]
    #[test]
    fn a_uuid_gives_its_hyphenated_lowercase_text() {
        let id = uuid::Uuid::from_u128(0x67E5_5044_10B1_426F_9247_BB68_0E5F_E0C8);
        assert_eq!(
            binding_value!(&id),
            json!("67e55044-10b1-426f-9247-bb680e5fe0c8")
        );
        assert_eq!(
            binding_value!(&Some(id)),
            json!("67e55044-10b1-426f-9247-bb680e5fe0c8")
        );
    }
}

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
        /// The procedure name as a JSON string (`"\"agents.findMany\""`).
        const NAME_JSON: &'static str;
        /// Tables read, including those of called reactive functions (may repeat).
        const DEPS: &'static [&'static str];
        /// The same tables as comma-separated whole-table `TableDependency` JSON objects.
        const DEPS_JSON: &'static str;
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

    /// The JSON value of one key binding (`&input.organization_id`).
    pub fn binding_value<T: Serialize + ?Sized>(
        value: &T,
        source: &str,
    ) -> std::result::Result<serde_json::Value, InputError> {
        serde_json::to_value(value).map_err(|error| InputError {
            path: source.to_owned(),
            message: format!("cannot serialize key value: {error}"),
        })
    }

    /// Serialize a handler's output to JSON bytes (straight from the typed value: no
    /// intermediate `serde_json::Value`).
    pub fn encode_output<T: Serialize>(output: Result<T>) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&output?)?)
    }

    /// Box the run closure (`Prepared::run`). It takes the handle the function was
    /// written for (`D`, a `ReactiveDb<..>`) back out of the boxed [`DbHandle`]; the
    /// runtime checks [`FunctionDef::backend`] before it calls, so the downcast holds.
    #[allow(clippy::type_complexity)]
    pub fn boxed_run<D, F, Fut>(
        run: F,
    ) -> Box<dyn FnOnce(DbHandle) -> BoxFuture<Result<Vec<u8>>> + Send>
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

    // ---- const string assembly (model JSON, dependency lists, messages) ----

    /// Length of `items` joined with `sep`, empty items skipped.
    pub const fn join_len(items: &[&str], sep: &str) -> usize {
        let mut len = 0;
        let mut count = 0;
        let mut i = 0;
        while i < items.len() {
            if !items[i].is_empty() {
                if count > 0 {
                    len += sep.len();
                }
                len += items[i].len();
                count += 1;
            }
            i += 1;
        }
        len
    }

    /// `items` joined with `sep`, empty items skipped; `N` is [`join_len`].
    pub const fn join_bytes<const N: usize>(items: &[&str], sep: &str) -> [u8; N] {
        let mut out = [0u8; N];
        let mut at = 0;
        let mut count = 0;
        let mut i = 0;
        while i < items.len() {
            let item = items[i].as_bytes();
            if !item.is_empty() {
                if count > 0 {
                    let mut j = 0;
                    while j < sep.len() {
                        out[at] = sep.as_bytes()[j];
                        at += 1;
                        j += 1;
                    }
                }
                let mut j = 0;
                while j < item.len() {
                    out[at] = item[j];
                    at += 1;
                    j += 1;
                }
                count += 1;
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

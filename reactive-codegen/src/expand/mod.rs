//! Expansion of `#[reactive_function]` and `#[derive(Relations)]`.
//!
//! The proc-macro crate `reactive-macros` only converts between `proc_macro` and
//! `proc_macro2` and calls [`reactive_function`] / [`derive_relations`]; all the
//! logic lives here, where it is unit-tested with `parse_quote!`.
//!
//! # Pipeline (ast → validate → expand)
//!
//! 1. The attribute's arguments are parsed with darling (`args`), the signature is
//!    checked (`signature`) and the body is analysed by [`crate::handler`] (SQL
//!    literals with spans, bind expressions traced to input fields, calls).
//! 2. Validation collects every error (spanned on the attribute argument, the
//!    signature part or the SQL literal) and combines them: a user sees all missing
//!    dependencies in one build.
//! 3. Expansion **always re-emits the user's function unchanged**, then the errors,
//!    then the generated items. Generated code names only `::reactive::__private::…`.
//!
//! # What `#[reactive_function]` generates
//!
//! - The type-dependent operations as fn-pointer consts (`decode_input::<Input>`,
//!   `encode_output::<Output>`, `ts_collect::<..>`), each emitted with
//!   `quote_spanned!` at the type: an input that is not `Deserialize + TS` or an
//!   output that is not `Serialize + TS` is reported by rustc at the type, once
//!   (the registration only calls these consts, so no secondary errors).
//! - A hidden *companion* item with the function's name in the **type namespace**
//!   (`struct agents_find_many {}`), implementing `__private::ReactiveFn`: the
//!   procedure name and the tables the function reads (transitively, through the
//!   reactive functions it calls), as consts. A function item lives in the value
//!   namespace, so the two never clash, and `use path::to::agents_find_many;`
//!   imports both.
//! - A `static FunctionDef` and an `inventory::submit!` of a `Registration` pointing
//!   at it: the serialized `FunctionModel`, a
//!   `prepare` fn (JSON → typed input with the error's path, key bindings extracted
//!   with `serde_json::to_value(&input.field)`, the handler boxed), and a `typescript`
//!   fn (ts-rs names and declarations).
//!
//! # Calls to other functions (the design)
//!
//! For every call in the body that passes the database handle to a function named
//! by a module path (`find_agent(db, ..)`, `crate::agents::find(db, ..)`), the
//! expansion emits a *probe*: a hidden module that glob-imports a fallback type
//! named like the callee (marked "not reactive"), then imports the callee's path
//! explicitly. An explicit import shadows a glob import per namespace, so the name
//! resolves to the callee's companion if the callee is a `#[reactive_function]`,
//! and to the fallback otherwise. Const items then check, at compile time:
//!
//! - a called reactive function's tables are included in the caller's model (the
//!   model JSON is assembled by `const` concatenation), and, when the caller lists
//!   `dependencies(...)`, each of the callee's tables must be listed — otherwise a
//!   compile error at the call: ``calls `x`, which reads table `message`, but
//!   `dependencies(...)` does not list it``;
//! - a called plain helper (no `#[reactive_function]`) that receives the database
//!   handle is a compile error at the call unless the caller lists
//!   `dependencies(...)` — reactive cannot see the SQL inside it. Explicit
//!   dependencies silence it (and then every listed table counts as fully read).
//!
//! Method calls and associated functions (`Agent::find(db)`) cannot be probed: in
//! inferred mode they are reported the same way as plain helpers, by the macro
//! (`ReactiveDb`'s own methods such as `db.begin()` excepted).
//!
//! Known limits: helpers that receive a transaction (`&mut ReactiveTx`) rather than
//! the handle are not seen (their statements are still intercepted and analysed at
//! run time); a reactive function calling itself, directly or in a cycle, is a
//! const-evaluation cycle error; `#[reactive_function]` applies to free functions
//! (not `impl` methods); the companion type is named like the function, so a type
//! with the same name in the same module would clash.

// `args` and `signature` are the macro's internals; public only so that `reactive-cli`
// reads attributes and signatures exactly as the macro does.
#[doc(hidden)]
pub mod args;
mod function;
pub mod relations;
#[doc(hidden)]
pub mod signature;

#[cfg(test)]
mod tests;

use proc_macro2::TokenStream;

pub use function::reactive_function;
pub use relations::derive_relations;

/// Collects `syn::Error`s and combines them (serde_derive's `Ctxt`, without the panic).
#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    pub(crate) fn new_spanned(&mut self, span: proc_macro2::Span, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Every error, one per message, in order.
    pub(crate) fn into_errors(self) -> Vec<syn::Error> {
        self.errors
            .into_iter()
            .flat_map(syn::Error::into_iter)
            .collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        self.errors
            .iter()
            .map(syn::Error::to_compile_error)
            .collect()
    }
}

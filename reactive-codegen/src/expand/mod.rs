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
//!    literals with spans, bind expressions traced to input fields, calls with their
//!    paths).
//! 2. Validation (`valid`) reports every error into one context (`ctxt`, serde's
//!    `Ctxt`: spanned on the attribute argument, the signature part or the SQL
//!    literal) and combines them: a user sees all missing dependencies in one build.
//! 3. Expansion (`emit`, `probe`) **always re-emits the user's function unchanged**,
//!    then the errors, then the generated items. Generated code names only
//!    `::reactive::__private::…`.
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
//!   reactive functions it calls: what a caller's `dependencies(...)` is checked
//!   against), as consts. A function item lives in the value
//!   namespace, so the two never clash, and `use path::to::agents_find_many;`
//!   imports both.
//! - A `static FunctionDef` and an `inventory::submit!` of a `Registration` pointing
//!   at it: the serialized `FunctionModel` of the body alone, the procedure names of
//!   the reactive functions it calls (the registry adds their tables, transitively), a
//!   `prepare` fn (JSON → typed input with the error's path, key bindings extracted
//!   with `serde_json::to_value(&input.field)`, the handler boxed), and a `typescript`
//!   fn (ts-rs names and declarations).
//!
//! # Calls to other functions (the design)
//!
//! For every call in the body that passes the database handle to a function named
//! by a module path (`find_agent(db, ..)`, `crate::agents::find(db, ..)`), the
//! expansion emits a *probe* (once per callee): a hidden module that glob-imports a fallback type
//! named like the callee (marked "not reactive"), then imports the callee's path
//! explicitly. An explicit import shadows a glob import per namespace, so the name
//! resolves to the callee's companion if the callee is a `#[reactive_function]`,
//! and to the fallback otherwise. Const items then check, at compile time:
//!
//! - a called reactive function is named in the caller's registration (the registry
//!   includes its tables in the caller's model), and, when the caller lists
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
//! const-evaluation cycle error (the companion's `DEPS` is a `const` concatenation of
//! its callees'; the registry's own resolution would handle the cycle); `#[reactive_function]` applies to free functions
//! (not `impl` methods); the companion type is named like the function, so a type
//! with the same name in the same module would clash.

// `args` and `signature` are the macro's internals; public only so that `reactive-cli`
// reads attributes and signatures exactly as the macro does.
#[doc(hidden)]
pub mod args;
mod ctxt;
mod emit;
mod function;
mod probe;
pub mod relations;
#[doc(hidden)]
pub mod signature;
mod valid;

#[cfg(test)]
mod tests;

pub use function::{FunctionSummary, reactive_function, summarize};
pub use relations::derive_relations;

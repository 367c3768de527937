//! Validation of a reactive function's signature:
//! `async fn name(db: &ReactiveDb, input: I) -> reactive::Result<O>` (or without `input`).

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, Type};

use super::ctxt::Ctxt;

/// The parts of a valid signature the expansion needs.
#[derive(Debug, Clone)]
pub struct Signature {
    /// The function's name.
    pub ident: Ident,
    /// The handle type the function takes by reference (`ReactiveDb<Postgres>`).
    pub db: Type,
    /// The input parameter's type, if the function takes one.
    pub input: Option<Type>,
    /// `O` in `reactive::Result<O>`.
    pub output: Type,
    /// The whole return type as written (span for the `Result` check).
    pub return_type: Type,
}

const SHAPE: &str = "expected `async fn name(db: &ReactiveDb<Postgres>, input: Input) -> reactive::Result<Output>` (the `input` parameter is optional; `MySql`, `Sqlite` or `Any` in place of `Postgres`)";

/// Check the signature; every problem found is reported (combined).
pub fn validate(sig: &syn::Signature) -> Result<Signature, syn::Error> {
    let cx = Ctxt::new();
    if sig.asyncness.is_none() {
        cx.syn_error(syn::Error::new(
            sig.fn_token.span(),
            "a reactive function must be an `async fn`: write `async fn` (its SQL runs through `ReactiveDb`, which is async)",
        ));
    }
    if let Some(constness) = &sig.constness {
        cx.syn_error(syn::Error::new(
            constness.span(),
            "a reactive function cannot be `const`",
        ));
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        cx.syn_error(syn::Error::new(
            unsafety.span(),
            "a reactive function cannot be `unsafe`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let span = if sig.generics.params.is_empty() {
            sig.generics.where_clause.span()
        } else {
            sig.generics.params.span()
        };
        cx.syn_error(syn::Error::new(
            span,
            "a reactive function cannot be generic: it is registered once, with concrete input and output types",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        cx.syn_error(syn::Error::new_spanned(variadic, SHAPE));
    }

    let mut input = None;
    let mut db_type = None;
    let params: Vec<&FnArg> = sig.inputs.iter().collect();
    match params.first() {
        None => cx.syn_error(syn::Error::new(
            sig.paren_token.span.join(),
            format!("a reactive function takes the database handle first: {SHAPE}"),
        )),
        Some(FnArg::Receiver(receiver)) => cx.syn_error(syn::Error::new_spanned(
            receiver,
            "a reactive function cannot take `self`: write a free function `async fn name(db: &ReactiveDb, input: Input)`",
        )),
        Some(FnArg::Typed(db)) => {
            let handle_second = matches!(params.get(1), Some(FnArg::Typed(second)) if is_db_handle(&second.ty));
            if handle_second {
                cx.syn_error(syn::Error::new_spanned(
                    params[1],
                    format!("the database handle must be the first parameter of a reactive function; {SHAPE}"),
                ));
            } else if !is_db_handle(&db.ty) {
                cx.syn_error(syn::Error::new_spanned(
                    &db.ty,
                    format!("the first parameter of a reactive function must be the database handle `&ReactiveDb`; {SHAPE}"),
                ));
            } else if let Type::Reference(reference) = &*db.ty {
                if handle_has_backend(&reference.elem) {
                    db_type = Some((*reference.elem).clone());
                } else {
                    cx.syn_error(syn::Error::new_spanned(
                        &reference.elem,
                        "name the database the handler runs on: `&ReactiveDb<Postgres>`, `&ReactiveDb<MySql>`, `&ReactiveDb<Sqlite>` (native sqlx drivers), or `&ReactiveDb<Any>` (backend chosen by URL)",
                    ));
                }
            }
        }
    }
    if let Some(second) = params
        .get(1)
        .filter(|p| !matches!(p, FnArg::Typed(t) if is_db_handle(&t.ty)))
    {
        match second {
            FnArg::Receiver(receiver) => cx.syn_error(syn::Error::new_spanned(receiver, SHAPE)),
            FnArg::Typed(arg) => {
                if let Type::Reference(reference) = &*arg.ty {
                    cx.syn_error(syn::Error::new_spanned(
                        reference,
                        "the input of a reactive function is decoded from JSON and passed by value: take it by value (`input: Input`), not by reference",
                    ));
                } else if matches!(
                    &*arg.pat,
                    Pat::Ident(_)
                        | Pat::Struct(_)
                        | Pat::TupleStruct(_)
                        | Pat::Tuple(_)
                        | Pat::Wild(_)
                ) {
                    input = Some((*arg.ty).clone());
                } else {
                    cx.syn_error(syn::Error::new_spanned(&arg.pat, SHAPE));
                }
            }
        }
    }
    for extra in params.iter().skip(2) {
        cx.syn_error(syn::Error::new_spanned(
            extra,
            format!("a reactive function takes at most two parameters, the database handle and one input (put several values in an input struct); {SHAPE}"),
        ));
    }

    let (output, return_type) = match &sig.output {
        ReturnType::Default => {
            cx.syn_error(syn::Error::new(
                sig.paren_token.span.close(),
                "a reactive function must return `reactive::Result<Output>`; add `-> reactive::Result<...>`",
            ));
            (None, None)
        }
        ReturnType::Type(_, ty) => match result_ok_type(ty) {
            Some(ok) => (Some(ok), Some((**ty).clone())),
            None => {
                cx.syn_error(syn::Error::new_spanned(
                    ty,
                    "a reactive function must return `reactive::Result<Output>` (its output is serialized to JSON; errors map to HTTP statuses)",
                ));
                (None, None)
            }
        },
    };

    cx.check()?;
    match (output, return_type, db_type) {
        (Some(output), Some(return_type), Some(db)) => Ok(Signature {
            ident: sig.ident.clone(),
            db,
            input,
            output,
            return_type,
        }),
        _ => Err(syn::Error::new(Span::call_site(), SHAPE)),
    }
}

/// `ReactiveDb<..>` with its backend type argument written.
/// The dialect a native handle implies (`ReactiveDb<MySql>` → MySQL); `None` for
/// `ReactiveDb<Any>` (the backend is chosen at run time) or a name it does not know.
pub fn handle_dialect(handle: &Type) -> Option<crate::sql::Dialect> {
    use crate::sql::Dialect;
    let Type::Path(path) = handle else {
        return None;
    };
    let PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    let Some(GenericArgument::Type(Type::Path(db))) = args.args.first() else {
        return None;
    };
    match db.path.segments.last()?.ident.to_string().as_str() {
        "Postgres" => Some(Dialect::Postgres),
        "MySql" => Some(Dialect::MySql),
        "Sqlite" => Some(Dialect::Sqlite),
        _ => None,
    }
}

fn handle_has_backend(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|s| {
        matches!(&s.arguments, PathArguments::AngleBracketed(args) if args.args.len() == 1)
    }))
}

/// `&ReactiveDb` (any path ending in `ReactiveDb`, shared reference, any lifetime).
fn is_db_handle(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    if reference.mutability.is_some() {
        return false;
    }
    match &*reference.elem {
        Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "ReactiveDb")
        }
        _ => false,
    }
}

/// `O` of `Result<O>` / `reactive::Result<O>` / `Result<O, E>` (rustc checks `E` is `reactive::Error`).
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ok) => Some(ok.clone()),
        _ => None,
    }
}

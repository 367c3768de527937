//! `#[reactive_function]`: parse the attribute and the signature, analyse the body,
//! validate ([`super::valid`]), expand ([`super::emit`]).

use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::args::FunctionArgs;
use super::ctxt::Ctxt;
use super::emit;
use super::signature;
use super::valid::{self, dialect_name};
use crate::handler;
use crate::sql::Dialect;

/// Expand `#[reactive_function(attr)] item`. Never fails: errors become
/// `compile_error!`s next to the re-emitted item.
pub fn reactive_function(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[reactive_function]` applies to an `async fn(db: &ReactiveDb, input: Input) -> reactive::Result<Output>`",
            );
            let error = error.to_compile_error();
            return quote! { #item #error };
        }
    };
    let cx = Ctxt::new();
    let args = FunctionArgs::parse(attr).map_err(|e| cx.syn_error(e)).ok();
    let sig = signature::validate(&item_fn.sig)
        .map_err(|e| cx.syn_error(e))
        .ok();
    let implied = sig.as_ref().and_then(|s| signature::handle_dialect(&s.db));
    if let (Some(args), Some(implied)) = (&args, implied)
        && let Some(declared) = &args.dialect
        && Dialect::from(**declared) != implied
    {
        cx.error_spanned(
            declared.span(),
            format!(
                "`dialect = \"{}\"` contradicts the handle, which runs on {}: drop `dialect` (the handle's type decides it)",
                dialect_name(Dialect::from(**declared)),
                dialect_name(implied)
            ),
        );
    }
    let dialect = args
        .as_ref()
        .map(|a| a.dialect(implied))
        .unwrap_or(implied.unwrap_or_default());
    // `query_file!` paths are relative to the crate being compiled, as for sqlx.
    let options = handler::AnalyzeOptions {
        dialect,
        manifest_dir: std::env::var_os("CARGO_MANIFEST_DIR").map(Into::into),
        ..handler::AnalyzeOptions::default()
    };
    let analysis = handler::analyze_fn_with(&item_fn, &options);
    let mut plan = args
        .as_ref()
        .map(|args| valid::plan(args, &item_fn, &analysis, &cx));
    // Next to an error, a warning about precision is noise (the fix may change it).
    if cx.has_errors()
        && let Some(plan) = plan.as_mut()
    {
        plan.warnings.clear();
    }

    let companion = emit::companion_type(&item_fn, plan.as_ref());
    let reactive_fn = emit::reactive_fn_impl(&item_fn, plan.as_ref(), &analysis);
    // The type checks are emitted even next to errors; the registration (which uses
    // them, so that each unsatisfied bound is reported once, at the type) only without.
    let types = sig.as_ref().map(emit::type_consts);
    let registration = match (&plan, &sig, cx.has_errors()) {
        (Some(plan), Some(sig), false) => emit::registration(plan, sig),
        _ => TokenStream::new(),
    };
    let cfgs = emit::cfgs(&item_fn);
    let compile_errors = cx.check_to_compile_errors();
    quote! {
        #item_fn
        #compile_errors
        #companion

        #(#cfgs)*
        const _: () = {
            #reactive_fn
            #types
            #registration
        };
    }
}

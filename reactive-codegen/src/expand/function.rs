//! `#[reactive_function]`: parse the attribute and the signature, analyse the body,
//! validate ([`super::valid`]), expand ([`super::emit`]).

use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::args::FunctionArgs;
use super::ctxt::Ctxt;
use super::emit;
use super::signature::{self, Signature};
use super::valid::{self, dialect_name};
use crate::handler::{self, HandlerAnalysis};
use crate::model::FunctionModel;
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
    let parsed = parse(attr, &item_fn, &cx);
    let mut plan = parsed
        .args
        .as_ref()
        .map(|args| valid::plan(args, &item_fn, &parsed.analysis, &cx));
    // Next to an error, a warning about precision is noise (the fix may change it).
    if cx.has_errors()
        && let Some(plan) = plan.as_mut()
    {
        plan.warnings.clear();
    }

    let companion = emit::companion_type(&item_fn, plan.as_ref());
    let reactive_fn = emit::reactive_fn_impl(&item_fn, plan.as_ref(), &parsed.analysis);
    // The type checks are emitted even next to errors; the registration (which uses
    // them, so that each unsatisfied bound is reported once, at the type) only without.
    let types = parsed.sig.as_ref().map(emit::type_consts);
    let registration = match (&plan, &parsed.sig, cx.has_errors()) {
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

/// What the macro registers for one function, without expanding it: for tools that read
/// sources (the build-time TypeScript emitter), so that they agree with the macro.
#[derive(Debug, Clone)]
pub struct FunctionSummary {
    /// The function's own model, exactly as the macro serializes it.
    pub model: FunctionModel,
    /// The paths of the functions it passes the handle to, once each (the macro's probes):
    /// the reactive ones among them add their tables to the model.
    pub callees: Vec<syn::Path>,
    /// The validated signature (input and output types).
    pub signature: Signature,
}

/// Summarize `#[reactive_function(attr)] item_fn` as the macro sees it. The errors are the
/// ones the macro would report (the function then does not compile).
pub fn summarize(attr: TokenStream, item_fn: &syn::ItemFn) -> Result<FunctionSummary, syn::Error> {
    let cx = Ctxt::new();
    let parsed = parse(attr, item_fn, &cx);
    let summary = match (&parsed.args, parsed.sig) {
        (Some(args), Some(signature)) => {
            let plan = valid::plan(args, item_fn, &parsed.analysis, &cx);
            Some(FunctionSummary {
                model: plan.model,
                callees: plan.probes.into_iter().map(|p| p.path).collect(),
                signature,
            })
        }
        _ => None,
    };
    cx.check()?;
    summary.ok_or_else(|| syn::Error::new(Span::call_site(), "invalid `#[reactive_function]`"))
}

/// The attribute's arguments, the signature and the body's analysis: the first step of
/// both the expansion and [`summarize`]. Errors go to `cx`.
struct Parsed {
    args: Option<FunctionArgs>,
    sig: Option<Signature>,
    analysis: HandlerAnalysis,
}

fn parse(attr: TokenStream, item_fn: &syn::ItemFn, cx: &Ctxt) -> Parsed {
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
    // `query_file!` paths are relative to the crate being compiled, as for sqlx (a build
    // script runs with the same `CARGO_MANIFEST_DIR`).
    let options = handler::AnalyzeOptions {
        dialect,
        manifest_dir: std::env::var_os("CARGO_MANIFEST_DIR").map(Into::into),
        ..handler::AnalyzeOptions::default()
    };
    let analysis = handler::analyze_fn_with(item_fn, &options);
    Parsed {
        args,
        sig,
        analysis,
    }
}

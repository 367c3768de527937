//! Probes: how a caller learns, at compile time, whether a function it passes the
//! database handle to is a `#[reactive_function]`, and which tables it reads.
//!
//! A probe is a hidden module that glob-imports a fallback type named like the callee
//! (marked "not reactive"), then imports the callee's path explicitly. An explicit
//! import shadows a glob import per namespace, so the name resolves to the callee's
//! companion if the callee is a `#[reactive_function]`, and to the fallback otherwise.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::valid::helper_message;
use crate::handler::{CallSite, HandlerAnalysis};

/// `ReactiveDb`'s own methods (`db.begin()`, `db.clone()`, ...): they send no SQL of
/// their own (statements sent through the transaction are found in the body).
const DB_METHODS: &[&str] = &["begin", "clone", "stats", "dialect", "engine"];

/// The calls that pass the database handle to something that may send SQL.
pub(crate) fn calls_with_db(analysis: &HandlerAnalysis) -> Vec<&CallSite> {
    analysis
        .calls
        .iter()
        .filter(|c| c.passes_db && !(c.is_method && DB_METHODS.contains(&c.name.as_str())))
        .collect()
}

/// A called function the expansion probes at compile time.
pub(crate) struct Probe<'a> {
    /// The call, as the handler analysis found it.
    pub call: &'a CallSite,
    /// The callee's path as written, without generics (`crate::agents::find`).
    pub path: syn::Path,
    /// The probe module's identifier.
    pub module: syn::Ident,
}

impl<'a> Probe<'a> {
    /// The `index`th probe of a function.
    pub(crate) fn new(call: &'a CallSite, path: syn::Path, index: usize) -> Self {
        Probe {
            call,
            path,
            module: format_ident!("__reactive_probe_{}", index),
        }
    }

    /// The callee's name inside the probe module.
    fn name(&self) -> syn::Ident {
        syn::Ident::new(&self.call.name, Span::call_site())
    }

    /// `<probe::callee as ReactiveFn>`: the callee's companion, or the fallback.
    pub(crate) fn reactive_fn(&self) -> TokenStream {
        let module = &self.module;
        let name = self.name();
        quote! { <#module::#name as ::reactive::__private::ReactiveFn> }
    }

    /// The hidden module resolving the callee, and the compile-time checks on it:
    /// with `explicit` dependencies, each of the callee's tables must be listed; without
    /// them and without a declared kind, the callee must be reactive.
    pub(crate) fn module(&self, explicit: Option<&[String]>, kind_declared: bool) -> TokenStream {
        let module = &self.module;
        let name = self.name();
        let import = import_path(&self.path);
        let written = self
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect::<Vec<_>>()
            .join("::");
        // Errors point at the callee's name (`message_count` in `messages::message_count(..)`).
        let span = self.call.name_span;
        let check = match explicit {
            // The statements a plain helper sends are analysed when they run (and a write
            // inside a declared query is refused then): nothing to check here.
            None if kind_declared => TokenStream::new(),
            None => {
                let message = helper_message(&written);
                quote_spanned! {span=>
                    const _: () = if !<#name as ::reactive::__private::ReactiveFn>::IS_REACTIVE {
                        ::core::panic!(#message)
                    };
                }
            }
            Some(tables) => {
                let before = format!("calls `{written}`, which reads table `");
                let after = "`, but `dependencies(...)` does not list it";
                let panic = quote_spanned! {span=>
                    const _: () = if !__MISSING.is_empty() {
                        ::core::panic!("{}", ::reactive::__private::utf8(&__MESSAGE))
                    };
                };
                quote! {
                    const __MISSING: &str = ::reactive::__private::first_missing(
                        &[#(#tables),*],
                        <#name as ::reactive::__private::ReactiveFn>::DEPS,
                    );
                    const __PARTS: &[&str] = &[#before, __MISSING, #after];
                    const __MESSAGE_LEN: usize = ::reactive::__private::join_len(__PARTS);
                    const __MESSAGE: [u8; __MESSAGE_LEN] = ::reactive::__private::join_bytes::<__MESSAGE_LEN>(__PARTS);
                    #panic
                }
            }
        };
        quote! {
            #[allow(non_snake_case, dead_code, unused_imports)]
            mod #module {
                mod __fallback {
                    #[allow(non_camel_case_types)]
                    pub struct #name {}
                    impl ::reactive::__private::ReactiveFn for #name {
                        const IS_REACTIVE: bool = false;
                        const NAME: &'static str = "";
                        const DEPS: &'static [&'static str] = &[];
                    }
                }
                pub(super) use self::__fallback::*;
                pub(super) use #import;
                #check
            }
        }
    }
}

/// The callee path of a call that can be probed: a path call whose prefix is a
/// module path (`f`, `m::f`, `crate::m::f`, `super::f`). Generics are dropped.
pub(crate) fn probe_path(call: &CallSite) -> Option<syn::Path> {
    let path = call.callee.as_ref()?;
    let segments: Vec<&syn::PathSegment> = path.segments.iter().collect();
    let (last, prefix) = segments.split_last()?;
    let lower = |ident: &syn::Ident| {
        ident
            .to_string()
            .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
    };
    let module_like = |s: &&syn::PathSegment| {
        s.ident == "crate" || s.ident == "self" || s.ident == "super" || lower(&s.ident)
    };
    if !prefix.iter().all(module_like) || !lower(&last.ident) {
        return None;
    }
    let mut clean = path.clone();
    for segment in &mut clean.segments {
        segment.arguments = syn::PathArguments::None;
    }
    Some(clean)
}

/// The probe's path inside the hidden module (one level below the user's module).
fn import_path(path: &syn::Path) -> syn::Path {
    let first = path.segments.first().map(|s| &s.ident);
    if path.leading_colon.is_some() || first.is_some_and(|i| i == "crate") {
        return path.clone();
    }
    let mut out: syn::Path = syn::parse_quote!(super);
    let mut segments = path.segments.iter();
    if first.is_some_and(|i| i == "self") {
        segments.next();
    }
    for segment in segments {
        out.segments.push(segment.clone());
    }
    out
}

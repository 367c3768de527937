//! Expansion of a validated `#[reactive_function]`: the companion type, the probes,
//! the type checks and the registration.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::signature::Signature;
use super::valid::Plan;
use crate::handler::HandlerAnalysis;

/// The type-dependent operations as fn-pointer consts, each spanned at its type:
/// an input that is not `Deserialize + TS` or an output that is not `Serialize + TS`
/// is reported by rustc at the type, once. The registration only calls these.
pub(crate) fn type_consts(sig: &Signature) -> TokenStream {
    let private = quote!(::reactive::__private);
    let input = match &sig.input {
        Some(ty) => {
            let span = ty.span();
            quote_spanned! {span=>
                #[allow(dead_code)]
                const __REACTIVE_DECODE: fn(#private::serde_json::Value) -> ::core::result::Result<#ty, #private::InputError> =
                    #private::decode_input::<#ty>;
                #[allow(dead_code)]
                const __REACTIVE_TS_INPUT: fn(&mut #private::TsCollector) -> ::std::string::String =
                    #private::ts_collect::<#ty>;
            }
        }
        None => quote! {
            #[allow(dead_code)]
            const __REACTIVE_DECODE: fn(#private::serde_json::Value) -> ::core::result::Result<(), #private::InputError> =
                #private::decode_no_input;
            #[allow(dead_code)]
            const __REACTIVE_TS_INPUT: fn(&mut #private::TsCollector) -> ::std::string::String =
                #private::ts_collect_no_input;
        },
    };
    let output = &sig.output;
    let span = output.span();
    let output = quote_spanned! {span=>
        #[allow(dead_code)]
        const __REACTIVE_ENCODE: fn(#private::Result<#output>) -> #private::Result<::std::vec::Vec<u8>> =
            #private::encode_output::<#output>;
        #[allow(dead_code)]
        const __REACTIVE_TS_OUTPUT: fn(&mut #private::TsCollector) -> ::std::string::String =
            #private::ts_collect::<#output>;
    };
    quote! { #input #output }
}

/// The hidden companion type (the function's name in the type namespace) and the
/// deprecation warnings of widened keys (emitted even when there are errors, so that
/// callers don't get secondary errors).
pub(crate) fn companion_type(item: &syn::ItemFn, plan: Option<&Plan<'_>>) -> TokenStream {
    let ident = &item.sig.ident;
    let vis = &item.vis;
    let cfgs = cfgs(item);
    let warnings = plan
        .map_or(&[][..], |p| p.warnings.as_slice())
        .iter()
        .map(|(span, message)| {
            quote_spanned! {*span=>
                #(#cfgs)*
                const _: () = {
                    #[deprecated(note = #message)]
                    #[allow(non_upper_case_globals)]
                    const reactive_wide_read: () = ();
                    reactive_wide_read
                };
            }
        });
    let companion_doc = format!(
        "Compile-time information about the reactive function [`{ident}`] (generated; not part of the API)."
    );
    quote! {
        #(#cfgs)*
        #[doc = #companion_doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        #(#warnings)*
    }
}

/// `#[cfg(...)]` on the function applies to everything generated for it.
pub(crate) fn cfgs(item: &syn::ItemFn) -> Vec<&syn::Attribute> {
    item.attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect()
}

/// The probe modules (one per callee) and the companion's `ReactiveFn` impl: the
/// procedure name and the tables the function reads, with those of the reactive
/// functions it calls (what a caller's `dependencies(...)` is checked against).
pub(crate) fn reactive_fn_impl(
    item: &syn::ItemFn,
    plan: Option<&Plan<'_>>,
    analysis: &HandlerAnalysis,
) -> TokenStream {
    let ident = &item.sig.ident;
    let (name, own_tables, probes) = match plan {
        Some(plan) => (
            plan.model.name.clone(),
            plan.own_tables.clone(),
            &plan.probes[..],
        ),
        None => {
            let tables: BTreeSet<String> = analysis
                .statements
                .iter()
                .flat_map(|s| s.analysis.reads.iter().map(|r| r.table.clone()))
                .collect();
            (ident.to_string(), tables.into_iter().collect(), &[][..])
        }
    };
    let explicit = plan.and_then(|p| p.explicit.as_deref());
    let kind_declared = plan.is_some_and(|p| p.kind_declared);
    let probe_modules = probes.iter().map(|p| p.module(explicit, kind_declared));
    let callees = probes.iter().map(|p| p.reactive_fn());
    let deps = quote! {{
        const __LISTS: &[&[&str]] = &[&[#(#own_tables),*] #(, #callees::DEPS)*];
        const __LEN: usize = ::reactive::__private::lists_len(__LISTS);
        const __ALL: [&str; __LEN] = ::reactive::__private::lists_concat::<__LEN>(__LISTS);
        &__ALL
    }};
    quote! {
        #(#probe_modules)*
        #[automatically_derived]
        impl ::reactive::__private::ReactiveFn for #ident {
            const IS_REACTIVE: bool = true;
            const NAME: &'static str = #name;
            const DEPS: &'static [&'static str] = #deps;
        }
    }
}

/// The `FunctionDef` registration: the function's own model as JSON, and the
/// procedure names of the reactive functions it calls (the registry adds their
/// tables to the model, transitively).
pub(crate) fn registration(plan: &Plan<'_>, sig: &Signature) -> TokenStream {
    let ident = &sig.ident;
    let output = &sig.output;
    let private = quote!(::reactive::__private);
    // Through `Value`: keys sorted, so the emitted text does not depend on field order.
    let model_json = serde_json::to_value(&plan.model)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let calls = plan.probes.iter().map(|p| {
        let callee = p.reactive_fn();
        quote!(#callee::NAME)
    });

    let decode = match &sig.input {
        Some(_) => quote! { let input = __REACTIVE_DECODE(input)?; },
        None => quote! { __REACTIVE_DECODE(input)?; },
    };
    let bindings = plan.model.bindings.iter().map(|binding| {
        let members = binding
            .path
            .iter()
            .map(|segment| match segment.parse::<u32>() {
                Ok(index) => syn::Member::Unnamed(syn::Index {
                    index,
                    span: Span::call_site(),
                }),
                Err(_) => syn::Member::Named(syn::Ident::new(
                    segment.strip_prefix("r#").unwrap_or(segment),
                    Span::call_site(),
                )),
            });
        // The value comes from the field's type: unknown (`{}`) unless its JSON form
        // is what the database compares (see `binding_value`).
        quote! { #private::binding_value!(&input #(.#members)*) }
    });
    let call = match &sig.input {
        Some(_) => quote! { #ident(&db, input).await },
        None => quote! { #ident(&db).await },
    };
    let ret_span = sig.return_type.span();
    let typed_output = quote_spanned! {ret_span=>
        let output: #private::Result<#output> = #call;
    };
    let typescript = quote! {
        let mut collector = #private::TsCollector::default();
        let input = __REACTIVE_TS_INPUT(&mut collector);
        let output = __REACTIVE_TS_OUTPUT(&mut collector);
        collector.finish(input, output)
    };
    let ident_span = ident.span();
    let db_type = &sig.db;
    let run = quote_spanned! {ident_span=>
        #private::boxed_run::<#db_type, _, _>(move |db: #db_type| async move {
            #typed_output
            __REACTIVE_ENCODE(output)
        })
    };
    quote! {
        fn __reactive_prepare(
            input: #private::serde_json::Value,
        ) -> ::core::result::Result<#private::Prepared, #private::InputError> {
            #decode
            let bindings = ::std::vec![#(#bindings),*];
            ::core::result::Result::Ok(#private::Prepared { bindings, run: #run })
        }

        fn __reactive_typescript() -> #private::TsTypes {
            #typescript
        }

        static __REACTIVE_DEF: #private::FunctionDef = #private::FunctionDef {
            model_json: #model_json,
            calls: &[#(#calls),*],
            prepare: __reactive_prepare,
            typescript: __reactive_typescript,
            backend: #private::backend_of::<#db_type>,
            model_cell: #private::OnceLock::new(),
        };

        #private::inventory::submit! {
            #private::Registration(&__REACTIVE_DEF)
        }
    }
}

//! One error context for the whole expansion: every check reports into it, and the
//! user sees every error of one macro invocation in one build.
//!
//! serde_derive's `Ctxt`: errors are collected behind a shared reference (so the
//! parsing and validation steps can all hold it), combined into one `syn::Error` by
//! [`Ctxt::check`], and dropping a context without checking it is a bug, caught by a
//! panic in tests rather than by silently lost errors.

use std::cell::RefCell;
use std::fmt::Display;
use std::thread;

use proc_macro2::{Span, TokenStream};

/// Collects the errors of one expansion. Must be consumed by [`Ctxt::check`] (or
/// [`Ctxt::into_errors`]) before it is dropped.
pub(crate) struct Ctxt {
    /// `None` once checked.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    /// An empty context.
    pub(crate) fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// An error at `span`.
    pub(crate) fn error_spanned(&self, span: Span, message: impl Display) {
        self.syn_error(syn::Error::new(span, message));
    }

    /// An error already built (possibly several combined).
    pub(crate) fn syn_error(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("error reported after the context was checked")
            .push(error);
    }

    /// `true` once any error was reported.
    pub(crate) fn has_errors(&self) -> bool {
        self.errors.borrow().as_ref().is_some_and(|e| !e.is_empty())
    }

    /// Every error, combined into one (`Ok` if there were none).
    pub(crate) fn check(self) -> syn::Result<()> {
        let mut errors = self.take().into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }

    /// The errors as `compile_error!`s (empty if there were none).
    pub(crate) fn check_to_compile_errors(self) -> TokenStream {
        match self.check() {
            Ok(()) => TokenStream::new(),
            Err(error) => error.to_compile_error(),
        }
    }

    /// Every error, one per message, in order.
    pub(crate) fn into_errors(self) -> Vec<syn::Error> {
        self.take()
            .into_iter()
            .flat_map(syn::Error::into_iter)
            .collect()
    }

    fn take(&self) -> Vec<syn::Error> {
        self.errors
            .borrow_mut()
            .take()
            .expect("the context was checked twice")
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !thread::panicking() && self.errors.borrow().is_some() {
            panic!("an expansion's errors were dropped without being checked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_combined_in_order() {
        let cx = Ctxt::new();
        assert!(!cx.has_errors());
        cx.error_spanned(Span::call_site(), "first");
        cx.error_spanned(Span::call_site(), "second");
        assert!(cx.has_errors());
        let messages: Vec<String> = cx
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn a_checked_context_without_errors_is_ok() {
        assert!(Ctxt::new().check().is_ok());
    }

    #[test]
    #[should_panic(expected = "dropped without being checked")]
    fn dropping_an_unchecked_context_panics() {
        let _cx = Ctxt::new();
    }
}

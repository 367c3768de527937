//! Authorization: the application's [`Authorizer`] turns a request head into a
//! [`Principal`] (tenant + subject). The tenant never comes from client-controlled
//! parameters.
//!
//! Per-input checks ("the input names another organization than the caller's") are
//! app logic, with two hooks:
//! - [`Authorizer::check_input`] runs before a call and for each subscribed query key,
//!   with the decoded JSON input; refusing gives `403` and nothing reaches the database.
//! - [`Authorizer::check_subscription`] runs for each subscribed procedure name and `*`
//!   (entries without input); refusing gives `403`.
//! - inside a handler, [`current_principal`] returns the caller (set around the
//!   handler's run; in a task the handler spawns, ask its handle:
//!   [`ReactiveDb::principal`](crate::ReactiveDb::principal)); a handler returns
//!   `Error::Forbidden` to refuse (`403`).

use axum::http::request::Parts;
use futures::future::BoxFuture;

use crate::db::origin;
pub use crate::seams::{AuthError, Authorizer, CallOrigin, Principal};

/// Everyone is the same principal of one tenant. For development and single-user apps
/// only: it authenticates nobody.
#[derive(Debug, Clone)]
pub struct SingleTenant {
    principal: Principal,
}

impl SingleTenant {
    /// Every request is `tenant` / `subject`.
    pub fn new(tenant: impl Into<String>, subject: impl Into<String>) -> Self {
        SingleTenant {
            principal: Principal::new(tenant, subject),
        }
    }
}

impl Default for SingleTenant {
    fn default() -> Self {
        SingleTenant::new("default", "anonymous")
    }
}

impl Authorizer for SingleTenant {
    fn authorize<'a>(&'a self, _parts: &'a Parts) -> BoxFuture<'a, Result<Principal, AuthError>> {
        let p = self.principal.clone();
        Box::pin(async move { Ok(p) })
    }
}

/// The principal of the request being handled, inside a reactive function's handler
/// (or inside [`with_principal`]); `None` elsewhere. A task-local: in a task the
/// handler spawns it is `None`, while the handle the handler received still knows its
/// caller ([`ReactiveDb::principal`](crate::ReactiveDb::principal)).
pub fn current_principal() -> Option<Principal> {
    origin::current().map(|o| o.principal().clone())
}

/// Runs `fut` as `principal` (for background jobs: their writes then produce events
/// for this tenant, and [`current_principal`] returns it). A database handle that
/// carries a call's origin (the one handed to a reactive function's handler) writes
/// for that call's principal instead.
pub async fn with_principal<F: Future>(principal: Principal, fut: F) -> F::Output {
    origin::scope(CallOrigin::new(principal), fut).await
}

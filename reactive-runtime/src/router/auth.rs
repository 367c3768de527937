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
//! - inside a handler, [`current_principal`] returns the caller (a task-local set by the
//!   router around the call); a handler returns `Error::Forbidden` to refuse (`403`).

use axum::http::request::Parts;
use futures::future::BoxFuture;

pub use crate::seams::{AuthError, Authorizer, Principal};

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

/// The caller and the procedure of the running call.
#[derive(Debug, Clone)]
pub(crate) struct CallContext {
    pub(crate) principal: Principal,
    pub(crate) requires_ack: bool,
    /// What the call's writes published for the caller's tenant (the response's
    /// watermark is taken from it).
    pub(crate) events: std::sync::Arc<CallEvents>,
}

/// The events a call's writes recorded for the caller's tenant.
#[derive(Debug, Default)]
pub(crate) struct CallEvents {
    /// The newest id recorded (0: none).
    pub(crate) newest: std::sync::atomic::AtomicU64,
    /// An event or change set could not be recorded or published.
    pub(crate) failed: std::sync::atomic::AtomicBool,
}

tokio::task_local! {
    pub(crate) static CALL: CallContext;
}

/// The principal of the request being handled, inside a reactive function called
/// through the router (or inside [`with_principal`]); `None` elsewhere.
pub fn current_principal() -> Option<Principal> {
    CALL.try_with(|c| c.principal.clone()).ok()
}

/// Runs `fut` as `principal` (for background jobs: their writes then produce events
/// for this tenant, and [`current_principal`] returns it).
pub async fn with_principal<F: Future>(principal: Principal, fut: F) -> F::Output {
    CALL.scope(
        CallContext {
            principal,
            requires_ack: false,
            events: Default::default(),
        },
        fut,
    )
    .await
}

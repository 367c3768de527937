//! The authorizer seam: the application turns a request head into a [`Principal`]
//! (tenant + subject) and checks inputs and subscriptions.

use std::time::SystemTime;

use axum::http::request::Parts;
use futures::future::BoxFuture;
use serde_json::Value;

/// Who is calling: the tenant every cache entry, event and subscription is scoped by,
/// and the subject (user) within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant (organization).
    pub tenant: String,
    /// The user or service within the tenant.
    pub subject: String,
    /// When the credentials stop being valid: SSE streams are closed then.
    pub expires_at: Option<SystemTime>,
}

impl Principal {
    /// A principal without expiry.
    pub fn new(tenant: impl Into<String>, subject: impl Into<String>) -> Self {
        Principal {
            tenant: tenant.into(),
            subject: subject.into(),
            expires_at: None,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Missing, invalid, expired or revoked credentials (`401`).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Valid credentials, but not for this (`403`).
    #[error("forbidden: {0}")]
    Forbidden(String),
}

/// Turns requests into principals. Implemented by the application.
pub trait Authorizer: Send + Sync + 'static {
    /// Authenticates a request from its head (headers, cookies). Also re-run
    /// periodically on the head of each open SSE stream (see
    /// [`RouterConfig::reauthorize_every`](crate::router::RouterConfig::reauthorize_every)): an error then closes the stream.
    fn authorize<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Result<Principal, AuthError>>;

    /// Checks a call's (or a subscribed query key's) decoded input; the default allows
    /// everything.
    fn check_input<'a>(
        &'a self,
        principal: &'a Principal,
        procedure: &'a str,
        input: &'a Value,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        let _ = (principal, procedure, input);
        Box::pin(async { Ok(()) })
    }

    /// Checks a subscription entry without input: a procedure name (`Some(name)`) or
    /// `*` (`None`, also what `/poll` without `subscribe` means). Such an entry receives,
    /// for every write of the tenant to the tables it covers (all tables for `*`), the
    /// event's id, the tables changed and the entry itself — no row values (unless
    /// [`HubConfig::event_keys`](crate::realtime::HubConfig::event_keys) is on: then the key values of the rows written). Refuse
    /// here when a user may not learn that much about other users' writes; the
    /// default allows it. See `docs/protocol.md` section 4.
    fn check_subscription<'a>(
        &'a self,
        principal: &'a Principal,
        procedure: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        let _ = (principal, procedure);
        Box::pin(async { Ok(()) })
    }
}

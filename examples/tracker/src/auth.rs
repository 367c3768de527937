//! Demo authentication: bearer tokens map to organizations (the tenant). An input naming
//! another organization than the caller's is refused with 403.

use futures::future::BoxFuture;
use reactive::router::{AuthError, Authorizer, Principal};

/// The demo organizations: (organization id, bearer token). The migration creates them.
pub const DEMO_TOKENS: &[(&str, &str)] = &[("acme", "acme-token"), ("globex", "globex-token")];

/// Maps the demo tokens to their organizations.
#[derive(Debug, Clone, Default)]
pub struct DemoAuth;

impl Authorizer for DemoAuth {
    fn authorize<'a>(
        &'a self,
        parts: &'a axum::http::request::Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let result = match token {
            None => Err(AuthError::Unauthorized(
                "sign in: send `Authorization: Bearer <token>`".into(),
            )),
            Some(token) => DEMO_TOKENS
                .iter()
                .find(|(_, t)| *t == token)
                .map(|(org, _)| Principal::new(*org, format!("demo-user@{org}")))
                .ok_or_else(|| AuthError::Unauthorized("unknown token".into())),
        };
        Box::pin(async move { result })
    }

    fn check_input<'a>(
        &'a self,
        principal: &'a Principal,
        _procedure: &'a str,
        input: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        let result = match input.get("organizationId").and_then(|v| v.as_str()) {
            Some(org) if org != principal.tenant => Err(AuthError::Forbidden(format!(
                "organization `{org}` is not yours"
            ))),
            _ => Ok(()),
        };
        Box::pin(async move { result })
    }
}

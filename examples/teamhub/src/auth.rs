//! Demo authentication: bearer tokens (or the `reactive_token` cookie the page's
//! sign-in sets) map to organizations. An input naming another organization than
//! the caller's is refused with 403.

use futures::future::BoxFuture;
use reactive::router::{AuthError, Authorizer, Principal};

use crate::seed::DEMO_TENANTS;

/// The cookie the web page's sign-in sets (EventSource cannot send headers).
pub const TOKEN_COOKIE: &str = "reactive_token";

/// Maps the demo tokens to their organizations.
#[derive(Debug, Clone, Default)]
pub struct DemoAuth;

fn token_of(parts: &axum::http::request::Parts) -> Option<&str> {
    let bearer = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| {
        parts
            .headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == TOKEN_COOKIE)
            .map(|(_, v)| v)
    })
}

impl Authorizer for DemoAuth {
    fn authorize<'a>(
        &'a self,
        parts: &'a axum::http::request::Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        let result = match token_of(parts) {
            None => Err(AuthError::Unauthorized(
                "sign in: send `Authorization: Bearer <token>`".into(),
            )),
            Some(token) => DEMO_TENANTS
                .iter()
                .find(|(_, _, t)| *t == token)
                .map(|(org, _, _)| Principal::new(*org, format!("demo-user@{org}")))
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

/// Who may open the dev tools page: in the demo, the first organization's user (a real
/// app checks a role or a staff flag of its own).
pub fn is_devtools_admin(principal: &Principal) -> bool {
    principal.tenant == DEMO_TENANTS[0].0
}

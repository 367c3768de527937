//! Demo authentication: bearer tokens (or the `reactive_token` cookie the page's
//! sign-in sets) map to organizations. An input naming another organization than
//! the caller's is refused with 403. A token may name a user of its organization after
//! a dot (`token-org-1.alice`): each such user is a principal of its own, with its own
//! stream limit (the hit-rate bench signs in hundreds of users this way).

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

/// Longest user name after a token's dot.
const MAX_USER_LEN: usize = 64;

/// The principal of a demo token: `token-org-N` is `demo-user@org-N`,
/// `token-org-N.<user>` is `<user>@org-N` (user: letters, digits, `-`, `_`).
fn principal_of(token: &str) -> Result<Principal, AuthError> {
    let (token, user) = match token.split_once('.') {
        Some((token, user)) => (token, Some(user)),
        None => (token, None),
    };
    let valid_user = |u: &str| {
        !u.is_empty()
            && u.len() <= MAX_USER_LEN
            && u.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if user.is_some_and(|u| !valid_user(u)) {
        return Err(AuthError::Unauthorized("bad user name in the token".into()));
    }
    DEMO_TENANTS
        .iter()
        .find(|(_, _, t)| *t == token)
        .map(|(org, _, _)| Principal::new(*org, format!("{}@{org}", user.unwrap_or("demo-user"))))
        .ok_or_else(|| AuthError::Unauthorized("unknown token".into()))
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
            Some(token) => principal_of(token),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_may_name_a_user_of_its_organization() {
        let p = principal_of("token-org-1").unwrap();
        assert_eq!((&*p.tenant, &*p.subject), ("org-1", "demo-user@org-1"));
        let p = principal_of("token-org-2.u17").unwrap();
        assert_eq!((&*p.tenant, &*p.subject), ("org-2", "u17@org-2"));
        for bad in [
            "token-org-3",
            "token-org-1.",
            "token-org-1.a b",
            "token-org-1.a@org-2",
        ] {
            assert!(principal_of(bad).is_err(), "{bad}");
        }
    }
}

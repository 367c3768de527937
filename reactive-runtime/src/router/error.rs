//! The JSON error body: `{"error": {"code", "message", "path"}}` with its status, and
//! how a handler's [`Error`] becomes one (database errors by their [`DbErrorClass`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::AuthError;
use crate::{DbErrorClass, Error};

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`bad_request`, ...).
    pub code: &'static str,
    /// Human-readable message (never internals for 500).
    pub message: String,
    /// JSON path of the bad input field.
    pub path: Option<String>,
    /// The database constraint the request violated, when the database names it (only
    /// for database errors; omitted from the body otherwise).
    pub constraint: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            path: None,
            constraint: None,
        }
    }

    /// 400 with the JSON path of the offending field.
    pub fn bad_input(message: impl Into<String>, path: impl Into<String>) -> Self {
        ApiError {
            path: Some(path.into()),
            ..Self::bad_request(message)
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// 415.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body with `Content-Type: application/json`",
        )
    }

    /// 500, logging the cause (which the client never sees).
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::internal_unlogged()
    }

    /// 500 for a failure while serving `procedure`, logging the cause with its name.
    pub(crate) fn procedure_failed(procedure: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(procedure, error = %cause, "procedure failed");
        Self::internal_unlogged()
    }

    fn internal_unlogged() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }

    /// The answer to a database error of class `class`: 409, 422, 400 or 503 (see
    /// `docs/protocol.md`, section 6). The message is ours, never the driver's: the
    /// driver's may quote row values or the statement.
    pub fn database(class: DbErrorClass, constraint: Option<String>) -> Self {
        let (status, code, what) = match class {
            // 409: the request is fine, the current rows are not; the client changes the
            // value (another name) or the state (deletes the referencing rows first).
            DbErrorClass::UniqueViolation => (
                StatusCode::CONFLICT,
                "conflict",
                "a row with the same unique key already exists",
            ),
            DbErrorClass::ForeignKeyViolation => (
                StatusCode::CONFLICT,
                "foreign_key",
                "a referenced row does not exist, or the row is still referenced",
            ),
            // 422: well-formed JSON whose values the schema refuses whatever the rows
            // are; resending it cannot succeed.
            DbErrorClass::NotNullViolation => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "constraint",
                "a required value is missing",
            ),
            DbErrorClass::CheckViolation => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "constraint",
                "a value is not allowed by a check constraint",
            ),
            DbErrorClass::OutOfRange => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "out_of_range",
                "a value is too long or out of range for its column",
            ),
            // 400, as for any other malformed input: the text is not a value of the type.
            DbErrorClass::InvalidValue => (
                StatusCode::BAD_REQUEST,
                "invalid_value",
                "a value is not in a valid format for its column's type",
            ),
            // 503 + Retry-After, not 409: resending the same request is the fix, which is
            // what clients and proxies already do with a 503, never with a 409.
            DbErrorClass::Transient => (
                StatusCode::SERVICE_UNAVAILABLE,
                "retry",
                "the database could not complete the request because of concurrent requests; retry it",
            ),
        };
        let message = match &constraint {
            Some(name) => format!("{what} (constraint `{name}`)"),
            None => what.to_owned(),
        };
        ApiError {
            constraint,
            ..Self::new(status, code, message)
        }
    }

    /// The answer to an error a handler of `procedure` returned (`None`: not known).
    ///
    /// Every 5xx is logged at `error` with the procedure and the full error; a database
    /// error the client can act on (4xx) at `debug`, since it is the client's to fix.
    pub(crate) fn from_handler(procedure: Option<&str>, e: Error) -> Self {
        match e {
            Error::BadRequest(m) => ApiError::bad_request(m),
            Error::Unauthorized(m) => ApiError::unauthorized(m),
            Error::Forbidden(m) => ApiError::forbidden(m),
            Error::NotFound(m) => ApiError::not_found(m),
            other => {
                let Some(class) = other.db_class() else {
                    tracing::error!(procedure, error = %other, "procedure failed");
                    return Self::internal_unlogged();
                };
                let constraint = crate::error::find_sqlx(&other)
                    .and_then(|e| e.as_database_error())
                    .and_then(crate::error::constraint_name);
                let api = ApiError::database(class, constraint);
                if api.status.is_server_error() {
                    tracing::error!(procedure, code = api.code, error = %other, "procedure failed");
                } else {
                    tracing::debug!(procedure, code = api.code, constraint = api.constraint.as_deref(), error = %other, "database refused the request");
                }
                api
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized(m) => ApiError::unauthorized(m),
            AuthError::Forbidden(m) => ApiError::forbidden(m),
        }
    }
}

impl From<Error> for ApiError {
    /// As the router answers a handler's error (without a procedure name in the log).
    fn from(e: Error) -> Self {
        ApiError::from_handler(None, e)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    constraint: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Body {
            error: ErrorFields {
                code: self.code,
                message: &self.message,
                path: self.path.as_deref(),
                constraint: self.constraint.as_deref(),
            },
        })
        .unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // A transient database conflict: retrying soon is the remedy.
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Maps `e` as the RPC handler does for procedure `p.x`; returns it with the log.
    fn mapped(e: Error) -> (ApiError, String) {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let api = tracing::subscriber::with_default(subscriber, || {
            ApiError::from_handler(Some("p.x"), e)
        });
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        (api, text)
    }

    #[test]
    fn every_5xx_is_logged_at_error_with_the_procedure() {
        let (api, log) = mapped(Error::Internal("disk on fire".into()));
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.message, "internal server error");
        assert!(log.contains("ERROR"), "{log}");
        assert!(log.contains("procedure=\"p.x\""), "{log}");
        assert!(log.contains("disk on fire"), "{log}");

        let (api, log) = mapped(Error::Database(sqlx::Error::PoolTimedOut));
        assert_eq!((api.status.as_u16(), api.code), (503, "retry"));
        assert!(log.contains("ERROR") && log.contains("p.x"), "{log}");
    }

    /// A unique violation as a driver would report it.
    #[derive(Debug)]
    struct Duplicate;

    impl std::fmt::Display for Duplicate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("duplicate key value 'secret@x'")
        }
    }

    impl std::error::Error for Duplicate {}

    impl sqlx::error::DatabaseError for Duplicate {
        fn message(&self) -> &str {
            "duplicate key value 'secret@x'"
        }
        fn constraint(&self) -> Option<&str> {
            Some("user_email_key")
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::UniqueViolation
        }
    }

    #[test]
    fn a_constraint_violation_is_409_logged_at_debug() {
        let (api, log) = mapped(Error::Database(sqlx::Error::Database(Box::new(Duplicate))));
        assert_eq!((api.status.as_u16(), api.code), (409, "conflict"));
        assert_eq!(api.constraint.as_deref(), Some("user_email_key"));
        assert!(!api.message.contains("secret@x"), "{api:?}");
        assert!(!log.contains("ERROR"), "{log}");
        assert!(
            log.contains("DEBUG") && log.contains("procedure=\"p.x\""),
            "{log}"
        );
    }

    #[test]
    fn client_errors_are_not_logged_as_errors() {
        let (api, log) = mapped(Error::NotFound("no such agent".into()));
        assert_eq!(api.status, StatusCode::NOT_FOUND);
        assert!(!log.contains("ERROR"), "{log}");
    }
}

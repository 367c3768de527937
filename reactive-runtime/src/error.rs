//! The error type handlers return and the router maps to HTTP statuses.

mod database;
mod lost;

pub use database::DbErrorClass;
pub(crate) use database::{constraint_name, find_sqlx};
pub use lost::TransactionLost;

/// The result type of reactive functions: `reactive::Result<T>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a reactive function or the runtime.
///
/// The router maps each variant to a status: `BadRequest` 400, `Unauthorized` 401,
/// `Forbidden` 403, `NotFound` 404; a database error the client can act on (a
/// [`DbErrorClass`]: duplicate key, missing reference, refused or malformed value, a
/// transient conflict) to 409, 422, 400 or 503; everything else 500 (with no internals
/// in the body).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A database error: its [`DbErrorClass`] decides the status; without one it is
    /// logged and clients see a generic 500.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The input is valid JSON of the right shape but not acceptable.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Missing or invalid credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The caller may not access this data (e.g. another tenant's).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The requested thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Serializing or deserializing a value failed.
    #[error("serialization error: {0}")]
    Json(#[from] serde_json::Error),
    /// Any other failure inside a handler.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The class of the database error this is or wraps (see [`DbErrorClass`]), if any.
    pub fn db_class(&self) -> Option<DbErrorClass> {
        DbErrorClass::find(self)
    }
}

//! Runtime of the `reactive` framework: statement interception (`ReactiveDb`),
//! cache stores, the invalidation engine, and the registry of reactive functions.

pub mod cache;
pub mod db;
pub mod engine;
mod error;
pub mod feed;
pub mod observe;
pub mod realtime;
pub mod registry;
pub mod router;
#[cfg(feature = "serve")]
pub mod serve;
pub mod typescript;

pub use error::{DbErrorClass, Error, Result};
pub use reactive_codegen::model;
pub use reactive_codegen::sql::Dialect;

pub use db::{Backend, ReactiveDb, ReactiveTx, ReactiveTxConn, WriteInQuery};
pub use realtime::Realtime;
pub use router::{Authorizer, Principal, RouterConfig, current_principal, router};
#[cfg(feature = "serve")]
pub use serve::serve;

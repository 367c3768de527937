//! Runtime of the `reactive` framework: statement interception (`ReactiveDb`),
//! cache stores, the invalidation engine, and the registry of reactive functions.

mod app;
pub mod cache;
pub mod db;
pub mod engine;
mod error;
pub mod feed;
pub mod observe;
pub mod realtime;
pub mod registry;
pub mod router;
pub mod seams;
#[cfg(feature = "serve")]
pub mod serve;
#[doc(hidden)]
pub mod testing;
pub mod types;
pub mod typescript;

pub use error::{DbErrorClass, Error, Result};
pub use reactive_codegen::model;
pub use reactive_codegen::sql::Dialect;

#[cfg(feature = "redis")]
pub use app::Redis;
pub use app::{BuildError, Database, Reactive, ReactiveBuilder};
pub use db::{Backend, ReactiveDb, ReactiveTx, ReactiveTxConn, WriteInQuery};
pub use engine::EngineConfig;
pub use realtime::Realtime;
#[allow(deprecated)]
pub use router::router;
pub use router::{Authorizer, Principal, RouterConfig, current_principal};
#[cfg(feature = "serve")]
pub use serve::serve;

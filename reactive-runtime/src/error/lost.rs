//! [`TransactionLost`]: the error of a transaction the database rolled back by itself.

/// The database rolled a [`ReactiveTx`](crate::ReactiveTx) back by itself (a deadlock or serialization
/// failure on MySQL/MariaDB, which then runs further statements on the connection in
/// autocommit mode). Its statements and its commit are refused, so that nothing is
/// committed piecemeal outside the transaction with no invalidation: roll back (or drop
/// it) and retry. Returned as `sqlx::Error::Configuration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the database rolled this transaction back (deadlock or serialization failure); roll back and retry it"
)]
pub struct TransactionLost;

impl TransactionLost {
    pub(crate) fn error() -> sqlx::Error {
        sqlx::Error::Configuration(Box::new(TransactionLost))
    }
}

//! What a failed database statement means for the client: [`DbErrorClass`].
//!
//! Classification reads only `sqlx::Error` and [`sqlx::error::DatabaseError`], which
//! every driver (PostgreSQL, MySQL/MariaDB, SQLite, native or through `Any`) produces in
//! the same shape: [`DatabaseError::kind`] first (sqlx already maps each driver's codes
//! for the constraint kinds), then the driver's own code for what `kind()` calls
//! `Other`: the SQLSTATE on PostgreSQL and MySQL/MariaDB, the error number on MySQL
//! where the SQLSTATE is the catch-all `HY000`, the extended result code on SQLite.

use std::error::Error as StdError;

use sqlx::error::{DatabaseError, ErrorKind};

/// The class of a database error a client can act on; `None` from [`DbErrorClass::of`]
/// means "a server failure" (500).
///
/// The router answers each class with its own status and code (see `docs/protocol.md`,
/// section 6): a handler that lets such an error propagate with `?` gives the client
/// something better than a 500. A handler can also match on it, e.g. to pick another
/// slug after a [`UniqueViolation`](DbErrorClass::UniqueViolation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DbErrorClass {
    /// A unique or primary-key violation (also a PostgreSQL exclusion constraint): the
    /// row conflicts with one that already exists.
    UniqueViolation,
    /// A foreign-key violation: a referenced row does not exist, or a row that is still
    /// referenced was to be deleted or changed.
    ForeignKeyViolation,
    /// A `NOT NULL` column got no value.
    NotNullViolation,
    /// A `CHECK` constraint refused a value.
    CheckViolation,
    /// A value the database cannot read as its column's type: a malformed uuid, number
    /// or date (PostgreSQL `22P02`, `22007`, `22008`; MySQL `1366`, `1292`, `1265`).
    InvalidValue,
    /// A well-formed value the column cannot hold: a string too long (`22001`, MySQL
    /// `1406`) or a number out of range (`22003`, MySQL `1264`).
    OutOfRange,
    /// A transient failure that a retry can resolve: serialization failure or deadlock
    /// (`40001`, `40P01`), lock timeout (`55P03`, MySQL `1205`), SQLite busy/locked, no
    /// free pool connection in time, or a [`TransactionLost`](crate::error::TransactionLost).
    Transient,
}

impl DbErrorClass {
    /// Classifies a sqlx error; `None` for anything a client cannot act on.
    pub fn of(error: &sqlx::Error) -> Option<Self> {
        match error {
            sqlx::Error::Database(db) => Self::of_database(db.as_ref()),
            // Every connection was busy for `acquire_timeout`: load, not a fault of the
            // request, and the next attempt may well get one.
            sqlx::Error::PoolTimedOut => Some(Self::Transient),
            // The database rolled the transaction back by itself (MySQL/MariaDB after a
            // deadlock); `ReactiveTx` then refuses the rest of it: retry it all.
            sqlx::Error::Configuration(e) if e.is::<crate::error::TransactionLost>() => {
                Some(Self::Transient)
            }
            _ => None,
        }
    }

    /// Classifies an error the database returned.
    pub fn of_database(error: &dyn DatabaseError) -> Option<Self> {
        match error.kind() {
            ErrorKind::UniqueViolation | ErrorKind::ExclusionViolation => {
                return Some(Self::UniqueViolation);
            }
            ErrorKind::ForeignKeyViolation => return Some(Self::ForeignKeyViolation),
            ErrorKind::NotNullViolation => return Some(Self::NotNullViolation),
            ErrorKind::CheckViolation => return Some(Self::CheckViolation),
            _ => {}
        }
        #[cfg(feature = "sqlite")]
        if error
            .try_downcast_ref::<sqlx::sqlite::SqliteError>()
            .is_some()
        {
            // SQLite's codes are not SQLSTATEs: never read them as one.
            return sqlite_class(error.code()?.parse().ok()?);
        }
        #[cfg(feature = "mysql")]
        if let Some(my) = error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            && let Some(class) = mysql_class(my.number())
        {
            return Some(class);
        }
        sqlstate_class(&error.code()?)
    }

    /// The class of the first `sqlx::Error` in `error`'s source chain (`error` itself
    /// included), so that a database error keeps its class however it was wrapped.
    pub fn find(error: &(dyn StdError + 'static)) -> Option<Self> {
        find_sqlx(error).and_then(Self::of)
    }
}

/// The first `sqlx::Error` in `error`'s source chain, `error` itself included.
pub(crate) fn find_sqlx<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a sqlx::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(sqlx) = e.downcast_ref::<sqlx::Error>() {
            return Some(sqlx);
        }
        current = e.source();
    }
    None
}

/// SQLSTATE classes, as PostgreSQL and MySQL/MariaDB report them.
fn sqlstate_class(code: &str) -> Option<DbErrorClass> {
    Some(match code {
        // invalid_text_representation, invalid_datetime_format, datetime_field_overflow,
        // invalid_character_value_for_cast, character_not_in_repertoire (e.g. a NUL
        // byte in text), untranslatable_character.
        "22P02" | "22007" | "22008" | "22018" | "22021" | "22P05" => DbErrorClass::InvalidValue,
        // string_data_right_truncation, numeric_value_out_of_range.
        "22001" | "22003" => DbErrorClass::OutOfRange,
        // serialization_failure (MySQL/MariaDB: deadlock), deadlock_detected,
        // lock_not_available (`NOWAIT`, `lock_timeout`).
        "40001" | "40P01" | "55P03" => DbErrorClass::Transient,
        _ => return None,
    })
}

/// MySQL/MariaDB error numbers whose SQLSTATE does not say enough (`HY000`, `01000`).
#[cfg(feature = "mysql")]
fn mysql_class(number: u16) -> Option<DbErrorClass> {
    Some(match number {
        // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD (`HY000` on MySQL, `22007` on MariaDB),
        // WARN_DATA_TRUNCATED (a value outside an ENUM, in strict mode).
        1366 | 1265 => DbErrorClass::InvalidValue,
        // ER_LOCK_WAIT_TIMEOUT.
        1205 => DbErrorClass::Transient,
        _ => return None,
    })
}

/// SQLite extended result codes `kind()` leaves as `Other`.
#[cfg(feature = "sqlite")]
fn sqlite_class(code: i32) -> Option<DbErrorClass> {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    const SQLITE_CONSTRAINT_DATATYPE: i32 = 3091;
    match code {
        // A value of the wrong type for a column of a STRICT table.
        SQLITE_CONSTRAINT_DATATYPE => Some(DbErrorClass::InvalidValue),
        // The low byte is the primary code: every BUSY_* and LOCKED_* variant.
        c if c & 0xff == SQLITE_BUSY || c & 0xff == SQLITE_LOCKED => Some(DbErrorClass::Transient),
        _ => None,
    }
}

/// The name of the constraint the database reports for `error`, if any: PostgreSQL
/// always names it; MySQL/MariaDB only in the message (the key of a duplicate entry, a
/// foreign key or check); SQLite only the name of a named `CHECK` constraint. Never any
/// part of the row's values or of the statement.
pub(crate) fn constraint_name(error: &dyn DatabaseError) -> Option<String> {
    if let Some(name) = error.constraint() {
        return Some(name.to_owned());
    }
    let message = error.message();
    let name = match error.kind() {
        // MySQL: "Duplicate entry '<value>' for key '<table>.<key>'" (8.0.19+ prefixes
        // the table); MariaDB: "... for key '<key>'". The value comes first, so search
        // from the end.
        ErrorKind::UniqueViolation => message
            .rfind(" for key '")
            .map(|i| &message[i + " for key '".len()..])
            .and_then(|rest| rest.strip_suffix('\''))
            .map(|key| key.rsplit('.').next().unwrap_or(key)),
        // MySQL/MariaDB: "... a foreign key constraint fails (`db`.`t`, CONSTRAINT `fk`
        // FOREIGN KEY ...)"; MariaDB check: "CONSTRAINT `c` failed for `db`.`t`".
        ErrorKind::ForeignKeyViolation | ErrorKind::CheckViolation
            if message.contains("CONSTRAINT `") =>
        {
            between(message, "CONSTRAINT `", "`")
        }
        // MySQL: "Check constraint '<name>' is violated."; SQLite: "CHECK constraint
        // failed: <name>" (or the expression, for an unnamed one).
        ErrorKind::CheckViolation => between(message, "Check constraint '", "'").or_else(|| {
            message
                .strip_prefix("CHECK constraint failed: ")
                .map(str::trim)
        }),
        _ => None,
    }?;
    // An expression or a truncated message is no name: keep identifiers only.
    let identifier = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    identifier.then(|| name.to_owned())
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        assert_eq!(sqlstate_class("22P02"), Some(DbErrorClass::InvalidValue));
        assert_eq!(sqlstate_class("22007"), Some(DbErrorClass::InvalidValue));
        assert_eq!(sqlstate_class("22001"), Some(DbErrorClass::OutOfRange));
        assert_eq!(sqlstate_class("40P01"), Some(DbErrorClass::Transient));
        assert_eq!(
            sqlstate_class("42P01"),
            None,
            "undefined table is a bug: 500"
        );
        assert_eq!(sqlstate_class("HY000"), None);
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_codes() {
        assert_eq!(sqlite_class(5), Some(DbErrorClass::Transient));
        assert_eq!(
            sqlite_class(517),
            Some(DbErrorClass::Transient),
            "BUSY_SNAPSHOT"
        );
        assert_eq!(
            sqlite_class(262),
            Some(DbErrorClass::Transient),
            "LOCKED_SHAREDCACHE"
        );
        assert_eq!(sqlite_class(3091), Some(DbErrorClass::InvalidValue));
        assert_eq!(sqlite_class(1), None);
    }

    #[test]
    fn wrapped_errors_keep_their_class() {
        let lost = sqlx::Error::Configuration(Box::new(crate::error::TransactionLost));
        assert_eq!(DbErrorClass::of(&lost), Some(DbErrorClass::Transient));
        let wrapped = crate::Error::Database(sqlx::Error::PoolTimedOut);
        assert_eq!(DbErrorClass::find(&wrapped), Some(DbErrorClass::Transient));
        assert_eq!(wrapped.db_class(), Some(DbErrorClass::Transient));
        assert_eq!(crate::Error::Internal("x".into()).db_class(), None);
        assert_eq!(DbErrorClass::of(&sqlx::Error::RowNotFound), None);
    }

    #[test]
    fn between_finds_names() {
        let fk = "Cannot add or update a child row: a foreign key constraint fails (`test`.`c`, CONSTRAINT `c_parent_fk` FOREIGN KEY (`p`) REFERENCES `p` (`id`))";
        assert_eq!(between(fk, "CONSTRAINT `", "`"), Some("c_parent_fk"));
        assert_eq!(between("no", "CONSTRAINT `", "`"), None);
    }
}

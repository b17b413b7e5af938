//! The store's error type. Messages are one line: they may be shown to the user as they are.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database file could not be opened or prepared (wraps the first failure).
    #[error("cannot open database {}: {cause}", path.display())]
    Open {
        path: PathBuf,
        cause: Box<StoreError>,
    },
    /// `open_or_memory` fell back to an in-memory store; this is what the user is told.
    #[error(
        "cannot open database {}: {reason}; using an in-memory store, history will not persist",
        path.display()
    )]
    Fallback { path: PathBuf, reason: String },
    /// A migration failed and was rolled back; the database stays at the previous version.
    #[error("migration {version} ({name}) failed and was rolled back: {reason}")]
    Migration {
        version: u32,
        name: &'static str,
        reason: String,
    },
    /// The file was written by a newer boocoder; we refuse to guess at its schema.
    #[error("database schema version {found} is newer than this boocoder supports ({supported})")]
    TooNew { found: u32, supported: u32 },
    #[error("cannot create directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the store thread: {0}")]
    Thread(std::io::Error),
    #[error("database file is corrupt: {0}")]
    Corrupt(String),
    #[error("database file is read-only")]
    ReadOnly,
    /// Another process held the write lock past the busy timeout and every retry.
    #[error("database stayed locked by another process; giving up after {attempts} attempts")]
    Busy { attempts: u32 },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value this version cannot read (unknown enum text, bad JSON).
    #[error("invalid stored data: {0}")]
    Data(String),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },
    #[error("task {id} cannot go from {from} to {to}")]
    TaskTransition {
        id: i64,
        from: &'static str,
        to: &'static str,
    },
    /// The store thread is gone (closed, or it panicked).
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// SQLITE_BUSY / SQLITE_LOCKED: another connection holds a lock; worth retrying.
    pub(super) fn is_busy(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => is_busy(e),
            _ => false,
        }
    }
}

pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// For row mappers: a column whose text this version cannot read.
pub(super) fn bad_column(idx: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        rusqlite::types::Type::Text,
        Box::new(StoreError::Data(format!("unknown {what} '{value}'"))),
    )
}

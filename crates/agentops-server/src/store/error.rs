//! The store's errors, one type per kind of operation, each holding only what that operation
//! can answer: a storage failure ([`StoreError`]) for every operation, and on top of it what a
//! write ([`WriteError`]), an administrative change ([`AdminError`]) or a session query
//! ([`QueryError`]) may be refused for.

/// A storage failure: the database failed, cannot be reached or written, holds what cannot be
/// read back, or cannot be opened as configured. Nothing in it is about the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL refused or failed a statement (its own message).
    #[error("database error: {0}")]
    Postgres(String),
    /// The database cannot be reached now (down, unreachable, or every connection busy for
    /// too long); the same request may succeed later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database stopped answering: a call was given up at its deadline (the connection
    /// closed). Like [`StoreError::Unavailable`], and more: every call now would wait as long.
    #[error("storage unavailable: {0}")]
    TimedOut(String),
    /// The database files could not be reached.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The database cannot be written now: the disk is full (`SQLITE_FULL`) or writing
    /// failed (`SQLITE_IOERR`). Nothing of the transaction was committed; the same write may
    /// succeed once space is back.
    #[error("storage cannot be written (disk full or failing): {0}")]
    Unwritable(String),
    /// What the store was given to open or write to cannot be used: a database URL, a TLS
    /// setting, a pool setting, a backup's destination.
    #[error("{0}")]
    Config(String),
}

/// Why one write of a batch ([`super::WriteStore::commit`]) was not applied. Nothing of it was
/// stored; the other writes of the batch are not affected.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The session it writes to does not exist in the caller's project.
    #[error("{0}")]
    NotFound(String),
    /// The write is inconsistent (an event of another session) or holds a value the store
    /// cannot keep as it is (PostgreSQL's data exceptions: a NUL character in text, a number
    /// out of range).
    #[error("{0}")]
    Invalid(String),
    /// The storage failed while applying it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Store(StoreError::Database(e))
    }
}

/// Why an administrative change (an API key added or revoked, a project's retention set) was
/// not made.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// What it names does not exist: no key with that id, no such project.
    #[error("{0}")]
    NotFound(String),
    /// The record is another project's (an API key registered by another project).
    #[error("{0}")]
    Forbidden(String),
    /// What it was given is not usable: not a key id, an id that matches several keys.
    #[error("{0}")]
    Invalid(String),
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for AdminError {
    fn from(e: rusqlite::Error) -> Self {
        AdminError::Store(StoreError::Database(e))
    }
}

/// Why a page of sessions ([`super::ReadStore::query_sessions`]) was not read.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query cannot be answered as given: a cursor whose key does not continue the sort.
    #[error("{0}")]
    Invalid(String),
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

//! redb's errors as tiercache errors, converted at the crate edge.

use cache_core::{Error, ErrorKind};

/// A redb failure while doing `what`, with redb's error as the source.
///
/// A closed database means the tier is shutting down, which callers treat
/// like an unreachable tier; every other failure is the storage engine's.
pub(super) fn storage(what: &'static str, error: impl Into<::redb::Error>) -> Error {
    let error = error.into();
    let kind = match error {
        ::redb::Error::DatabaseClosed => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, what).with_source(error)
}

/// The error of an operation after the writer thread or the file has gone.
pub(super) fn closed() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "the redb tier is closed: its writer thread has stopped",
    )
}

/// The error of an operation while the file is closed after an I/O error,
/// until the writer has opened it again.
pub(super) fn reopening() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "the redb file is closed after an I/O error until the tier reopens it",
    )
}

/// Whether `error` came from an I/O failure of the file. redb latches such
/// a failure: every later transaction on that database fails with
/// `PreviousIo`, so only a fresh open recovers from it.
pub(super) fn needs_reopen(error: &Error) -> bool {
    matches!(
        error.source_as::<::redb::Error>(),
        Some(::redb::Error::Io(_) | ::redb::Error::PreviousIo)
    )
}

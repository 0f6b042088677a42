//! The one error type of tiercache.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// What went wrong, in a form callers can match on.
///
/// New kinds are added as features arrive, so matches need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A key is longer than the configured limit; nothing was changed.
    KeyTooLarge,
    /// A value is larger than the configured limit; nothing was changed.
    ValueTooLarge,
    /// A time-to-live or expiry is zero, in the past where that is not
    /// allowed, or too far in the future to represent.
    InvalidTtl,
    /// A builder was given settings that cannot work together.
    InvalidConfig,
    /// A value or key could not be encoded or decoded by the codec.
    Codec,
    /// A stored record failed its integrity check. It is treated as a miss.
    Corrupted,
    /// A tier is not reachable (server down, circuit open, file closed).
    Unavailable,
    /// An operation did not finish within its deadline.
    Timeout,
    /// A tier failed for another reason (I/O, protocol, storage engine).
    Backend,
    /// A loader passed to `try_get_with` returned an error; the loader's
    /// error is the [`source`](std::error::Error::source).
    Loader,
    /// A loader panicked or was cancelled before producing a value.
    LoaderAborted,
    /// An argument is malformed, such as a key listing's cursor that this
    /// tier did not make; nothing was changed.
    InvalidInput,
}

impl ErrorKind {
    /// A short, stable, lowercase name, suitable for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::KeyTooLarge => "key_too_large",
            ErrorKind::ValueTooLarge => "value_too_large",
            ErrorKind::InvalidTtl => "invalid_ttl",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Codec => "codec",
            ErrorKind::Corrupted => "corrupted",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Backend => "backend",
            ErrorKind::Loader => "loader",
            ErrorKind::LoaderAborted => "loader_aborted",
            ErrorKind::InvalidInput => "invalid_input",
        }
    }

    /// Whether this kind is caused by the caller's input (as opposed to a
    /// tier failing). Input errors are returned to the caller; tier failures
    /// are skipped by the tiered cache.
    pub fn is_input_error(self) -> bool {
        matches!(
            self,
            ErrorKind::KeyTooLarge
                | ErrorKind::ValueTooLarge
                | ErrorKind::InvalidTtl
                | ErrorKind::InvalidConfig
                | ErrorKind::Codec
                | ErrorKind::InvalidInput
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shared, type-erased cause of an [`Error`].
type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The error type of every tiercache crate.
///
/// It is cheap to clone (the cause is shared), so one failure can be handed
/// to every caller waiting on the same key.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    source: Option<Source>,
}

/// `Result` with tiercache's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Attaches an already shared cause.
    pub fn with_shared_source(mut self, source: Arc<dyn std::error::Error + Send + Sync>) -> Self {
        self.source = Some(source);
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The cause as a concrete type, if it is one.
    pub fn source_as<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.as_deref().and_then(|s| s.downcast_ref::<E>())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Cause;
    impl fmt::Display for Cause {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("the cause")
        }
    }
    impl std::error::Error for Cause {}

    #[test]
    fn display_includes_kind_message_and_cause() {
        let e = Error::new(ErrorKind::Backend, "write failed").with_source(Cause);
        assert_eq!(e.to_string(), "backend: write failed: the cause");
        assert!(e.source_as::<Cause>().is_some());
        let clone = e.clone();
        assert_eq!(clone.kind(), ErrorKind::Backend);
        assert!(std::error::Error::source(&clone).is_some());
    }

    #[test]
    fn input_errors_are_distinguished_from_tier_failures() {
        assert!(ErrorKind::KeyTooLarge.is_input_error());
        assert!(ErrorKind::InvalidInput.is_input_error());
        assert!(!ErrorKind::Unavailable.is_input_error());
        assert!(!ErrorKind::Corrupted.is_input_error());
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<Error>();
    }
}

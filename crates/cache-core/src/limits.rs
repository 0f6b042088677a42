//! Bounds on key and value sizes.

use crate::error::{Error, ErrorKind, Result};

/// Size limits a tier enforces before it stores anything.
///
/// Oversized input is rejected with a clear error and leaves the tier
/// unchanged, so one bad request never evicts good entries or stalls a
/// server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest key accepted, in bytes.
    pub max_key_len: usize,
    /// The largest value accepted, in bytes (as stored, after encoding).
    pub max_value_len: usize,
}

impl Limits {
    /// Keys up to 8 KiB and values up to 64 MiB.
    pub const DEFAULT: Limits = Limits {
        max_key_len: 8 * 1024,
        max_value_len: 64 * 1024 * 1024,
    };

    /// Rejects a key longer than `max_key_len`.
    pub fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() > self.max_key_len {
            return Err(Error::new(
                ErrorKind::KeyTooLarge,
                format!(
                    "key of {} bytes exceeds the limit of {} bytes",
                    key.len(),
                    self.max_key_len
                ),
            ));
        }
        Ok(())
    }

    /// Rejects a value longer than `max_value_len`.
    pub fn check_value(&self, len: usize) -> Result<()> {
        if len > self.max_value_len {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                format!(
                    "value of {len} bytes exceeds the limit of {} bytes",
                    self.max_value_len
                ),
            ));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

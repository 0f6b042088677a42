//! The dead-letter list: writes the store refused too many times, kept in
//! the log until an operator retries or discards them.

use cache_core::{Codec, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::write_back::WriteBack;

/// A write that went to the dead-letter list.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter<K, V> {
    /// The key written.
    pub key: K,
    /// The value it was to be saved with; `None` for a removal.
    pub value: Option<V>,
    /// How many times the store was asked.
    pub tries: u32,
    /// When the last try failed, in unix milliseconds.
    pub failed_at_ms: u64,
    /// The store's last error.
    pub error: String,
}

/// The dead-letter list of a cache: list, retry or discard what the store
/// refused. A cache without write-back has an empty one.
///
/// A dead letter stays until one of these calls removes it, or a newer
/// write of its key replaces it (that write is queued instead). Retrying
/// queues it again as a new write, tried afresh.
pub struct DeadLetters<'a, K, V, C> {
    write_back: Option<&'a WriteBack<K, V, C>>,
}

impl<'a, K, V, C> DeadLetters<'a, K, V, C>
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// The dead-letter list of `write_back` (an empty one with `None`).
    pub fn new(write_back: Option<&'a WriteBack<K, V, C>>) -> Self {
        DeadLetters { write_back }
    }

    /// How many writes are in the list.
    pub fn len(&self) -> u64 {
        self.write_back.map_or(0, |wb| wb.stats().dead_letters)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every write in the list.
    pub async fn list(&self) -> Result<Vec<DeadLetter<K, V>>> {
        match self.write_back {
            Some(wb) => wb.dead_letters().await,
            None => Ok(Vec::new()),
        }
    }

    /// Queues the dead letter of `key` again; `true` if there was one to
    /// queue (a key written since it died keeps its newer write, and its
    /// dead letter is simply dropped).
    pub async fn retry(&self, key: &K) -> Result<bool>
    where
        K: Clone,
    {
        match self.write_back {
            Some(wb) => Ok(wb.retry_dead(Some(std::slice::from_ref(key))).await? > 0),
            None => Ok(false),
        }
    }

    /// Queues every dead letter again; the number queued.
    pub async fn retry_all(&self) -> Result<usize> {
        match self.write_back {
            Some(wb) => wb.retry_dead(None).await,
            None => Ok(0),
        }
    }

    /// Deletes the dead letter of `key`; `true` if there was one.
    pub async fn discard(&self, key: &K) -> Result<bool>
    where
        K: Clone,
    {
        match self.write_back {
            Some(wb) => Ok(wb.discard_dead(Some(std::slice::from_ref(key))).await? > 0),
            None => Ok(false),
        }
    }

    /// Deletes every dead letter; the number deleted.
    pub async fn discard_all(&self) -> Result<usize> {
        match self.write_back {
            Some(wb) => wb.discard_dead(None).await,
            None => Ok(0),
        }
    }
}

impl<K, V, C> std::fmt::Debug for DeadLetters<'_, K, V, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("write_back", &self.write_back.is_some())
            .finish()
    }
}

//! [`MemoryBackend`]: the memory engine as a byte-level tier.

use std::sync::Arc;

use bytes::Bytes;
use cache_core::{
    Backend, Clock, Entry, Error, ErrorKind, KeyCursor, KeyPage, Limits, Lookup, Removals, Result,
};
use parking_lot::Mutex;

use super::RemovalCause;
use super::cache::{MemoryCache, default_partitions};

/// Bytes each entry costs beyond its key and value, counted against the
/// capacity so that many tiny entries cannot exceed the memory budget.
const ENTRY_OVERHEAD: u32 = 96;

/// The capacity an entry with this many key and value bytes takes.
fn entry_weight(len: usize) -> u32 {
    u32::try_from(len)
        .unwrap_or(u32::MAX)
        .saturating_add(ENTRY_OVERHEAD)
}

/// The first byte of this tier's key cursors, followed by the partition
/// and the slot, each a big-endian `u32`.
const CURSOR_TAG: u8 = b'm';

/// The key cursor of a position in the engine.
fn encode_cursor((partition, slot): (usize, usize)) -> KeyCursor {
    let mut bytes = Vec::with_capacity(9);
    bytes.push(CURSOR_TAG);
    // Partitions and slots are counted in u32 by the engine.
    bytes.extend_from_slice(&u32::try_from(partition).unwrap_or(u32::MAX).to_be_bytes());
    bytes.extend_from_slice(&u32::try_from(slot).unwrap_or(u32::MAX).to_be_bytes());
    KeyCursor::from_bytes(bytes)
}

/// The engine position of a key cursor, which must name one of the
/// engine's `partitions`.
fn decode_cursor(cursor: &KeyCursor, partitions: usize) -> Result<(usize, usize)> {
    if cursor.is_start() {
        return Ok((0, 0));
    }
    let position = match *cursor.as_bytes() {
        [CURSOR_TAG, p0, p1, p2, p3, s0, s1, s2, s3] => Some((
            u32::from_be_bytes([p0, p1, p2, p3]) as usize,
            u32::from_be_bytes([s0, s1, s2, s3]) as usize,
        )),
        _ => None,
    };
    match position {
        Some((partition, slot)) if partition < partitions => Ok((partition, slot)),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            "not a key cursor of this memory tier",
        )),
    }
}

/// The memory engine as a [`Backend`]: bytes in, bytes out, bounded by
/// total bytes. Useful as an in-process byte tier and as a stand-in for a
/// remote tier in tests.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use cache_backends::memory::MemoryBackend;
/// use cache_core::{Backend, Entry, Meta};
/// let tier = MemoryBackend::builder().max_bytes(1 << 20).build();
/// tier.insert("k".into(), Entry::new(&b"v"[..], Meta::new(0))).await?;
/// assert!(tier.get(b"k").await?.is_hit());
/// # Ok::<(), cache_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct MemoryBackend {
    cache: MemoryCache<Bytes, Entry>,
    limits: Limits,
    /// Evictions and expirations per class, from the engine's listener.
    classes: Arc<Mutex<Removals>>,
}

/// Builds a [`MemoryBackend`].
#[derive(Clone, Debug)]
pub struct MemoryBackendBuilder {
    max_bytes: u64,
    clock: Clock,
    limits: Limits,
    partitions: Option<usize>,
}

impl MemoryBackendBuilder {
    /// The total bytes held, counting keys, values and a fixed per-entry
    /// overhead. 64 MiB by default.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The clock used for expiry.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The key and value size limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The number of partitions (see [`MemoryCache`]).
    pub fn partitions(mut self, partitions: usize) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Builds the backend.
    ///
    /// # Panics
    ///
    /// If `max_bytes` is zero or smaller than the partition count.
    pub fn build(self) -> MemoryBackend {
        // Each partition holds an equal share of the bytes, and an entry
        // heavier than its partition's share is never stored. The default
        // count follows the core count, so on a large machine the share
        // could fall below the largest entry the limits admit and such
        // entries would be dropped silently; fewer partitions prevent that.
        let largest = u64::from(entry_weight(
            self.limits
                .max_key_len
                .saturating_add(self.limits.max_value_len),
        ));
        let fitting = usize::try_from(self.max_bytes / largest).unwrap_or(usize::MAX);
        let partitions = self
            .partitions
            .unwrap_or_else(|| default_partitions(self.max_bytes).min(fitting).max(1));
        let classes = Arc::new(Mutex::new(Removals::default()));
        let counted = classes.clone();
        let cache = MemoryCache::builder()
            .max_capacity(self.max_bytes)
            .clock(self.clock)
            .weigher(|k: &Bytes, e: &Entry| entry_weight(k.len().saturating_add(e.value.len())))
            .partitions(partitions)
            .eviction_listener(move |_, entry: Entry, cause| match cause {
                RemovalCause::Size => counted.lock().add(entry.meta.class.as_str(), 1, 0),
                RemovalCause::Expired => counted.lock().add(entry.meta.class.as_str(), 0, 1),
                RemovalCause::Explicit | RemovalCause::Replaced => {}
            })
            .build();
        MemoryBackend {
            cache,
            limits: self.limits,
            classes,
        }
    }
}

impl MemoryBackend {
    /// Starts configuring a memory backend.
    pub fn builder() -> MemoryBackendBuilder {
        MemoryBackendBuilder {
            max_bytes: 64 * 1024 * 1024,
            clock: Clock::system(),
            limits: Limits::DEFAULT,
            partitions: None,
        }
    }

    /// The engine underneath, for inspection.
    pub fn engine(&self) -> &MemoryCache<Bytes, Entry> {
        &self.cache
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        self.limits.check_key(key)?;
        Ok(self
            .cache
            .get(&Bytes::copy_from_slice(key))
            .map_or(Lookup::Miss, Lookup::from_entry))
    }

    async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
        self.limits.check_key(&key)?;
        self.limits.check_value(entry.value.len())?;
        let expires_at = entry.meta.expires_at_ms;
        self.cache.insert_with_expiry(key, entry, expires_at);
        Ok(())
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        self.limits.check_key(key)?;
        Ok(self.cache.remove(&Bytes::copy_from_slice(key)).is_some())
    }

    /// Compares and deletes under the partition's lock, through
    /// [`MemoryCache::remove_if`].
    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
        self.limits.check_key(key)?;
        Ok(self
            .cache
            .remove_if(&Bytes::copy_from_slice(key), |entry| entry.value == seen)
            .is_some())
    }

    /// Whether the key has a live entry that is not negative, without
    /// counting as a use.
    async fn contains(&self, key: &[u8]) -> Result<bool> {
        self.limits.check_key(key)?;
        Ok(self
            .cache
            .contains_key_where(&Bytes::copy_from_slice(key), |entry| {
                !entry.meta.is_negative()
            }))
    }

    async fn clear(&self) -> Result<()> {
        self.cache.clear();
        Ok(())
    }

    async fn len(&self) -> Result<u64> {
        Ok(self.cache.entry_count())
    }

    fn removals(&self) -> Option<Removals> {
        let mut removals = Removals::default();
        removals.evicted = self.cache.evicted_count();
        removals.expired = self.cache.expired_count();
        removals.by_class = self.classes.lock().by_class.clone();
        Some(removals)
    }

    /// Lists the engine's keys a partition at a time, in slot order, with
    /// [`MemoryCache::keys_page`]: each key live for the whole listing
    /// exactly once, expired entries skipped. A key removed and written
    /// again during the listing may be listed twice. The cursor names a
    /// partition and a slot, so it is meaningful only to this backend (and
    /// its clones) while it lives.
    async fn keys(&self, from: &KeyCursor, limit: usize) -> Result<Option<KeyPage>> {
        let position = decode_cursor(from, self.cache.partition_count())?;
        let (keys, next) = self.cache.keys_page(position, limit);
        Ok(Some(KeyPage {
            keys,
            next: next.map(encode_cursor),
        }))
    }
}

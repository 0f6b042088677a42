//! The suite's reference backend.

use super::*;

/// The simplest correct backend: an ordered map behind a mutex. It is the
/// suite's own reference, and a model for tests of layers.
#[derive(Debug)]
pub struct ReferenceBackend {
    pub(super) map: Mutex<BTreeMap<Bytes, Entry>>,
    clock: Clock,
    limits: Limits,
}

impl ReferenceBackend {
    /// An empty reference backend reading `clock` and enforcing `limits`.
    pub fn new(clock: Clock, limits: Limits) -> Self {
        ReferenceBackend {
            map: Mutex::new(BTreeMap::new()),
            clock,
            limits,
        }
    }

    fn live(&self, map: &mut BTreeMap<Bytes, Entry>, key: &[u8]) -> Option<Entry> {
        let now = self.clock.now_ms();
        match map.get(key) {
            Some(e) if e.meta.is_expired(now) => {
                map.remove(key);
                None
            }
            other => other.cloned(),
        }
    }
}

impl Backend for ReferenceBackend {
    fn name(&self) -> &str {
        "reference"
    }

    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        self.limits.check_key(key)?;
        Ok(self
            .live(&mut self.map.lock(), key)
            .map_or(Lookup::Miss, Lookup::from_entry))
    }

    async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
        self.limits.check_key(&key)?;
        self.limits.check_value(entry.value.len())?;
        self.map.lock().insert(key, entry);
        Ok(())
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        let mut map = self.map.lock();
        let live = self.live(&mut map, key).is_some();
        map.remove(key);
        Ok(live)
    }

    /// Compares and deletes under the map's lock, so no write can land
    /// between the comparison and the removal.
    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
        let mut map = self.map.lock();
        match self.live(&mut map, key) {
            Some(e) if e.value == seen => {
                map.remove(key);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn clear(&self) -> Result<()> {
        self.map.lock().clear();
        Ok(())
    }

    async fn len(&self) -> Result<u64> {
        Ok(self.map.lock().len() as u64)
    }

    /// Lists the keys in key order; the cursor is the last key listed,
    /// after a tag byte, so that the empty key is not the start.
    async fn keys(&self, from: &KeyCursor, limit: usize) -> Result<Option<KeyPage>> {
        let lower = match from.as_bytes() {
            [] => Bound::Unbounded,
            [REFERENCE_CURSOR, last @ ..] => Bound::Excluded(Bytes::copy_from_slice(last)),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "not a key cursor of the reference backend",
                ));
            }
        };
        let now = self.clock.now_ms();
        let map = self.map.lock();
        let mut live = map
            .range((lower, Bound::Unbounded))
            .filter(|(_, e)| !e.meta.is_expired(now))
            .map(|(k, _)| k);
        let keys: Vec<Bytes> = live.by_ref().take(limit.max(1)).cloned().collect();
        let next = match (live.next(), keys.last()) {
            (Some(_), Some(last)) => {
                let mut cursor = Vec::with_capacity(last.len() + 1);
                cursor.push(REFERENCE_CURSOR);
                cursor.extend_from_slice(last);
                Some(KeyCursor::from_bytes(cursor))
            }
            _ => None,
        };
        Ok(Some(KeyPage { keys, next }))
    }
}

/// The first byte of the reference backend's key cursors.
const REFERENCE_CURSOR: u8 = b'k';

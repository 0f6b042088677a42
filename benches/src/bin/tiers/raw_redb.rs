//! The baseline of the redb tier: the same keys and values in a plain redb
//! file, one table of key bytes → value bytes, called directly.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use crate::measure::{AsyncOp, Data};

/// The one table: key bytes → value bytes.
const TABLE: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("raw");

/// A redb file holding the benchmark's data with nothing around it.
pub(crate) struct RawRedb {
    db: Database,
}

impl RawRedb {
    /// Creates the file at `path` with a page cache of `cache_size` bytes
    /// (the tier's, so both read from equally large caches) and stores
    /// every key of `data` in one transaction.
    pub(crate) fn create(path: &Path, cache_size: usize, data: &Data) -> Result<RawRedb, String> {
        let fail = |e: redb::Error| format!("raw redb at {}: {e}", path.display());
        let db = Database::builder()
            .set_cache_size(cache_size)
            .create(path)
            .map_err(|e| fail(e.into()))?;
        let seed = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(TABLE)?;
                for (key, value) in data.keys.iter().zip(&data.values) {
                    table.insert(key.as_ref(), value.as_ref())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        seed().map_err(fail)?;
        Ok(RawRedb { db })
    }

    /// One read transaction for one key, the value copied out of it (a
    /// caller must own the bytes once the transaction ends, as the tier's
    /// callers do). `None` for an absent key.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, redb::Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }

    /// One write transaction for one key, committed with immediate
    /// durability (an `fsync` per insert), like the tier's default.
    pub(crate) fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut table = txn.open_table(TABLE)?;
            table.insert(key, value)?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// Raw redb gets from async code: each one on the runtime's blocking pool
/// (`spawn_blocking`), as an async program that calls redb itself must
/// run it to keep redb off the runtime's worker threads.
pub(crate) struct BlockingGet {
    pub(crate) raw: Arc<RawRedb>,
    pub(crate) data: Arc<Data>,
}

impl AsyncOp for BlockingGet {
    async fn call(&self, i: usize) -> bool {
        let (raw, data) = (self.raw.clone(), self.data.clone());
        let found = tokio::task::spawn_blocking(move || raw.get(&data.keys[i])).await;
        matches!(found, Ok(Ok(Some(_))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_seeded_data_and_takes_inserts() {
        let dir = tempfile::tempdir().unwrap();
        let data = Data::new(10, 64, 1);
        let raw = RawRedb::create(&dir.path().join("raw.redb"), 1 << 20, &data).unwrap();
        assert_eq!(
            raw.get(&data.keys[3]).unwrap().as_deref(),
            Some(&data.values[3][..])
        );
        assert_eq!(raw.get(b"absent").unwrap(), None);
        raw.insert(&data.keys[3], b"new").unwrap();
        assert_eq!(
            raw.get(&data.keys[3]).unwrap().as_deref(),
            Some(&b"new"[..])
        );
    }
}

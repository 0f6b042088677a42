//! The tables of the redb file, and the write-side operations that keep
//! them consistent with each other and with the running byte total.

use ::redb::{
    Error as RedbError, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};
use cache_core::{DataClass, Entry};

use super::stats::Delta;
use crate::envelope;

/// Key bytes → record (the crate's envelope).
pub(super) const ENTRIES: TableDefinition<'static, &[u8], &[u8]> =
    TableDefinition::new("tiercache_entries");
/// Key bytes → (access tick, expiry in unix ms or [`NO_EXPIRY`], bytes
/// counted): where each entry sits in the two indexes, and what it adds to
/// the total. Keeping the count here, rather than measuring the record on
/// removal, keeps the total right even if a record was altered on disk.
pub(super) const KEYS: TableDefinition<'static, &[u8], (u64, u64, u64)> =
    TableDefinition::new("tiercache_keys");
/// (expiry ms, key) → (): the entries that expire, soonest first.
const BY_EXPIRY: TableDefinition<'static, (u64, &[u8]), ()> =
    TableDefinition::new("tiercache_by_expiry");
/// (access tick, key) → (): every entry, least recently used first.
const BY_ACCESS: TableDefinition<'static, (u64, &[u8]), ()> =
    TableDefinition::new("tiercache_by_access");
/// Name → number: the layout version and the byte total.
const META: TableDefinition<'static, &str, u64> = TableDefinition::new("tiercache_meta");

/// The expiry stored in `KEYS` for an entry that never expires.
const NO_EXPIRY: u64 = u64::MAX;
/// The version of this set of tables; a file with another is not ours.
const LAYOUT: u64 = 1;
const META_LAYOUT: &str = "layout";
const META_BYTES: &str = "bytes";

/// The bytes an entry counts against `max_bytes`.
fn cost(key: &[u8], record: &[u8]) -> u64 {
    (key.len() as u64).saturating_add(record.len() as u64)
}

/// Every table, opened in one write transaction.
///
/// All changes to an entry go through here so that the entries, both
/// indexes and the byte total move together; the caller commits or drops
/// the transaction as a whole.
pub(super) struct Tables<'txn> {
    entries: Table<'txn, &'static [u8], &'static [u8]>,
    keys: Table<'txn, &'static [u8], (u64, u64, u64)>,
    by_expiry: Table<'txn, (u64, &'static [u8]), ()>,
    by_access: Table<'txn, (u64, &'static [u8]), ()>,
    meta: Table<'txn, &'static str, u64>,
    bytes: u64,
    delta: Delta,
    /// Whether anything was written, so that a transaction that changed
    /// nothing (an idle sweep) can be dropped instead of committed.
    dirty: bool,
}

impl<'txn> Tables<'txn> {
    /// Opens (creating where missing) every table and reads the byte total.
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, RedbError> {
        let entries = txn.open_table(ENTRIES)?;
        let meta = txn.open_table(META)?;
        let stored = meta.get(META_BYTES)?.map(|total| total.value());
        let bytes = match stored {
            Some(bytes) => bytes,
            // A file written without the total (or by an interrupted first
            // open) gets it recomputed once, here.
            None => {
                let mut bytes = 0u64;
                for row in entries.iter()? {
                    let (key, record) = row?;
                    bytes = bytes.saturating_add(cost(key.value(), record.value()));
                }
                bytes
            }
        };
        Ok(Tables {
            entries,
            keys: txn.open_table(KEYS)?,
            by_expiry: txn.open_table(BY_EXPIRY)?,
            by_access: txn.open_table(BY_ACCESS)?,
            meta,
            bytes,
            delta: Delta::default(),
            dirty: stored.is_none(),
        })
    }

    /// Records this layout's version in a file that has none, and reports
    /// whether the file's version is this layout's.
    pub(super) fn claim_layout(&mut self) -> Result<bool, RedbError> {
        let found = self.meta.get(META_LAYOUT)?.map(|v| v.value());
        match found {
            Some(version) => Ok(version == LAYOUT),
            // A file without a version is only ours to claim while it holds
            // none of our entries; otherwise someone else wrote them.
            None if self.entries.is_empty()? => {
                self.meta.insert(META_LAYOUT, LAYOUT)?;
                self.dirty = true;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The tick after the most recent access recorded in the file, so that
    /// ticks keep increasing across restarts.
    pub(super) fn next_tick(&self) -> Result<u64, RedbError> {
        let last = self.by_access.last()?.map(|(k, _)| k.value().0);
        Ok(last.map_or(1, |tick| tick.saturating_add(1)))
    }

    /// Stores a record for `key`, replacing any earlier one. A record that
    /// has already expired at `now_ms` only removes the earlier one: storing
    /// it would cost a write for an entry no read may return.
    pub(super) fn insert(
        &mut self,
        key: &[u8],
        record: &[u8],
        tick: u64,
        now_ms: u64,
    ) -> Result<(), RedbError> {
        self.unlink(key, |_| ())?;
        // The index takes the expiry from the record itself, so the two can
        // never disagree.
        let expires_at = envelope::expiry_of(record);
        if expires_at.is_some_and(|at| at <= now_ms) {
            return Ok(());
        }
        let expiry = expires_at.unwrap_or(NO_EXPIRY);
        let cost = cost(key, record);
        self.entries.insert(key, record)?;
        self.keys.insert(key, (tick, expiry, cost))?;
        self.by_access.insert((tick, key), ())?;
        if expiry != NO_EXPIRY {
            self.by_expiry.insert((expiry, key), ())?;
        }
        self.bytes = self.bytes.saturating_add(cost);
        self.dirty = true;
        Ok(())
    }

    /// Removes `key`; `true` if it held a live entry at `now_ms`. A record
    /// that fails its check is removed too, and counted as corrupted.
    pub(super) fn remove(&mut self, key: &[u8], now_ms: u64) -> Result<bool, RedbError> {
        let removed = self.unlink(key, |record| {
            envelope::decode(record)
                .ok()
                .map(|entry: Entry| !entry.meta.is_expired(now_ms))
        })?;
        Ok(match removed {
            None => false,
            Some(Some(live)) => live,
            Some(None) => {
                self.delta.corrupted += 1;
                false
            }
        })
    }

    /// Deletes a record a reader found corrupted, unless it has been
    /// replaced since: a concurrent insert's good record must survive.
    pub(super) fn drop_corrupted(&mut self, key: &[u8], record: &[u8]) -> Result<(), RedbError> {
        let unchanged = self
            .entries
            .get(key)?
            .is_some_and(|held| held.value() == record);
        if unchanged {
            self.unlink(key, |_| ())?;
            self.delta.corrupted += 1;
        }
        Ok(())
    }

    /// Removes `key` only while its record decodes to the value `seen`, or
    /// no longer decodes at all: a corrupted record is never valid data, so
    /// deleting it loses nothing, while any other value is a write made
    /// since the caller read `seen` and must survive. `true` if it removed
    /// the record. Runs inside the caller's write transaction, so nothing
    /// can change the record between the comparison and the delete.
    pub(super) fn remove_if_unchanged(
        &mut self,
        key: &[u8],
        seen: &[u8],
    ) -> Result<bool, RedbError> {
        let verdict = match self.entries.get(key)? {
            None => None,
            Some(held) => match envelope::decode(held.value()) {
                Ok(entry) => (entry.value == seen).then_some(false),
                Err(_) => Some(true),
            },
        };
        let Some(corrupted) = verdict else {
            return Ok(false);
        };
        self.unlink(key, |_| ())?;
        if corrupted {
            self.delta.corrupted += 1;
        }
        Ok(true)
    }

    /// The number of entries, expired ones not yet swept included.
    pub(super) fn len(&self) -> Result<u64, RedbError> {
        Ok(self.entries.len()?)
    }

    /// Writes a batch of reads as access times: `keys`, least recently
    /// read first, each given the tick `tick` hands out next. A key that is
    /// gone is skipped, and so is a tick older than the one stored.
    pub(super) fn record_access(
        &mut self,
        keys: &[Box<[u8]>],
        mut tick: impl FnMut() -> u64,
    ) -> Result<(), RedbError> {
        for key in keys {
            let key: &[u8] = key;
            let held = self.keys.get(key)?.map(|v| v.value());
            let Some((old, expiry, cost)) = held else {
                continue;
            };
            let tick = tick();
            if tick <= old {
                continue;
            }
            self.by_access.remove((old, key))?;
            self.by_access.insert((tick, key), ())?;
            self.keys.insert(key, (tick, expiry, cost))?;
            self.dirty = true;
        }
        Ok(())
    }

    /// Deletes at most `limit` entries that expired at or before `now_ms`,
    /// soonest first; returns how many.
    pub(super) fn sweep(&mut self, now_ms: u64, limit: usize) -> Result<u64, RedbError> {
        let before: (u64, &[u8]) = (now_ms.saturating_add(1), &[]);
        let mut due = Vec::new();
        for row in self.by_expiry.range(..before)?.take(limit) {
            let (index, _) = row?;
            let (expiry, key) = index.value();
            due.push((expiry, key.to_vec()));
        }
        let mut swept = 0;
        for (expiry, key) in due {
            let held = self.keys.get(key.as_slice())?.map(|v| v.value());
            if held.is_some_and(|(_, at, _)| at == expiry) {
                if let Some(Some(class)) = self.unlink(&key, class_of)? {
                    self.delta.classes.add(class.as_str(), 0, 1);
                }
                swept += 1;
            } else {
                // An index row whose entry has gone or moved: drop the row
                // so the next sweep does not meet it again.
                self.by_expiry.remove((expiry, key.as_slice()))?;
                self.dirty = true;
            }
        }
        self.delta.expired += swept;
        Ok(swept)
    }

    /// Evicts least recently used entries until the total is within
    /// `max_bytes`.
    pub(super) fn evict(&mut self, max_bytes: u64) -> Result<(), RedbError> {
        while self.bytes > max_bytes {
            let oldest = self.by_access.first()?.map(|(index, _)| {
                let (tick, key) = index.value();
                (tick, key.to_vec())
            });
            let Some((tick, key)) = oldest else {
                // The total says more is held than the index lists; trust the
                // index rather than loop forever.
                break;
            };
            if let Some(class) = self.unlink(&key, class_of)? {
                self.delta.evicted += 1;
                if let Some(class) = class {
                    self.delta.classes.add(class.as_str(), 1, 0);
                }
            } else {
                self.by_access.remove((tick, key.as_slice()))?;
                self.dirty = true;
            }
        }
        Ok(())
    }

    /// Removes every entry.
    pub(super) fn clear(&mut self) -> Result<(), RedbError> {
        self.entries.retain(|_, _| false)?;
        self.keys.retain(|_, _| false)?;
        self.by_expiry.retain(|_, _| false)?;
        self.by_access.retain(|_, _| false)?;
        self.bytes = 0;
        self.dirty = true;
        Ok(())
    }

    /// Writes the byte total and closes the tables. Returns the total, what
    /// the transaction changed in the counters, and whether it changed
    /// anything at all. The caller commits.
    pub(super) fn finish(mut self) -> Result<(u64, Delta, bool), RedbError> {
        if self.dirty {
            self.meta.insert(META_BYTES, self.bytes)?;
        }
        Ok((self.bytes, self.delta, self.dirty))
    }

    /// Removes `key` from the entries and both indexes and takes its bytes
    /// off the total; `inspect` sees the removed record. `None` if the key
    /// held nothing.
    fn unlink<T>(
        &mut self,
        key: &[u8],
        inspect: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, RedbError> {
        let (seen, measured) = {
            let Some(old) = self.entries.remove(key)? else {
                return Ok(None);
            };
            let record = old.value();
            (inspect(record), cost(key, record))
        };
        let freed = match self.keys.remove(key)?.map(|v| v.value()) {
            Some((tick, expiry, counted)) => {
                self.by_access.remove((tick, key))?;
                if expiry != NO_EXPIRY {
                    self.by_expiry.remove((expiry, key))?;
                }
                counted
            }
            // An entry without its index row was not written by this tier;
            // its record's size is the best measure left.
            None => measured,
        };
        self.bytes = self.bytes.saturating_sub(freed);
        self.dirty = true;
        Ok(Some(seen))
    }
}

/// The data class a record was stored with; `None` for one too damaged to
/// say (it is removed all the same, and counted only in the totals).
fn class_of(record: &[u8]) -> Option<DataClass> {
    envelope::decode(record).ok().map(|entry| entry.meta.class)
}

#[cfg(test)]
mod tests {
    use ::redb::{Database, ReadableDatabase};
    use cache_core::Meta;

    use super::*;

    fn record(value_len: usize, expires_at: Option<u64>) -> Vec<u8> {
        let meta = Meta::new(0).expires_at(expires_at);
        envelope::encode(&Entry::new(vec![3u8; value_len], meta)).unwrap()
    }

    /// Runs `f` in one committed write transaction.
    fn write<T>(db: &Database, f: impl FnOnce(&mut Tables<'_>) -> T) -> T {
        let txn = db.begin_write().unwrap();
        let out = {
            let mut tables = Tables::open(&txn).unwrap();
            let out = f(&mut tables);
            tables.finish().unwrap();
            out
        };
        txn.commit().unwrap();
        out
    }

    /// Checks that the entries, both indexes and the total agree.
    fn assert_consistent(db: &Database) {
        let txn = db.begin_read().unwrap();
        let entries = txn.open_table(ENTRIES).unwrap();
        let keys = txn.open_table(KEYS).unwrap();
        let by_expiry = txn.open_table(BY_EXPIRY).unwrap();
        let by_access = txn.open_table(BY_ACCESS).unwrap();
        let meta = txn.open_table(META).unwrap();
        let mut total = 0;
        let mut expiring = 0;
        for row in entries.iter().unwrap() {
            let (key, value) = row.unwrap();
            let (key, value) = (key.value(), value.value());
            let (tick, expiry, counted) = keys.get(key).unwrap().expect("a key row").value();
            assert_eq!(counted, cost(key, value));
            assert_eq!(expiry, envelope::expiry_of(value).unwrap_or(NO_EXPIRY));
            assert!(by_access.get((tick, key)).unwrap().is_some());
            if expiry != NO_EXPIRY {
                assert!(by_expiry.get((expiry, key)).unwrap().is_some());
                expiring += 1;
            }
            total += counted;
        }
        assert_eq!(keys.len().unwrap(), entries.len().unwrap());
        assert_eq!(by_access.len().unwrap(), entries.len().unwrap());
        assert_eq!(by_expiry.len().unwrap(), expiring);
        assert_eq!(meta.get(META_BYTES).unwrap().unwrap().value(), total);
    }

    #[test]
    fn every_operation_keeps_the_tables_and_the_total_in_agreement() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let mut x = 0x2545_F491u32;
        let mut next = move |n: u32| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % n
        };
        let mut tick = 1;
        let mut now = 1_000;
        for round in 0..40 {
            write(&db, |t| {
                for _ in 0..25 {
                    let key = format!("k{}", next(30));
                    let key = key.as_bytes();
                    match next(10) {
                        0..=4 => {
                            let expiry = (next(2) == 0).then(|| now + u64::from(next(50)));
                            let len = next(200) as usize;
                            t.insert(key, &record(len, expiry), tick, now).unwrap();
                        }
                        5 | 6 => {
                            t.remove(key, now).unwrap();
                        }
                        7 => {
                            t.record_access(&[Box::from(key)], || tick).unwrap();
                        }
                        8 => {
                            t.sweep(now, 3).unwrap();
                        }
                        _ => t.evict(3_000).unwrap(),
                    }
                    tick += 1;
                    now += u64::from(next(5));
                }
                if round == 20 {
                    t.clear().unwrap();
                }
            });
            assert_consistent(&db);
        }
    }

    #[test]
    fn compare_and_delete_removes_only_the_seen_value_or_a_corrupted_record() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let held = record(10, None);
        let mut damaged = record(12, None);
        *damaged.last_mut().unwrap() ^= 1;
        let (kept, removed, absent, delta) = write(&db, |t| {
            t.insert(b"k", &held, 1, 0).unwrap();
            t.insert(b"bad", &damaged, 2, 0).unwrap();
            let kept = t.remove_if_unchanged(b"k", &[3u8; 9]).unwrap();
            let removed = t.remove_if_unchanged(b"bad", b"whatever").unwrap();
            let absent = t.remove_if_unchanged(b"none", b"").unwrap();
            (kept, removed, absent, t.delta.clone())
        });
        assert!(!kept && removed && !absent);
        assert_eq!(delta.corrupted, 1);
        assert_consistent(&db);
        let removed = write(&db, |t| t.remove_if_unchanged(b"k", &[3u8; 10]).unwrap());
        assert!(removed, "the value the caller saw is removed");
        assert_consistent(&db);
        let txn = db.begin_read().unwrap();
        assert!(txn.open_table(ENTRIES).unwrap().is_empty().unwrap());
    }

    #[test]
    fn a_corrupted_record_is_dropped_only_while_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let good = record(10, None);
        let seen = record(11, None);
        let delta = write(&db, |t| {
            t.insert(b"k", &good, 1, 0).unwrap();
            // A reader saw other bytes, since replaced by `good`.
            t.drop_corrupted(b"k", &seen).unwrap();
            t.delta.clone()
        });
        assert_eq!(delta.corrupted, 0);
        let delta = write(&db, |t| {
            t.drop_corrupted(b"k", &good).unwrap();
            t.delta.clone()
        });
        assert_eq!(delta.corrupted, 1);
        assert_consistent(&db);
        let txn = db.begin_read().unwrap();
        assert!(txn.open_table(ENTRIES).unwrap().is_empty().unwrap());
    }
}

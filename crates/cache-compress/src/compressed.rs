//! [`Compressed`]: a tier whose values are compressed where it pays.

use std::sync::Arc;

use bytes::Bytes;
use cache_core::{Backend, Entry, Lookup, Meta, Result};

use crate::compressor::{Compressor, builtin};
use crate::frame::{self, corrupted};
use crate::layer::CompressionLayer;
use crate::policy::{Decision, Policy};
use crate::stats::{CompressionStats, Counters, Outcome};

/// A tier that stores values compressed where it pays, built by
/// [`CompressionLayer`].
///
/// On the way in, a value is compressed by the layer's rules; a value
/// stored compressed is a frame, and its entry's
/// [`Flags::compression`](cache_core::Flags::compression) names the
/// algorithm. On the way out, a frame is decompressed with the algorithm
/// its flags name (the layer's own, or any other built-in one, so a
/// change of algorithm leaves earlier entries readable) and the id is
/// cleared, so callers see the value they stored.
///
/// The entry's flags, not its bytes, say whether a value is a frame: a
/// value whose flags name no algorithm is returned as it is stored, even
/// if its bytes happen to look like a frame.
///
/// Empty values and negative entries pass through untouched: a negative
/// entry (an empty value flagged [`Flags::NEGATIVE`](cache_core::Flags),
/// see [`Entry::negative`]) is never compressed, and a
/// [`Lookup::Negative`] from the tier underneath is answered as it came,
/// never read as a frame, whatever compression id its flags carry. So
/// are entries whose flags already name an algorithm: they are taken to be
/// frames, and are decompressed on reads like the layer's own. Such an
/// entry is refused with [`ErrorKind::Corrupted`](cache_core::ErrorKind)
/// unless its value starts with the header of a frame of the algorithm its
/// flags name (and claims no more than the maximum), since every read
/// would otherwise find it corrupted and delete it.
///
/// A frame that fails to decompress (truncated, damaged, of an unknown
/// algorithm, of another algorithm than its flags name, or claiming more
/// than the maximum) is treated as a corrupted record: the read answers
/// [`Lookup::Miss`], [`CompressionStats::corrupted_frames`] counts it, and
/// the record is deleted from the tier underneath with
/// [`Backend::remove_if_unchanged`], so a valid value written meanwhile is
/// never deleted in its place (a tier without compare-and-delete keeps the
/// damaged record, a miss on every read until it is overwritten).
/// `contains` asks the tier underneath without reading the value, so it
/// reports such an entry until a read finds it.
///
/// Compression runs on the caller's task. Values are bounded by
/// [`CompressionLayer::max_decompressed_len`], and lz4, the default,
/// handles a megabyte in well under a millisecond.
#[derive(Clone, Debug)]
pub struct Compressed<B> {
    inner: B,
    compressor: Arc<dyn Compressor>,
    policy: Policy,
    counters: Arc<Counters>,
}

impl<B> Compressed<B> {
    /// `inner`, compressed with `settings`' algorithm and rules.
    pub fn new(inner: B, settings: &CompressionLayer) -> Self {
        let compressor = settings.shared_compressor();
        Compressed {
            counters: Arc::new(Counters::new(&*compressor)),
            inner,
            compressor,
            policy: settings.policy(),
        }
    }

    /// The tier underneath, which holds the frames.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The tier underneath, unwrapped.
    pub fn into_inner(self) -> B {
        self.inner
    }

    /// What this tier has done since it was built. Clones share their
    /// counters.
    pub fn stats(&self) -> CompressionStats {
        self.counters.snapshot()
    }

    /// The compressor of algorithm `id`: the layer's own, or a built-in one.
    fn compressor(&self, id: u8) -> Result<&dyn Compressor> {
        if id == self.compressor.id() {
            Ok(&*self.compressor)
        } else {
            builtin(id).ok_or_else(|| {
                corrupted(format!(
                    "an entry names compression algorithm {id}, which is unknown"
                ))
            })
        }
    }

    /// The entry to store for `entry`, and what happened to it.
    fn pack(&self, entry: Entry) -> Result<(Entry, Outcome)> {
        let meta = &entry.meta;
        if meta.is_negative() {
            return Ok((entry, Outcome::Untouched));
        }
        let id = meta.flags.compression();
        if id != 0 {
            // The caller compressed the value itself. Reads go by the flags,
            // so a value that is not a frame of the algorithm they name
            // would be stored only to be found corrupted and deleted.
            let compressor = self.compressor(id)?;
            frame::check(compressor, &entry.value, self.policy.max_len).map_err(|e| {
                corrupted(format!(
                    "refused: an entry flagged as compressed with {} is not a frame of it: {}",
                    compressor.name(),
                    e.message()
                ))
            })?;
            return Ok((entry, Outcome::Untouched));
        }
        if entry.value.is_empty() {
            return Ok((entry, Outcome::Untouched));
        }
        match self.policy.decide(&*self.compressor, &entry.value)? {
            Decision::Skipped(why) => Ok((entry, Outcome::Skipped(why))),
            Decision::Compressed(frame) => {
                let id = self.compressor.id();
                let outcome = Outcome::Compressed {
                    id,
                    original: entry.value.len(),
                    stored: frame.len(),
                };
                let meta = Meta {
                    flags: entry.meta.flags.with_compression(id),
                    ..entry.meta
                };
                Ok((Entry::new(frame, meta), outcome))
            }
        }
    }

    /// [`pack`](Self::pack), with the value's original length.
    fn pack_counted(&self, entry: Entry) -> Result<(Entry, Outcome, usize)> {
        let given = entry.value.len();
        let (entry, outcome) = self.pack(entry)?;
        Ok((entry, outcome, given))
    }

    /// Counts what happened to a value of `class` once it is stored.
    fn count(&self, outcome: Outcome, class: &cache_core::DataClass, given: usize, stored: usize) {
        if outcome != Outcome::Untouched {
            self.counters.class(class, given, stored);
        }
        self.counters.record(outcome);
    }

    /// The entry as stored before compression. A negative entry, which a
    /// conforming tier answers as [`Lookup::Negative`] and so never reaches
    /// here, is left as it is all the same: its value is not a frame.
    fn unpack(&self, entry: Entry) -> Result<Entry> {
        let id = entry.meta.flags.compression();
        if id == 0 || entry.meta.is_negative() {
            return Ok(entry);
        }
        let value = self
            .compressor(id)?
            .decompress(&entry.value, self.policy.max_len)?;
        self.counters.decompressed(id);
        let meta = Meta {
            flags: entry.meta.flags.with_compression(0),
            ..entry.meta
        };
        Ok(Entry::new(value, meta))
    }
}

impl<B: Backend> Compressed<B> {
    /// A lookup of the tier underneath as the caller must see it. Only a
    /// hit holds a value to decompress: a miss, a bypass and a negative
    /// entry (stored uncompressed, its value empty) pass through untouched.
    async fn open(&self, key: &[u8], lookup: Lookup) -> Lookup {
        let Lookup::Hit(entry) = lookup else {
            return lookup;
        };
        // The stored bytes, kept (a reference count, not a copy) so that the
        // delete below names exactly the record that was read.
        let stored = entry.value.clone();
        match self.unpack(entry) {
            Ok(entry) => Lookup::Hit(entry),
            Err(_) => {
                self.counters.corrupted();
                // The frame can never be read, so it only takes space. It is
                // deleted only if it is still the record the tier holds: a
                // valid value written since the read must survive. If the
                // delete fails or the tier cannot compare, the next read
                // finds the frame again.
                let _ = self.inner.remove_if_unchanged(key, &stored).await;
                Lookup::Miss
            }
        }
    }
}

impl<B: Backend> Backend for Compressed<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        let lookup = self.inner.get(key).await?;
        Ok(self.open(key, lookup).await)
    }

    async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
        let (entry, outcome, given) = self.pack_counted(entry)?;
        let class = entry.meta.class.clone();
        let stored = entry.value.len();
        self.inner.insert(key, entry).await?;
        self.count(outcome, &class, given, stored);
        Ok(())
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        self.inner.remove(key).await
    }

    /// `seen` is a value as this layer's `get` returned it, decompressed;
    /// the tier underneath holds its frame. The record is read, and if it
    /// decompresses to `seen` (or does not decompress at all, and so could
    /// never be returned), the tier underneath is asked to delete it only
    /// if it still holds the bytes read: a write that lands in between is
    /// kept. A negative entry is stored as it came (its value empty, never
    /// a frame), so the tier underneath compares it itself.
    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
        let entry = match self.inner.get(key).await? {
            Lookup::Hit(entry) => entry,
            Lookup::Negative(_) => return self.inner.remove_if_unchanged(key, seen).await,
            Lookup::Miss | Lookup::Bypassed => return Ok(false),
        };
        let stored = entry.value.clone();
        let matches = match self.unpack(entry) {
            Ok(entry) => entry.value == seen,
            Err(_) => {
                self.counters.corrupted();
                true
            }
        };
        if !matches {
            return Ok(false);
        }
        self.inner.remove_if_unchanged(key, &stored).await
    }

    async fn contains(&self, key: &[u8]) -> Result<bool> {
        self.inner.contains(key).await
    }

    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }

    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }

    async fn get_many(&self, keys: &[Bytes]) -> Result<Vec<Lookup>> {
        let lookups = self.inner.get_many(keys).await?;
        let mut out = Vec::with_capacity(lookups.len());
        for (key, lookup) in keys.iter().zip(lookups) {
            out.push(self.open(key, lookup).await);
        }
        Ok(out)
    }

    async fn insert_many(&self, entries: Vec<(Bytes, Entry)>) -> Result<()> {
        let mut packed = Vec::with_capacity(entries.len());
        let mut outcomes = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            let (entry, outcome, given) = self.pack_counted(entry)?;
            outcomes.push((outcome, entry.meta.class.clone(), given, entry.value.len()));
            packed.push((key, entry));
        }
        self.inner.insert_many(packed).await?;
        for (outcome, class, given, stored) in outcomes {
            self.count(outcome, &class, given, stored);
        }
        Ok(())
    }

    fn removals(&self) -> Option<cache_core::Removals> {
        self.inner.removals()
    }

    /// The tier underneath's keys: compression changes values, never keys.
    async fn keys(
        &self,
        from: &cache_core::KeyCursor,
        limit: usize,
    ) -> Result<Option<cache_core::KeyPage>> {
        self.inner.keys(from, limit).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cache_core::conformance::ReferenceBackend;
    use cache_core::{DataClass, ErrorKind, Flags, Layer, Limits, ManualClock};

    use super::*;
    use crate::{FRAME_HEADER_LEN, Gzip, Lz4};

    fn tier(layer: &CompressionLayer) -> Compressed<Arc<ReferenceBackend>> {
        let clock = ManualClock::new(1_000);
        layer.layer(Arc::new(ReferenceBackend::new(
            clock.clock(),
            Limits::DEFAULT,
        )))
    }

    fn text(len: usize) -> Bytes {
        let line = b"{\"user\": 42, \"items\": [\"alpha\", \"beta\"], \"ok\": true}\n";
        line.iter()
            .copied()
            .cycle()
            .take(len)
            .collect::<Vec<u8>>()
            .into()
    }

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn stored_and_given_bytes_are_counted_per_class() {
        run(async {
            let tier = tier(&CompressionLayer::new(Lz4));
            let of = |class: &str| Meta::new(1_000).class(DataClass::named(class));
            // An xorshift sequence: bytes no compressor can shrink.
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            let noise: Vec<u8> = (0..5_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            tier.insert(key("a"), Entry::new(text(8_000), of("json")))
                .await
                .unwrap();
            tier.insert(key("b"), Entry::new(&b"tiny"[..], of("json")))
                .await
                .unwrap();
            let batch = vec![(key("c"), Entry::new(noise, of("media")))];
            tier.insert_many(batch).await.unwrap();
            let classes = tier.stats().classes;
            assert_eq!(classes.len(), 2);
            let (json, media) = (&classes[0], &classes[1]);
            assert_eq!(
                (json.class.as_str(), json.values, json.bytes_in),
                ("json", 2, 8_004)
            );
            assert!(json.ratio() < 0.2, "{json:?}");
            assert_eq!((media.class.as_str(), media.values), ("media", 1));
            assert_eq!(media.ratio(), 1.0, "stored as it was");
        });
    }

    #[test]
    fn compressed_entries_keep_their_metadata_and_read_back_whole() {
        run(async {
            let tier = tier(&CompressionLayer::new(Gzip::default()));
            let meta = Meta::with_ttl(1_000, Duration::from_secs(60))
                .unwrap()
                .class(DataClass::named("session"));
            let value = text(10_000);
            tier.insert(key("k"), Entry::new(value.clone(), meta.clone()))
                .await
                .unwrap();

            let stored = tier.inner().get(b"k").await.unwrap().into_hit().unwrap();
            assert_eq!(stored.meta.flags.compression(), Gzip::ID);
            assert_eq!(stored.meta.flags(Flags::EMPTY), meta.clone());
            assert!(stored.value.len() < 1_000, "{} bytes", stored.value.len());

            let read = tier.get(b"k").await.unwrap().into_hit().unwrap();
            assert_eq!(read, Entry::new(value, meta));
            let gzip = tier.stats().algorithm(Gzip::ID).cloned().unwrap();
            assert_eq!((gzip.values, gzip.decompressions), (1, 1));
            assert_eq!(gzip.bytes_in, 10_000);
            assert_eq!(gzip.bytes_out, stored.value.len() as u64);
            assert_eq!(tier.name(), "reference");
        });
    }

    #[test]
    fn empty_negative_and_precompressed_entries_pass_through() {
        run(async {
            let tier = tier(&CompressionLayer::new(Lz4).threshold(0));
            let negative = Entry::negative(Meta::new(0).class(DataClass::named("absent")));
            // Flagged negative with a value, against the encoding: still
            // never compressed, and still answered as negative.
            let big_negative = Entry::new(text(5_000), Meta::new(0).flags(Flags::NEGATIVE));
            let empty = Entry::new(Bytes::new(), Meta::new(0));
            let frame = Lz4.compress(&text(5_000)).unwrap();
            let precompressed =
                Entry::new(frame, Meta::new(0).flags(Flags::EMPTY.with_compression(1)));
            for (k, e) in [
                ("neg", &negative),
                ("big-neg", &big_negative),
                ("empty", &empty),
                ("pre", &precompressed),
            ] {
                tier.insert(key(k), e.clone()).await.unwrap();
                // The tier underneath answers a negative entry with its
                // metadata alone, which would name an algorithm had the
                // layer compressed it.
                let stored = tier.inner().get(k.as_bytes()).await.unwrap();
                let want = if e.meta.is_negative() {
                    Lookup::Negative(e.meta.clone())
                } else {
                    Lookup::Hit(e.clone())
                };
                assert_eq!(stored, want, "{k} is stored as it came");
            }
            for (k, e) in [("neg", &negative), ("big-neg", &big_negative)] {
                let want = Lookup::Negative(e.meta.clone());
                assert_eq!(tier.get(k.as_bytes()).await.unwrap(), want, "{k}");
                assert_eq!(tier.get_many(&[key(k)]).await.unwrap(), [want], "{k}");
                assert!(!tier.contains(k.as_bytes()).await.unwrap(), "{k}");
            }
            // A compare-and-delete of a negative entry is the tier
            // underneath's, on the value it stored.
            assert!(!tier.remove_if_unchanged(b"neg", b"x").await.unwrap());
            assert!(tier.remove_if_unchanged(b"neg", b"").await.unwrap());
            assert_eq!(tier.get(b"neg").await.unwrap(), Lookup::Miss);
            assert_eq!(tier.get(b"empty").await.unwrap().into_hit(), Some(empty));
            let read = tier.get(b"pre").await.unwrap().into_hit().unwrap();
            assert_eq!((read.value, read.meta.flags), (text(5_000), Flags::EMPTY));
            let stats = tier.stats();
            assert_eq!(stats.algorithm(Lz4::ID).unwrap().values, 0);
            assert_eq!(stats.skipped_too_small + stats.skipped_incompressible(), 0);
        });
    }

    #[test]
    fn frames_of_another_builtin_algorithm_stay_readable() {
        run(async {
            let shared = Arc::new(ReferenceBackend::new(
                ManualClock::new(0).clock(),
                Limits::DEFAULT,
            ));
            let gzip = CompressionLayer::new(Gzip::default()).layer(Arc::clone(&shared));
            let lz4 = CompressionLayer::new(Lz4).layer(shared);
            gzip.insert(key("k"), Entry::new(text(4_000), Meta::new(0)))
                .await
                .unwrap();
            let read = lz4.get(b"k").await.unwrap().into_hit().unwrap();
            assert_eq!(read.value, text(4_000));
            let stats = lz4.stats();
            assert_eq!(stats.algorithm(Gzip::ID).unwrap().decompressions, 1);
            assert_eq!(stats.algorithm(Lz4::ID).unwrap().decompressions, 0);
        });
    }

    #[test]
    fn a_refused_insert_is_not_counted() {
        run(async {
            let tier = tier(&CompressionLayer::default());
            let long_key = Bytes::from(vec![b'k'; Limits::DEFAULT.max_key_len + 1]);
            let err = tier
                .insert(long_key, Entry::new(text(4_000), Meta::new(0)))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::KeyTooLarge);
            assert_eq!(tier.stats().algorithm(Lz4::ID).unwrap().values, 0);
        });
    }

    #[test]
    fn batches_compress_and_decompress_each_entry() {
        run(async {
            let tier = tier(&CompressionLayer::default());
            let values = [text(100), text(3_000), text(50_000), Bytes::new()];
            let entries = values
                .iter()
                .enumerate()
                .map(|(i, v)| (key(&format!("k{i}")), Entry::new(v.clone(), Meta::new(0))))
                .collect();
            tier.insert_many(entries).await.unwrap();
            let keys: Vec<Bytes> = (0..5).map(|i| key(&format!("k{i}"))).collect();
            let got = tier.get_many(&keys).await.unwrap();
            for (i, v) in values.iter().enumerate() {
                assert_eq!(got[i].clone().into_hit().map(|e| e.value).as_ref(), Some(v));
            }
            assert_eq!(got[4], Lookup::Miss);
            let stats = tier.stats();
            let lz4 = stats.algorithm(Lz4::ID).unwrap();
            assert_eq!((lz4.values, lz4.decompressions), (2, 2));
            assert_eq!(stats.skipped_too_small, 1);
            assert!(lz4.ratio() < 0.1, "{lz4:?}");
        });
    }

    /// A tier in which another writer's insert lands just after each read
    /// it is primed for: the read returns what was there, and the write is
    /// in place before the caller can act on what it read.
    struct WriteAfterRead {
        inner: ReferenceBackend,
        next: std::sync::Mutex<Option<(Bytes, Entry)>>,
    }

    impl WriteAfterRead {
        fn new() -> Self {
            WriteAfterRead {
                inner: ReferenceBackend::new(ManualClock::new(0).clock(), Limits::DEFAULT),
                next: std::sync::Mutex::new(None),
            }
        }

        fn write_after_next_read(&self, key: &'static str, entry: Entry) {
            *self.next.lock().unwrap() = Some((Bytes::from_static(key.as_bytes()), entry));
        }

        async fn land(&self) {
            let next = self.next.lock().unwrap().take();
            if let Some((key, entry)) = next {
                self.inner.insert(key, entry).await.unwrap();
            }
        }
    }

    impl Backend for WriteAfterRead {
        fn name(&self) -> &str {
            "write-after-read"
        }
        async fn get(&self, key: &[u8]) -> Result<Lookup> {
            let lookup = self.inner.get(key).await;
            self.land().await;
            lookup
        }
        async fn get_many(&self, keys: &[Bytes]) -> Result<Vec<Lookup>> {
            let lookups = self.inner.get_many(keys).await;
            self.land().await;
            lookups
        }
        async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
            self.inner.insert(key, entry).await
        }
        async fn remove(&self, key: &[u8]) -> Result<bool> {
            self.inner.remove(key).await
        }
        async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
            self.inner.remove_if_unchanged(key, seen).await
        }
        async fn clear(&self) -> Result<()> {
            self.inner.clear().await
        }
        async fn len(&self) -> Result<u64> {
            self.inner.len().await
        }
    }

    fn racing() -> Compressed<WriteAfterRead> {
        CompressionLayer::new(Lz4).layer(WriteAfterRead::new())
    }

    /// A truncated lz4 frame, flagged as one.
    fn damaged() -> Entry {
        let frame = Lz4.compress(&text(8_000)).unwrap();
        Entry::new(
            frame[..frame.len() / 2].to_vec(),
            Meta::new(0).flags(Flags::EMPTY.with_compression(Lz4::ID)),
        )
    }

    #[test]
    fn deleting_a_corrupted_frame_keeps_a_value_written_since_the_read() {
        run(async {
            let tier = racing();
            let valid = Entry::new(text(6_000), Meta::new(0));
            for batch in [false, true] {
                tier.inner().insert(key("k"), damaged()).await.unwrap();
                // Another writer stores a valid value (through the layer,
                // so compressed) between the read and the delete.
                let (fresh, _) = tier.pack(valid.clone()).unwrap();
                tier.inner().write_after_next_read("k", fresh);
                let lookup = if batch {
                    tier.get_many(&[key("k")]).await.unwrap().remove(0)
                } else {
                    tier.get(b"k").await.unwrap()
                };
                assert_eq!(lookup, Lookup::Miss, "the damaged frame is not returned");
                let read = tier.get(b"k").await.unwrap().into_hit();
                assert_eq!(read, Some(valid.clone()), "the new value survives");
            }
            assert_eq!(tier.stats().corrupted_frames, 2);
            // Without a write in between, the damaged record is deleted.
            tier.inner().insert(key("k"), damaged()).await.unwrap();
            assert_eq!(tier.get(b"k").await.unwrap(), Lookup::Miss);
            assert_eq!(tier.inner().len().await.unwrap(), 0);
        });
    }

    #[test]
    fn compare_and_delete_compares_the_decompressed_value() {
        run(async {
            let tier = racing();
            let value = text(6_000);
            tier.insert(key("k"), Entry::new(value.clone(), Meta::new(0)))
                .await
                .unwrap();
            let stored = tier.inner().get(b"k").await.unwrap().into_hit().unwrap();
            assert_eq!(
                stored.meta.flags.compression(),
                Lz4::ID,
                "stored as a frame"
            );
            // Neither the frame's bytes nor another value match.
            assert!(!tier.remove_if_unchanged(b"k", &stored.value).await.unwrap());
            assert!(!tier.remove_if_unchanged(b"k", &text(5_999)).await.unwrap());
            assert!(tier.inner().contains(b"k").await.unwrap());
            // The value as `get` returns it does.
            assert!(tier.remove_if_unchanged(b"k", &value).await.unwrap());
            assert!(!tier.inner().contains(b"k").await.unwrap());
            assert!(!tier.remove_if_unchanged(b"k", &value).await.unwrap());

            // A value stored as it came is compared as it is.
            tier.insert(key("small"), Entry::new(&b"tiny"[..], Meta::new(0)))
                .await
                .unwrap();
            assert!(tier.remove_if_unchanged(b"small", b"tiny").await.unwrap());

            // A write that lands between the layer's read and its delete is
            // kept, though the value read matched.
            tier.insert(key("k"), Entry::new(value.clone(), Meta::new(0)))
                .await
                .unwrap();
            let newer = Entry::new(text(7_000), Meta::new(0));
            let (fresh, _) = tier.pack(newer.clone()).unwrap();
            tier.inner().write_after_next_read("k", fresh);
            assert!(!tier.remove_if_unchanged(b"k", &value).await.unwrap());
            assert_eq!(tier.get(b"k").await.unwrap().into_hit(), Some(newer));

            // A record that does not decompress can never have been what a
            // caller saw, nor be read: it is deleted, and counted.
            tier.inner().insert(key("bad"), damaged()).await.unwrap();
            assert!(tier.remove_if_unchanged(b"bad", b"anything").await.unwrap());
            assert_eq!(tier.stats().corrupted_frames, 1);
        });
    }

    #[test]
    fn the_flags_not_the_bytes_say_what_is_a_frame() {
        run(async {
            let tier = tier(&CompressionLayer::new(Lz4));
            // A value that is, byte for byte, a valid frame, but flagged as
            // not compressed: it is returned as it was stored.
            let frame = Bytes::from(Lz4.compress(&text(5_000)).unwrap());
            let plain = Entry::new(frame.clone(), Meta::new(0));
            tier.inner().insert(key("k"), plain.clone()).await.unwrap();
            assert_eq!(tier.get(b"k").await.unwrap().into_hit(), Some(plain));
            // The same bytes flagged as compressed are decompressed.
            let flagged = Meta::new(0).flags(Flags::EMPTY.with_compression(Lz4::ID));
            tier.inner()
                .insert(key("f"), Entry::new(frame, flagged))
                .await
                .unwrap();
            let read = tier.get(b"f").await.unwrap().into_hit().unwrap();
            assert_eq!((read.value, read.meta.flags), (text(5_000), Flags::EMPTY));
            assert_eq!(tier.stats().corrupted_frames, 0);
        });
    }

    /// An entry whose flags already name an algorithm is stored as it
    /// comes, so its value must be a frame of that algorithm: reads go by
    /// the flags, and would find any other value corrupted and delete it.
    #[test]
    fn precompressed_entries_must_agree_with_their_flags() {
        run(async {
            let tier = tier(&CompressionLayer::new(Lz4).max_decompressed_len(100_000));
            let kept = Entry::new(text(3_000), Meta::new(0));
            tier.insert(key("k"), kept.clone()).await.unwrap();
            let flagged = |id: u8| Meta::new(0).flags(Flags::EMPTY.with_compression(id));
            let lz4 = Lz4.compress(&text(5_000)).unwrap();
            let gzip = Gzip::default().compress(&text(5_000)).unwrap();
            let mut too_long = lz4.clone();
            too_long[1..FRAME_HEADER_LEN].copy_from_slice(&200_000u64.to_le_bytes());
            let bad = [
                ("not a frame", text(5_000).to_vec(), Lz4::ID),
                ("another algorithm's frame", gzip, Lz4::ID),
                ("empty", Vec::new(), Lz4::ID),
                ("shorter than a header", lz4[..4].to_vec(), Lz4::ID),
                ("unknown algorithm", lz4.clone(), 9),
                ("claims more than the maximum", too_long, Lz4::ID),
            ];
            for (why, value, id) in bad {
                let err = tier
                    .insert(key("k"), Entry::new(value, flagged(id)))
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Corrupted, "{why}: {err}");
                let batch = vec![(key("k"), Entry::new(lz4[..4].to_vec(), flagged(id)))];
                assert!(tier.insert_many(batch).await.is_err(), "{why}");
                let held = tier.get(b"k").await.unwrap().into_hit();
                assert_eq!(held, Some(kept.clone()), "{why}: nothing changed");
            }
            // A frame of the algorithm its flags name is accepted, as is a
            // negative entry, whose value is never read as a frame.
            tier.insert(key("pre"), Entry::new(lz4, flagged(Lz4::ID)))
                .await
                .unwrap();
            let negative = Meta::new(0).flags(Flags::NEGATIVE.with_compression(Lz4::ID));
            tier.insert(key("neg"), Entry::new(&b"x"[..], negative))
                .await
                .unwrap();
            assert_eq!(tier.inner().len().await.unwrap(), 3);
            assert_eq!(tier.stats().corrupted_frames, 0);
        });
    }

    #[test]
    fn a_listing_is_the_tier_underneath_s() {
        run(async {
            let tier = tier(&CompressionLayer::new(Lz4));
            for k in ["a", "b", "c"] {
                let entry = Entry::new(text(10_000), Meta::new(1_000));
                tier.insert(key(k), entry).await.unwrap();
            }
            let start = cache_core::KeyCursor::start();
            let page = tier.keys(&start, 2).await.unwrap().expect("the tier lists");
            assert_eq!(page, tier.inner().keys(&start, 2).await.unwrap().unwrap());
            assert_eq!(page.keys, [key("a"), key("b")]);
            let next = page.next.expect("one key is left");
            let rest = tier.keys(&next, 2).await.unwrap().unwrap();
            assert_eq!((rest.keys, rest.next), (vec![key("c")], None));
            let garbage = cache_core::KeyCursor::from_bytes(&b"\xff"[..]);
            let e = tier.keys(&garbage, 2).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        });
    }
}

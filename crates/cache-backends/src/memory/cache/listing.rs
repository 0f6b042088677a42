//! Listing the cache's keys or entries a page at a time, for warming
//! other tiers, snapshots and inspection.

use std::hash::Hash;

use super::MemoryCache;

impl<K, V> MemoryCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Up to `limit` keys (at least one) of live entries from position
    /// `from` on, and the position the next page starts at (`None` once
    /// every partition has been listed): a listing of the cache's keys a
    /// page at a time, for warming other tiers and for inspection. Start at
    /// `(0, 0)`.
    ///
    /// A position is a partition and a slot in it. Each partition is read
    /// under its shared lock, so a page holds up writers of one partition at
    /// a time, for as long as it takes to clone that partition's share of
    /// the page's keys. An entry keeps its slot while it lives, so
    /// following the positions lists every key live for the whole listing
    /// exactly once; a key removed and written again meanwhile may be
    /// listed twice or not at all. Expired entries are skipped, and a
    /// listing does not count as a use of any entry. A position past the
    /// last partition lists nothing.
    ///
    /// ```
    /// use cache_backends::memory::MemoryCache;
    /// let cache: MemoryCache<u32, u32> = MemoryCache::new(100);
    /// for k in 0..10 {
    ///     cache.insert(k, k);
    /// }
    /// let (mut keys, mut next) = cache.keys_page((0, 0), 3);
    /// while let Some(from) = next {
    ///     let (more, after) = cache.keys_page(from, 3);
    ///     assert!(more.len() <= 3);
    ///     keys.extend(more);
    ///     next = after;
    /// }
    /// keys.sort();
    /// assert_eq!(keys, (0..10).collect::<Vec<_>>());
    /// ```
    pub fn keys_page(
        &self,
        from: (usize, usize),
        limit: usize,
    ) -> (Vec<K>, Option<(usize, usize)>) {
        let limit = limit.max(1);
        let now = self.inner.clock.now_ms();
        let (mut partition, mut slot) = from;
        let mut keys = Vec::new();
        while let Some(shard) = self.inner.shards.get(partition) {
            let resume = shard
                .read()
                .keys_from(slot, limit, self.inner.rule, now, &mut keys);
            if let Some(resume) = resume {
                return (keys, Some((partition, resume)));
            }
            partition += 1;
            slot = 0;
        }
        (keys, None)
    }

    /// Up to `limit` live entries (at least one) from position `from` on,
    /// each with its access count as the eviction policy estimates it (0 to
    /// 15: the frequency sketch's estimate when it arrived plus its hits
    /// since, aged as the sketch ages), and the position the next page
    /// starts at: [`keys_page`](Self::keys_page) with the values, for
    /// saving the cache's contents hottest first. The same guarantees hold:
    /// every entry live for the whole listing is listed exactly once, and a
    /// listing does not count as a use.
    #[allow(clippy::type_complexity)]
    pub fn entries_page(
        &self,
        from: (usize, usize),
        limit: usize,
    ) -> (Vec<(K, V, u8)>, Option<(usize, usize)>) {
        let limit = limit.max(1);
        let now = self.inner.clock.now_ms();
        let (mut partition, mut slot) = from;
        let mut entries = Vec::new();
        while let Some(shard) = self.inner.shards.get(partition) {
            let resume = shard
                .read()
                .entries_from(slot, limit, self.inner.rule, now, &mut entries);
            if let Some(resume) = resume {
                return (entries, Some((partition, resume)));
            }
            partition += 1;
            slot = 0;
        }
        (entries, None)
    }
}

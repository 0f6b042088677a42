//! What write-back reports: its state and running totals.

/// Write-back's state and running totals since the cache opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteBackStats {
    /// Keys whose latest write has not reached the store yet.
    pub dirty: u64,
    /// Writes in the dead-letter list now.
    pub dead_letters: u64,
    /// Writes made durable in the log.
    pub appended: u64,
    /// Commits of the log; `appended / log_commits` is how many writes one
    /// `fsync` covered on average (group commit).
    pub log_commits: u64,
    /// Writes saved to the store.
    pub saved: u64,
    /// Removals applied to the store.
    pub deleted: u64,
    /// Failed tries that were scheduled again.
    pub retries: u64,
    /// Writes moved to the dead-letter list.
    pub dead_lettered: u64,
    /// Records of the log that failed their checksum when it was replayed:
    /// set aside (in the log's `tiercache_write_back_corrupted` table),
    /// never saved.
    pub corrupted: u64,
    /// Dirty keys found in the log when the cache opened.
    pub replayed: u64,
    /// Inserts that found the log full (and waited, or failed).
    pub full: u64,
}

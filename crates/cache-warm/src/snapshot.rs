//! Snapshot files: the hot tier's entries in bytes, so a restarted service
//! starts warm.
//!
//! The facade encodes typed keys and values with its codec and hands this
//! module [`SnapshotRecord`]s of bytes; [`SnapshotWriter`] writes them to a
//! temporary file beside the target and renames it into place, and
//! [`SnapshotReader`] (or [`read_snapshot`]) reads them back, verifying a
//! checksum on every record before returning it.
//!
//! # File format, version 1
//!
//! All integers are little-endian. The file is a header, zero or more
//! records, and a trailer, with nothing after the trailer.
//!
//! **Header**
//!
//! | bytes | field |
//! |-------|-------|
//! | 8 | magic `TIERSNAP` |
//! | 2 | `u16` format version ([`SNAPSHOT_VERSION`]) |
//! | 1 | `u8` contents: 0 = values, 1 = keys only |
//! | 1 | `u8` reserved, always 0 |
//! | 8 | `u64` saved at (unix ms) |
//! | 2 + n | `u16` codec name length, then the name (UTF-8) |
//! | 4 | `u32` CRC-32 of every header byte before it |
//!
//! The magic and the version are checked before the rest of the header, so
//! a file written by a newer build is refused as such even if its header
//! is laid out differently.
//!
//! **Record**
//!
//! | bytes | field |
//! |-------|-------|
//! | 1 | tag `R` |
//! | 4 | `u32` body length |
//! | body | see below |
//! | 4 | `u32` CRC-32 of the tag, the length and the body |
//!
//! The body is:
//!
//! | bytes | field |
//! |-------|-------|
//! | 2 | `u16` flag bits ([`Flags`](cache_core::Flags)) |
//! | 1 | `u8` frequency estimate |
//! | 1 | `u8` presence bits: 1 = value present, 2 = expiry present; the others are 0 |
//! | 8 | `u64` expiry (unix ms), 0 when absent |
//! | 8 | `u64` created at (unix ms) |
//! | 2 + n | `u16` class name length, then the name (UTF-8); length 0 is the default class |
//! | 4 + n | `u32` key length, then the key |
//! | 4 + n | `u32` value length, then the value; length 0 when the value is absent |
//!
//! The fields must fill the body exactly. A keys-only snapshot has no
//! record with a value.
//!
//! **Trailer**
//!
//! | bytes | field |
//! |-------|-------|
//! | 1 | tag `E` |
//! | 8 | `u64` number of records |
//! | 4 | `u32` CRC-32 of the tag and the count |
//!
//! The trailer is what tells a complete file from one cut short at a record
//! boundary, which no per-record checksum can see.
//!
//! # Errors
//!
//! Every error message starts with `snapshot <path>:` and says what was
//! wrong and where: the record's number (counted from 0) and the byte
//! offset of its tag, for example
//! `snapshot /var/cache/app.snap: record 17 at byte 4096: checksum mismatch`.
//! A damaged, truncated or foreign file, and one written by a newer build,
//! is [`ErrorKind::Corrupted`](cache_core::ErrorKind::Corrupted); an I/O
//! failure is [`ErrorKind::Backend`](cache_core::ErrorKind::Backend) with
//! the [`std::io::Error`] as its source; a record or header the format
//! cannot represent is
//! [`ErrorKind::InvalidInput`](cache_core::ErrorKind::InvalidInput), and
//! nothing of it is written.

mod format;
mod reader;
mod writer;

use std::path::Path;

use bytes::Bytes;
use cache_core::{Meta, Result};

pub use reader::SnapshotReader;
pub use writer::SnapshotWriter;

/// The snapshot format version this build writes, and the newest it reads.
pub const SNAPSHOT_VERSION: u16 = 1;

/// What a snapshot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SnapshotContents {
    /// Keys with their values and metadata, so a load needs no backend.
    #[default]
    Values,
    /// Keys and metadata only; a load fetches the values again.
    Keys,
}

/// One record of a snapshot: an entry of the hot tier, as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The encoded key.
    pub key: Bytes,
    /// The encoded value; `None` in a keys-only snapshot (and for a
    /// negative entry).
    pub value: Option<Bytes>,
    /// The entry's expiry (absolute unix ms, `None` = never), creation
    /// time, data class and flags.
    pub meta: Meta,
    /// The cache policy's access-frequency estimate for the entry
    /// (0..=255), saved so a load can go hottest first.
    pub frequency: u8,
}

/// The header of a snapshot: what it holds and how it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The format version; the writer only writes [`SNAPSHOT_VERSION`].
    pub version: u16,
    /// Whether records carry values or only keys.
    pub contents: SnapshotContents,
    /// When the snapshot was saved (unix ms).
    pub saved_at_ms: u64,
    /// The name of the codec that encoded keys and values (such as
    /// `"postcard"`), so a load with another codec is refused by the
    /// facade.
    pub codec: String,
}

/// What a finished save wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFileReport {
    /// The number of records in the file.
    pub records: u64,
    /// The size of the file in bytes, header and trailer included.
    pub bytes: u64,
}

/// Reads a whole snapshot: [`SnapshotReader::open`] followed by
/// [`SnapshotReader::read_all`].
pub fn read_snapshot(path: impl AsRef<Path>) -> Result<(SnapshotHeader, Vec<SnapshotRecord>)> {
    let reader = SnapshotReader::open(path)?;
    let header = reader.header().clone();
    let records = reader.read_all()?;
    Ok((header, records))
}

//! The constants of the snapshot format and the pieces the writer and the
//! reader share: header encoding, error construction and a bounds-checked
//! cursor over untrusted bytes.

use std::fmt::Display;
use std::path::Path;

use cache_core::{Error, ErrorKind};

use super::{SNAPSHOT_VERSION, SnapshotContents, SnapshotHeader};

/// The first bytes of every snapshot file.
pub(super) const MAGIC: [u8; 8] = *b"TIERSNAP";
/// The tag that starts a record.
pub(super) const TAG_RECORD: u8 = b'R';
/// The tag that starts the trailer.
pub(super) const TAG_TRAILER: u8 = b'E';

/// The header bytes after the magic and the version, up to and including
/// the codec name's length: contents, reserved, saved-at and name length.
pub(super) const HEADER_REST_LEN: usize = 1 + 1 + 8 + 2;
/// A record's tag and body length.
pub(super) const RECORD_PREFIX_LEN: usize = 1 + 4;
/// The body of a record with an empty class name, key and value.
pub(super) const BODY_MIN_LEN: usize = 2 + 1 + 1 + 8 + 8 + 2 + 4 + 4;
/// A CRC-32.
pub(super) const CRC_LEN: usize = 4;
/// The trailer after its tag: the record count and the checksum.
pub(super) const TRAILER_REST_LEN: usize = 8 + CRC_LEN;

/// The presence bit for a value.
pub(super) const HAS_VALUE: u8 = 1;
/// The presence bit for an expiry.
pub(super) const HAS_EXPIRY: u8 = 2;

/// The contents byte for a snapshot with values.
const CONTENTS_VALUES: u8 = 0;
/// The contents byte for a keys-only snapshot.
const CONTENTS_KEYS: u8 = 1;

/// The size of the writer's and the reader's buffers. Large buffers turn a
/// snapshot of millions of small records into a few hundred system calls.
pub(super) const BUFFER_LEN: usize = 1 << 20;

/// The contents byte that stands for `contents`.
pub(super) fn contents_byte(contents: SnapshotContents) -> u8 {
    match contents {
        SnapshotContents::Values => CONTENTS_VALUES,
        SnapshotContents::Keys => CONTENTS_KEYS,
    }
}

/// The contents a contents byte stands for, if any.
pub(super) fn contents_from_byte(byte: u8) -> Option<SnapshotContents> {
    match byte {
        CONTENTS_VALUES => Some(SnapshotContents::Values),
        CONTENTS_KEYS => Some(SnapshotContents::Keys),
        _ => None,
    }
}

/// The header's bytes, checksum included.
///
/// The header's own version field must be [`SNAPSHOT_VERSION`]: this build
/// only knows how to lay out that version, so writing another number would
/// make the file lie about its format.
pub(super) fn encode_header(path: &Path, header: &SnapshotHeader) -> cache_core::Result<Vec<u8>> {
    if header.version != SNAPSHOT_VERSION {
        return Err(invalid_input(
            path,
            format!(
                "header version {} cannot be written: this build writes version {SNAPSHOT_VERSION}",
                header.version
            ),
        ));
    }
    let codec_len = u16::try_from(header.codec.len()).map_err(|_| {
        invalid_input(
            path,
            format!(
                "codec name is {} bytes, more than the {} a header holds",
                header.codec.len(),
                u16::MAX
            ),
        )
    })?;
    let mut out =
        Vec::with_capacity(MAGIC.len() + 2 + HEADER_REST_LEN + header.codec.len() + CRC_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.push(contents_byte(header.contents));
    out.push(0);
    out.extend_from_slice(&header.saved_at_ms.to_le_bytes());
    out.extend_from_slice(&codec_len.to_le_bytes());
    out.extend_from_slice(header.codec.as_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The trailer's bytes for a file of `records` records.
pub(super) fn encode_trailer(records: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + TRAILER_REST_LEN);
    out.push(TAG_TRAILER);
    out.extend_from_slice(&records.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A [`ErrorKind::Corrupted`] error about the snapshot at `path`.
pub(super) fn corrupted(path: &Path, what: impl Display) -> Error {
    Error::new(
        ErrorKind::Corrupted,
        format!("snapshot {}: {what}", path.display()),
    )
}

/// A [`ErrorKind::InvalidInput`] error about the snapshot at `path`.
pub(super) fn invalid_input(path: &Path, what: impl Display) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("snapshot {}: {what}", path.display()),
    )
}

/// A [`ErrorKind::Backend`] error about the snapshot at `path`, caused by
/// `source`.
pub(super) fn io_failed(path: &Path, what: impl Display, source: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Backend,
        format!("snapshot {}: {what}", path.display()),
    )
    .with_source(source)
}

/// A cursor over untrusted bytes. Every read is bounds-checked and answers
/// `None` past the end, so a damaged length can never cause a panic.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// The position of the next byte to read.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// Whether every byte has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let taken = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(taken)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().ok())
    }

    /// The next byte.
    pub(super) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    /// The next little-endian `u16`.
    pub(super) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// The next little-endian `u32`.
    pub(super) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// The next little-endian `u64`.
    pub(super) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_answers_none_past_the_end() {
        let mut c = Cursor::new(&[1, 2, 3]);
        assert_eq!(c.u16(), Some(0x0201));
        assert_eq!(c.u16(), None);
        assert_eq!(c.take(usize::MAX), None);
        assert_eq!(c.u8(), Some(3));
        assert!(c.is_empty());
        assert_eq!(c.u64(), None);
    }

    #[test]
    fn trailer_checksum_covers_tag_and_count() {
        let t = encode_trailer(7);
        assert_eq!(t[0], TAG_TRAILER);
        assert_eq!(u64::from_le_bytes(t[1..9].try_into().unwrap()), 7);
        let crc = u32::from_le_bytes(t[9..13].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&t[..9]));
    }

    #[test]
    fn header_of_another_version_or_an_oversized_codec_is_refused() {
        let path = Path::new("/tmp/x.snap");
        let mut header = SnapshotHeader {
            version: SNAPSHOT_VERSION + 1,
            contents: SnapshotContents::Values,
            saved_at_ms: 1,
            codec: "postcard".into(),
        };
        let err = encode_header(path, &header).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("/tmp/x.snap"), "{err}");
        header.version = SNAPSHOT_VERSION;
        header.codec = "c".repeat(usize::from(u16::MAX) + 1);
        let err = encode_header(path, &header).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("codec name"), "{err}");
    }

    #[test]
    fn contents_bytes_round_trip() {
        for c in [SnapshotContents::Values, SnapshotContents::Keys] {
            assert_eq!(contents_from_byte(contents_byte(c)), Some(c));
        }
        assert_eq!(contents_from_byte(2), None);
    }
}

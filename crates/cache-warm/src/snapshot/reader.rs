//! Reading a snapshot back, verifying every record before returning it.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cache_core::{DataClass, Error, Flags, Meta, Result};

use super::format::{
    BUFFER_LEN, CRC_LEN, Cursor, HAS_EXPIRY, HAS_VALUE, HEADER_REST_LEN, MAGIC, RECORD_PREFIX_LEN,
    TAG_RECORD, TAG_TRAILER, TRAILER_REST_LEN, contents_from_byte, corrupted, io_failed,
};
use super::{SNAPSHOT_VERSION, SnapshotContents, SnapshotHeader, SnapshotRecord};

/// How many distinct class names the reader remembers, so records of a
/// known class share its name instead of allocating it again. Snapshots
/// hold a handful of classes; the bound only protects against a file with
/// a different name on every record.
const CLASS_CACHE_LEN: usize = 32;

/// Reads a snapshot file, one verified record at a time.
///
/// [`open`](Self::open) checks the header; iterating (or
/// [`read_all`](Self::read_all)) reads the records, verifying each one's
/// checksum before it is returned, and after the last record verifies the
/// trailer, so a file cut short at a record boundary is reported too.
/// Every length in the file is checked against the bytes left in it before
/// anything is allocated, so a damaged file costs no more memory than its
/// size.
///
/// As an iterator it yields `Ok` records, then either ends (the trailer
/// matched) or yields one error and ends.
pub struct SnapshotReader {
    path: PathBuf,
    input: BufReader<File>,
    /// The file's length when it was opened. Every length read from the
    /// file is checked against what is left of it.
    file_len: u64,
    /// The offset of the next byte to read.
    pos: u64,
    header: SnapshotHeader,
    /// How many records have been returned.
    records: u64,
    /// Whether the trailer has been read or an error returned.
    done: bool,
    /// Recently seen class names; see [`CLASS_CACHE_LEN`].
    classes: Vec<DataClass>,
}

impl SnapshotReader {
    /// Opens the snapshot at `path` and checks its header: the magic, the
    /// version and the header's checksum.
    ///
    /// A file that is not a snapshot, is damaged, or was written by a newer
    /// build (a version above [`SNAPSHOT_VERSION`]) is
    /// [`ErrorKind::Corrupted`](cache_core::ErrorKind::Corrupted); a file
    /// that cannot be opened or read is
    /// [`ErrorKind::Backend`](cache_core::ErrorKind::Backend).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| io_failed(&path, "opening the file", e))?;
        Self::from_file(path, file)
    }

    /// Reads the snapshot in `file`, already open, from its current
    /// position (its start), as [`open`](Self::open) does; `path` names it
    /// in errors. With [`into_file`](Self::into_file) a caller can read one
    /// file twice (to choose, then to install) even if another file is
    /// renamed over its path meanwhile.
    pub fn from_file(path: impl AsRef<Path>, file: File) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file_len = file
            .metadata()
            .map_err(|e| io_failed(&path, "reading the file's metadata", e))?
            .len();
        // A small file needs no megabyte of buffer.
        let capacity =
            usize::try_from(file_len).map_or(BUFFER_LEN, |len| len.clamp(64, BUFFER_LEN));
        let mut reader = SnapshotReader {
            path,
            input: BufReader::with_capacity(capacity, file),
            file_len,
            pos: 0,
            header: SnapshotHeader {
                version: 0,
                contents: SnapshotContents::Values,
                saved_at_ms: 0,
                codec: String::new(),
            },
            records: 0,
            done: false,
            classes: Vec::new(),
        };
        reader.header = reader.read_header()?;
        Ok(reader)
    }

    /// The snapshot's header.
    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    /// The open file, positioned wherever reading stopped; seek it to its
    /// start to read it again with [`from_file`](Self::from_file).
    pub fn into_file(self) -> File {
        self.input.into_inner()
    }

    /// Where the next record starts, and how many records came before it:
    /// what [`resume`](Self::resume) takes to read on from there, so that
    /// parts of a file verified once can be read again side by side.
    pub fn position(&self) -> (u64, u64) {
        (self.pos, self.records)
    }

    /// Reads the snapshot in `file` from a [`position`](Self::position) an
    /// earlier reader of the same file reported (`offset`, after
    /// `records_before` records), under its `header`; each record is
    /// verified again, and reading to the end verifies the trailer's count
    /// of all the file's records.
    pub fn resume(
        path: impl AsRef<Path>,
        mut file: File,
        header: SnapshotHeader,
        (offset, records_before): (u64, u64),
    ) -> Result<Self> {
        use std::io::{Seek, SeekFrom};
        let path = path.as_ref().to_path_buf();
        let file_len = file
            .metadata()
            .map_err(|e| io_failed(&path, "reading the file's metadata", e))?
            .len();
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| io_failed(&path, format!("seeking to byte {offset}"), e))?;
        let capacity =
            usize::try_from(file_len).map_or(BUFFER_LEN, |len| len.clamp(64, BUFFER_LEN));
        Ok(SnapshotReader {
            path,
            input: BufReader::with_capacity(capacity, file),
            file_len,
            pos: offset,
            header,
            records: records_before,
            done: false,
            classes: Vec::new(),
        })
    }

    /// Reads and verifies every record and the trailer, and returns the
    /// records, or the first error. A record whose checksum failed is never
    /// returned.
    pub fn read_all(self) -> Result<Vec<SnapshotRecord>> {
        self.collect()
    }

    /// Reads and checks the header, leaving the reader at the first record.
    fn read_header(&mut self) -> Result<SnapshotHeader> {
        if self.file_len == 0 {
            return Err(self.corrupted("not a tiercache snapshot (the file is empty)"));
        }
        let mut magic = [0u8; MAGIC.len()];
        let seen = usize::try_from(self.file_len).map_or(MAGIC.len(), |n| n.min(MAGIC.len()));
        let (magic_seen, _) = magic.split_at_mut(seen);
        self.read_exact(magic_seen, || "the header".into())?;
        if MAGIC.get(..seen) != Some(&*magic_seen) {
            return Err(self.corrupted("not a tiercache snapshot (bad magic)"));
        }
        let truncated = |r: &Self| {
            r.corrupted(format!(
                "truncated: ends inside the header, at byte {}",
                r.file_len
            ))
        };
        if seen < MAGIC.len() || self.remaining() < 2 {
            return Err(truncated(self));
        }
        let mut version = [0u8; 2];
        self.read_exact(&mut version, || "the header".into())?;
        let version = u16::from_le_bytes(version);
        // The version is checked before the rest of the header because a
        // newer version may lay the rest out differently.
        if version > SNAPSHOT_VERSION {
            return Err(self.corrupted(format!(
                "version {version} is newer than this build reads ({SNAPSHOT_VERSION})"
            )));
        }
        if version == 0 {
            return Err(self.corrupted("version 0 is not a snapshot version (damaged header)"));
        }
        let mut rest = [0u8; HEADER_REST_LEN];
        if self.remaining() < rest.len() as u64 {
            return Err(truncated(self));
        }
        self.read_exact(&mut rest, || "the header".into())?;
        let mut fields = Cursor::new(&rest);
        let (Some(contents), Some(reserved), Some(saved_at_ms), Some(codec_len)) =
            (fields.u8(), fields.u8(), fields.u64(), fields.u16())
        else {
            return Err(truncated(self));
        };
        let codec_len = usize::from(codec_len);
        if self.remaining() < (codec_len + CRC_LEN) as u64 {
            return Err(self.corrupted(format!(
                "truncated or corrupted: the header's codec name of {codec_len} bytes runs past the end of the file, at byte {}",
                self.file_len
            )));
        }
        let mut codec_and_crc = vec![0u8; codec_len + CRC_LEN];
        self.read_exact(&mut codec_and_crc, || "the header".into())?;
        let (codec, stored_crc) = codec_and_crc.split_at(codec_len);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&MAGIC);
        crc.update(&version.to_le_bytes());
        crc.update(&rest);
        crc.update(codec);
        if Cursor::new(stored_crc).u32() != Some(crc.finalize()) {
            return Err(self.corrupted("header: checksum mismatch"));
        }
        let Some(contents) = contents_from_byte(contents) else {
            return Err(self.corrupted(format!("header: unknown contents {contents}")));
        };
        if reserved != 0 {
            return Err(self.corrupted(format!("header: reserved byte is {reserved}, not 0")));
        }
        let Ok(codec) = std::str::from_utf8(codec) else {
            return Err(self.corrupted("header: the codec name is not UTF-8"));
        };
        Ok(SnapshotHeader {
            version,
            contents,
            saved_at_ms,
            codec: codec.to_owned(),
        })
    }

    /// Reads the next record, or `None` after verifying the trailer.
    fn read_next(&mut self) -> Result<Option<SnapshotRecord>> {
        let at = self.pos;
        let index = self.records;
        if self.remaining() == 0 {
            return Err(self.corrupted(format!(
                "truncated: ends at byte {at}, after {index} records, before the trailer"
            )));
        }
        let mut tag = [0u8; 1];
        self.read_exact(&mut tag, || format!("record {index} at byte {at}"))?;
        match tag {
            [TAG_RECORD] => self.read_record(index, at).map(Some),
            [TAG_TRAILER] => self.read_trailer(at).map(|()| None),
            [other] => Err(self.corrupted(format!(
                "record {index} at byte {at}: unknown tag 0x{other:02x} (expected a record or the trailer)"
            ))),
        }
    }

    /// Reads record `index`, whose tag was at byte `at`.
    fn read_record(&mut self, index: u64, at: u64) -> Result<SnapshotRecord> {
        // Built only on the error paths: formatting it for every record
        // would cost more than decoding the record.
        let where_ = || format!("record {index} at byte {at}");
        let mut len = [0u8; RECORD_PREFIX_LEN - 1];
        if self.remaining() < len.len() as u64 {
            return Err(self.corrupted(format!("truncated: ends inside {}", where_())));
        }
        self.read_exact(&mut len, where_)?;
        let body_len = u32::from_le_bytes(len);
        let left = self.remaining();
        // Checked before allocating: a damaged length must not turn into a
        // huge allocation.
        if u64::from(body_len) + CRC_LEN as u64 > left {
            return Err(self.corrupted(format!(
                "{}: truncated or corrupted: ends inside the record (its length {body_len} runs past the end of the file, {left} bytes left)",
                where_()
            )));
        }
        let body_len = body_len as usize;
        let mut buf = vec![0u8; body_len + CRC_LEN];
        self.read_exact(&mut buf, where_)?;
        let (body, stored_crc) = buf.split_at(body_len);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[TAG_RECORD]);
        crc.update(&len);
        crc.update(body);
        if Cursor::new(stored_crc).u32() != Some(crc.finalize()) {
            return Err(self.corrupted(format!("{}: checksum mismatch", where_())));
        }
        let record = self
            .decode_body(Bytes::from(buf), body_len)
            .map_err(|what| self.corrupted(format!("{}: {what}", where_())))?;
        self.records += 1;
        Ok(record)
    }

    /// Decodes a record body whose checksum matched. `buf` holds the body
    /// and then the checksum; the key and the value are slices of it, so a
    /// record costs one allocation however many fields it has.
    fn decode_body(&mut self, buf: Bytes, body_len: usize) -> Result<SnapshotRecord, String> {
        let body = buf.get(..body_len).unwrap_or_default();
        let mut c = Cursor::new(body);
        let short = || format!("the fields do not fit its length {body_len}");
        let flags = c.u16().ok_or_else(short)?;
        let frequency = c.u8().ok_or_else(short)?;
        let presence = c.u8().ok_or_else(short)?;
        let expiry = c.u64().ok_or_else(short)?;
        let created_at_ms = c.u64().ok_or_else(short)?;
        let class_len = c.u16().ok_or_else(short)?;
        let class = c.take(usize::from(class_len)).ok_or_else(short)?;
        let class = self.class(class)?;
        let key_len = c.u32().ok_or_else(short)?;
        let key_start = c.pos();
        c.take(key_len as usize).ok_or_else(short)?;
        let key_end = c.pos();
        let value_len = c.u32().ok_or_else(short)?;
        let value_start = c.pos();
        c.take(value_len as usize).ok_or_else(short)?;
        let value_end = c.pos();
        if !c.is_empty() {
            return Err(format!(
                "{} bytes left over after the fields",
                body_len - value_end
            ));
        }
        if presence & !(HAS_VALUE | HAS_EXPIRY) != 0 {
            return Err(format!("unknown presence bits 0x{presence:02x}"));
        }
        let has_value = presence & HAS_VALUE != 0;
        if !has_value && value_len != 0 {
            return Err(format!("has no value but a value length of {value_len}"));
        }
        if has_value && self.header.contents == SnapshotContents::Keys {
            return Err("has a value, but the snapshot holds keys only".into());
        }
        let expires_at_ms = if presence & HAS_EXPIRY != 0 {
            Some(expiry)
        } else if expiry != 0 {
            return Err(format!("has no expiry but an expiry field of {expiry}"));
        } else {
            None
        };
        Ok(SnapshotRecord {
            key: buf.slice(key_start..key_end),
            value: has_value.then(|| buf.slice(value_start..value_end)),
            meta: Meta {
                expires_at_ms,
                created_at_ms,
                class,
                flags: Flags::from_bits(flags),
            },
            frequency,
        })
    }

    /// The class named `name`; an empty name is the default class.
    fn class(&mut self, name: &[u8]) -> Result<DataClass, String> {
        if name.is_empty() {
            return Ok(DataClass::Default);
        }
        if let Some(known) = self.classes.iter().find(|c| c.as_str().as_bytes() == name) {
            return Ok(known.clone());
        }
        let name =
            std::str::from_utf8(name).map_err(|_| "the class name is not UTF-8".to_owned())?;
        let class = DataClass::named(name);
        if self.classes.len() < CLASS_CACHE_LEN {
            self.classes.push(class.clone());
        }
        Ok(class)
    }

    /// Reads the trailer, whose tag was at byte `at`, and checks that it
    /// counts the records read and ends the file.
    fn read_trailer(&mut self, at: u64) -> Result<()> {
        let mut rest = [0u8; TRAILER_REST_LEN];
        if self.remaining() < rest.len() as u64 {
            return Err(self.corrupted(format!("truncated: ends inside the trailer at byte {at}")));
        }
        self.read_exact(&mut rest, || format!("the trailer at byte {at}"))?;
        let mut c = Cursor::new(&rest);
        let (Some(count), Some(stored_crc)) = (c.u64(), c.u32()) else {
            return Err(self.corrupted(format!("truncated: ends inside the trailer at byte {at}")));
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[TAG_TRAILER]);
        crc.update(&count.to_le_bytes());
        if stored_crc != crc.finalize() {
            return Err(self.corrupted(format!("trailer at byte {at}: checksum mismatch")));
        }
        if count != self.records {
            return Err(self.corrupted(format!(
                "trailer says {count} records, read {}",
                self.records
            )));
        }
        let extra = self.remaining();
        if extra != 0 {
            return Err(self.corrupted(format!(
                "{extra} unexpected bytes after the trailer, at byte {}",
                self.pos
            )));
        }
        Ok(())
    }

    /// The bytes of the file not yet read.
    fn remaining(&self) -> u64 {
        self.file_len.saturating_sub(self.pos)
    }

    /// Fills `buf` from the file. Callers check [`remaining`](Self::remaining)
    /// first, so running out here means the file shrank while being read.
    fn read_exact(&mut self, buf: &mut [u8], what: impl FnOnce() -> String) -> Result<()> {
        match self.input.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(self.corrupted(format!(
                "truncated: ends inside {} (the file shrank while being read)",
                what()
            ))),
            Err(e) => Err(io_failed(&self.path, format!("reading {}", what()), e)),
        }
    }

    /// A [`Corrupted`](cache_core::ErrorKind::Corrupted) error about this
    /// file.
    fn corrupted(&self, what: impl std::fmt::Display) -> Error {
        corrupted(&self.path, what)
    }
}

impl Iterator for SnapshotReader {
    type Item = Result<SnapshotRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_next() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for SnapshotReader {}

impl std::fmt::Debug for SnapshotReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReader")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("pos", &self.pos)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Damage the checksums cannot see: files whose checksums match but
    //! whose fields contradict each other, as a buggy or hostile writer
    //! could produce. The integration tests cover what the writer writes.

    use super::super::format::encode_header;
    use super::*;
    use cache_core::ErrorKind;

    fn header(contents: SnapshotContents) -> SnapshotHeader {
        SnapshotHeader {
            version: SNAPSHOT_VERSION,
            contents,
            saved_at_ms: 42,
            codec: "postcard".into(),
        }
    }

    /// A record with `body` and a checksum that matches it.
    fn record(body: &[u8]) -> Vec<u8> {
        let mut out = vec![TAG_RECORD];
        out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        out.extend_from_slice(body);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// A body from its fields, each length taken from its bytes unless
    /// `value_len` overrides the value's.
    fn body(presence: u8, expiry: u64, class: &[u8], value: &[u8], value_len: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0u16.to_le_bytes());
        out.push(5);
        out.push(presence);
        out.extend_from_slice(&expiry.to_le_bytes());
        out.extend_from_slice(&7u64.to_le_bytes());
        out.extend_from_slice(&u16::try_from(class.len()).unwrap().to_le_bytes());
        out.extend_from_slice(class);
        out.extend_from_slice(&1u32.to_le_bytes());
        out.push(b'k');
        out.extend_from_slice(&value_len.to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    /// Reads a file of `header`, `records` and a trailer counting them.
    fn read(header_bytes: Vec<u8>, records: &[Vec<u8>]) -> Result<Vec<SnapshotRecord>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crafted.snap");
        let mut bytes = header_bytes;
        for r in records {
            bytes.extend_from_slice(r);
        }
        bytes.extend_from_slice(&super::super::format::encode_trailer(records.len() as u64));
        std::fs::write(&path, &bytes).unwrap();
        SnapshotReader::open(&path)?.read_all()
    }

    fn values_header() -> Vec<u8> {
        encode_header(Path::new("x"), &header(SnapshotContents::Values)).unwrap()
    }

    fn assert_corrupted(result: Result<Vec<SnapshotRecord>>, expected: &str) {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
        assert!(err.message().contains("crafted.snap: "), "{err}");
        assert!(err.message().contains(expected), "{err}");
    }

    #[test]
    fn a_consistent_crafted_record_reads_back() {
        let records = read(
            values_header(),
            &[record(&body(HAS_VALUE | HAS_EXPIRY, 9, b"s", b"vv", 2))],
        )
        .unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(&records[0].key[..], b"k");
        assert_eq!(records[0].value.as_deref(), Some(&b"vv"[..]));
        assert_eq!(records[0].meta.expires_at_ms, Some(9));
        assert_eq!(records[0].meta.class, DataClass::named("s"));
        assert_eq!(records[0].frequency, 5);
    }

    #[test]
    fn contradictory_fields_are_refused_despite_a_matching_checksum() {
        let cases: [(Vec<u8>, &str); 6] = [
            (body(HAS_VALUE, 0, b"", b"v", 5), "do not fit its length"),
            (body(HAS_VALUE, 0, b"", b"vv", 1), "1 bytes left over"),
            (
                body(0, 0, b"", b"v", 1),
                "has no value but a value length of 1",
            ),
            (
                body(0, 3, b"", b"", 0),
                "has no expiry but an expiry field of 3",
            ),
            (body(0x80, 0, b"", b"", 0), "unknown presence bits 0x80"),
            (body(0, 0, &[0xff, 0xfe], b"", 0), "class name is not UTF-8"),
        ];
        for (b, expected) in cases {
            assert_corrupted(read(values_header(), &[record(&b)]), expected);
        }
        assert_corrupted(read(values_header(), &[record(&[0; 3])]), "do not fit");
        let keys = encode_header(Path::new("x"), &header(SnapshotContents::Keys)).unwrap();
        assert_corrupted(
            read(keys, &[record(&body(HAS_VALUE, 0, b"", b"v", 1))]),
            "record 0 at byte 34: has a value, but the snapshot holds keys only",
        );
    }

    /// The header with byte `at` replaced and the checksum recomputed.
    fn header_with(at: usize, byte: u8) -> Vec<u8> {
        let mut h = values_header();
        h[at] = byte;
        let end = h.len() - CRC_LEN;
        let crc = crc32fast::hash(&h[..end]);
        h[end..].copy_from_slice(&crc.to_le_bytes());
        h
    }

    #[test]
    fn contradictory_header_fields_are_refused_despite_a_matching_checksum() {
        assert_corrupted(read(header_with(10, 2), &[]), "header: unknown contents 2");
        assert_corrupted(read(header_with(11, 1), &[]), "header: reserved byte is 1");
        assert_corrupted(read(header_with(22, 0xff), &[]), "codec name is not UTF-8");
        assert_corrupted(read(header_with(8, 0), &[]), "version 0 is not");
    }

    #[test]
    fn class_names_are_shared_between_records() {
        let r = record(&body(0, 0, b"session", b"", 0));
        let records = read(values_header(), &[r.clone(), r]).unwrap();
        let (DataClass::Named(a), DataClass::Named(b)) =
            (&records[0].meta.class, &records[1].meta.class)
        else {
            panic!("expected named classes");
        };
        assert!(std::sync::Arc::ptr_eq(a, b));
        let default = record(&body(0, 0, b"default", b"", 0));
        let records = read(values_header(), &[default]).unwrap();
        assert_eq!(records[0].meta.class, DataClass::Default);
    }
}

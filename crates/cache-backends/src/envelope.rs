//! The record format of the byte tiers that store outside the process (the
//! redb file and Redis): an entry's value with its metadata and a checksum.
//!
//! Neither store checks what it hands back: redb does not verify checksums
//! on ordinary reads, and a Redis key may have been written by another
//! program or another version. So every record starts with a magic value
//! and a format version, and carries a CRC-32 of everything else; a record
//! that fails any check decodes to [`ErrorKind::Corrupted`], never to
//! garbage.
//!
//! Layout, all integers little-endian:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 2 | magic `b"TC"` |
//! | 2 | 1 | format version, 1 or 2 |
//! | 3 | 1 | reserved, 0 |
//! | 4 | 4 | CRC-32 (IEEE): version 1 of bytes 8..; version 2 of the key's length (8 bytes), the key, then bytes 8.. |
//! | 8 | 2 | [`Flags`] bits |
//! | 10 | 8 | expiry, unix ms; `u64::MAX` for none |
//! | 18 | 8 | creation time, unix ms |
//! | 26 | 2 | data class name length *n*; 0 for the default class |
//! | 28 | *n* | data class name, UTF-8 |
//! | 28 + *n* | rest | the value |
//!
//! Version 2 binds the record to the key it is stored under: the key is
//! not stored, but it is part of the checksum, so a record copied, renamed
//! or found under a key that aliases another (a store whose keys are built
//! from parts) fails its check instead of decoding as the other key's
//! entry. Each version is read only by its own functions: [`decode`] reads
//! version 1 and [`decode_keyed`] version 2, and a record of the other
//! version is [`ErrorKind::Corrupted`], a miss, never misread. Both
//! versions share the header, so [`expiry_of`] reads either.

use bytes::Bytes;
use cache_core::{DataClass, Entry, Error, ErrorKind, Flags, Meta, Result};

const MAGIC: [u8; 2] = *b"TC";
/// The format whose checksum covers the record alone.
const VERSION_UNBOUND: u8 = 1;
/// The format whose checksum covers the key as well.
const VERSION_KEYED: u8 = 2;
/// Bytes before the class name.
pub(crate) const HEADER_LEN: usize = 28;
/// Where the checksummed part starts.
const CHECKED_FROM: usize = 8;
const NO_EXPIRY: u64 = u64::MAX;

/// Encodes an entry as a version 1 record, which does not bind its key.
///
/// The redb tier writes this format until it moves to [`encode_keyed`];
/// a build with the Redis tier alone does not use it.
///
/// # Errors
///
/// [`ErrorKind::InvalidConfig`] if the data class name is longer than
/// 65,535 bytes.
#[cfg_attr(not(feature = "redb"), allow(dead_code))]
pub(crate) fn encode(entry: &Entry) -> Result<Vec<u8>> {
    write(VERSION_UNBOUND, None, entry)
}

/// Encodes an entry as a version 2 record bound to `key`: it decodes only
/// with [`decode_keyed`] and the same key.
///
/// # Errors
///
/// [`ErrorKind::InvalidConfig`] if the data class name is longer than
/// 65,535 bytes.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn encode_keyed(key: &[u8], entry: &Entry) -> Result<Vec<u8>> {
    write(VERSION_KEYED, Some(key), entry)
}

fn write(version: u8, key: Option<&[u8]>, entry: &Entry) -> Result<Vec<u8>> {
    let class = match &entry.meta.class {
        DataClass::Default => "",
        other => other.as_str(),
    };
    let class_len = u16::try_from(class.len()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidConfig,
            "a data class name is longer than 65,535 bytes",
        )
    })?;
    let mut out = Vec::with_capacity(HEADER_LEN + class.len() + entry.value.len());
    out.extend_from_slice(&MAGIC);
    out.push(version);
    out.push(0);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&entry.meta.flags.bits().to_le_bytes());
    out.extend_from_slice(&entry.meta.expires_at_ms.unwrap_or(NO_EXPIRY).to_le_bytes());
    out.extend_from_slice(&entry.meta.created_at_ms.to_le_bytes());
    out.extend_from_slice(&class_len.to_le_bytes());
    out.extend_from_slice(class.as_bytes());
    out.extend_from_slice(&entry.value);
    let crc = checksum(key, &out[CHECKED_FROM..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The checksum of a record's checked part, bound to `key` when there is
/// one. The key's length goes first so that no key and body can be split
/// differently into the same bytes.
fn checksum(key: Option<&[u8]>, checked: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    if let Some(key) = key {
        hasher.update(&(key.len() as u64).to_le_bytes());
        hasher.update(key);
    }
    hasher.update(checked);
    hasher.finalize()
}

fn corrupted(what: &'static str) -> Error {
    Error::new(ErrorKind::Corrupted, what)
}

fn u64_at(record: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&record[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The expiry written in a record's header (unix ms), without checking the
/// rest: for sweeps and expiry checks before a full decode. `None` if the
/// record is too short to hold one or never expires. Either version.
pub(crate) fn expiry_of(record: &[u8]) -> Option<u64> {
    if record.len() < HEADER_LEN || record[..2] != MAGIC {
        return None;
    }
    Some(u64_at(record, 10)).filter(|&at| at != NO_EXPIRY)
}

/// What the header of a version 2 record says without the rest of the
/// record: `None` if `header` (the record's first [`HEADER_LEN`] bytes or
/// more) is not such a header, else the expiry it holds (`Some(None)` for
/// none). For deciding whether a record was live without fetching its
/// value; the checksum, which needs the whole record, is not checked.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn keyed_header_expiry(header: &[u8]) -> Option<Option<u64>> {
    let ours = header.len() >= HEADER_LEN
        && header[..2] == MAGIC
        && header[2] == VERSION_KEYED
        && header[3] == 0;
    ours.then(|| Some(u64_at(header, 10)).filter(|&at| at != NO_EXPIRY))
}

/// Decodes a version 1 record, checking its magic, version, lengths and
/// checksum. A version 2 record is [`ErrorKind::Corrupted`]: it needs its
/// key ([`decode_keyed`]).
///
/// # Errors
///
/// [`ErrorKind::Corrupted`] if any check fails.
#[cfg_attr(not(feature = "redb"), allow(dead_code))]
pub(crate) fn decode(record: &[u8]) -> Result<Entry> {
    read(VERSION_UNBOUND, None, record)
}

/// Decodes a version 2 record stored under `key`, checking its magic,
/// version, lengths and its checksum with the key. A version 1 record, or
/// one encoded for another key, is [`ErrorKind::Corrupted`].
///
/// # Errors
///
/// [`ErrorKind::Corrupted`] if any check fails.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn decode_keyed(key: &[u8], record: &[u8]) -> Result<Entry> {
    read(VERSION_KEYED, Some(key), record)
}

fn read(version: u8, key: Option<&[u8]>, record: &[u8]) -> Result<Entry> {
    if record.len() < HEADER_LEN {
        return Err(corrupted("a record shorter than its header"));
    }
    if record[..2] != MAGIC {
        return Err(corrupted("a record without the tiercache magic"));
    }
    if record[3] != 0 {
        return Err(corrupted("a record of an unknown format version"));
    }
    match record[2] {
        v if v == version => {}
        VERSION_UNBOUND => {
            return Err(corrupted(
                "a record of format version 1, which does not bind its key",
            ));
        }
        VERSION_KEYED => {
            return Err(corrupted(
                "a record of format version 2, read without its key",
            ));
        }
        _ => return Err(corrupted("a record of an unknown format version")),
    }
    let mut crc = [0; 4];
    crc.copy_from_slice(&record[4..8]);
    if checksum(key, &record[CHECKED_FROM..]) != u32::from_le_bytes(crc) {
        return Err(corrupted(
            "a record whose checksum does not match (damaged, or stored under another key)",
        ));
    }
    let flags = Flags::from_bits(u16::from_le_bytes([record[8], record[9]]));
    let expires_at_ms = Some(u64_at(record, 10)).filter(|&at| at != NO_EXPIRY);
    let created_at_ms = u64_at(record, 18);
    let class_len = usize::from(u16::from_le_bytes([record[26], record[27]]));
    let value_at = HEADER_LEN + class_len;
    if record.len() < value_at {
        return Err(corrupted("a record shorter than its class name"));
    }
    let class = if class_len == 0 {
        DataClass::Default
    } else {
        let name = std::str::from_utf8(&record[HEADER_LEN..value_at])
            .map_err(|_| corrupted("a record whose class name is not UTF-8"))?;
        DataClass::named(name)
    };
    Ok(Entry {
        value: Bytes::copy_from_slice(&record[value_at..]),
        meta: Meta {
            expires_at_ms,
            created_at_ms,
            class,
            flags,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry::new(
            &b"a value"[..],
            Meta {
                expires_at_ms: Some(1_700_000_000_123),
                created_at_ms: 1_699_999_999_000,
                class: DataClass::named("session"),
                flags: Flags::NEGATIVE.with_compression(3),
            },
        )
    }

    #[test]
    fn round_trips_value_and_metadata() {
        let e = sample();
        let record = encode(&e).unwrap();
        assert_eq!(decode(&record).unwrap(), e);
        assert_eq!(expiry_of(&record), Some(1_700_000_000_123));

        let plain = Entry::new(Bytes::new(), Meta::new(5));
        let record = encode(&plain).unwrap();
        assert_eq!(record.len(), HEADER_LEN);
        assert_eq!(decode(&record).unwrap(), plain);
        assert_eq!(expiry_of(&record), None);
    }

    /// A negative entry is an empty value with its flag, so its record is
    /// a header and class name only, and decodes to the same entry, flag,
    /// expiry, creation time and class included, in either version.
    #[test]
    fn negative_entries_round_trip_in_both_versions() {
        let negative = Entry::negative(Meta {
            expires_at_ms: Some(1_700_000_030_000),
            created_at_ms: 1_699_999_999_000,
            class: DataClass::named("absent"),
            flags: Flags::BELOW_MEMORY,
        });
        let record = encode(&negative).unwrap();
        assert_eq!(record.len(), HEADER_LEN + "absent".len());
        let read = decode(&record).unwrap();
        assert!(read.meta.is_negative() && read.value.is_empty());
        assert_eq!(read, negative);
        assert_eq!(expiry_of(&record), Some(1_700_000_030_000));
        let record = encode_keyed(b"k", &negative).unwrap();
        assert_eq!(decode_keyed(b"k", &record).unwrap(), negative);
        assert_eq!(keyed_header_expiry(&record), Some(Some(1_700_000_030_000)));
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let record = encode(&sample()).unwrap();
        for byte in 0..record.len() {
            for bit in 0..8 {
                let mut bad = record.clone();
                bad[byte] ^= 1 << bit;
                let err = decode(&bad).expect_err("a flipped bit must not decode");
                assert_eq!(err.kind(), ErrorKind::Corrupted, "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn truncated_records_are_corrupted() {
        let record = encode(&sample()).unwrap();
        for len in 0..record.len() {
            let err = decode(&record[..len]).expect_err("a truncated record must not decode");
            assert_eq!(err.kind(), ErrorKind::Corrupted, "length {len}");
        }
    }

    #[test]
    fn keyed_records_round_trip_only_under_their_key() {
        let e = sample();
        let record = encode_keyed(b"app:\x1fv1\x1fuser:1", &e).unwrap();
        assert_eq!(decode_keyed(b"app:\x1fv1\x1fuser:1", &record).unwrap(), e);
        assert_eq!(expiry_of(&record), Some(1_700_000_000_123));
        assert_eq!(
            keyed_header_expiry(&record[..HEADER_LEN]),
            Some(Some(1_700_000_000_123))
        );
        for other in [&b"app:\x1fv1\x1fuser:2"[..], b"", b"app:\x1fv1\x1fuser:1 "] {
            let err = decode_keyed(other, &record).expect_err("another key's record");
            assert_eq!(err.kind(), ErrorKind::Corrupted);
        }
        let plain = Entry::new(Bytes::new(), Meta::new(5));
        let record = encode_keyed(b"k", &plain).unwrap();
        assert_eq!(decode_keyed(b"k", &record).unwrap(), plain);
        assert_eq!(keyed_header_expiry(&record), Some(None));
    }

    #[test]
    fn one_version_is_never_read_as_the_other() {
        let e = sample();
        let unbound = encode(&e).unwrap();
        let keyed = encode_keyed(b"k", &e).unwrap();
        assert_eq!(
            decode_keyed(b"k", &unbound).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
        assert_eq!(decode(&keyed).unwrap_err().kind(), ErrorKind::Corrupted);
        assert_eq!(keyed_header_expiry(&unbound), None);
        assert_eq!(keyed_header_expiry(b"TC"), None);
    }

    #[test]
    fn any_flipped_bit_of_a_keyed_record_is_caught() {
        let record = encode_keyed(b"key", &sample()).unwrap();
        for byte in 0..record.len() {
            for bit in 0..8 {
                let mut bad = record.clone();
                bad[byte] ^= 1 << bit;
                let err = decode_keyed(b"key", &bad).expect_err("a flipped bit must not decode");
                assert_eq!(err.kind(), ErrorKind::Corrupted, "byte {byte} bit {bit}");
            }
        }
    }
}

//! The snapshot file format: round trips, corruption and truncation at
//! every position, foreign files, newer versions, and the crash safety of
//! writing to a temporary file and renaming it into place.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use cache_core::{DataClass, ErrorKind, Flags, Meta};
use cache_warm::{
    SNAPSHOT_VERSION, SnapshotContents, SnapshotFileReport, SnapshotHeader, SnapshotReader,
    SnapshotRecord, SnapshotWriter, read_snapshot,
};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// The length of the header that [`header`] builds: magic, version,
/// contents, reserved, saved-at, codec name length, "postcard", checksum.
const HEADER_LEN: usize = 8 + 2 + 1 + 1 + 8 + 2 + 8 + 4;

fn header(contents: SnapshotContents) -> SnapshotHeader {
    SnapshotHeader {
        version: SNAPSHOT_VERSION,
        contents,
        saved_at_ms: 1_700_000_000_123,
        codec: "postcard".into(),
    }
}

fn record(key: &str, value: Option<&str>, meta: Meta, frequency: u8) -> SnapshotRecord {
    SnapshotRecord {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        meta,
        frequency,
    }
}

/// Records covering every field's shapes: both kinds of class, with and
/// without expiry, a negative entry, empty keys and values, and flags with
/// a compression identifier.
fn value_records() -> Vec<SnapshotRecord> {
    vec![
        record("user:1", Some("alice"), Meta::new(1_000), 255),
        record(
            "session:9",
            Some("token-bytes"),
            Meta::new(2_000)
                .expires_at(Some(9_000_000))
                .class(DataClass::named("session")),
            17,
        ),
        record(
            "missing",
            None,
            Meta::new(3_000)
                .expires_at(Some(4_000))
                .flags(Flags::NEGATIVE),
            0,
        ),
        record(
            "",
            Some(""),
            Meta::new(u64::MAX)
                .expires_at(Some(u64::MAX))
                .class(DataClass::named("session"))
                .flags(Flags::BELOW_MEMORY.with_compression(3)),
            1,
        ),
    ]
}

fn key_records() -> Vec<SnapshotRecord> {
    value_records()
        .into_iter()
        .map(|r| SnapshotRecord { value: None, ..r })
        .collect()
}

fn write(path: &Path, header: &SnapshotHeader, records: &[SnapshotRecord]) -> SnapshotFileReport {
    let mut writer = SnapshotWriter::create(path, header).unwrap();
    for r in records {
        writer.write(r).unwrap();
    }
    writer.finish().unwrap()
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that reading `path` fails with a `Corrupted` error naming the
/// file, and that the streaming reader returns only original records on
/// the way to its error. Returns the error message.
fn assert_refused(path: &Path, original: &[SnapshotRecord], case: &str) -> String {
    let err = match read_snapshot(path) {
        Ok((_, records)) => {
            assert_ne!(records, original, "{case}: read back different records");
            panic!("{case}: read back the original records without an error");
        }
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Corrupted, "{case}: {err}");
    let named = format!("snapshot {}: ", path.display());
    assert!(err.message().starts_with(&named), "{case}: {err}");

    if let Ok(reader) = SnapshotReader::open(path) {
        let mut errors = 0;
        for (i, item) in reader.enumerate() {
            match item {
                Ok(r) => assert_eq!(
                    Some(&r),
                    original.get(i),
                    "{case}: record {i} is not the original"
                ),
                Err(e) => {
                    errors += 1;
                    assert_eq!(e.message(), err.message(), "{case}");
                }
            }
        }
        assert_eq!(errors, 1, "{case}: the iterator must end with one error");
    }
    err.message().to_owned()
}

#[test]
fn values_snapshot_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    let h = header(SnapshotContents::Values);
    let records = value_records();
    let report = write(&path, &h, &records);
    assert_eq!(report.records, records.len() as u64);
    assert_eq!(report.bytes, fs::metadata(&path).unwrap().len());

    let (read_header, read_records) = read_snapshot(&path).unwrap();
    assert_eq!(read_header, h);
    assert_eq!(read_records, records);
    assert_eq!(read_records[1].meta.class, DataClass::named("session"));
    assert_eq!(read_records[2].value, None);
    assert!(read_records[2].meta.is_negative());
    assert_eq!(listing(dir.path()), ["cache.snap"]);
}

#[test]
fn keys_only_snapshot_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.snap");
    let h = header(SnapshotContents::Keys);
    let records = key_records();
    write(&path, &h, &records);
    assert_eq!(read_snapshot(&path).unwrap(), (h, records));
}

#[test]
fn empty_snapshot_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.snap");
    let h = SnapshotHeader {
        codec: String::new(),
        saved_at_ms: 0,
        ..header(SnapshotContents::Values)
    };
    let report = write(&path, &h, &[]);
    assert_eq!(report.records, 0);
    assert_eq!(report.bytes, fs::metadata(&path).unwrap().len());
    assert_eq!(read_snapshot(&path).unwrap(), (h, vec![]));
}

#[test]
fn streaming_reader_yields_records_in_order_then_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    let records = value_records();
    write(&path, &header(SnapshotContents::Values), &records);
    let mut reader = SnapshotReader::open(&path).unwrap();
    assert_eq!(reader.header().codec, "postcard");
    for expected in &records {
        assert_eq!(&reader.next().unwrap().unwrap(), expected);
    }
    assert!(reader.next().is_none());
    assert!(reader.next().is_none());
}

#[test]
fn a_large_snapshot_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.snap");
    let big = "v".repeat(3 << 20);
    let mut records: Vec<SnapshotRecord> = (0..10_000u32)
        .map(|i| {
            let value = format!("value-{i}");
            record(
                &format!("key-{i}"),
                Some(&value),
                Meta::new(u64::from(i)),
                (i % 256) as u8,
            )
        })
        .collect();
    // A value larger than the buffers goes around them.
    records.push(record("big", Some(&big), Meta::new(0), 9));
    let report = write(&path, &header(SnapshotContents::Values), &records);
    assert_eq!(report.records, 10_001);
    assert_eq!(read_snapshot(&path).unwrap().1, records);
}

#[test]
fn every_bit_flip_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    let records = value_records();
    write(&path, &header(SnapshotContents::Values), &records);
    let original = fs::read(&path).unwrap();
    assert!(original.len() > 150, "the sample should have some size");

    let damaged = dir.path().join("damaged.snap");
    let mut flips = 0;
    for byte in 0..original.len() {
        for bit in 0..8 {
            let mut bytes = original.clone();
            bytes[byte] ^= 1 << bit;
            fs::write(&damaged, &bytes).unwrap();
            assert_refused(&damaged, &records, &format!("bit {bit} of byte {byte}"));
            flips += 1;
        }
    }
    assert_eq!(flips, original.len() * 8);
}

#[test]
fn a_damaged_record_is_reported_by_number_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    let records = value_records();
    write(&path, &header(SnapshotContents::Values), &records);
    let mut bytes = fs::read(&path).unwrap();
    let record0_len = 1 + 4 + 30 + "user:1".len() + "alice".len() + 4;
    let record1_at = HEADER_LEN + record0_len;
    // The last byte of record 1's value.
    let record1_len = 1 + 4 + 30 + "session".len() + "session:9".len() + "token-bytes".len() + 4;
    bytes[record1_at + record1_len - 5] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let message = assert_refused(&path, &records, "damaged value");
    assert_eq!(
        message,
        format!(
            "snapshot {}: record 1 at byte {record1_at}: checksum mismatch",
            path.display()
        )
    );
}

#[test]
fn every_truncation_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    let records = value_records();
    write(&path, &header(SnapshotContents::Values), &records);
    let original = fs::read(&path).unwrap();

    let cut = dir.path().join("cut.snap");
    for len in 0..original.len() {
        fs::write(&cut, &original[..len]).unwrap();
        let message = assert_refused(&cut, &records, &format!("cut to {len} bytes"));
        if len > 0 {
            assert!(
                message.contains("truncated"),
                "cut to {len} bytes: {message}"
            );
        }
    }
}

#[test]
fn a_cut_at_a_record_boundary_is_caught_by_the_trailer() {
    let dir = tempfile::tempdir().unwrap();
    let two = dir.path().join("two.snap");
    let three = dir.path().join("three.snap");
    let records = value_records();
    write(&two, &header(SnapshotContents::Values), &records[..2]);
    write(&three, &header(SnapshotContents::Values), &records[..3]);
    let two_bytes = fs::read(&two).unwrap();
    let three_bytes = fs::read(&three).unwrap();

    // Records 0 and 1 of the three-record file, without its record 2.
    let mut spliced = two_bytes[..two_bytes.len() - 13].to_vec();
    spliced.extend_from_slice(&three_bytes[three_bytes.len() - 13..]);
    let path = dir.path().join("spliced.snap");
    fs::write(&path, &spliced).unwrap();
    let message = assert_refused(&path, &records, "missing record");
    assert_eq!(
        message,
        format!(
            "snapshot {}: trailer says 3 records, read 2",
            path.display()
        )
    );

    // Without any trailer at all.
    fs::write(&path, &two_bytes[..two_bytes.len() - 13]).unwrap();
    let message = assert_refused(&path, &records, "missing trailer");
    assert!(message.contains("truncated"), "{message}");
    assert!(message.contains("before the trailer"), "{message}");
}

#[test]
fn bytes_after_the_trailer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    let records = value_records();
    write(&path, &header(SnapshotContents::Values), &records);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"junk");
    fs::write(&path, &bytes).unwrap();
    let message = assert_refused(&path, &records, "trailing junk");
    assert!(
        message.contains("4 unexpected bytes after the trailer"),
        "{message}"
    );
}

#[test]
fn a_huge_length_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    let records = value_records();
    write(&path, &header(SnapshotContents::Values), &records);
    let mut bytes = fs::read(&path).unwrap();
    bytes[HEADER_LEN + 1..HEADER_LEN + 5].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let message = assert_refused(&path, &records, "huge length");
    assert!(
        message.contains(&format!(
            "record 0 at byte {HEADER_LEN}: truncated or corrupted"
        )),
        "{message}"
    );
    assert!(message.contains("4294967295"), "{message}");
}

#[test]
fn foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign");

    fs::write(&path, b"").unwrap();
    let message = assert_refused(&path, &[], "empty file");
    assert!(message.contains("not a tiercache snapshot"), "{message}");

    fs::write(&path, "[cache]\nsize = 100\n").unwrap();
    let message = assert_refused(&path, &[], "text file");
    assert!(
        message.ends_with("not a tiercache snapshot (bad magic)"),
        "{message}"
    );

    let mut rng = StdRng::seed_from_u64(0x5eed);
    for len in [1, 7, 8, 64, 4096] {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        fs::write(&path, &bytes).unwrap();
        assert_refused(&path, &[], &format!("{len} random bytes"));
        // The same noise after a valid magic still gets no further than
        // the version or the header's checksum.
        let mut bytes = b"TIERSNAP".to_vec();
        let mut noise = vec![0u8; len];
        rng.fill_bytes(&mut noise);
        bytes.extend_from_slice(&noise);
        fs::write(&path, &bytes).unwrap();
        assert_refused(&path, &[], &format!("magic and {len} random bytes"));
    }
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.snap");
    let err = read_snapshot(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    let io = err.source_as::<std::io::Error>().expect("an io source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

/// Rewrites the version field of a snapshot and recomputes the header's
/// checksum, as a newer build would have written it.
fn set_version(bytes: &mut [u8], version: u16) {
    bytes[8..10].copy_from_slice(&version.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..HEADER_LEN - 4]);
    bytes[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    write(&path, &header(SnapshotContents::Values), &value_records());
    let mut bytes = fs::read(&path).unwrap();
    set_version(&mut bytes, 9);
    fs::write(&path, &bytes).unwrap();
    let err = SnapshotReader::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupted);
    assert_eq!(
        err.message(),
        format!(
            "snapshot {}: version 9 is newer than this build reads (1)",
            path.display()
        )
    );
    // The current version with the same rewrite reads back unchanged.
    set_version(&mut bytes, SNAPSHOT_VERSION);
    fs::write(&path, &bytes).unwrap();
    assert_eq!(read_snapshot(&path).unwrap().1, value_records());
}

#[test]
fn a_dropped_writer_leaves_the_previous_file_whole_and_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    let records = value_records();
    write(&path, &header(SnapshotContents::Values), &records);
    let before = fs::read(&path).unwrap();

    let mut writer = SnapshotWriter::create(&path, &header(SnapshotContents::Keys)).unwrap();
    for r in key_records() {
        writer.write(&r).unwrap();
    }
    // The new snapshot is being written beside the old one, not over it.
    let names = listing(dir.path());
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with(".cache.snap.tmp-"), "{names:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
    drop(writer);

    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(listing(dir.path()), ["cache.snap"]);
    assert_eq!(read_snapshot(&path).unwrap().1, records);
}

#[test]
fn a_finished_writer_replaces_the_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    write(&path, &header(SnapshotContents::Values), &value_records());
    let old = fs::read(&path).unwrap();
    // A reader opened before the replacement keeps reading the old file.
    let old_reader = SnapshotReader::open(&path).unwrap();

    let h = header(SnapshotContents::Keys);
    let report = write(&path, &h, &key_records());
    assert_eq!(listing(dir.path()), ["cache.snap"]);
    assert_ne!(fs::read(&path).unwrap(), old);
    assert_eq!(report.bytes, fs::metadata(&path).unwrap().len());
    assert_eq!(read_snapshot(&path).unwrap(), (h, key_records()));
    assert_eq!(old_reader.read_all().unwrap(), value_records());
}

#[test]
fn unrepresentable_records_are_refused_and_writing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.snap");
    let mut writer = SnapshotWriter::create(&path, &header(SnapshotContents::Keys)).unwrap();

    let with_value = record("k", Some("v"), Meta::new(0), 0);
    let err = writer.write(&with_value).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert!(err.message().contains("record 0"), "{err}");

    let empty_class = record(
        "k",
        None,
        Meta::new(0).class(DataClass::Named("".into())),
        0,
    );
    assert_eq!(
        writer.write(&empty_class).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let long_class = record(
        "k",
        None,
        Meta::new(0).class(DataClass::named(&"c".repeat(70_000))),
        0,
    );
    assert_eq!(
        writer.write(&long_class).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let fine = key_records();
    for r in &fine {
        writer.write(r).unwrap();
    }
    assert_eq!(writer.finish().unwrap().records, fine.len() as u64);
    assert_eq!(read_snapshot(&path).unwrap().1, fine);
}

#[test]
fn a_header_the_writer_cannot_write_is_refused_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snap");
    let h = SnapshotHeader {
        version: SNAPSHOT_VERSION + 1,
        ..header(SnapshotContents::Values)
    };
    let err = SnapshotWriter::create(&path, &h).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert!(listing(dir.path()).is_empty());
}

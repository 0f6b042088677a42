//! The bytes of the write-back log's records: a queued write (stored
//! under its number, so that appends land at the end of the table), and a
//! write that went to the dead-letter list (stored under its key). Each
//! carries a CRC-32 over what it is stored under and everything before the
//! checksum, so that a damaged record is found when the log is replayed
//! instead of being saved to the store.

use bytes::Bytes;

/// The layout version of both kinds of record.
const FORMAT: u8 = 1;
const OP_SAVE: u8 = 1;
const OP_DELETE: u8 = 2;

/// A queued write: the latest write of its key, with the number the log
/// gave it. `value` is `None` for a removal (a tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Queued {
    pub(crate) seq: u64,
    pub(crate) value: Option<Bytes>,
}

/// A write the store refused too many times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dead {
    pub(crate) seq: u64,
    pub(crate) value: Option<Bytes>,
    pub(crate) tries: u32,
    pub(crate) failed_at_ms: u64,
    pub(crate) error: String,
}

fn op(value: &Option<Bytes>) -> u8 {
    if value.is_some() { OP_SAVE } else { OP_DELETE }
}

fn checksum(key: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(body);
    h.finalize()
}

fn seal(key: &[u8], mut body: Vec<u8>) -> Vec<u8> {
    let crc = checksum(key, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// The body of a record whose checksum matches, without the checksum.
fn open<'a>(key: &[u8], record: &'a [u8]) -> Option<&'a [u8]> {
    let (body, crc) = record.split_at_checked(record.len().checked_sub(4)?)?;
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    (checksum(key, body) == crc).then_some(body)
}

fn take<'a>(body: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = body.split_at_checked(n)?;
    *body = rest;
    Some(head)
}

fn take_u64(body: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(body, 8)?.try_into().ok()?))
}

fn take_u32(body: &mut &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(take(body, 4)?.try_into().ok()?))
}

/// The value of a record body's tail: present for a save, empty for a
/// delete (anything else is damage).
fn value(op: u8, rest: &[u8]) -> Option<Option<Bytes>> {
    match op {
        OP_SAVE => Some(Some(Bytes::copy_from_slice(rest))),
        OP_DELETE if rest.is_empty() => Some(None),
        _ => None,
    }
}

/// The start of a dead letter: the format, the operation and the
/// write's number, in a buffer with room for `rest` more bytes and the
/// checksum.
fn begin(value: &Option<Bytes>, seq: u64, rest: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + 8 + rest + 4);
    body.push(FORMAT);
    body.push(op(value));
    body.extend_from_slice(&seq.to_le_bytes());
    body
}

/// The start of a dead letter of `key` whose checksum matches: its
/// operation, its write's number, and the bytes after them.
fn read_start<'a>(key: &[u8], record: &'a [u8]) -> Option<(u8, u64, &'a [u8])> {
    let mut body = open(key, record)?;
    let head = take(&mut body, 2)?;
    if head[0] != FORMAT {
        return None;
    }
    let seq = take_u64(&mut body)?;
    Some((head[1], seq, body))
}

impl Queued {
    /// The queue's row for this write of `key`, stored under the write's
    /// number: the key, then the value. The checksum covers the number
    /// too, so a row moved to another number is found.
    pub(crate) fn encode(&self, key: &[u8]) -> Vec<u8> {
        let value = self.value.as_deref().unwrap_or_default();
        let mut body = Vec::with_capacity(2 + 4 + key.len() + value.len() + 4);
        body.push(FORMAT);
        body.push(op(&self.value));
        body.extend_from_slice(&(key.len() as u32).to_le_bytes());
        body.extend_from_slice(key);
        body.extend_from_slice(value);
        seal(&self.seq.to_le_bytes(), body)
    }

    /// The key and write a queue row stored under number `seq` holds;
    /// `None` if it is damaged.
    pub(crate) fn decode(seq: u64, record: &[u8]) -> Option<(Bytes, Self)> {
        let mut body = open(&seq.to_le_bytes(), record)?;
        let head = take(&mut body, 2)?;
        if head[0] != FORMAT {
            return None;
        }
        let len = take_u32(&mut body)? as usize;
        let key = Bytes::copy_from_slice(take(&mut body, len)?);
        Some((
            key,
            Queued {
                seq,
                value: value(head[1], body)?,
            },
        ))
    }
}

impl Dead {
    /// The dead-letter record of this write of `key`.
    pub(crate) fn encode(&self, key: &[u8]) -> Vec<u8> {
        let value = self.value.as_deref().unwrap_or_default();
        let error = &self.error.as_bytes()[..self.error.len().min(u16::MAX as usize)];
        let mut body = begin(&self.value, self.seq, 4 + 8 + 2 + error.len() + value.len());
        body.extend_from_slice(&self.tries.to_le_bytes());
        body.extend_from_slice(&self.failed_at_ms.to_le_bytes());
        body.extend_from_slice(&(error.len() as u16).to_le_bytes());
        body.extend_from_slice(error);
        body.extend_from_slice(value);
        seal(key, body)
    }

    /// The dead letter a record of `key` holds; `None` if it is damaged.
    pub(crate) fn decode(key: &[u8], record: &[u8]) -> Option<Self> {
        let (op, seq, mut body) = read_start(key, record)?;
        let tries = take_u32(&mut body)?;
        let failed_at_ms = take_u64(&mut body)?;
        let len = u16::from_le_bytes(take(&mut body, 2)?.try_into().ok()?);
        let error = String::from_utf8_lossy(take(&mut body, len as usize)?).into_owned();
        Some(Dead {
            seq,
            value: value(op, body)?,
            tries,
            failed_at_ms,
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written() {
        for value in [Some(Bytes::from_static(b"v")), Some(Bytes::new()), None] {
            let q = Queued {
                seq: 42,
                value: value.clone(),
            };
            assert_eq!(
                Queued::decode(42, &q.encode(b"k")),
                Some((Bytes::from_static(b"k"), q))
            );
            let d = Dead {
                seq: 7,
                value,
                tries: 3,
                failed_at_ms: 1_700_000_000_000,
                error: "store down".into(),
            };
            assert_eq!(Dead::decode(b"k", &d.encode(b"k")), Some(d));
        }
    }

    #[test]
    fn any_flipped_bit_or_a_wrong_number_is_found() {
        let q = Queued {
            seq: 9,
            value: Some(Bytes::from_static(b"value")),
        };
        let record = q.encode(b"key");
        assert_eq!(Queued::decode(10, &record), None, "another number");
        for i in 0..record.len() {
            for bit in 0..8 {
                let mut damaged = record.clone();
                damaged[i] ^= 1 << bit;
                assert_eq!(Queued::decode(9, &damaged), None, "byte {i} bit {bit}");
            }
        }
        for n in 0..record.len() {
            assert_eq!(Queued::decode(9, &record[..n]), None);
        }
    }
}

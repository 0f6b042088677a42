//! Turning typed keys and values into bytes for the lower tiers.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};
#[cfg(feature = "bincode")]
use crate::limits::Limits;

/// A serde-based encoding of keys and values.
///
/// The typed cache encodes once per write and decodes once per lower-tier
/// hit; a hot-tier hit never touches the codec. A decoding failure is an
/// [`ErrorKind::Codec`] error, which the cache treats as a corrupted record.
pub trait Codec: Clone + Send + Sync + 'static {
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;

    /// Encodes `value`.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>>;

    /// Decodes a value; trailing bytes are an error.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T>;
}

/// The default codec: postcard, a compact format with a documented, stable
/// wire format.
///
/// ```
/// use cache_core::{Codec, Postcard};
/// let bytes = Postcard.encode(&(7u64, "seven")).unwrap();
/// let back: (u64, String) = Postcard.decode(&bytes).unwrap();
/// assert_eq!(back, (7, "seven".to_string()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Postcard;

impl Codec for Postcard {
    fn name(&self) -> &'static str {
        "postcard"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        postcard::to_stdvec(value)
            .map_err(|e| Error::new(ErrorKind::Codec, "postcard encoding failed").with_source(e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        let (value, rest) = postcard::take_from_bytes(bytes)
            .map_err(|e| Error::new(ErrorKind::Codec, "postcard decoding failed").with_source(e))?;
        if !rest.is_empty() {
            return Err(Error::new(
                ErrorKind::Codec,
                format!("{} trailing bytes after a postcard value", rest.len()),
            ));
        }
        Ok(value)
    }
}

/// bincode 2 through its serde support, for applications that already store
/// bincode.
///
/// **bincode is unmaintained** (RUSTSEC-2025-0141; its 3.0.0 release is an
/// empty tombstone). Prefer [`Postcard`] for new data; this codec exists so
/// existing bincode data can be read.
///
/// Decoding is bounded by [`Bincode::DECODE_LIMIT`]: bincode allocates a
/// string or byte vector as long as its length prefix claims before it reads
/// a byte, so without a bound a record written by another program (or
/// another version of this one) could ask for gigabytes and abort the
/// process. A value whose decoded form would exceed the bound is an
/// [`ErrorKind::Codec`] error, like any other undecodable record.
///
/// ```
/// use cache_core::{Bincode, Codec, ErrorKind};
/// // A string whose length prefix claims 2^60 bytes.
/// let mut hostile = vec![253];
/// hostile.extend_from_slice(&(1u64 << 60).to_le_bytes());
/// let err = Bincode.decode::<String>(&hostile).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Codec);
/// ```
#[cfg(feature = "bincode")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bincode;

#[cfg(feature = "bincode")]
impl Bincode {
    /// The most bytes one decoded value may take, as bincode counts them
    /// (the in-memory size of its strings, vectors and numbers).
    ///
    /// It is the default [`Limits::max_value_len`]: no tier stores a value
    /// larger than that by default, and bincode's bound is a compile-time
    /// constant, so it cannot follow a tier's configured limits.
    pub const DECODE_LIMIT: usize = Limits::DEFAULT.max_value_len;
}

/// The configuration both directions use; the limit only affects decoding.
#[cfg(feature = "bincode")]
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ Bincode::DECODE_LIMIT }>()
}

#[cfg(feature = "bincode")]
impl Codec for Bincode {
    fn name(&self) -> &'static str {
        "bincode"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        bincode::serde::encode_to_vec(value, bincode_config())
            .map_err(|e| Error::new(ErrorKind::Codec, "bincode encoding failed").with_source(e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        let (value, read) =
            bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(|e| {
                let message = if matches!(e, bincode::error::DecodeError::LimitExceeded) {
                    "bincode value claims more than the decode limit"
                } else {
                    "bincode decoding failed"
                };
                Error::new(ErrorKind::Codec, message).with_source(e)
            })?;
        if read != bytes.len() {
            return Err(Error::new(
                ErrorKind::Codec,
                format!(
                    "{} trailing bytes after a bincode value",
                    bytes.len() - read
                ),
            ));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip<C: Codec>(codec: &C) {
        let v: (u64, String, Vec<u8>) = (42, "x".repeat(300), vec![1, 2, 3]);
        let b = codec.encode(&v).unwrap();
        let back: (u64, String, Vec<u8>) = codec.decode(&b).unwrap();
        assert_eq!(back, v);
        let err = codec
            .decode::<(u64, String)>(&b[..b.len() / 2])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Codec);
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            codec
                .decode::<(u64, String, Vec<u8>)>(&long)
                .unwrap_err()
                .kind(),
            ErrorKind::Codec
        );
    }

    #[test]
    fn postcard_round_trips_and_rejects_bad_input() {
        round_trip(&Postcard);
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_round_trips_and_rejects_bad_input() {
        round_trip(&Bincode);
    }

    /// A byte buffer that asks the format for an owned byte string, the path
    /// on which a decoder may allocate the whole claimed length up front.
    #[derive(Debug)]
    struct ByteBuf(Vec<u8>);

    impl<'de> serde::Deserialize<'de> for ByteBuf {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            struct Visit;
            impl serde::de::Visitor<'_> for Visit {
                type Value = ByteBuf;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<ByteBuf, E> {
                    Ok(ByteBuf(v.to_vec()))
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> std::result::Result<ByteBuf, E> {
                    Ok(ByteBuf(v))
                }
            }
            d.deserialize_byte_buf(Visit)
        }
    }

    /// Decodes input whose length prefix (`prefix`, in the codec's own
    /// integer encoding) claims far more than the input holds, as strings,
    /// owned byte strings, byte vectors and vectors of strings: each must be
    /// an error, never an abort.
    fn rejects_hostile_lengths<C: Codec>(codec: &C, prefix: &[u8]) {
        // The byte-string path works on honest input.
        let honest = codec.encode(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(codec.decode::<ByteBuf>(&honest).unwrap().0, [1, 2, 3]);
        let mut hostile = prefix.to_vec();
        hostile.extend_from_slice(b"tail");
        let kind = codec.decode::<String>(&hostile).unwrap_err().kind();
        assert_eq!(kind, ErrorKind::Codec);
        let kind = codec.decode::<ByteBuf>(&hostile).unwrap_err().kind();
        assert_eq!(kind, ErrorKind::Codec);
        let kind = codec.decode::<Vec<u8>>(&hostile).unwrap_err().kind();
        assert_eq!(kind, ErrorKind::Codec);
        let kind = codec.decode::<Vec<String>>(&hostile).unwrap_err().kind();
        assert_eq!(kind, ErrorKind::Codec);
        // The claim nested inside a well-formed outer value.
        let mut nested = codec.encode(&7u64).unwrap();
        nested.extend_from_slice(&hostile);
        let kind = codec.decode::<(u64, String)>(&nested).unwrap_err().kind();
        assert_eq!(kind, ErrorKind::Codec);
    }

    /// postcard's unsigned LEB128 varint.
    fn leb128(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    #[test]
    fn postcard_rejects_lengths_beyond_its_input() {
        // postcard takes a byte string from the input slice before it copies
        // it and grows sequences as elements arrive, so a claim larger than
        // the input fails when the input runs out.
        rejects_hostile_lengths(&Postcard, &leb128(1 << 60));
        rejects_hostile_lengths(&Postcard, &leb128(u64::MAX));
        rejects_hostile_lengths(&Postcard, &leb128(1 << 32));
    }

    /// bincode's varint for a `u64` beyond 32 bits: a marker byte, then the
    /// number in little-endian order.
    #[cfg(feature = "bincode")]
    fn bincode_u64(n: u64) -> Vec<u8> {
        let mut out = vec![253];
        out.extend_from_slice(&n.to_le_bytes());
        out
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_rejects_hostile_lengths_without_allocating_them() {
        // Unbounded, bincode allocates 2^60 bytes for this string before it
        // reads any, which aborts the process.
        rejects_hostile_lengths(&Bincode, &bincode_u64(1 << 60));
        rejects_hostile_lengths(&Bincode, &bincode_u64(u64::MAX));
        // A claim just past the limit is refused by the limit itself, which
        // bincode checks before it allocates: the error says so, where an
        // unbounded decode would have allocated the claim and then run out
        // of input.
        let claim = Bincode::DECODE_LIMIT as u64 + 1;
        for prefix in [bincode_u64(1 << 60), bincode_u64(claim)] {
            let err = Bincode.decode::<String>(&prefix).unwrap_err();
            assert!(
                matches!(
                    err.source_as::<bincode::error::DecodeError>(),
                    Some(bincode::error::DecodeError::LimitExceeded)
                ),
                "{err:?}"
            );
        }
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_still_decodes_large_values_under_the_limit() {
        let v = "x".repeat(1 << 20);
        let b = Bincode.encode(&v).unwrap();
        assert_eq!(Bincode.decode::<String>(&b).unwrap(), v);
        let v = vec![0xa5u8; 1 << 20];
        let b = Bincode.encode(&v).unwrap();
        assert_eq!(Bincode.decode::<Vec<u8>>(&b).unwrap(), v);
    }

    proptest! {
        #[test]
        fn postcard_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Postcard.decode::<(u64, String, Vec<u8>)>(&bytes);
        }

        #[cfg(feature = "bincode")]
        #[test]
        fn bincode_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Bincode.decode::<(u64, String, Vec<u8>)>(&bytes);
        }
    }
}

//! Turning typed keys and values into bytes for the lower tiers.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};

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
#[cfg(feature = "bincode")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bincode;

#[cfg(feature = "bincode")]
impl Codec for Bincode {
    fn name(&self) -> &'static str {
        "bincode"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        bincode::serde::encode_to_vec(value, bincode::config::standard())
            .map_err(|e| Error::new(ErrorKind::Codec, "bincode encoding failed").with_source(e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| {
            Error::new(ErrorKind::Codec, "bincode decoding failed").with_source(e)
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

    proptest! {
        #[test]
        fn postcard_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Postcard.decode::<(u64, String, Vec<u8>)>(&bytes);
        }
    }
}

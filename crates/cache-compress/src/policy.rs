//! When a value is worth compressing.

use cache_core::Result;

use crate::compressor::Compressor;
use crate::frame::DEFAULT_MAX_DECOMPRESSED_LEN;
use crate::stats::Skip;

/// The settings that decide whether a value is stored compressed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Policy {
    /// Values of this many bytes or fewer are stored as they are.
    pub(crate) threshold: usize,
    /// The least fraction of its size a frame must save to be kept.
    pub(crate) min_saving: f64,
    /// Values larger than this are judged from a sample first.
    pub(crate) sample_above: usize,
    /// How many chunks the sample takes, spread evenly over the value.
    pub(crate) sample_chunks: usize,
    /// The length of each chunk.
    pub(crate) sample_chunk_len: usize,
    /// The longest value compressed, and the most a frame may claim.
    pub(crate) max_len: usize,
}

/// What to store for a value.
#[derive(Debug)]
pub(crate) enum Decision {
    /// This frame.
    Compressed(Vec<u8>),
    /// The value itself, for this reason.
    Skipped(Skip),
}

impl Policy {
    /// Values above 1 KiB, kept compressed when they save 10%; values above
    /// 64 KiB judged first from four chunks of 2 KiB; frames up to 64 MiB.
    pub(crate) const DEFAULT: Policy = Policy {
        threshold: 1024,
        min_saving: 0.10,
        sample_above: 64 * 1024,
        sample_chunks: 4,
        sample_chunk_len: 2 * 1024,
        max_len: DEFAULT_MAX_DECOMPRESSED_LEN,
    };

    /// Decides how to store `value`, compressing it with `compressor` if
    /// it pays.
    pub(crate) fn decide(&self, compressor: &dyn Compressor, value: &[u8]) -> Result<Decision> {
        if value.len() <= self.threshold {
            return Ok(Decision::Skipped(Skip::TooSmall));
        }
        if value.len() > self.max_len {
            return Ok(Decision::Skipped(Skip::TooLarge));
        }
        if let Some(sample) = self.sample(value) {
            let mut block = Vec::with_capacity(sample.len());
            compressor.compress_block(&sample, &mut block)?;
            if !self.pays(sample.len(), block.len()) {
                return Ok(Decision::Skipped(Skip::Sample));
            }
        }
        let frame = compressor.compress(value)?;
        Ok(if self.pays(value.len(), frame.len()) {
            Decision::Compressed(frame)
        } else {
            Decision::Skipped(Skip::NotPaying)
        })
    }

    /// Whether `compressed` bytes in place of `original` save enough.
    fn pays(&self, original: usize, compressed: usize) -> bool {
        compressed as f64 <= original as f64 * (1.0 - self.min_saving)
    }

    /// The chunks to judge a large value by, joined; `None` when the value
    /// is not above `sample_above`, or when the sample would be more than
    /// half of it, since compressing it all then costs at most twice as
    /// much.
    fn sample(&self, value: &[u8]) -> Option<Vec<u8>> {
        let (chunks, chunk) = (self.sample_chunks, self.sample_chunk_len);
        let total = chunks.saturating_mul(chunk);
        if value.len() <= self.sample_above || total > value.len() / 2 {
            return None;
        }
        // The first chunk starts the value and the last one ends it, so
        // a value whose head and tail differ (a header, then a body) is
        // seen in both; a single chunk is taken from the middle. Chunk `i`
        // starts at `span * i / gaps`, computed in two parts so that the
        // product cannot overflow.
        let span = value.len() - chunk;
        let gaps = chunks - 1;
        let start = |i: usize| match (span.checked_div(gaps), span.checked_rem(gaps)) {
            (Some(step), Some(rest)) => step * i + rest * i / gaps,
            _ => span / 2,
        };
        let mut sample = Vec::with_capacity(total);
        for i in 0..chunks {
            sample.extend_from_slice(&value[start(i)..start(i) + chunk]);
        }
        Some(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lz4;

    fn policy() -> Policy {
        Policy::DEFAULT
    }

    #[test]
    fn samples_are_spread_from_head_to_tail() {
        let value: Vec<u8> = (0..100_000u32).map(|i| (i / 1000) as u8).collect();
        let sample = policy().sample(&value).unwrap();
        assert_eq!(sample.len(), 4 * 2048);
        assert!(
            sample[..2048] == value[..2048],
            "the first chunk is the head"
        );
        let span = value.len() - 2048;
        for (i, start) in [(1, span / 3), (2, span * 2 / 3), (3, span)] {
            assert!(
                sample[i * 2048..(i + 1) * 2048] == value[start..start + 2048],
                "chunk {i} starts at {start}"
            );
        }
        let one = Policy {
            sample_chunks: 1,
            ..policy()
        };
        let middle = (value.len() - 2048) / 2;
        assert!(one.sample(&value).unwrap() == value[middle..middle + 2048]);
    }

    #[test]
    fn small_values_and_samples_larger_than_half_are_not_sampled() {
        assert!(policy().sample(&[0; 64 * 1024]).is_none());
        let big_sample = Policy {
            sample_chunk_len: 16 * 1024,
            ..policy()
        };
        assert!(big_sample.sample(&[0; 100 * 1024]).is_none());
        assert!(big_sample.sample(&[0; 130 * 1024]).is_some());
    }

    #[test]
    fn the_saving_rule_is_inclusive() {
        assert!(policy().pays(1000, 900));
        assert!(!policy().pays(1000, 901));
        let any = Policy {
            min_saving: 0.0,
            ..policy()
        };
        assert!(any.pays(1000, 1000));
        assert!(!any.pays(1000, 1001));
    }

    #[test]
    fn decisions_follow_size_then_sample_then_saving() {
        let p = Policy {
            max_len: 1 << 20,
            ..policy()
        };
        let skipped = |value: &[u8]| match p.decide(&Lz4, value).unwrap() {
            Decision::Skipped(why) => Some(why),
            Decision::Compressed(_) => None,
        };
        assert_eq!(skipped(&[0; 1024]), Some(Skip::TooSmall));
        assert_eq!(skipped(&[0; 1025]), None);
        assert_eq!(skipped(&vec![0; (1 << 20) + 1]), Some(Skip::TooLarge));
        let mut x = 1u32;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert_eq!(skipped(&noise), Some(Skip::Sample));
        assert_eq!(skipped(&noise[..60_000]), Some(Skip::NotPaying));
    }
}

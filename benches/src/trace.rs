//! Reading the gzip'd access traces in `../shared/traces` into memory.

use std::error::Error;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// How the lines of a trace file are laid out, decided by the extension
/// before `.gz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// ARC traces (`.lis`): each line is `start_block n_blocks ignore
    /// request_no` and expands to the `n_blocks` keys `start_block ..
    /// start_block + n_blocks - 1`, one request each.
    Lis,
    /// LIRS and similar traces (`.trace`, `.txt`): one integer key per
    /// line; a line holding only `*` is a checkpoint marker and is skipped.
    /// Keys may be signed (the Scarab trace holds 64-bit hashes printed as
    /// `i64`): a negative key is read as its two's complement `u64`, which
    /// keeps distinct keys distinct.
    Keys,
}

impl TraceFormat {
    /// The format of `path` from its extension (`name.lis.gz`,
    /// `name.trace.gz`, `name.txt.gz`, or the same names without `.gz`).
    pub fn from_path(path: &Path) -> Result<Self, TraceError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let name = name.strip_suffix(".gz").unwrap_or(name);
        match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("lis") => Ok(Self::Lis),
            Some("trace" | "txt") => Ok(Self::Keys),
            _ => Err(TraceError::UnknownFormat(path.to_path_buf())),
        }
    }
}

/// Why a trace could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum TraceError {
    /// The file name does not end in `.lis`, `.trace` or `.txt` (each
    /// optionally followed by `.gz`).
    UnknownFormat(PathBuf),
    /// The file could not be opened, decompressed or read.
    Io {
        /// The trace file.
        path: PathBuf,
        /// What the operating system or the decoder said.
        source: io::Error,
    },
    /// A line does not follow the format.
    Malformed {
        /// The trace file; empty when parsing text from elsewhere.
        path: PathBuf,
        /// One-based line number in the decompressed text.
        line: usize,
        /// The offending line, shortened if long.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownFormat(path) => write!(
                f,
                "{}: unknown trace format (expected .lis, .trace or .txt, optionally .gz)",
                path.display()
            ),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Malformed {
                path,
                line,
                text,
                reason,
            } => {
                if !path.as_os_str().is_empty() {
                    write!(f, "{}: ", path.display())?;
                }
                write!(f, "line {line}: {reason}: {text:?}")
            }
        }
    }
}

impl Error for TraceError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Reads a whole trace file into memory: the keys in request order.
///
/// The file is gunzipped when its name ends in `.gz` and parsed by
/// [`parse_trace`] in the format [`TraceFormat::from_path`] gives. A
/// malformed line is reported with its line number and the file name.
pub fn read_trace(path: &Path) -> Result<Vec<u64>, TraceError> {
    let format = TraceFormat::from_path(path)?;
    let io_err = |source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let gzipped = path.extension().is_some_and(|e| e == "gz");
    let result = if gzipped {
        // Some gzip tools write several members; read them all.
        parse_trace(BufReader::new(MultiGzDecoder::new(file)), format)
    } else {
        parse_trace(BufReader::new(file), format)
    };
    result.map_err(|e| match e {
        TraceError::Io { source, .. } => io_err(source),
        TraceError::Malformed {
            line, text, reason, ..
        } => TraceError::Malformed {
            path: path.to_path_buf(),
            line,
            text,
            reason,
        },
        other => other,
    })
}

/// Parses trace text in `format` into the keys in request order.
///
/// Blank lines are skipped in both formats. Errors from `reader` come back
/// as [`TraceError::Io`] with an empty path.
pub fn parse_trace(reader: impl BufRead, format: TraceFormat) -> Result<Vec<u64>, TraceError> {
    let mut keys = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| TraceError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let number = index + 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match format {
            TraceFormat::Keys => {
                if text == "*" {
                    continue;
                }
                keys.push(parse_key(text, number)?);
            }
            TraceFormat::Lis => {
                let mut fields = text.split_whitespace();
                let mut next = |what: &str| {
                    let field = fields.next().ok_or_else(|| malformed(number, text, || {
                        format!("expected `start_block n_blocks ignore request_no`, {what} is missing")
                    }))?;
                    parse_field(field, what, number, text)
                };
                let start = next("start_block")?;
                let count = next("n_blocks")?;
                next("the third field")?;
                next("request_no")?;
                if fields.next().is_some() {
                    return Err(malformed(number, text, || {
                        "expected 4 fields, found more".to_string()
                    }));
                }
                let end = start.checked_add(count).ok_or_else(|| {
                    malformed(number, text, || {
                        "start_block + n_blocks overflows u64".to_string()
                    })
                })?;
                keys.extend(start..end);
            }
        }
    }
    Ok(keys)
}

/// A key of a `.trace` / `.txt` line: unsigned, or signed and taken as
/// its two's complement.
fn parse_key(text: &str, line: usize) -> Result<u64, TraceError> {
    if let Ok(key) = text.parse::<u64>() {
        return Ok(key);
    }
    text.parse::<i64>().map(|key| key as u64).map_err(|e| {
        malformed(line, text, || {
            format!("key `{text}` is not a 64-bit integer ({e})")
        })
    })
}

fn parse_field(field: &str, what: &str, line: usize, text: &str) -> Result<u64, TraceError> {
    field.parse().map_err(|e| {
        malformed(line, text, || {
            format!("{what} `{field}` is not an unsigned integer ({e})")
        })
    })
}

fn malformed(line: usize, text: &str, reason: impl FnOnce() -> String) -> TraceError {
    const MAX: usize = 80;
    let text = match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    };
    TraceError::Malformed {
        path: PathBuf::new(),
        line,
        text,
        reason: reason(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    #[test]
    fn lis_lines_expand_to_their_block_ranges() {
        let text = "10 3 0 0\n\n7 1 0 1\n5 0 0 2\n";
        let keys = parse_trace(text.as_bytes(), TraceFormat::Lis).unwrap();
        assert_eq!(keys, [10, 11, 12, 7]);
    }

    #[test]
    fn key_traces_skip_checkpoints_and_blank_lines() {
        let text = "1\n*\n2\n\n  3  \n*\n1\n";
        let keys = parse_trace(text.as_bytes(), TraceFormat::Keys).unwrap();
        assert_eq!(keys, [1, 2, 3, 1]);
    }

    #[test]
    fn signed_keys_are_read_as_their_twos_complement() {
        let text = "-1\n18446744073709551615\n-6928615059174207924\n0\n";
        let keys = parse_trace(text.as_bytes(), TraceFormat::Keys).unwrap();
        assert_eq!(
            keys,
            [
                u64::MAX,
                u64::MAX,
                (-6_928_615_059_174_207_924_i64) as u64,
                0
            ]
        );
    }

    #[test]
    fn malformed_lines_name_their_line_number() {
        let err = parse_trace("1\n2\nx3\n".as_bytes(), TraceFormat::Keys).unwrap_err();
        assert!(
            matches!(err, TraceError::Malformed { line: 3, .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("line 3: "), "{err}");

        let err = parse_trace("1 2 3 4\n1 2 3\n".as_bytes(), TraceFormat::Lis).unwrap_err();
        assert!(
            matches!(err, TraceError::Malformed { line: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("request_no is missing"), "{err}");

        let err = parse_trace("1 2 3 4 5\n".as_bytes(), TraceFormat::Lis).unwrap_err();
        assert!(matches!(err, TraceError::Malformed { line: 1, .. }));

        let err = parse_trace("-1 2 3 4\n".as_bytes(), TraceFormat::Lis).unwrap_err();
        assert!(err.to_string().contains("start_block `-1`"), "{err}");
    }

    #[test]
    fn formats_come_from_the_extension_before_gz() {
        let format = |name: &str| TraceFormat::from_path(Path::new(name));
        assert_eq!(format("a/OLTP.lis.gz").unwrap(), TraceFormat::Lis);
        assert_eq!(format("lirs_loop.trace.gz").unwrap(), TraceFormat::Keys);
        assert_eq!(format("scarab-recs.txt.gz").unwrap(), TraceFormat::Keys);
        assert_eq!(format("plain.txt").unwrap(), TraceFormat::Keys);
        assert!(format("trace.csv.gz").is_err());
        assert!(format("gz").is_err());
    }

    #[test]
    fn gzipped_files_are_read_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("tiercache-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            let mut gz = GzEncoder::new(File::create(&path).unwrap(), Compression::fast());
            gz.write_all(text.as_bytes()).unwrap();
            gz.finish().unwrap();
            path
        };
        let good = write("good.lis.gz", "4 2 0 0\n1 1 0 1\n");
        assert_eq!(read_trace(&good).unwrap(), [4, 5, 1]);
        let bad = write("bad.trace.gz", "1\n*\nnope\n");
        let err = read_trace(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: line 3: ", bad.display())),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

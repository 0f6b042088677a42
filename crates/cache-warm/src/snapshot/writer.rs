//! Writing a snapshot to a temporary file and renaming it into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cache_core::{DataClass, ErrorKind, Result};

use super::format::{
    BODY_MIN_LEN, BUFFER_LEN, HAS_EXPIRY, HAS_VALUE, RECORD_PREFIX_LEN, TAG_RECORD, encode_header,
    encode_trailer, invalid_input, io_failed,
};
use super::{SnapshotContents, SnapshotFileReport, SnapshotHeader, SnapshotRecord};

/// Numbers the temporary files of this process, so two writers for the
/// same path never share one.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many temporary names to try before giving up. A name is only taken
/// when a crashed process with the same id left its file behind.
const TEMP_ATTEMPTS: u32 = 16;

/// Writes a snapshot file.
///
/// Records go to a temporary file beside the target (same directory, named
/// `.<file name>.tmp-<pid>-<counter>`); only [`finish`](Self::finish)
/// renames it over the target, so a crash or an error before then leaves
/// the previous file whole. Dropping the writer without finishing deletes
/// the temporary file (best effort).
///
/// ```
/// use bytes::Bytes;
/// use cache_core::Meta;
/// use cache_warm::{
///     SNAPSHOT_VERSION, SnapshotContents, SnapshotHeader, SnapshotRecord, SnapshotWriter,
///     read_snapshot,
/// };
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("cache.snap");
/// let header = SnapshotHeader {
///     version: SNAPSHOT_VERSION,
///     contents: SnapshotContents::Values,
///     saved_at_ms: 1_700_000_000_000,
///     codec: "postcard".into(),
/// };
/// let record = SnapshotRecord {
///     key: Bytes::from_static(b"k"),
///     value: Some(Bytes::from_static(b"v")),
///     meta: Meta::new(1_700_000_000_000),
///     frequency: 3,
/// };
/// let mut writer = SnapshotWriter::create(&path, &header)?;
/// writer.write(&record)?;
/// assert_eq!(writer.finish()?.records, 1);
///
/// let (read_header, records) = read_snapshot(&path)?;
/// assert_eq!((read_header, records), (header, vec![record]));
/// # Ok::<(), cache_core::Error>(())
/// ```
pub struct SnapshotWriter {
    /// The file the snapshot replaces when finished.
    path: PathBuf,
    /// The directory holding both files, synced after the rename.
    dir: PathBuf,
    /// The temporary file; `None` once it has been renamed into place,
    /// which tells `drop` there is nothing left to delete.
    temp: Option<PathBuf>,
    /// The buffered temporary file; `None` after a failed write, because
    /// the file's contents are then unknown and must not be finished.
    out: Option<BufWriter<File>>,
    contents: SnapshotContents,
    /// Reused to encode each record's fixed fields without allocating.
    scratch: Vec<u8>,
    records: u64,
    bytes: u64,
}

impl SnapshotWriter {
    /// Creates a temporary file beside `path` (same directory, named like
    /// `.<file name>.tmp-<pid>-<counter>`) and writes the header.
    ///
    /// Fails with [`ErrorKind::InvalidInput`](cache_core::ErrorKind::InvalidInput)
    /// when `path` has no file name, the header's version is not
    /// [`SNAPSHOT_VERSION`](super::SNAPSHOT_VERSION) or its codec name is
    /// longer than 65535 bytes, and with
    /// [`ErrorKind::Backend`](cache_core::ErrorKind::Backend) when the file
    /// cannot be created or written.
    pub fn create(path: impl AsRef<Path>, header: &SnapshotHeader) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let header_bytes = encode_header(&path, header)?;
        let Some(file_name) = path.file_name() else {
            return Err(invalid_input(&path, "the path has no file name"));
        };
        let dir = parent_dir(&path);
        let (temp, file) = create_temp(&path, &dir, &file_name.to_string_lossy())?;
        let mut writer = SnapshotWriter {
            path,
            dir,
            temp: Some(temp),
            out: Some(BufWriter::with_capacity(BUFFER_LEN, file)),
            contents: header.contents,
            scratch: Vec::with_capacity(BODY_MIN_LEN + RECORD_PREFIX_LEN + 64),
            records: 0,
            bytes: 0,
        };
        writer.put(&header_bytes, || "writing the header".into())?;
        Ok(writer)
    }

    /// Appends one record.
    ///
    /// Fails with [`ErrorKind::InvalidInput`](cache_core::ErrorKind::InvalidInput),
    /// writing nothing, for a record the format cannot hold: a value in a
    /// keys-only snapshot, a named class whose name is empty or longer than
    /// 65535 bytes, or a record over 4 GiB. An I/O failure is
    /// [`ErrorKind::Backend`](cache_core::ErrorKind::Backend), after which
    /// every further call fails and the target is left untouched.
    pub fn write(&mut self, record: &SnapshotRecord) -> Result<()> {
        let index = self.records;
        let unrepresentable =
            |what: String| invalid_input(&self.path, format!("record {index}: {what}"));
        if self.contents == SnapshotContents::Keys && record.value.is_some() {
            return Err(unrepresentable(
                "has a value, but the snapshot holds keys only".into(),
            ));
        }
        let class: &[u8] = match &record.meta.class {
            DataClass::Default => &[],
            // An empty name is how the format stores the default class, so
            // a named class with an empty name would come back as another
            // class.
            DataClass::Named(name) if name.is_empty() => {
                return Err(unrepresentable(
                    "has a named class with an empty name".into(),
                ));
            }
            DataClass::Named(name) => name.as_bytes(),
        };
        let class_len = u16::try_from(class.len()).map_err(|_| {
            unrepresentable(format!(
                "class name is {} bytes, more than 65535",
                class.len()
            ))
        })?;
        let key: &[u8] = &record.key;
        let value: &[u8] = record.value.as_deref().unwrap_or_default();
        let too_long = |what: &str, len: usize| {
            unrepresentable(format!("{what} is {len} bytes, more than 4 GiB"))
        };
        let key_len = u32::try_from(key.len()).map_err(|_| too_long("key", key.len()))?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_long("value", value.len()))?;
        let body_len = BODY_MIN_LEN
            .checked_add(class.len())
            .and_then(|n| n.checked_add(key.len()))
            .and_then(|n| n.checked_add(value.len()))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| unrepresentable("is more than 4 GiB in all".into()))?;

        let mut presence = 0;
        if record.value.is_some() {
            presence |= HAS_VALUE;
        }
        if record.meta.expires_at_ms.is_some() {
            presence |= HAS_EXPIRY;
        }
        // The fixed fields and the class go through the scratch buffer; the
        // key and the value are written straight from the caller's bytes.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.push(TAG_RECORD);
        scratch.extend_from_slice(&body_len.to_le_bytes());
        scratch.extend_from_slice(&record.meta.flags.bits().to_le_bytes());
        scratch.push(record.frequency);
        scratch.push(presence);
        scratch.extend_from_slice(&record.meta.expires_at_ms.unwrap_or(0).to_le_bytes());
        scratch.extend_from_slice(&record.meta.created_at_ms.to_le_bytes());
        scratch.extend_from_slice(&class_len.to_le_bytes());
        scratch.extend_from_slice(class);
        scratch.extend_from_slice(&key_len.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        let value_len = value_len.to_le_bytes();
        for part in [&scratch[..], key, &value_len[..], value] {
            crc.update(part);
        }
        let crc = crc.finalize().to_le_bytes();
        let what = || format!("writing record {index}");
        let result = self
            .put(&scratch, what)
            .and_then(|()| self.put(key, what))
            .and_then(|()| self.put(&value_len, what))
            .and_then(|()| self.put(value, what))
            .and_then(|()| self.put(&crc, what));
        self.scratch = scratch;
        result?;
        self.records += 1;
        Ok(())
    }

    /// Writes the trailer, flushes and fsyncs the file, renames it over the
    /// target path, and (on unix) fsyncs the directory so the rename itself
    /// survives a power loss.
    ///
    /// The target changes only at the rename. If syncing the directory
    /// fails afterwards the error is still returned, because the new file
    /// may not survive a crash, but the target already holds it.
    pub fn finish(mut self) -> Result<SnapshotFileReport> {
        let trailer = encode_trailer(self.records);
        self.put(&trailer, || "writing the trailer".into())?;
        let Some(out) = self.out.take() else {
            return Err(self.poisoned());
        };
        let file = out
            .into_inner()
            .map_err(|e| self.io_error("flushing", e.into_error()))?;
        file.sync_all().map_err(|e| self.io_error("syncing", e))?;
        drop(file);
        let Some(temp) = self.temp.as_deref() else {
            return Err(self.poisoned());
        };
        fs::rename(temp, &self.path).map_err(|e| {
            io_failed(
                &self.path,
                format!("renaming {} into place", temp.display()),
                e,
            )
        })?;
        self.temp = None;
        remove_stale_temps(&self.path, &self.dir);
        sync_dir(&self.dir).map_err(|e| {
            io_failed(
                &self.path,
                format!(
                    "written, but syncing its directory {} failed, so it may not survive a crash",
                    self.dir.display()
                ),
                e,
            )
        })?;
        Ok(SnapshotFileReport {
            records: self.records,
            bytes: self.bytes,
        })
    }

    /// Writes `bytes` to the temporary file. On failure the writer is
    /// poisoned, since part of `bytes` may have been written.
    fn put(&mut self, bytes: &[u8], what: impl FnOnce() -> String) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(self.poisoned());
        };
        if let Err(e) = out.write_all(bytes) {
            self.discard_output();
            return Err(self.io_error(what(), e));
        }
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Closes the temporary file without flushing its buffer: the file is
    /// about to be deleted or is already known to be incomplete.
    fn discard_output(&mut self) {
        if let Some(out) = self.out.take() {
            drop(out.into_parts());
        }
    }

    /// An I/O error while `what` on the temporary file.
    fn io_error(&self, what: impl std::fmt::Display, e: io::Error) -> cache_core::Error {
        match self.temp.as_deref() {
            Some(temp) => io_failed(
                &self.path,
                format!("{what} (temporary file {})", temp.display()),
                e,
            ),
            None => io_failed(&self.path, what, e),
        }
    }

    /// The error for a call after an earlier write failed.
    fn poisoned(&self) -> cache_core::Error {
        cache_core::Error::new(
            ErrorKind::Backend,
            format!(
                "snapshot {}: an earlier write failed, so this snapshot cannot be continued or finished",
                self.path.display()
            ),
        )
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            self.discard_output();
            // Best effort: a leftover temporary file wastes space but never
            // replaces the target.
            let _ = fs::remove_file(temp);
        }
    }
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("path", &self.path)
            .field("temp", &self.temp)
            .field("contents", &self.contents)
            .field("records", &self.records)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// How old a temporary file of another save must be before a finished
/// save removes it: a save under way writes to its file all along, so one
/// untouched this long was left by a process killed mid-save.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the temporary files of `path` that crashed saves left in `dir`
/// (untouched for [`STALE_TEMP`]), so that they do not pile up over
/// restarts. Best effort: a file it cannot read or remove stays.
fn remove_stale_temps(path: &Path, dir: &Path) {
    let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!(".{file_name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(&prefix)) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age >= STALE_TEMP);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Creates a new temporary file in `dir` for the snapshot at `path`.
///
/// `create_new` guarantees the file is this writer's alone; a name left by
/// a crashed process with the same id is skipped.
fn create_temp(path: &Path, dir: &Path, file_name: &str) -> Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut attempt = 0;
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{file_name}.tmp-{pid}-{n}"));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt + 1 < TEMP_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => {
                return Err(io_failed(
                    path,
                    format!("creating the temporary file {}", temp.display()),
                    e,
                ));
            }
        }
    }
}

/// The directory holding `path`; a bare file name is in the current
/// directory, which `Path::parent` gives as an empty path.
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Syncs a directory, so a rename inside it is durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Other platforms cannot open a directory as a file; their rename is as
/// durable as the platform makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_save_removes_the_stale_temporary_files_of_crashed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.snapshot");
        let stale = dir.path().join(".hot.snapshot.tmp-1-1");
        let fresh = dir.path().join(".hot.snapshot.tmp-2-1");
        let other = dir.path().join(".other.snapshot.tmp-1-1");
        for p in [&stale, &fresh, &other] {
            fs::write(p, b"partial").unwrap();
        }
        let old = std::time::SystemTime::now() - 2 * STALE_TEMP;
        for p in [&stale, &other] {
            File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let header = crate::SnapshotHeader {
            version: crate::SNAPSHOT_VERSION,
            contents: crate::SnapshotContents::Values,
            saved_at_ms: 0,
            codec: "postcard".into(),
        };
        SnapshotWriter::create(&path, &header)
            .unwrap()
            .finish()
            .unwrap();
        assert!(!stale.exists(), "a crashed save's old file is removed");
        assert!(fresh.exists(), "a save that may be under way is left alone");
        assert!(other.exists(), "another snapshot's files are left alone");
    }

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("cache.snap")), Path::new("."));
        assert_eq!(parent_dir(Path::new("a/cache.snap")), Path::new("a"));
        assert_eq!(parent_dir(Path::new("/cache.snap")), Path::new("/"));
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let header = SnapshotHeader {
            version: super::super::SNAPSHOT_VERSION,
            contents: SnapshotContents::Values,
            saved_at_ms: 0,
            codec: String::new(),
        };
        let err = SnapshotWriter::create("/", &header).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().starts_with("snapshot /: "), "{err}");
    }
}

//! Reading a snapshot file for a load, twice: the first reading verifies
//! every record and counts the unexpired ones by frequency ([`Survey`]),
//! the counts choose the hottest that fit ([`Choice`]), and the second
//! reading hands the records chosen to the cache, in parts side by side
//! where the cache installs from several threads.

use std::path::{Path, PathBuf};

use cache_core::{Error, ErrorKind, Result};
use cache_warm::{SnapshotHeader, SnapshotReader, SnapshotRecord};

/// The first reading of a snapshot file: every record verified, the
/// unexpired ones counted by frequency, and the file kept open to read it
/// again.
pub(super) struct Survey {
    path: PathBuf,
    pub(super) header: SnapshotHeader,
    file: std::fs::File,
    pub(super) records: u64,
    /// Unexpired records by their saved frequency.
    pub(super) live: [u64; 256],
    pub(super) bytes: u64,
    /// Where every [`MARK_EVERY`]th record starts, with the unexpired
    /// records before it by frequency: where parts of the second reading
    /// can start side by side.
    marks: Vec<Mark>,
}

/// A place in a snapshot file a second reading can start from.
#[derive(Clone)]
struct Mark {
    /// The offset of a record and how many came before it.
    position: (u64, u64),
    live_before: [u64; 256],
}

/// Records between two [`Mark`]s.
const MARK_EVERY: u64 = 65_536;

/// The most parts a memory-only cache's second reading is split into,
/// each read and installed on a blocking thread of its own.
pub(super) const LOAD_THREADS: usize = 8;

impl Survey {
    pub(super) fn take(path: &Path, now: u64) -> Result<Survey> {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                format!("snapshot {}: opening the file", path.display()),
            )
            .with_source(e)
        })?;
        let bytes = file.metadata().map_or(0, |m| m.len());
        let mut reader = SnapshotReader::from_file(path, file)?;
        let header = reader.header().clone();
        let mut records = 0;
        let mut live = [0u64; 256];
        let mut marks = Vec::new();
        loop {
            if records % MARK_EVERY == 0 {
                marks.push(Mark {
                    position: reader.position(),
                    live_before: live,
                });
            }
            let Some(record) = reader.next() else {
                break;
            };
            let record = record?;
            records += 1;
            if !record.meta.is_expired(now) {
                live[usize::from(record.frequency)] += 1;
            }
        }
        Ok(Survey {
            path: path.to_path_buf(),
            header,
            file: reader.into_file(),
            records,
            live,
            bytes,
            marks,
        })
    }

    /// The second reading in up to `parts` parts read side by side, each
    /// on a file handle of its own, handing `take` (one per part) what
    /// `choice` takes; the counts `take` returns, in order. Reopening the
    /// path must find the very file the first reading read (a save may
    /// have renamed a new one over it): if not, or with one part, the
    /// reading is not split.
    pub(super) fn reread_in_parts<T: Send>(
        self,
        now: u64,
        choice: Choice,
        parts: usize,
        take: impl Fn() -> Box<dyn FnMut(SnapshotRecord) -> T + Send> + Sync,
    ) -> Result<Vec<T>> {
        let bounds: Vec<Mark> = (0..parts)
            .map(|p| self.marks[self.marks.len() * p / parts].clone())
            .collect();
        let mut bounds = bounds;
        bounds.dedup_by_key(|m| m.position.1);
        let same = bounds.len() > 1 && self.same_file();
        if !same {
            let mut sink = take();
            let mut out = Vec::new();
            self.reread(now, choice, |record| {
                out.push(sink(record));
                true
            })?;
            return Ok(out);
        }
        let mut ends: Vec<Option<Mark>> = bounds.iter().skip(1).cloned().map(Some).collect();
        ends.push(None);
        let all = self.live;
        std::thread::scope(|scope| {
            let workers: Vec<_> = bounds
                .iter()
                .zip(&ends)
                .map(|(from, until)| {
                    let until_live = until.as_ref().map_or(all, |m| m.live_before);
                    let cutoff = usize::from(choice.cutoff);
                    let in_part = until_live[cutoff] - from.live_before[cutoff];
                    let quota =
                        in_part.min(choice.at_cutoff.saturating_sub(from.live_before[cutoff]));
                    let mut part_choice = Choice {
                        cutoff: choice.cutoff,
                        at_cutoff: quota,
                    };
                    let stop = until.as_ref().map(|m| m.position.1);
                    let mut sink = take();
                    let this = &self;
                    scope.spawn(move || -> Result<Vec<T>> {
                        let file = std::fs::File::open(&this.path).map_err(|e| {
                            Error::new(
                                ErrorKind::Backend,
                                format!("snapshot {}: opening the file again", this.path.display()),
                            )
                            .with_source(e)
                        })?;
                        let mut reader = SnapshotReader::resume(
                            &this.path,
                            file,
                            this.header.clone(),
                            from.position,
                        )?;
                        let mut out = Vec::new();
                        while stop.is_none_or(|stop| reader.position().1 < stop) {
                            let Some(record) = reader.next() else {
                                break;
                            };
                            let record = record?;
                            if record.meta.is_expired(now) || !part_choice.takes(record.frequency) {
                                continue;
                            }
                            out.push(sink(record));
                        }
                        Ok(out)
                    })
                })
                .collect();
            let mut out = Vec::new();
            for worker in workers {
                match worker.join() {
                    Ok(part) => out.extend(part?),
                    Err(_) => {
                        return Err(Error::new(
                            ErrorKind::Backend,
                            "a thread of the snapshot load panicked",
                        ));
                    }
                }
            }
            Ok(out)
        })
    }

    /// Whether the path still names the file the first reading read.
    #[cfg(unix)]
    fn same_file(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// Elsewhere the file's identity is not checked, so the second reading
    /// is not split.
    #[cfg(not(unix))]
    fn same_file(&self) -> bool {
        false
    }

    /// Reads the file again from its start and hands `take` each record
    /// `choice` takes, until `take` answers `false`.
    pub(super) fn reread(
        self,
        now: u64,
        mut choice: Choice,
        mut take: impl FnMut(SnapshotRecord) -> bool,
    ) -> Result<()> {
        use std::io::Seek;
        let mut file = self.file;
        file.rewind().map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                format!("snapshot {}: reading the file again", self.path.display()),
            )
            .with_source(e)
        })?;
        for record in SnapshotReader::from_file(&self.path, file)? {
            let record = record?;
            if record.meta.is_expired(now) || !choice.takes(record.frequency) {
                continue;
            }
            if !take(record) {
                break;
            }
        }
        Ok(())
    }
}

/// Which records a load takes: the hottest until the hot tier's room is
/// full. Every record hotter than `cutoff` fits; of those at `cutoff`,
/// the first `at_cutoff` in the file do.
pub(super) struct Choice {
    cutoff: u8,
    at_cutoff: u64,
}

impl Choice {
    pub(super) fn new(live: &[u64; 256], room: u64) -> Choice {
        let mut left = room;
        for frequency in (0..=u8::MAX).rev() {
            let n = live[usize::from(frequency)];
            if n > left {
                return Choice {
                    cutoff: frequency,
                    at_cutoff: left,
                };
            }
            left -= n;
        }
        Choice {
            cutoff: 0,
            at_cutoff: u64::MAX,
        }
    }

    fn takes(&mut self, frequency: u8) -> bool {
        if frequency != self.cutoff {
            return frequency > self.cutoff;
        }
        if self.at_cutoff == 0 {
            return false;
        }
        self.at_cutoff -= 1;
        true
    }
}

//! Where a measurement's time and bytes went, from Linux's `/proc`: the
//! process's write counters and each thread's CPU time. Elsewhere these
//! read as nothing and the report says so.

use std::collections::HashMap;

/// The process's write counters (`/proc/self/io`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Io {
    /// Bytes passed to `write`-like system calls.
    pub(crate) wchar: u64,
    /// `write`-like system calls.
    pub(crate) syscw: u64,
    /// Bytes the process caused to be sent to the block device.
    pub(crate) write_bytes: u64,
}

impl Io {
    pub(crate) fn now() -> Option<Io> {
        parse_io(&std::fs::read_to_string("/proc/self/io").ok()?)
    }

    pub(crate) fn since(self, before: Io) -> Io {
        Io {
            wchar: self.wchar.saturating_sub(before.wchar),
            syscw: self.syscw.saturating_sub(before.syscw),
            write_bytes: self.write_bytes.saturating_sub(before.write_bytes),
        }
    }
}

fn parse_io(text: &str) -> Option<Io> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(Io {
        wchar: field("wchar")?,
        syscw: field("syscw")?,
        write_bytes: field("write_bytes")?,
    })
}

/// Clock ticks per second of `/proc`'s CPU times (`USER_HZ`, 100 on every
/// Linux the bench targets).
const TICKS: f64 = 100.0;

/// Every thread's name and CPU time (user + system, seconds), by id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Threads(HashMap<u64, (String, f64)>);

/// CPU seconds spent in a span, by kind of thread.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CpuSplit {
    /// The write-back log's thread (`tiercache-write-back-log`).
    pub(crate) log: f64,
    /// The tokio runtime's threads (`tokio-rt-worker`, or
    /// `tokio-runtime-worker` in older tokio): its workers, which run the
    /// tasks and the flusher, and its blocking pool.
    pub(crate) workers: f64,
    /// Everything else (the main thread).
    pub(crate) other: f64,
}

impl CpuSplit {
    pub(crate) fn total(&self) -> f64 {
        self.log + self.workers + self.other
    }
}

impl Threads {
    pub(crate) fn now() -> Threads {
        let mut threads = HashMap::new();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return Threads(threads);
        };
        for entry in dir.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
            {
                threads.insert(tid, stat);
            }
        }
        Threads(threads)
    }

    /// The CPU time each kind of thread spent since `before` (a thread
    /// born since counts from zero).
    pub(crate) fn since(&self, before: &Threads) -> CpuSplit {
        let mut split = CpuSplit::default();
        for (tid, (name, cpu)) in &self.0 {
            let base = before.0.get(tid).map_or(0.0, |(_, c)| *c);
            let spent = (cpu - base).max(0.0);
            // `/proc` truncates names to 15 bytes.
            if name.starts_with("tiercache-write") {
                split.log += spent;
            } else if name.starts_with("tokio-r") {
                split.workers += spent;
            } else {
                split.other += spent;
            }
        }
        split
    }
}

/// A thread's name and user + system CPU seconds from its `stat` line.
fn parse_stat(text: &str) -> Option<(String, f64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    // After the name: state (field 3), …, utime (14), stime (15).
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) as f64 / TICKS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_stat_lines_parse() {
        let io = "rchar: 10\nwchar: 2048\nsyscr: 3\nsyscw: 7\nread_bytes: 0\n\
                  write_bytes: 4096\ncancelled_write_bytes: 0\n";
        let io = parse_io(io).unwrap();
        assert_eq!((io.wchar, io.syscw, io.write_bytes), (2048, 7, 4096));
        let stat = "4242 (tokio-rt-worker) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0";
        let (name, cpu) = parse_stat(stat).unwrap();
        assert_eq!(name, "tokio-rt-worker");
        assert!((cpu - 2.0).abs() < 1e-9);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn this_process_is_read() {
        if !std::path::Path::new("/proc/self/io").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let before = Io::now().unwrap();
        std::fs::write(dir.path().join("written"), [0u8; 4096]).unwrap();
        assert!(Io::now().unwrap().since(before).wchar >= 4096);
        let threads = Threads::now();
        assert!(!threads.0.is_empty());
        assert!(threads.since(&threads).total() == 0.0);
    }
}

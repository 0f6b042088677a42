//! `memory_per_entry`: how many bytes tiercache's memory engine and its
//! peers spend per `u64 → u64` entry.
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin memory_per_entry -- --json out.json
//! ```
//!
//! Each measurement runs in a child process of its own (this binary again,
//! with `--child CACHE`), so every cache starts from the same clean heap.
//! The child builds the cache with room for every entry plus a tenth, so
//! nothing is evicted, inserts the keys `0..entries`, settles any deferred
//! maintenance, and reports two deltas over that span divided by the
//! entries held:
//!
//! - heap: live bytes requested from the allocator, counted by a wrapping
//!   global allocator (`stats_alloc`, which keeps the unsafe
//!   `GlobalAlloc` impl out of this workspace). Exact and repeatable, but
//!   blind to the allocator's own per-block overhead;
//! - RSS: resident memory from `/proc/self/status` (Linux only), which
//!   includes that overhead and whatever the allocator keeps from freed
//!   blocks (an outgrown table, for instance).
//!
//! Every cache is measured `--runs` times (3 by default) and the median of
//! each figure is reported. Run with `--help` for the options.

use std::alloc::System;
use std::process::{Command, ExitCode};

use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tiercache::memory::MemoryCache;
use tiercache_benches::{CacheKind, ConcurrentCache, median};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const USAGE: &str = "\
usage: memory_per_entry [--entries N] [--runs N] [--json PATH]

Measures the heap and resident memory that tiercache's memory engine and
its peers use per u64 -> u64 entry, each in a fresh child process, and
prints a Markdown table on stdout.

options:
  --entries N   entries inserted (default 1000000)
  --runs N      measurements per cache; the median is reported (default 3)
  --json PATH   also write the results as JSON
  -h, --help    this text";

/// One child's figures, in bytes for the whole cache.
#[derive(Debug, Clone, Copy)]
struct Sample {
    heap_bytes: i64,
    rss_bytes: Option<i64>,
    entries_held: u64,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("memory_per_entry: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut entries: u64 = 1_000_000;
    let mut runs: usize = 3;
    let mut json_out = None;
    let mut child = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--entries" => entries = parse_number(&value("--entries")?)?,
            "--runs" => runs = parse_number(&value("--runs")?)?,
            "--json" => json_out = Some(value("--json")?),
            "--child" => {
                let id = value("--child")?;
                child = Some(CacheKind::from_id(&id).ok_or(format!("unknown cache `{id}`"))?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if entries == 0 || runs == 0 {
        return Err("--entries and --runs must be at least 1".into());
    }
    if let Some(kind) = child {
        let sample = measure(kind, entries);
        let rss = sample.rss_bytes.map_or("-".to_string(), |r| r.to_string());
        println!("{} {rss} {}", sample.heap_bytes, sample.entries_held);
        return Ok(());
    }

    let mut results = Vec::new();
    for kind in CacheKind::ALL {
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(spawn_child(kind, entries)?);
        }
        let held = samples.iter().map(|s| s.entries_held).min().unwrap_or(0);
        if held < entries {
            return Err(format!(
                "{kind} held {held} of {entries} entries: it evicted, so the figures would be wrong"
            ));
        }
        let heap = median(samples.iter().map(|s| s.heap_bytes as f64 / held as f64));
        let rss = samples
            .iter()
            .map(|s| s.rss_bytes.map(|r| r as f64 / held as f64))
            .collect::<Option<Vec<_>>>()
            .map(median);
        eprintln!(
            "memory_per_entry: {kind}: heap {heap:.1} B/entry, RSS {} B/entry",
            rss.map_or("–".to_string(), |r| format!("{r:.1}"))
        );
        results.push((kind, heap, rss, samples));
    }

    println!("| cache | heap bytes / entry | RSS bytes / entry |\n|---|---:|---:|");
    for (kind, heap, rss, _) in &results {
        let rss = rss.map_or("–".to_string(), |r| format!("{r:.1}"));
        println!("| {kind} | {heap:.1} | {rss} |");
    }

    if let Some(path) = json_out {
        let caches: serde_json::Map<_, _> = results
            .iter()
            .map(|(kind, heap, rss, samples)| {
                let value = json!({
                    "heap_bytes_per_entry": heap,
                    "rss_bytes_per_entry": rss,
                    "entries_held": samples.iter().map(|s| s.entries_held).min(),
                    "heap_bytes": samples.iter().map(|s| s.heap_bytes).collect::<Vec<_>>(),
                    "rss_bytes": samples.iter().map(|s| s.rss_bytes).collect::<Vec<_>>(),
                });
                (kind.id().to_string(), value)
            })
            .collect();
        let value = json!({
            "entries": entries,
            "capacity": capacity_for(entries),
            "runs": runs,
            "caches": caches,
        });
        let mut text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
        text.push('\n');
        if let Some(dir) = std::path::Path::new(&path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {path}: {e}"))?;
        eprintln!("memory_per_entry: wrote {path}");
    }
    Ok(())
}

fn parse_number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

/// Room for every entry plus a tenth: enough that no cache evicts when
/// its partitions or shards fill unevenly, little enough that caches which
/// size their tables from the capacity are not charged for much unused
/// room.
fn capacity_for(entries: u64) -> u64 {
    entries + entries / 10
}

/// Runs one measurement in a child process and reads its one line of
/// output: heap bytes, RSS bytes (or `-`) and entries held.
fn spawn_child(kind: CacheKind, entries: u64) -> Result<Sample, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let out = Command::new(exe)
        .args(["--child", kind.id(), "--entries", &entries.to_string()])
        .output()
        .map_err(|e| format!("cannot start the child for {kind}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the child for {kind} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let bad = || format!("the child for {kind} printed `{}`", text.trim());
    let [heap, rss, held] = fields[..] else {
        return Err(bad());
    };
    Ok(Sample {
        heap_bytes: heap.parse().map_err(|_| bad())?,
        rss_bytes: match rss {
            "-" => None,
            rss => Some(rss.parse().map_err(|_| bad())?),
        },
        entries_held: held.parse().map_err(|_| bad())?,
    })
}

fn measure(kind: CacheKind, entries: u64) -> Sample {
    measure_in(kind, entries, capacity_for(entries))
}

/// [`measure`] in a cache of `capacity` entries.
fn measure_in(kind: CacheKind, entries: u64, capacity: u64) -> Sample {
    match kind {
        CacheKind::Tiercache => fill::<MemoryCache<u64, u64>>(entries, capacity),
        CacheKind::Moka => fill::<moka::sync::Cache<u64, u64>>(entries, capacity),
        CacheKind::QuickCache => fill::<quick_cache::sync::Cache<u64, u64>>(entries, capacity),
        CacheKind::Foyer => fill::<foyer_memory::Cache<u64, u64>>(entries, capacity),
    }
}

/// Builds a cache of `C` holding `capacity` entries, fills it with
/// `entries` entries and measures what that added to the heap and to the
/// resident set.
fn fill<C: ConcurrentCache>(entries: u64, capacity: u64) -> Sample {
    let rss_before = resident_bytes();
    let heap_before = live_heap_bytes();
    let cache = C::with_capacity(capacity);
    for key in 0..entries {
        cache.insert(key, key);
    }
    cache.sync();
    let heap_after = live_heap_bytes();
    let rss_after = resident_bytes();
    let entries_held = cache.entry_count();
    drop(cache);
    Sample {
        heap_bytes: heap_after - heap_before,
        rss_bytes: rss_before.zip(rss_after).map(|(b, a)| a - b),
        entries_held,
    }
}

/// Bytes the program has allocated and not yet freed.
fn live_heap_bytes() -> i64 {
    let stats = GLOBAL.stats();
    // Reallocations are counted into both totals by their growth or
    // shrinkage, so the difference is the live size.
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

/// The resident set size, from `/proc/self/status`; `None` where there is
/// no procfs.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each of the engine's partitions holds an equal share of the
    /// capacity, and 20,000 keys spread over them as a random function
    /// would: the fullest of 16 partitions gets about four standard
    /// deviations (140 keys) above its mean in one fill of a few thousand,
    /// which 10% of headroom does not always cover. 30% does.
    #[test]
    fn a_small_fill_counts_every_entry() {
        let sample = measure_in(CacheKind::Tiercache, 20_000, 26_000);
        assert_eq!(sample.entries_held, 20_000);
        assert!(sample.heap_bytes > 16 * 20_000, "{sample:?}");
    }
}

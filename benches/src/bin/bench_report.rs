//! `bench_report`: turns the results of the `throughput` criterion bench
//! and of `memory_per_entry` into `docs/benchmarks/throughput.md`.
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin bench_report -- \
//!     --criterion target/criterion --memory target/memory-per-entry.json \
//!     --out docs/benchmarks/throughput.md
//! ```
//!
//! It reads each benchmark's `new/benchmark.json` (group, function id and
//! throughput) and `new/estimates.json` (the median time per iteration)
//! under the criterion directory, and only the ids the `throughput` bench
//! writes, so results of other benches there are ignored. `cargo xtask
//! bench throughput` runs it after the bench; run with `--help` for the
//! options.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use tiercache_benches::{CacheKind, Machine, locked_versions, thousands, write_file};

const USAGE: &str = "\
usage: bench_report --criterion DIR --out PATH [options]

Reads the results of the `throughput` criterion bench under DIR (criterion's
output directory, e.g. target/criterion) and, if given, the JSON of
`memory_per_entry`, and writes a Markdown report.

options:
  --criterion DIR     criterion's output directory (required)
  --memory PATH       the JSON `memory_per_entry --json` wrote
  --out PATH          the Markdown report to write (required)
  --json PATH         also write the figures as JSON
  --elapsed SECONDS   how long the whole run took, for the report
  -h, --help          this text";

/// The workloads of the `throughput` bench, in report order.
const WORKLOADS: [&str; 3] = ["get", "insert", "get_or_insert"];

/// The parsed command line.
#[derive(Debug, Default)]
struct Args {
    criterion: Option<PathBuf>,
    memory: Option<PathBuf>,
    out: Option<PathBuf>,
    json: Option<PathBuf>,
    elapsed: Option<f64>,
}

/// One benchmark's median, as throughput.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Millions of operations per second, all threads together.
    mops: f64,
    /// The same from the ends of criterion's 95% confidence interval on
    /// the median, lowest first.
    mops_interval: (f64, f64),
}

/// `(workload, threads) → cache → result`.
type Results = BTreeMap<(usize, usize), BTreeMap<CacheKind, Measured>>;

/// One cache's memory figures, bytes per entry.
#[derive(Debug, Clone, Copy)]
struct Memory {
    heap: f64,
    rss: Option<f64>,
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)).and_then(|args| match args {
        Some(args) => run(&args),
        None => {
            println!("{USAGE}");
            Ok(())
        }
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench_report: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--criterion" => parsed.criterion = Some(value("--criterion")?.into()),
            "--memory" => parsed.memory = Some(value("--memory")?.into()),
            "--out" => parsed.out = Some(value("--out")?.into()),
            "--json" => parsed.json = Some(value("--json")?.into()),
            "--elapsed" => {
                let text = value("--elapsed")?;
                let seconds = text
                    .parse()
                    .map_err(|_| format!("--elapsed: `{text}` is not a number"))?;
                parsed.elapsed = Some(seconds);
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if parsed.criterion.is_none() || parsed.out.is_none() {
        return Err(format!("--criterion and --out are required\n\n{USAGE}"));
    }
    Ok(Some(parsed))
}

fn run(args: &Args) -> Result<(), String> {
    let criterion = args.criterion.as_deref().expect("checked by parse");
    let results = read_criterion(criterion)?;
    if results.is_empty() {
        return Err(format!(
            "no results of the throughput bench under {}: run `cargo bench -p tiercache-benches --bench throughput` first",
            criterion.display()
        ));
    }
    let memory = args.memory.as_deref().map(read_memory).transpose()?;
    let machine = Machine::collect(locked_versions(&[
        "moka",
        "quick_cache",
        "foyer-memory",
        "criterion",
    ]));

    let out = args.out.as_deref().expect("checked by parse");
    let doc = document(&results, memory.as_ref(), &machine, args.elapsed);
    write_file(out, &doc)?;
    eprintln!("bench_report: wrote {}", out.display());
    if let Some(path) = &args.json {
        write_file(path, &json_report(&results, memory.as_ref(), &machine))?;
        eprintln!("bench_report: wrote {}", path.display());
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// Every `throughput/<workload>/<threads>t/<cache>` result under `dir`.
fn read_criterion(dir: &Path) -> Result<Results, String> {
    let mut results = Results::new();
    let groups =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for group in groups.flatten() {
        let Ok(benches) = std::fs::read_dir(group.path()) else {
            continue;
        };
        for bench in benches.flatten() {
            let new = bench.path().join("new");
            let Ok(meta) = read_json(&new.join("benchmark.json")) else {
                continue;
            };
            let Some((workload, threads, kind)) = identify(&meta) else {
                continue;
            };
            let elements = meta["throughput"]["Elements"]
                .as_f64()
                .ok_or_else(|| format!("{}: no element throughput", new.display()))?;
            let estimates = read_json(&new.join("estimates.json"))?;
            let median = &estimates["median"];
            let nanos = |v: &Value| {
                v.as_f64()
                    .filter(|n| *n > 0.0)
                    .ok_or_else(|| format!("{}: no median estimate", new.display()))
            };
            let mops = |ns: f64| elements / ns * 1e3;
            let measured = Measured {
                mops: mops(nanos(&median["point_estimate"])?),
                mops_interval: (
                    mops(nanos(&median["confidence_interval"]["upper_bound"])?),
                    mops(nanos(&median["confidence_interval"]["lower_bound"])?),
                ),
            };
            results
                .entry((workload, threads))
                .or_default()
                .insert(kind, measured);
        }
    }
    Ok(results)
}

/// The workload index, thread count and cache of a criterion
/// `benchmark.json`, if the `throughput` bench wrote it.
fn identify(meta: &Value) -> Option<(usize, usize, CacheKind)> {
    let group = meta["group_id"].as_str()?;
    let kind = CacheKind::from_id(meta["function_id"].as_str()?)?;
    let mut parts = group.split('/');
    if parts.next()? != "throughput" {
        return None;
    }
    let workload = parts.next()?;
    let workload = WORKLOADS.iter().position(|w| *w == workload)?;
    let threads = parts.next()?.strip_suffix('t')?.parse().ok()?;
    parts.next().is_none().then_some((workload, threads, kind))
}

fn read_memory(path: &Path) -> Result<(u64, BTreeMap<CacheKind, Memory>), String> {
    let value = read_json(path)?;
    let entries = value["entries"]
        .as_u64()
        .ok_or_else(|| format!("{}: no entry count", path.display()))?;
    let caches = value["caches"]
        .as_object()
        .ok_or_else(|| format!("{}: no caches", path.display()))?;
    let mut memory = BTreeMap::new();
    for (id, figures) in caches {
        let Some(kind) = CacheKind::from_id(id) else {
            continue;
        };
        let heap = figures["heap_bytes_per_entry"]
            .as_f64()
            .ok_or_else(|| format!("{}: no heap figure for {id}", path.display()))?;
        let rss = figures["rss_bytes_per_entry"].as_f64();
        memory.insert(kind, Memory { heap, rss });
    }
    Ok((entries, memory))
}

/// `tiercache / peer` as `1.12×`.
fn ratio(tiercache: f64, peer: f64) -> String {
    format!("{:.2}×", tiercache / peer)
}

fn document(
    results: &Results,
    memory: Option<&(u64, BTreeMap<CacheKind, Memory>)>,
    machine: &Machine,
    elapsed: Option<f64>,
) -> String {
    let mut out = String::new();
    out.push_str("# Throughput and memory per entry\n\n");
    let _ = write!(
        out,
        "Generated by `cargo xtask bench throughput` on {} UTC at commit `{}`",
        machine.date, machine.commit
    );
    if let Some(seconds) = elapsed {
        let _ = write!(out, ", in {seconds:.0} s");
    }
    out.push_str(". Do not edit by hand: run it again.\n\n");
    let _ = writeln!(
        out,
        "Machine: {} cores (`std::thread::available_parallelism`){}, Linux kernel `{}`.\n",
        machine.cores,
        machine
            .cpu
            .as_deref()
            .map_or(String::new(), |cpu| format!(", {cpu}")),
        machine.kernel
    );

    method(&mut out, machine);

    out.push_str("## Throughput\n\n");
    out.push_str(
        "Millions of operations per second, all threads together (the median of the samples; \
         higher is better). The last column is tiercache's throughput divided by each peer's: \
         above 1× tiercache is faster.\n\n",
    );
    out.push_str("| workload | threads |");
    for kind in CacheKind::ALL {
        let _ = write!(out, " {} |", kind.label());
    }
    out.push_str(" tiercache vs peers |\n|---|---:|");
    for _ in CacheKind::ALL {
        out.push_str("---:|");
    }
    out.push_str("---|\n");
    for (&(workload, threads), row) in results {
        let _ = write!(out, "| {} | {threads} |", WORKLOADS[workload]);
        for kind in CacheKind::ALL {
            match row.get(&kind) {
                Some(m) => {
                    let _ = write!(out, " {:.2} |", m.mops);
                }
                None => out.push_str(" – |"),
            }
        }
        let tiercache = row.get(&CacheKind::Tiercache).map(|m| m.mops);
        let ratios: Vec<String> = CacheKind::ALL[1..]
            .iter()
            .filter_map(|kind| {
                Some(format!(
                    "{} {}",
                    ratio(tiercache?, row.get(kind)?.mops),
                    kind.label()
                ))
            })
            .collect();
        let _ = writeln!(
            out,
            " {} |",
            if ratios.is_empty() {
                "–".to_string()
            } else {
                ratios.join(", ")
            }
        );
    }
    out.push('\n');

    out.push_str(
        "The 95% confidence interval of each median, Mops/s (criterion's bootstrap; wide \
         intervals mean the machine was busy):\n\n| workload | threads |",
    );
    for kind in CacheKind::ALL {
        let _ = write!(out, " {} |", kind.label());
    }
    out.push_str("\n|---|---:|");
    for _ in CacheKind::ALL {
        out.push_str("---:|");
    }
    out.push('\n');
    for (&(workload, threads), row) in results {
        let _ = write!(out, "| {} | {threads} |", WORKLOADS[workload]);
        for kind in CacheKind::ALL {
            match row.get(&kind) {
                Some(m) => {
                    let _ = write!(out, " {:.2}–{:.2} |", m.mops_interval.0, m.mops_interval.1);
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out.push('\n');

    if let Some((entries, memory)) = memory {
        memory_table(&mut out, *entries, memory);
    }
    out
}

fn method(out: &mut String, machine: &Machine) {
    let _ = write!(
        out,
        "## Method

### Throughput

The `throughput` criterion bench of `benches/` (`benches/benches/throughput.rs`; criterion
{criterion}) drives every cache through the same code, generic over the cache type:

- **Caches**, each built by its own defaults with a capacity of 100,000 entries:
  tiercache's engine (`tiercache::memory::MemoryCache::<u64, u64>::builder().max_capacity(100_000).build()`),
  moka {moka} (`moka::sync::Cache::new(100_000)`), quick_cache {qc}
  (`quick_cache::sync::Cache::new(100_000)`) and foyer-memory {foyer}
  (`CacheBuilder::new(100_000).build()`: its default LRU eviction and a weight of 1 per entry).
- **Keys**: one pre-generated stream of 2,097,152 keys drawn from Zipf(1.0) over 1..=1,000,000
  (fixed seed), so every cache sees the same sequence.
- **Warm-up of the cache**: before its first sample each cache is filled by replaying the whole
  stream as \"get, then insert on a miss\", then moka runs its pending tasks. Every workload
  starts from that steady state, with the cache full.
- **Workloads**: `get` (a lookup; misses included), `insert` (`insert(k, k)` into the full
  cache: updates of resident keys and insertions that evict), and `get_or_insert` (a lookup,
  and an insert on a miss).
- **Threads**: 1 and 2 threads share one cache. Each criterion iteration is 10,000 operations
  on every thread, with `iter_custom`: the threads start together at a barrier, each reads
  the stream from its own offset (thread *t* of *n* starts *t*/*n* of the way along, and every
  sample moves on), and the time is the wall time until the last thread finishes. Throughput
  = total operations of all threads / the median time per iteration.
- **Criterion settings** (from `cargo xtask bench throughput`): 1 s warm-up, 3 s measurement,
  10 samples. The figures are medians; nothing here is a pass/fail threshold.
- The machine is shared with other work, so the figures are noisy: compare ratios within a
  run, not absolute figures across runs.

### Memory per entry

The `memory_per_entry` binary of `benches/` inserts 1,000,000 entries (`u64` keys
`0..1,000,000`, value = key) into each cache, built as above but with a capacity of 1,100,000
so nothing is evicted (the run fails if a cache holds fewer entries), then runs moka's pending
tasks. Each measurement runs in a fresh child process, three times per cache; the table gives
the medians of two deltas over building and filling the cache, divided by the entries held:

- **heap**: live bytes requested from the allocator, counted by a wrapping global allocator
  (`stats_alloc`). Exact and repeatable, but it does not see the allocator's own overhead per
  block, which matters for caches that allocate once per entry.
- **RSS**: the growth of the resident set (`VmRSS` in `/proc/self/status`), which includes
  that overhead and memory the allocator kept from freed blocks (an outgrown table).

A `u64 → u64` entry carries 16 bytes of payload; everything above that is the cache's own
bookkeeping (hash table, policy queues, frequency sketch, per-entry headers).

",
        criterion = machine.version("criterion"),
        moka = machine.version("moka"),
        qc = machine.version("quick_cache"),
        foyer = machine.version("foyer-memory"),
    );
}

fn memory_table(out: &mut String, entries: u64, memory: &BTreeMap<CacheKind, Memory>) {
    let _ = writeln!(
        out,
        "## Memory per entry\n\nBytes per entry with {} `u64 → u64` entries (median of the \
         runs; lower is better). The ratios are tiercache's figure divided by the cache's: below \
         1× tiercache uses less.\n",
        thousands(entries)
    );
    out.push_str(
        "| cache | heap bytes / entry | tiercache ÷ cache | RSS bytes / entry | tiercache ÷ cache |\n\
         |---|---:|---:|---:|---:|\n",
    );
    let tiercache = memory.get(&CacheKind::Tiercache);
    for kind in CacheKind::ALL {
        let Some(m) = memory.get(&kind) else {
            continue;
        };
        let heap_ratio = tiercache.map_or("–".to_string(), |t| ratio(t.heap, m.heap));
        let rss = m.rss.map_or("–".to_string(), |r| format!("{r:.1}"));
        let rss_ratio = tiercache
            .and_then(|t| Some(ratio(t.rss?, m.rss?)))
            .unwrap_or_else(|| "–".to_string());
        let _ = writeln!(
            out,
            "| {} | {:.1} | {heap_ratio} | {rss} | {rss_ratio} |",
            kind.label(),
            m.heap
        );
    }
    out.push('\n');
}

fn json_report(
    results: &Results,
    memory: Option<&(u64, BTreeMap<CacheKind, Memory>)>,
    machine: &Machine,
) -> String {
    let throughput: Vec<Value> = results
        .iter()
        .map(|(&(workload, threads), row)| {
            let caches: serde_json::Map<_, _> = row
                .iter()
                .map(|(kind, m)| {
                    let value = json!({
                        "mops": m.mops,
                        "mops_ci95": [m.mops_interval.0, m.mops_interval.1],
                    });
                    (kind.id().to_string(), value)
                })
                .collect();
            json!({ "workload": WORKLOADS[workload], "threads": threads, "caches": caches })
        })
        .collect();
    let memory = memory.map(|(entries, memory)| {
        let caches: serde_json::Map<_, _> = memory
            .iter()
            .map(|(kind, m)| {
                let value = json!({ "heap_bytes_per_entry": m.heap, "rss_bytes_per_entry": m.rss });
                (kind.id().to_string(), value)
            })
            .collect();
        json!({ "entries": entries, "caches": caches })
    });
    let value = json!({
        "generated_utc": machine.date,
        "commit": machine.commit,
        "cores": machine.cores,
        "kernel": machine.kernel,
        "cpu": machine.cpu,
        "versions": machine.versions.iter().map(|(n, v)| (n.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "throughput": throughput,
        "memory_per_entry": memory,
    });
    let mut text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throughput_ids_are_read() {
        let meta = |group: &str, id: &str| json!({ "group_id": group, "function_id": id });
        assert_eq!(
            identify(&meta("throughput/get_or_insert/2t", "quick_cache")),
            Some((2, 2, CacheKind::QuickCache))
        );
        assert_eq!(identify(&meta("throughput/get/1t", "arc")), None);
        assert_eq!(identify(&meta("cache", "get_or_insert")), None);
        assert_eq!(identify(&meta("throughput/scan/1t", "moka")), None);
        assert_eq!(identify(&meta("throughput/get/1t/x", "moka")), None);
    }

    #[test]
    fn report_has_a_row_per_workload_and_ratios() {
        let mut results = Results::new();
        let m = |mops| Measured {
            mops,
            mops_interval: (mops * 0.9, mops * 1.1),
        };
        let row = BTreeMap::from([(CacheKind::Tiercache, m(20.0)), (CacheKind::Moka, m(10.0))]);
        results.insert((0, 1), row.clone());
        results.insert((2, 2), row);
        let memory = BTreeMap::from([
            (
                CacheKind::Tiercache,
                Memory {
                    heap: 50.0,
                    rss: Some(60.0),
                },
            ),
            (
                CacheKind::Moka,
                Memory {
                    heap: 100.0,
                    rss: None,
                },
            ),
        ]);
        let machine = Machine {
            cores: 2,
            kernel: "6.0".into(),
            cpu: None,
            date: "2025-01-01 00:00".into(),
            commit: "abc1234".into(),
            versions: Vec::new(),
        };
        let doc = document(&results, Some(&(1_000, memory)), &machine, Some(12.0));
        assert!(
            doc.contains("| get | 1 | 20.00 | 10.00 | – | – | 2.00× moka |"),
            "{doc}"
        );
        assert!(doc.contains("| get_or_insert | 2 |"), "{doc}");
        assert!(doc.contains("| moka | 100.0 | 0.50× | – | – |"), "{doc}");
        assert!(doc.contains("2 cores"), "{doc}");
        let json: Value = serde_json::from_str(&json_report(&results, None, &machine)).unwrap();
        assert_eq!(json["throughput"][0]["caches"]["moka"]["mops"], 10.0);
    }
}

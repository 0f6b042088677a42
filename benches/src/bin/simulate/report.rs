//! The simulator's outputs: the Markdown table, the JSON dump and the
//! Markdown report `cargo xtask bench hit-ratio` writes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;
use tiercache_benches::{PolicyKind, git_commit, locked_versions, thousands, utc_now};

use crate::reference::reference;
use crate::{Row, TraceRun};

/// When, where and with what a run was made.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    /// `YYYY-MM-DD HH:MM` UTC.
    pub(crate) date: String,
    /// Short commit hash, with "+ uncommitted changes" when the tree is
    /// dirty; `None` outside a git checkout.
    pub(crate) commit: Option<String>,
    pub(crate) wall_seconds: f64,
    pub(crate) threads: usize,
    /// Replays per table row of the policies with random seeds.
    pub(crate) runs: usize,
    /// `(crate, version)` of the peers, from `Cargo.lock`.
    pub(crate) versions: Vec<(&'static str, String)>,
}

impl Meta {
    pub(crate) fn collect(wall_seconds: f64, threads: usize, runs: usize) -> Self {
        Self {
            date: utc_now(),
            commit: git_commit(),
            wall_seconds,
            threads,
            runs,
            versions: locked_versions(&["moka", "quick_cache", "foyer-memory"]),
        }
    }

    fn version(&self, name: &str) -> &str {
        self.versions
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("?", |(_, v)| v.as_str())
    }
}

/// The results as a Markdown table: the table rows only (plot-only
/// capacities are left out), hit ratios in %.
pub(crate) fn table(runs: &[TraceRun], policies: &[PolicyKind]) -> String {
    let mut out = String::new();
    let peers = policies.iter().any(|p| p.is_peer());
    out.push_str("| trace | capacity |");
    for p in policies {
        let _ = write!(out, " {} |", p.label());
    }
    if peers {
        out.push_str(" best peer |");
    }
    out.push_str("\n|---|---:|");
    for _ in policies {
        out.push_str("---:|");
    }
    if peers {
        out.push_str("---|");
    }
    out.push('\n');
    for run in runs {
        for row in run.rows.iter().filter(|r| r.in_table) {
            let _ = write!(out, "| {} | {} |", run.name, thousands(row.capacity));
            for &p in policies {
                let _ = write!(out, " {} |", percent(row.ratio(p, run.requests)));
            }
            if peers {
                match row.best_peer(run.requests) {
                    Some((kind, ratio)) => {
                        let _ = write!(out, " {ratio:.2} ({}) |", kind.label());
                    }
                    None => out.push_str(" – |"),
                }
            }
            out.push('\n');
        }
    }
    if runs.iter().map(|r| table_rows(r).count()).sum::<usize>() > 1 {
        let _ = write!(out, "| **mean** | |");
        for &p in policies {
            let _ = write!(
                out,
                " {} |",
                percent(mean(runs, |row, req| row.ratio(p, req)))
            );
        }
        if peers {
            let best = mean(runs, |row, req| row.best_peer(req).map(|b| b.1));
            let _ = write!(out, " {} |", percent(best));
        }
        out.push('\n');
    }
    out
}

/// Every row, plot-only ones included, as JSON for tooling.
pub(crate) fn json(runs: &[TraceRun], policies: &[PolicyKind], meta: &Meta) -> String {
    let traces: Vec<_> = runs
        .iter()
        .map(|run| {
            let rows: Vec<_> = run
                .rows
                .iter()
                .map(|row| {
                    let results: serde_json::Map<_, _> = row
                        .outcomes
                        .iter()
                        .map(|(kind, o)| {
                            let value = json!({
                                "hits": o.hits,
                                "hit_ratio": o.hits as f64 / run.requests.max(1) as f64,
                                "runs": o.runs,
                                "hits_min": o.min_hits,
                                "hits_max": o.max_hits,
                                "seconds": o.seconds,
                            });
                            (kind.id().to_string(), value)
                        })
                        .collect();
                    let reference = reference(&run.file, row.capacity).map(|r| {
                        let mut m: serde_json::Map<_, _> = PolicyKind::ALL
                            .iter()
                            .filter_map(|&k| Some((k.id().to_string(), json!(r.value(k)? / 100.0))))
                            .collect();
                        m.insert("best_peer".into(), json!(r.best_peer / 100.0));
                        m
                    });
                    json!({
                        "capacity": row.capacity,
                        "in_table": row.in_table,
                        "results": results,
                        "best_peer": row.best_peer(run.requests).map(|(k, r)| json!({
                            "policy": k.id(),
                            "hit_ratio": r / 100.0,
                        })),
                        "best_at_exact_capacity": best_at_exact_capacity(row, run.requests)
                            .map(|(k, r)| json!({
                                "policy": k.id(),
                                "hit_ratio": r / 100.0,
                            })),
                        "reference": reference,
                    })
                })
                .collect();
            json!({
                "name": run.name,
                "file": run.file,
                "requests": run.requests,
                "distinct_keys": run.distinct_keys,
                "load_seconds": run.load_seconds,
                "rows": rows,
            })
        })
        .collect();
    let value = json!({
        "generated_utc": meta.date,
        "commit": meta.commit,
        "wall_seconds": meta.wall_seconds,
        "threads": meta.threads,
        "policies": policies.iter().map(|p| p.id()).collect::<Vec<_>>(),
        "versions": meta.versions.iter().map(|(n, v)| (n.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "traces": traces,
    });
    let mut text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
    text.push('\n');
    text
}

/// The Markdown report: method, results, comparison with the reference
/// figures, warnings and plots.
pub(crate) fn document(
    runs: &[TraceRun],
    policies: &[PolicyKind],
    meta: &Meta,
    warnings: &[String],
    plots: &[(String, PathBuf)],
    path: &Path,
) -> String {
    let mut out = String::new();
    let commit = meta.commit.as_deref().unwrap_or("unknown");
    let _ = writeln!(out, "# Hit ratio on real traces\n");
    let _ = writeln!(
        out,
        "Generated by `cargo xtask bench hit-ratio` on {} UTC at commit `{commit}`, \
         in {:.0} s on {} threads. Do not edit by hand: run it again.\n",
        meta.date, meta.wall_seconds, meta.threads
    );

    out.push_str("## Method\n\n");
    out.push_str(
        "The `simulate` binary of `benches/` (`cargo run --release -p tiercache-benches \
         --bin simulate -- --help`) replays the public traces of `../shared/traces` (read \
         in place, never copied into the project; see its README for their origin):\n\n",
    );
    out.push_str("| trace | requests | distinct keys |\n|---|---:|---:|\n");
    for run in runs {
        let _ = writeln!(
            out,
            "| {} (`{}`) | {} | {} |",
            run.name,
            run.file,
            thousands(run.requests),
            thousands(run.distinct_keys)
        );
    }
    let _ = write!(
        out,
        "
- Every request is a `get`; on a miss the key is `insert`ed. The first access to a key is a
  miss, capacity is in entries, and hit ratio = hits / requests, in %.
- tiercache, moka (both variants) and quick_cache seed their hashing at random, so their hit
  ratios move from run to run; each of them replays every table row {runs} times with fresh
  seeds and the tables give the median run (the comparison below gives tiercache's range too).
  LRU, OPT, ARC, LIRS and foyer replay the same way every time and run once, as do the plots'
  extra capacities.
- **tiercache**: `tiercache::memory::MemoryCache::<u64, u64>::builder().max_capacity(capacity).build()`,
  the engine's defaults.
- **tiercache (exact)**: the same engine built with the hidden `.exact_reads(true)`, which applies
  each hit's policy bookkeeping at once under the partition's exclusive lock instead of deferring
  it to the next eviction scan; it is not a configuration to deploy (hits serialise) but shows
  what the deferred bookkeeping costs in hit ratio.
- **LRU**: an exact LRU (`tiercache_benches::Lru`).
- **OPT**: Belady's optimal policy, which knows the future: on a miss it evicts the resident
  key needed farthest ahead, and it does not admit the missed key when every resident key is
  needed sooner (the bound for policies with an admission filter, and never below textbook
  demand-paging OPT). No policy can beat it: a result above it is a measuring error, and the
  simulator warns about it. The traces README's OPT column is demand-paging OPT, so this one
  may read a few hundredths of a point above it.
- **Peers**, each as built by its own defaults, one thread per replay: moka {moka}
  (`moka::sync::Cache::new(capacity)`), quick_cache {qc}
  (`quick_cache::sync::Cache::new(capacity)`), foyer-memory {foyer}
  (`CacheBuilder::new(capacity)` with `LfuConfig::default()`, W-TinyLFU, or
  `S3FifoConfig::default()`; its default weighter counts every entry as 1).
- **Reference policies at exact capacity**, not counted as peers: **ARC** (Megiddo & Modha,
  FAST '03; `tiercache_benches::Arc`), with T1, T2, the ghost lists B1 and B2 and an adaptive
  real-valued target p moved by max(1, |B2|/|B1|) and max(1, |B1|/|B2|); **LIRS** (Jiang &
  Zhang, SIGMETRICS '02; `tiercache_benches::Lirs`), with the stack S and the queue Q of
  resident HIR entries, 1 % of the capacity (at least one entry) for resident HIR entries, at
  most 3 × capacity non-resident HIR entries kept in the stack (beyond that the one lowest in
  the stack is dropped), and the stack pruned whenever its bottom LIR entry moves; **moka
  (synced)**, `moka::sync::Cache::new(capacity)` as above with `run_pending_tasks()` after
  every insert, so that it never holds more than its capacity when the next request comes
  (by default moka defers eviction and may hold well above its capacity for a while).
- **best peer**: the best of LRU and the peers in the row (neither OPT, tiercache nor the
  reference policies).
- **best at exact capacity**: the best in the row of every policy but OPT, tiercache (both
  variants) and plain moka, which holds more than its capacity between maintenance runs.
- Plots add capacities log-spaced between each trace's table rows.

",
        runs = meta.runs,
        moka = meta.version("moka"),
        qc = meta.version("quick_cache"),
        foyer = meta.version("foyer-memory"),
    );

    out.push_str("## Results\n\nHit ratio, %.\n\n");
    out.push_str(&table(runs, policies));
    out.push('\n');
    if !warnings.is_empty() {
        for warning in warnings {
            let _ = writeln!(out, "> **warning:** {warning}\n");
        }
    }

    comparison(&mut out, runs, policies);

    if !plots.is_empty() {
        out.push_str("## Plots\n\nHit ratio (%) against capacity (entries, log scale).\n\n");
        let base = path.parent().map(absolute);
        for (name, plot) in plots {
            let plot = absolute(plot);
            let link = base
                .as_deref()
                .and_then(|b| plot.strip_prefix(b).ok())
                .unwrap_or(&plot);
            let _ = writeln!(out, "![{name}]({})\n", link.display());
        }
    }
    out
}

/// Measured against the reference figures of the traces README, for the
/// rows that have them.
fn comparison(out: &mut String, runs: &[TraceRun], policies: &[PolicyKind]) {
    let rows: Vec<(&TraceRun, &Row, _)> = runs
        .iter()
        .flat_map(|run| table_rows(run).map(move |row| (run, row)))
        .filter_map(|(run, row)| Some((run, row, reference(&run.file, row.capacity)?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("## Against the reference figures\n\n");
    out.push_str(
        "The traces README gives reference figures measured on the same files. The first \
         table sets tiercache, the best peer and the best policy at exact capacity measured \
         here beside the README's \"best of LRU and peers\"; the second gives each measured column minus its reference figure \
         (percentage points), which shows how closely this run reproduces the reference. LRU \
         and foyer are deterministic and should match to the hundredth. moka and quick_cache \
         seed their hashers at random, so they move by a few tenths from run to run; \
         quick_cache also splits its capacity over shards chosen by hash, and where the working \
         set barely fits (lirs_loop at 1,000 entries: 1,011 keys in a loop) an unlucky seed \
         overfills a shard and costs it several points.\n\n",
    );
    out.push_str(
        "| trace | capacity | tiercache | tiercache, lowest–highest run | best peer (measured) | best at exact capacity (measured) | best of LRU and peers (reference) | tiercache − reference |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut sums = [0.0; 4];
    let mut counts = [0usize; 4];
    for (run, row, reference) in &rows {
        let tc = row.ratio(PolicyKind::Tiercache, run.requests);
        let best = row.best_peer(run.requests).map(|b| b.1);
        let exact = best_at_exact_capacity(row, run.requests);
        let delta = tc.map(|t| t - reference.best_peer);
        for (i, v) in [tc, best, exact.map(|e| e.1), delta]
            .into_iter()
            .enumerate()
        {
            if let Some(v) = v {
                sums[i] += v;
                counts[i] += 1;
            }
        }
        let range = row.outcomes.get(&PolicyKind::Tiercache).map_or_else(
            || "–".to_string(),
            |o| {
                let of = |hits: u64| 100.0 * hits as f64 / run.requests.max(1) as f64;
                format!(
                    "{:.2}–{:.2} ({} runs)",
                    of(o.min_hits),
                    of(o.max_hits),
                    o.runs
                )
            },
        );
        let exact = exact.map_or_else(
            || "–".to_string(),
            |(kind, ratio)| format!("{ratio:.2} ({})", kind.label()),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {range} | {} | {exact} | {:.2} | {} |",
            run.name,
            thousands(row.capacity),
            percent(tc),
            percent(best),
            reference.best_peer,
            signed(delta)
        );
    }
    let avg = |i: usize| (counts[i] > 0).then(|| sums[i] / counts[i] as f64);
    let ref_mean = rows.iter().map(|r| r.2.best_peer).sum::<f64>() / rows.len() as f64;
    let _ = writeln!(
        out,
        "| **mean** | | {} | | {} | {} | {ref_mean:.2} | {} |\n",
        percent(avg(0)),
        percent(avg(1)),
        percent(avg(2)),
        signed(avg(3))
    );

    // Only the columns with reference figures: not tiercache, ARC, LIRS nor
    // moka (synced).
    let compared: Vec<PolicyKind> = policies
        .iter()
        .copied()
        .filter(|&p| rows.iter().any(|(_, _, r)| r.value(p).is_some()))
        .collect();
    if compared.is_empty() {
        return;
    }
    out.push_str("Measured minus reference, percentage points:\n\n| trace | capacity |");
    for p in &compared {
        let _ = write!(out, " {} |", p.label());
    }
    out.push_str("\n|---|---:|");
    for _ in &compared {
        out.push_str("---:|");
    }
    out.push('\n');
    for (run, row, reference) in &rows {
        let _ = write!(out, "| {} | {} |", run.name, thousands(row.capacity));
        for &p in &compared {
            let delta = row
                .ratio(p, run.requests)
                .zip(reference.value(p))
                .map(|(m, r)| m - r);
            let _ = write!(out, " {} |", signed(delta));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// Whether `kind` counts towards "best at exact capacity": every policy
/// but the OPT bound, tiercache itself (either variant) and plain moka,
/// which defers its evictions and holds more than its capacity between
/// maintenance runs.
fn at_exact_capacity(kind: PolicyKind) -> bool {
    !matches!(
        kind,
        PolicyKind::Opt | PolicyKind::Tiercache | PolicyKind::TiercacheExact | PolicyKind::Moka
    )
}

/// The best hit ratio in % in `row` among the policies at exact capacity
/// that ran (see [`at_exact_capacity`]).
fn best_at_exact_capacity(row: &Row, requests: u64) -> Option<(PolicyKind, f64)> {
    row.outcomes
        .keys()
        .copied()
        .filter(|&k| at_exact_capacity(k))
        .filter_map(|k| Some((k, row.ratio(k, requests)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn table_rows(run: &TraceRun) -> impl Iterator<Item = &Row> {
    run.rows.iter().filter(|r| r.in_table)
}

/// The mean of `f` over every table row where it has a value.
fn mean(runs: &[TraceRun], f: impl Fn(&Row, u64) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = runs
        .iter()
        .flat_map(|run| table_rows(run).filter_map(|row| f(row, run.requests)))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), |v| format!("{v:.2}"))
}

fn signed(value: Option<f64>) -> String {
    value.map_or_else(
        || "–".to_string(),
        // Round first so a tiny negative difference prints as 0.00, not -0.00.
        |v| match (v * 100.0).round() / 100.0 {
            0.0 => "0.00".to_string(),
            v => format!("{v:+.2}"),
        },
    )
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path)
        .ok()
        .and_then(|p| {
            // Canonicalize what exists so `a/../b` and symlinks compare equal.
            p.canonicalize().ok().or(Some(p))
        })
        .unwrap_or_else(|| path.to_path_buf())
}

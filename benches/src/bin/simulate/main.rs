//! `simulate`: replays real access traces through tiercache's memory engine,
//! an exact LRU, Belady's OPT and the peer crates, and prints their hit
//! ratios as a Markdown table.
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin simulate -- \
//!     --trace ../shared/traces/OLTP.lis.gz --capacity 250,1000,2000
//! cargo run --release -p tiercache-benches --bin simulate -- --all \
//!     --markdown-out docs/benchmarks/hit-ratio.md --plot-dir docs/benchmarks/
//! ```
//!
//! Every policy sees every request as "get, then insert on a miss"; the
//! first access to a key is a miss, capacity is in entries, and the hit
//! ratio is hits / requests. Run `simulate --help` for the options.

mod args;
mod plot;
mod reference;
mod report;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tiercache_benches::{PolicyKind, next_uses, read_trace, replay, write_file};

use crate::args::Args;

/// Replays of traces at least this long report their progress every tenth
/// of the trace, once they have run for [`QUIET_SECONDS`].
const LONG_TRACE: usize = 1_000_000;
/// Replays quicker than this only report their result.
const QUIET_SECONDS: f64 = 1.0;

/// One policy's replays at one capacity: the median hits, their range
/// over the runs, and the mean wall time of a replay in seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub(crate) hits: u64,
    pub(crate) min_hits: u64,
    pub(crate) max_hits: u64,
    pub(crate) runs: usize,
    pub(crate) seconds: f64,
}

impl Outcome {
    /// Combines the replays of one row (at least one); an even number of
    /// runs takes the lower middle, so the median is a hit count measured.
    fn of(mut replays: Vec<(u64, f64)>) -> Outcome {
        replays.sort_unstable_by_key(|r| r.0);
        let runs = replays.len();
        Outcome {
            hits: replays[(runs - 1) / 2].0,
            min_hits: replays[0].0,
            max_hits: replays[runs - 1].0,
            runs,
            seconds: replays.iter().map(|r| r.1).sum::<f64>() / runs as f64,
        }
    }
}

/// Every policy's result at one capacity of one trace.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) capacity: u64,
    /// Whether the row belongs in the table (asked for with `--capacity`,
    /// or a reference row under `--all`) rather than only in the plots.
    pub(crate) in_table: bool,
    pub(crate) outcomes: BTreeMap<PolicyKind, Outcome>,
}

/// All the rows of one trace.
#[derive(Debug, Clone)]
pub(crate) struct TraceRun {
    /// The file name without its extensions, e.g. `OLTP`.
    pub(crate) name: String,
    /// The file name, e.g. `OLTP.lis.gz`.
    pub(crate) file: String,
    pub(crate) requests: u64,
    pub(crate) distinct_keys: u64,
    pub(crate) load_seconds: f64,
    pub(crate) rows: Vec<Row>,
}

impl Row {
    /// Hit ratio in % of `kind`, if it ran.
    pub(crate) fn ratio(&self, kind: PolicyKind, requests: u64) -> Option<f64> {
        self.outcomes
            .get(&kind)
            .map(|o| 100.0 * o.hits as f64 / requests.max(1) as f64)
    }

    /// The best hit ratio in % among the peers that ran (LRU included).
    pub(crate) fn best_peer(&self, requests: u64) -> Option<(PolicyKind, f64)> {
        self.outcomes
            .keys()
            .filter(|k| k.is_peer())
            .filter_map(|&k| Some((k, self.ratio(k, requests)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("simulate: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("simulate: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let mut runs = Vec::new();
    let mut warnings = Vec::new();
    for (path, table_caps) in args.jobs() {
        let run = simulate_trace(&path, &table_caps, args)?;
        warnings.extend(opt_violations(&run));
        runs.push(run);
    }
    let wall = started.elapsed().as_secs_f64();
    eprintln!("simulate: done in {wall:.1} s");

    print!("{}", report::table(&runs, &args.policies));
    for warning in &warnings {
        println!("\n> **warning:** {warning}");
        eprintln!("simulate: warning: {warning}");
    }

    let meta = report::Meta::collect(wall, args.threads, args.runs);
    if let Some(path) = &args.json {
        let json = report::json(&runs, &args.policies, &meta);
        write_file(path, &json)?;
        eprintln!("simulate: wrote {}", path.display());
    }
    let mut plots = Vec::new();
    if let Some(dir) = &args.plot_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for run in &runs {
            let path = dir.join(format!("hit-ratio-{}.svg", run.name));
            plot::hit_ratio_vs_capacity(&path, run, &args.policies)?;
            eprintln!("simulate: wrote {}", path.display());
            plots.push((run.name.clone(), path));
        }
    }
    if let Some(path) = &args.markdown_out {
        let doc = report::document(&runs, &args.policies, &meta, &warnings, &plots, path);
        write_file(path, &doc)?;
        eprintln!("simulate: wrote {}", path.display());
    }
    Ok(())
}

/// Loads one trace and replays every selected policy at every capacity,
/// spreading the (capacity, policy) jobs over `args.threads` threads.
fn simulate_trace(path: &Path, table_caps: &[u64], args: &Args) -> Result<TraceRun, String> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let name = file.split('.').next().unwrap_or(&file).to_string();

    let loading = Instant::now();
    let keys = read_trace(path).map_err(|e| format!("cannot read trace: {e}"))?;
    let distinct = keys.iter().collect::<HashSet<_>>().len() as u64;
    let next = if args.policies.contains(&PolicyKind::Opt) {
        next_uses(&keys)
    } else {
        Vec::new()
    };
    let load_seconds = loading.elapsed().as_secs_f64();
    eprintln!(
        "simulate: {name}: {} requests, {distinct} distinct keys, loaded in {load_seconds:.1} s",
        keys.len()
    );

    let mut capacities: Vec<u64> = table_caps.to_vec();
    if args.plot_dir.is_some() {
        capacities.extend(args::plot_capacities(table_caps, args.plot_points));
    }
    capacities.sort_unstable();
    capacities.dedup();

    // Larger capacities and OPT take longest: start them first so the
    // threads finish together.
    // Policies with random seeds replay the table rows `runs` times; plot
    // points and deterministic policies once.
    let runs_of = |capacity: u64, kind: PolicyKind| {
        if kind.is_seeded() && table_caps.contains(&capacity) {
            args.runs
        } else {
            1
        }
    };
    let mut jobs: Vec<(u64, PolicyKind)> = capacities
        .iter()
        .flat_map(|&c| args.policies.iter().map(move |&p| (c, p)))
        .flat_map(|(c, p)| std::iter::repeat_n((c, p), runs_of(c, p)))
        .collect();
    jobs.sort_by_key(|&(c, p)| std::cmp::Reverse((p == PolicyKind::Opt, c)));

    let next_job = AtomicUsize::new(0);
    let replays = Mutex::new(BTreeMap::<(u64, PolicyKind), Vec<(u64, f64)>>::new());
    let threads = args.threads.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(&(capacity, kind)) =
                    jobs.get(next_job.fetch_add(1, Ordering::Relaxed))
                {
                    let replay = run_job(&name, &keys, &next, capacity, kind);
                    replays
                        .lock()
                        .expect("a job panicked")
                        .entry((capacity, kind))
                        .or_default()
                        .push(replay);
                }
            });
        }
    });
    let results: BTreeMap<(u64, PolicyKind), Outcome> = replays
        .into_inner()
        .expect("a job panicked")
        .into_iter()
        .map(|(job, replays)| (job, Outcome::of(replays)))
        .collect();

    let rows = capacities
        .iter()
        .map(|&capacity| Row {
            capacity,
            in_table: table_caps.contains(&capacity),
            outcomes: results
                .iter()
                .filter(|((c, _), _)| *c == capacity)
                .map(|(&(_, kind), &outcome)| (kind, outcome))
                .collect(),
        })
        .collect();
    Ok(TraceRun {
        name,
        file,
        requests: keys.len() as u64,
        distinct_keys: distinct,
        load_seconds,
        rows,
    })
}

/// One replay: its hits and seconds.
fn run_job(name: &str, keys: &[u64], next: &[u32], capacity: u64, kind: PolicyKind) -> (u64, f64) {
    let started = Instant::now();
    let mut policy = kind.build(capacity, keys, next);
    let long = keys.len() >= LONG_TRACE;
    let hits = replay(policy.as_mut(), keys, |done| {
        let elapsed = started.elapsed().as_secs_f64();
        if long && done < keys.len() && elapsed >= QUIET_SECONDS {
            eprintln!(
                "simulate: {name} @ {capacity} {kind}: {:>3}% ({elapsed:.1} s)",
                100 * done / keys.len(),
            );
        }
    });
    drop(policy);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "simulate: {name} @ {capacity} {kind}: {:.2}% in {seconds:.1} s",
        100.0 * hits as f64 / keys.len().max(1) as f64
    );
    (hits, seconds)
}

/// A policy that hits more often than OPT at the same capacity was
/// measured wrongly: OPT is the upper bound.
fn opt_violations(run: &TraceRun) -> Vec<String> {
    let mut warnings = Vec::new();
    for row in &run.rows {
        let Some(opt) = row.outcomes.get(&PolicyKind::Opt) else {
            continue;
        };
        for (kind, outcome) in &row.outcomes {
            if outcome.max_hits > opt.hits {
                warnings.push(format!(
                    "{} at capacity {}: {kind} hit {} times, more than OPT's {}: a measuring error",
                    run.name, row.capacity, outcome.max_hits, opt.hits
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_is_the_median_run_with_its_range() {
        let o = Outcome::of(vec![(30, 1.0), (10, 2.0), (20, 3.0)]);
        assert_eq!((o.hits, o.min_hits, o.max_hits, o.runs), (20, 10, 30, 3));
        assert!((o.seconds - 2.0).abs() < 1e-9);
        // An even count takes the lower middle: a count that was measured.
        let o = Outcome::of(vec![(40, 1.0), (10, 1.0), (30, 1.0), (20, 1.0)]);
        assert_eq!(o.hits, 20);
        let o = Outcome::of(vec![(7, 0.5)]);
        assert_eq!((o.hits, o.min_hits, o.max_hits, o.runs), (7, 7, 7, 1));
    }
}

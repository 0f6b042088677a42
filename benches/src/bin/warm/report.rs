//! The Markdown report and its JSON figures.

use serde_json::{Value, json};
use tiercache_benches::{Machine, median, thousands};

mod method;
mod runs;

use crate::load::Timed;
use crate::machine::Shared;
use crate::prefetch::{self, LOAD_DELAY, Measured, TASKS, THINK};
use crate::restart::{LIFE_TASKS, Life, Restarted, Stack, Start, WARM_CONCURRENCY};
use crate::workload::VALUE_BYTES;
use crate::{Part, Settings, ZIPF_S};

/// The target for part 2: entries a second a snapshot loads.
pub(crate) const TARGET_LOAD_PER_S: f64 = 1_000_000.0;
/// The target for part 3: the prefetcher's loads on independent
/// Zipf requests, as a share of the requests.
pub(crate) const TARGET_EXTRA_LOADS: f64 = 0.01;

/// The trace of part 1.
pub(crate) struct TraceInfo {
    pub(crate) name: String,
    pub(crate) requests: usize,
    pub(crate) distinct: usize,
}

/// One workload and stack of part 1, run by run.
pub(crate) struct RestartCase {
    pub(crate) workload: &'static str,
    pub(crate) stack: Stack,
    pub(crate) capacity: u64,
    pub(crate) life: usize,
    pub(crate) lives: Vec<Life>,
    pub(crate) restarts: Vec<(Start, Vec<Restarted>)>,
}

impl RestartCase {
    pub(crate) fn new(workload: &'static str, stack: Stack, capacity: u64, life: usize) -> Self {
        RestartCase {
            workload,
            stack,
            capacity,
            life,
            lives: Vec::new(),
            restarts: stack.starts().iter().map(|&s| (s, Vec::new())).collect(),
        }
    }

    pub(crate) fn push(&mut self, r: Restarted) {
        if let Some((_, runs)) = self.restarts.iter_mut().find(|(s, _)| *s == r.start) {
            runs.push(r);
        }
    }

    fn runs(&self, start: Start) -> &[Restarted] {
        self.restarts
            .iter()
            .find(|(s, _)| *s == start)
            .map_or(&[], |(_, r)| r.as_slice())
    }
}

/// Part 2's measurements.
pub(crate) struct LoadResults {
    pub(crate) filled_entries: u64,
    pub(crate) memory: Vec<Timed>,
    /// (memory-only, over redb) per run.
    pub(crate) disk: Vec<(Timed, Timed)>,
}

/// One workload of part 3, with the prefetcher off and on, run by run.
pub(crate) struct PrefetchCase {
    pub(crate) workload: prefetch::Workload,
    pub(crate) off: Vec<Measured>,
    pub(crate) on: Vec<Measured>,
}

impl PrefetchCase {
    pub(crate) fn new(workload: prefetch::Workload) -> Self {
        PrefetchCase {
            workload,
            off: Vec::new(),
            on: Vec::new(),
        }
    }
}

/// Everything measured.
#[derive(Default)]
pub(crate) struct Results {
    pub(crate) workers: usize,
    pub(crate) trace: Option<TraceInfo>,
    pub(crate) restart: Vec<RestartCase>,
    pub(crate) load: Option<LoadResults>,
    /// Per run: the sessions' requests, those on their path, and the
    /// distinct pages on some path.
    pub(crate) sessions: Vec<(usize, u64, usize)>,
    pub(crate) prefetch: Vec<PrefetchCase>,
    /// What other work used of the machine while each part ran.
    pub(crate) shared: Vec<(&'static str, Shared)>,
}

fn med<T>(runs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    median(runs.iter().map(f))
}

fn n(v: f64) -> String {
    if v.is_finite() {
        thousands(v.round() as u64)
    } else {
        "–".into()
    }
}

/// A share as a percentage, with as many decimals as a small one needs.
fn pct(share: f64) -> String {
    if !share.is_finite() {
        return "–".into();
    }
    let p = share * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if p.abs() >= 10.0 {
        format!("{p:.1} %")
    } else if p.abs() >= 0.1 {
        format!("{p:.2} %")
    } else {
        format!("{p:.4} %")
    }
}

fn secs(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn list(values: impl IntoIterator<Item = f64>, f: impl Fn(f64) -> String) -> String {
    values.into_iter().map(f).collect::<Vec<_>>().join(", ")
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

fn workload_label(r: &Results, key: &str) -> String {
    match (key, &r.trace) {
        ("trace", Some(t)) => format!("trace `{}`", t.name),
        _ => format!("Zipf({ZIPF_S})"),
    }
}

pub(crate) fn report(
    s: &Settings,
    machine: &Machine,
    r: &Results,
    elapsed: f64,
) -> (String, Value) {
    let mut md = machine.report_header(
        "Warming: restarts from a snapshot or a warmer, snapshot load speed, the prefetcher",
        "warm",
        elapsed,
    );
    if s.quick {
        md.push_str(&format!(
            "**A quick check (`TIERCACHE_BENCH_QUICK=1`), not the reference figures: {} run(s), \
             smaller workloads.**\n\n",
            s.runs
        ));
    }
    md.push_str(&sharing(r));
    md.push_str(&targets(r));
    md.push_str(&method::method(s, machine, r));
    let mut restart_json = Vec::new();
    if s.runs_part(Part::Restart) {
        let (text, value) = restarts(s, r);
        md.push_str(&text);
        restart_json = value;
    }
    let mut load_json = Value::Null;
    if let Some(l) = &r.load {
        let (text, value) = loads(s, l);
        md.push_str(&text);
        load_json = value;
    }
    let mut prefetch_json = Vec::new();
    if s.runs_part(Part::Prefetch) {
        let (text, value) = prefetches(s, r);
        md.push_str(&text);
        prefetch_json = value;
    }
    md.push_str(&runs::every_run(r));
    let value = json!({
        "settings": {
            "keys": s.keys,
            "zipf_s": ZIPF_S,
            "capacity": s.capacity,
            "life": s.life,
            "after": s.after,
            "trace": r.trace.as_ref().map(|t| &t.name),
            "trace_capacity": s.trace_capacity,
            "trace_life": s.trace_life,
            "entries": s.entries,
            "disk_entries": s.disk_entries,
            "value_bytes": VALUE_BYTES,
            "pages": s.shape.pages,
            "paths": s.shape.paths,
            "path_len": [s.shape.path_len.0, s.shape.path_len.1],
            "path_zipf_s": s.shape.path_s,
            "detour": s.shape.detour,
            "sessions_measured": s.sessions,
            "page_capacity": s.page_capacity,
            "zipf_requests_measured": s.zipf_requests,
            "loader_delay_ms": LOAD_DELAY.as_secs_f64() * 1e3,
            "think_ms": THINK.as_secs_f64() * 1e3,
            "tasks": TASKS,
            "life_tasks": LIFE_TASKS,
            "warm_concurrency": WARM_CONCURRENCY,
            "worker_threads": r.workers,
            "runs": s.runs,
            "load_runs": s.load_runs,
            "quick": s.quick,
            "target_load_per_s": TARGET_LOAD_PER_S,
            "target_extra_loads": TARGET_EXTRA_LOADS,
        },
        "machine_shared": r.shared.iter().map(|(part, u)| json!({
            "part": part, "wall_s": u.wall_s, "other_processes_cpu_s": u.others_s,
            "steal_s": u.steal_s,
        })).collect::<Vec<_>>(),
        "restart": restart_json,
        "load": load_json,
        "prefetch": prefetch_json,
    });
    (md, value)
}

/// How much of the machine other work took while each part ran.
fn sharing(r: &Results) -> String {
    if r.shared.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = r
        .shared
        .iter()
        .map(|(part, u)| {
            let of_machine = (u.others_s + u.steal_s) / (u.wall_s * r.workers.max(1) as f64);
            format!(
                "{part}, {} s: {} CPU-s ({} of the machine's {} cores){}",
                secs(u.wall_s),
                secs(u.others_s),
                pct(of_machine),
                r.workers,
                if u.steal_s >= 0.01 {
                    format!(", {} s of it stolen by the hypervisor", secs(u.steal_s))
                } else {
                    String::new()
                }
            )
        })
        .collect();
    format!(
        "Other work on the machine while the parts ran (all CPU time in `/proc/stat` less this \
         process's own): {}. Timings are from a shared machine when these are large.\n\n",
        parts.join("; ")
    )
}

fn targets(r: &Results) -> String {
    let mut md = String::from(
        "## The targets\n\n| target | measured (median) | runs meeting it | target |\n\
         |---|---:|---:|---|\n",
    );
    if let Some(l) = &r.load {
        let rates: Vec<f64> = l.memory.iter().map(Timed::records_per_s).collect();
        let m = median(rates.iter().copied());
        md.push_str(&format!(
            "| load a {}-entry snapshot (memory-only cache) at ≥ {} entries/s | {} entries/s | {} \
             of {} | {} |\n",
            thousands(l.filled_entries),
            n(TARGET_LOAD_PER_S),
            n(m),
            rates.iter().filter(|&&v| v >= TARGET_LOAD_PER_S).count(),
            rates.len(),
            verdict(m >= TARGET_LOAD_PER_S),
        ));
    }
    for case in r
        .prefetch
        .iter()
        .filter(|c| c.workload != prefetch::Workload::Sessions)
    {
        let shares: Vec<f64> = case.on.iter().map(Measured::prefetch_load_share).collect();
        let m = median(shares.iter().copied());
        md.push_str(&format!(
            "| {}: the prefetcher's loads < {} of requests | {} | {} of {} | {} |\n",
            case.workload.label(),
            pct(TARGET_EXTRA_LOADS),
            pct(m),
            shares.iter().filter(|&&v| v < TARGET_EXTRA_LOADS).count(),
            shares.len(),
            verdict(m < TARGET_EXTRA_LOADS),
        ));
    }
    if r.load.is_none() && r.prefetch.is_empty() {
        md.push_str("| (not measured in this run: see `--only`) | – | – | – |\n");
    }
    md.push('\n');
    if let Some(l) = &r.load {
        let m = &l.memory;
        let rate = med(m, Timed::records_per_s);
        if rate < TARGET_LOAD_PER_S {
            md.push_str(&format!(
                "The snapshot load misses its target: {} records/s, {} of it (part 2 has the \
                 details).\n\n",
                n(rate),
                pct(rate / TARGET_LOAD_PER_S),
            ));
        }
    }
    if !r.restart.is_empty() {
        md.push_str(
            "The restarts have no target in the issue. Hot-tier hit ratio over the first requests \
             after a restart, medians (the sections below give the rest):\n\n\
             | workload | stack | steady state before the restart | cold | snapshot | warmer \
             from redb |\n|---|---|---:|---:|---:|---:|\n",
        );
        for case in &r.restart {
            let ratio = |start| {
                if case.runs(start).is_empty() {
                    "–".to_string()
                } else {
                    pct(med(case.runs(start), Restarted::hot_ratio))
                }
            };
            md.push_str(&format!(
                "| {} | {} | {} | {} | **{}** | {} |\n",
                workload_label(r, case.workload),
                case.stack.label(),
                pct(med(&case.lives, |l| {
                    l.steady_hot_hits as f64 / l.steady_requests.max(1) as f64
                })),
                ratio(Start::Cold),
                ratio(Start::Snapshot),
                ratio(Start::Warmer),
            ));
        }
        md.push('\n');
    }
    md
}

fn restarts(s: &Settings, r: &Results) -> (String, Vec<Value>) {
    let mut md = String::new();
    let mut values = Vec::new();
    for case in &r.restart {
        let lives = &case.lives;
        md.push_str(&format!(
            "## Part 1: restart, {}, {}\n\n{} hot-tier entries; the previous life: {} requests in \
             {} s, {} loader calls, {} entries in the hot tier at shutdown, a snapshot of {} \
             records ({} bytes){}; the shutdown (its save{}) took {} s. Medians of {} runs.\n\n",
            workload_label(r, case.workload),
            case.stack.label(),
            thousands(case.capacity),
            thousands(case.life as u64),
            secs(med(lives, |l| l.seconds)),
            n(med(lives, |l| l.loader_calls as f64)),
            n(med(lives, |l| l.entries as f64)),
            n(med(lives, |l| l.snapshot_records as f64)),
            n(med(lives, |l| l.snapshot_bytes as f64)),
            if case.stack == Stack::Disk {
                format!(
                    ", a redb file of {} bytes",
                    n(med(lives, |l| l.tier_bytes as f64))
                )
            } else {
                String::new()
            },
            if case.stack == Stack::Disk {
                " and the redb close"
            } else {
                ""
            },
            secs(med(lives, |l| l.shutdown_s)),
            lives.len(),
        ));
        md.push_str(&format!(
            "| start | hot-tier hit ratio, first {after} requests | answered without the loader | \
             loader calls | entries when the requests begin | build s | warming s |\n\
             |---|---:|---:|---:|---:|---:|---:|\n\
             | steady state: the previous life's last {after} requests | **{}** | {} | {} | {} | – \
             | – |\n",
            pct(med(lives, |l| l.steady_hot_hits as f64
                / l.steady_requests.max(1) as f64)),
            pct(med(lives, |l| {
                1.0 - l.steady_loader_calls as f64 / l.steady_requests.max(1) as f64
            })),
            n(med(lives, |l| l.steady_loader_calls as f64)),
            n(med(lives, |l| l.entries as f64)),
            after = thousands(s.after as u64),
        ));
        let mut starts = Vec::new();
        for (start, runs) in &case.restarts {
            let warm = runs
                .iter()
                .filter_map(|r| r.warm.as_ref())
                .collect::<Vec<_>>();
            md.push_str(&format!(
                "| {} | **{}** | {} | {} | {} | {} | {} |\n",
                start.label(),
                pct(med(runs, Restarted::hot_ratio)),
                pct(med(runs, Restarted::no_load_ratio)),
                n(med(runs, |r| r.loader_calls as f64)),
                n(med(runs, |r| r.entries as f64)),
                secs(med(runs, |r| r.build_s)),
                if warm.is_empty() {
                    "–".into()
                } else {
                    secs(med(&warm, |w| w.seconds))
                },
            ));
            starts.push(json!({
                "start": start.key(),
                "hot_hit_ratio": med(runs, Restarted::hot_ratio),
                "answered_without_loader": med(runs, Restarted::no_load_ratio),
                "loader_calls": med(runs, |r| r.loader_calls as f64),
                "entries_at_start": med(runs, |r| r.entries as f64),
                "build_s": med(runs, |r| r.build_s),
                "warming_s": if warm.is_empty() { Value::Null } else { med(&warm, |w| w.seconds).into() },
                "runs": runs.iter().map(|r| json!({
                    "hot_hits": r.hot_hits,
                    "requests": r.requests,
                    "loader_calls": r.loader_calls,
                    "entries_at_start": r.entries,
                    "build_s": r.build_s,
                    "warm": r.warm.as_ref().map(|w| json!({
                        "seconds": w.seconds, "listed": w.listed, "total": w.total,
                        "warmed": w.warmed, "present": w.present, "missing": w.missing,
                        "failed": w.failed,
                    })),
                })).collect::<Vec<_>>(),
            }));
        }
        md.push('\n');
        md.push_str(&restart_notes(case));
        values.push(json!({
            "workload": case.workload,
            "stack": case.stack.key(),
            "capacity": case.capacity,
            "life": case.life,
            "lives": lives.iter().map(|l| json!({
                "seconds": l.seconds,
                "loader_calls": l.loader_calls,
                "steady_hot_hits": l.steady_hot_hits,
                "steady_requests": l.steady_requests,
                "steady_loader_calls": l.steady_loader_calls,
                "entries": l.entries,
                "snapshot_records": l.snapshot_records,
                "snapshot_bytes": l.snapshot_bytes,
                "tier_bytes": l.tier_bytes,
                "shutdown_s": l.shutdown_s,
            })).collect::<Vec<_>>(),
            "starts": starts,
        }));
    }
    (md, values)
}

/// What a restart table's figures mean.
fn restart_notes(case: &RestartCase) -> String {
    let steady = med(&case.lives, |l| {
        l.steady_hot_hits as f64 / l.steady_requests.max(1) as f64
    });
    let ratio = |start| med(case.runs(start), Restarted::hot_ratio);
    let (cold, snap) = (ratio(Start::Cold), ratio(Start::Snapshot));
    let mut md = format!(
        "The snapshot restart's hot tier answers {} of the first requests against {} cold: {} of \
         the steady state's {}, where a cold start reaches {}. (The steady state is the life's \
         own last requests, made from {LIFE_TASKS} tasks; a restart's are the next ones, one at \
         a time: a figure a little above 100 % is the difference between the two windows, not a \
         gain.)",
        pct(snap),
        pct(cold),
        pct(snap / steady),
        pct(steady),
        pct(cold / steady),
    );
    if case.stack == Stack::Disk {
        let no_load = med(case.runs(Start::Cold), Restarted::no_load_ratio);
        md.push_str(&format!(
            " Cold over the redb tier, the loader is spared all the same: {} of the requests are \
             answered without it, since the tier kept every key the previous life wrote; what a \
             cold start costs there is a disk read (and a promotion) instead of a memory hit.",
            pct(no_load)
        ));
        let warm = case.runs(Start::Warmer);
        let w: Vec<_> = warm.iter().filter_map(|r| r.warm.as_ref()).collect();
        if !w.is_empty() {
            md.push_str(&format!(
                " The warmer listed the {} keys the redb tier holds and warmed {} of them (a run \
                 warms at most the hot tier's capacity, and `warm_from_tier` gives the keys no \
                 frequency, so which ones is the tier's key order: the encoded keys' byte order, \
                 unrelated to popularity) in {} s; its hot tier then answers {} of the first \
                 requests: {} of the snapshot's, {} points against cold.",
                n(med(&w, |w| w.listed as f64)),
                n(med(&w, |w| w.warmed as f64)),
                secs(med(&w, |w| w.seconds)),
                pct(ratio(Start::Warmer)),
                pct(ratio(Start::Warmer) / snap),
                signed_points(ratio(Start::Warmer) - cold),
            ));
        }
    }
    md.push_str("\n\n");
    md
}

fn loads(s: &Settings, l: &LoadResults) -> (String, Value) {
    let m = &l.memory;
    let rate = med(m, Timed::records_per_s);
    let mut md = format!(
        "## Part 2: snapshot save and load\n\n\
         A memory-only cache of {} entries ({} bytes each value, `u64` keys). Medians of {} runs.\n\n\
         | operation | records | file bytes | bytes per record | time s | records/s | entries \
         held after | target ≥ {} entries/s |\n|---|---:|---:|---:|---:|---:|---:|---|\n\
         | `save_snapshot` | {} | {} | {:.1} | {} | {} | – | – |\n\
         | `load_snapshot` into a fresh memory-only cache of {} | {} | {} | {:.1} | {} | **{}** | \
         {} | {} |\n\n",
        thousands(l.filled_entries),
        VALUE_BYTES,
        m.len(),
        n(TARGET_LOAD_PER_S),
        n(med(m, |t| t.records as f64)),
        n(med(m, |t| t.bytes as f64)),
        med(m, |t| t.bytes as f64 / t.records.max(1) as f64),
        secs(med(m, |t| t.save_s)),
        n(med(m, |t| t.records as f64 / t.save_s)),
        thousands(s.entries as u64),
        n(med(m, |t| t.records as f64)),
        n(med(m, |t| t.bytes as f64)),
        med(m, |t| t.bytes as f64 / t.records.max(1) as f64),
        secs(med(m, |t| t.load_s)),
        n(rate),
        n(med(m, |t| t.entries_after as f64)),
        verdict(rate >= TARGET_LOAD_PER_S),
    );
    let (loaded, held) = (
        med(m, |t| t.loaded as f64),
        med(m, |t| t.entries_after as f64),
    );
    if held < loaded {
        md.push_str(&format!(
            "The load's report counts {} entries installed; the hot tier then holds {}: the fresh \
             cache's capacity is exactly the file's size, and the hot tier gives each of its \
             partitions an equal share of it, so a partition that receives more than its share \
             evicts the difference.\n\n",
            n(loaded),
            n(held)
        ));
    }
    let read = med(m, |t| t.read_s);
    md.push_str(&format!(
        "For scale: `read_snapshot` of the same file alone (reading it and verifying every \
         record's checksum, which a load must do at least once) takes {} s ({} records/s), {} of \
         the load's time; the load's time beyond it is {} s ({} records/s over that \
         difference).\n\n",
        secs(read),
        n(med(m, |t| t.records as f64 / t.read_s)),
        pct(median(m.iter().map(|t| t.read_s / t.load_s))),
        secs(med(m, |t| t.load_s - t.read_s)),
        n(med(m, |t| t.records as f64 / (t.load_s - t.read_s))),
    ));
    let over = med(m, |t| t.over_capacity as f64);
    if over > 0.0 {
        md.push_str(&format!(
            "The load left {} records out as over capacity: the fresh cache holds exactly as many \
             entries as the file, and the hot tier gives each of its partitions an equal share.\n\n",
            n(over)
        ));
    }
    let d = &l.disk;
    let (mem, disk): (Vec<Timed>, Vec<Timed>) = d.iter().cloned().unzip();
    if !d.is_empty() {
        md.push_str(&format!(
            "A snapshot of {} entries saved by a cache over a redb tier, loaded into a fresh \
             cache of {} entries over the same redb tier (each record looked up in the tier and \
             the tier's copy installed) and into a fresh memory-only one:\n\n\
             | into | time s | records/s | entries installed | memory-only ÷ over redb |\n\
             |---|---:|---:|---:|---:|\n\
             | memory-only cache | {} | {} | {} | – |\n\
             | cache over the redb tier | {} | {} | {} | {:.1}× |\n\n",
            thousands(s.disk_entries as u64),
            thousands(s.disk_entries as u64),
            secs(med(&mem, |t| t.load_s)),
            n(med(&mem, Timed::records_per_s)),
            n(med(&mem, |t| t.loaded as f64)),
            secs(med(&disk, |t| t.load_s)),
            n(med(&disk, Timed::records_per_s)),
            n(med(&disk, |t| t.loaded as f64)),
            median(d.iter().map(|(m, d)| m.records_per_s() / d.records_per_s())),
        ));
    }
    let timed = |t: &Timed| {
        json!({
            "save_s": t.save_s, "records": t.records, "bytes": t.bytes, "load_s": t.load_s,
            "load_report_s": t.load_report_s, "read_s": t.read_s, "loaded": t.loaded,
            "over_capacity": t.over_capacity, "entries_after": t.entries_after,
            "records_per_s": t.records_per_s(),
        })
    };
    let value = json!({
        "entries": l.filled_entries,
        "records_per_s": rate,
        "save_s": med(m, |t| t.save_s),
        "load_s": med(m, |t| t.load_s),
        "read_s": read,
        "bytes": med(m, |t| t.bytes as f64),
        "runs": m.iter().map(timed).collect::<Vec<_>>(),
        "disk_comparison": {
            "entries": s.disk_entries,
            "memory_records_per_s": med(&mem, Timed::records_per_s),
            "redb_records_per_s": med(&disk, Timed::records_per_s),
            "runs": d.iter().map(|(m, d)| json!({"memory": timed(m), "redb": timed(d)})).collect::<Vec<_>>(),
        },
    });
    (md, value)
}

fn stat(runs: &[Measured], f: impl Fn(&tiercache::warm::PrefetchStats) -> f64) -> f64 {
    median(runs.iter().filter_map(|m| m.stats.as_ref()).map(f))
}

fn prefetches(s: &Settings, r: &Results) -> (String, Vec<Value>) {
    let mut md = String::new();
    let mut values = Vec::new();
    let unpredictable = r.sessions.first().map(|&(requests, on_path, _)| {
        let requests = requests.max(1) as f64;
        (
            1.0 - on_path as f64 / requests,
            (2 * s.sessions) as f64 / requests,
        )
    });
    for case in &r.prefetch {
        let (off, on) = (&case.off, &case.on);
        let cap = match case.workload {
            prefetch::Workload::Sessions => s.page_capacity,
            _ => s.capacity,
        };
        md.push_str(&format!(
            "## Part 3: prefetcher, {}\n\nHot tier {} entries; {} requests measured. Medians of {} \
             runs.\n\n\
             | prefetcher | hot-tier hit ratio | loads per 1,000 requests | for requests | by the \
             prefetcher | precision | coverage | predicted | issued | dropped (queue full) | \
             warmed | used |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            case.workload.label(),
            thousands(cap),
            n(med(off, |m| m.requests as f64)),
            off.len().max(on.len()),
        ));
        for (label, runs) in [("off", off), ("`PrefetchSettings::default()`", on)] {
            let per = |f: fn(&Measured) -> u64| {
                med(runs, |m| 1e3 * f(m) as f64 / m.requests.max(1) as f64)
            };
            let has = runs.iter().any(|m| m.stats.is_some());
            let st = |f: fn(&tiercache::warm::PrefetchStats) -> f64, fmt: fn(f64) -> String| {
                if has {
                    fmt(stat(runs, f))
                } else {
                    "–".into()
                }
            };
            md.push_str(&format!(
                "| {label} | **{}** | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} |\n",
                pct(med(runs, Measured::hot_ratio)),
                per(Measured::loads),
                per(|m| m.foreground_loads),
                per(|m| m.background_loads),
                st(|p| p.precision(), pct),
                st(|p| p.coverage(), pct),
                st(|p| p.predicted as f64, n),
                st(|p| p.issued as f64, n),
                st(|p| p.dropped as f64, n),
                st(|p| p.warmed as f64, n),
                st(|p| p.used as f64, n),
            ));
        }
        let gain: Vec<f64> = on
            .iter()
            .zip(off)
            .map(|(a, b)| a.hot_ratio() - b.hot_ratio())
            .collect();
        let net: Vec<f64> = on
            .iter()
            .zip(off)
            .map(|(a, b)| a.loads_per_request() - b.loads_per_request())
            .collect();
        md.push_str(&format!(
            "\nWith the prefetcher the hot-tier hit ratio moves by {} points (the runs: {}); the \
             prefetcher's own loads are {} of the requests (the runs: {}), and all loads together \
             change by {} of the requests (the runs: {}), what it loaded less what requests no \
             longer had to.\n\n",
            signed_points(median(gain.iter().copied())),
            list(gain.iter().copied(), signed_points),
            pct(med(on, Measured::prefetch_load_share)),
            list(on.iter().map(Measured::prefetch_load_share), pct),
            signed_pct(median(net.iter().copied())),
            list(net.iter().copied(), signed_pct),
        ));
        if let (prefetch::Workload::Sessions, Some((detours, firsts))) =
            (case.workload, unpredictable)
        {
            md.push_str(&format!(
                "What bounds the coverage: {} of the requests are detours (a page drawn from all \
                 {} pages, usually a miss) and {} are a session's first page; neither \
                 follows from the session's previous page. \"Predicted\" counts the likely \
                 successors found after each lookup; those the cache held already were not \
                 issued. Precision below 100 % is prefetched pages never read before they left \
                 the hot tier or the prefetcher's tracking ({} unused in the median run).\n\n",
                pct(detours),
                thousands(s.shape.pages),
                pct(firsts),
                n(stat(on, |p| p.unused as f64)),
            ));
        }
        let m = |runs: &[Measured]| {
            runs.iter()
                .map(|m| {
                    json!({
                        "requests": m.requests, "hot_hits": m.hot_hits,
                        "foreground_loads": m.foreground_loads,
                        "background_loads": m.background_loads, "seconds": m.seconds,
                        "stats": m.stats.as_ref().map(stats_json),
                        "stats_whole_run": m.total.as_ref().map(stats_json),
                    })
                })
                .collect::<Vec<_>>()
        };
        values.push(json!({
            "workload": case.workload.key(),
            "capacity": cap,
            "off": { "hot_hit_ratio": med(off, Measured::hot_ratio),
                     "loads_per_request": med(off, Measured::loads_per_request), "runs": m(off) },
            "on": { "hot_hit_ratio": med(on, Measured::hot_ratio),
                    "loads_per_request": med(on, Measured::loads_per_request),
                    "prefetch_load_share": med(on, Measured::prefetch_load_share),
                    "precision": stat(on, |p| p.precision()),
                    "coverage": stat(on, |p| p.coverage()), "runs": m(on) },
        }));
    }
    (md, values)
}

fn stats_json(p: &tiercache::warm::PrefetchStats) -> Value {
    json!({
        "observed": p.observed, "misses": p.misses, "learned_keys": p.learned_keys,
        "predicted": p.predicted, "issued": p.issued, "deduplicated": p.deduplicated,
        "dropped": p.dropped, "warmed": p.warmed, "present": p.present, "missing": p.missing,
        "failed": p.failed, "used": p.used, "unused": p.unused,
        "precision": p.precision(), "coverage": p.coverage(),
    })
}

fn signed_points(v: f64) -> String {
    let points = v * 100.0;
    if !points.is_finite() {
        "–".into()
    } else if points.abs() < 0.05 {
        "±0.0".into()
    } else {
        format!("{points:+.1}")
    }
}

fn signed_pct(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v >= 0.0 {
        format!("+{}", pct(v))
    } else {
        format!("−{}", pct(-v))
    }
}

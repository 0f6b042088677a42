//! The Markdown report and its JSON figures.

use std::path::PathBuf;

use serde_json::json;
use tiercache_benches::{Machine, median, thousands};

use crate::Settings;
use crate::measure::{
    ENCODED_VALUE_BYTES, LATENCY, LogSize, Measured, RAW_KEY_BYTES, RAW_ROW_BYTES, Setup, Shape,
    TASKS, varint_len,
};
use crate::store::VALUE_BYTES;

/// The claim for write-back over write-through, as a range.
const CLAIM: (f64, f64) = (2.0, 10.0);
/// The target: write-back at least this many times
/// write-through's insert throughput.
const TARGET_RATIO: f64 = 10.0;
/// Below this share of the writers per commit, the writers are said to
/// take turns in cohorts rather than share each commit.
const SHARED_COMMIT: f64 = 2.0 / 3.0;

/// One raw redb baseline, run by run.
pub(crate) struct Raw {
    pub(crate) group: usize,
    pub(crate) shape: Shape,
    /// On tmpfs (`fsync` free) rather than the disk.
    pub(crate) on_tmpfs: bool,
    /// The median transaction time of each run, in seconds.
    pub(crate) median_s: Vec<f64>,
    /// The 99th percentile of each run, in seconds.
    pub(crate) p99_s: Vec<f64>,
}

impl Raw {
    fn label(&self) -> String {
        let how = match self.shape {
            Shape::Lean => "the queue table alone, one insert per record",
            Shape::AsTheLog => {
                "as the log's thread: both tables opened once, an insert and a removal from the \
                 empty dead-letter table per record"
            }
        };
        let place = if self.on_tmpfs { ", on tmpfs" } else { "" };
        format!("{} record(s), {how}{place}", self.group)
    }

    fn median_ms(&self) -> f64 {
        median(self.median_s.iter().copied()) * 1e3
    }
}

/// Everything measured.
pub(crate) struct Results {
    /// Each setup's measurements, run by run.
    pub(crate) measured: Vec<(Setup, Vec<Measured>)>,
    pub(crate) logs: Vec<LogSize>,
    pub(crate) raw: Vec<Raw>,
    pub(crate) workers: usize,
    pub(crate) dir: PathBuf,
    pub(crate) tmpfs: Option<PathBuf>,
}

impl Results {
    fn runs(&self, setup: Setup) -> &[Measured] {
        self.measured
            .iter()
            .find(|(s, _)| *s == setup)
            .map_or(&[], |(_, m)| m.as_slice())
    }

    /// Each run's Back ÷ Through insert throughput.
    fn ratios(&self) -> Vec<f64> {
        self.runs(Setup::Back)
            .iter()
            .zip(self.runs(Setup::Through))
            .map(|(b, t)| b.rate() / t.rate())
            .collect()
    }

    fn raw(&self, group: usize, shape: Shape, on_tmpfs: bool) -> Option<&Raw> {
        self.raw
            .iter()
            .find(|r| r.group == group && r.shape == shape && r.on_tmpfs == on_tmpfs)
    }
}

/// The median over `runs` of `f`.
fn med(runs: &[Measured], f: impl Fn(&Measured) -> f64) -> f64 {
    median(runs.iter().map(f))
}

/// Writes per commit of a write-back measurement.
fn per_commit(m: &Measured) -> f64 {
    m.stats.map_or(f64::NAN, |s| {
        s.appended as f64 / s.log_commits.max(1) as f64
    })
}

/// Commits per second over a write-back measurement (first insert until
/// the flush returned).
fn commit_rate(m: &Measured) -> f64 {
    m.stats
        .map_or(f64::NAN, |s| s.log_commits as f64 / m.end_to_end_s)
}

/// Mean insert latency by Little's law: the tasks over the throughput, in
/// milliseconds.
fn little_ms(rate: f64) -> f64 {
    TASKS as f64 / rate * 1e3
}

fn n(v: f64) -> String {
    if v.is_finite() {
        thousands(v.round() as u64)
    } else {
        "–".into()
    }
}

fn list(values: impl IntoIterator<Item = f64>, f: impl Fn(f64) -> String) -> String {
    values.into_iter().map(f).collect::<Vec<_>>().join(", ")
}

pub(crate) fn report(
    s: &Settings,
    machine: &Machine,
    r: &Results,
    elapsed: f64,
) -> (String, serde_json::Value) {
    let back = r.runs(Setup::Back);
    let through = r.runs(Setup::Through);
    let tmpfs = r.runs(Setup::BackTmpfs);
    let inserts = back.first().map_or(s.inserts, |m| m.inserts);
    let ratios = r.ratios();
    let ratio = median(ratios.iter().copied());
    let store_ms = med(through, |m| m.store.mean_ms());
    let mut md = machine.report_header(
        "Write policies: write-back, write-through and write-around over a 1 ms store",
        "policies",
        elapsed,
    );
    md.push_str(&method(s, machine, r, inserts, store_ms));
    md.push_str(&results_table(r, inserts, ratio, &ratios));
    md.push_str(&group_commit(back, tmpfs));
    md.push_str(&costs(r));
    md.push_str(&bounds(r, back, through, tmpfs, ratio, store_ms));
    md.push_str(&log_bytes(&r.logs));
    md.push_str(&every_run(r, &ratios));
    let figures = figures(s, r, inserts, ratio, &ratios, store_ms);
    (md, figures)
}

fn method(s: &Settings, machine: &Machine, r: &Results, inserts: u64, store_ms: f64) -> String {
    let held = r.logs.first().map_or(s.held, |l| l.queued);
    let tmpfs = match &r.tmpfs {
        Some(dir) => format!(
            "- **Back, log on tmpfs** (a diagnostic, not a durable setup): Back again with its log \
             under `{}`, where `fsync` returns at once, so that what remains is the engine's and \
             redb's own work.\n",
            dir.display()
        ),
        None => String::new(),
    };
    format!(
        "## Method\n\n\
         - **Store**: a map behind a mutex whose `load`, `save` and `delete` each await \
         `tokio::time::sleep({lat} ms)` first, and whose `save_many` and `delete_many` await it \
         once per batch. tokio's timer counts whole milliseconds, so a call takes longer than \
         {lat} ms: the measured mean over Through's calls is {store_ms:.2} ms. It keeps the first \
         8 bytes of each key's value (the key itself), from which the bench checks, after every \
         measurement's flush, that the store holds every key with its own value.\n\
         - **Cache**: a memory-only `Cache<u64, Vec<u8>>` \
         (`Cache::builder().max_capacity({cap}).store(store).write_policy(…)`, no lower tier, \
         nothing evicted), fresh for each measurement with a fresh store. Under `WritePolicy::Back` \
         its log is a fresh redb file (`.write_back_log(…)`) in a temporary directory under \
         `{dir}`, on the workspace's disk (tmpfs would make the log's `fsync` free), with \
         write-back's default settings: batches of up to 256 keys, a 100 ms flush interval, at \
         most 100,000 dirty keys, inserts waiting when it is full.\n\
         - **Writes**: {inserts} inserts of distinct `u64` keys (so no write coalesces with \
         another) and {vb}-byte values ({venc} bytes encoded).\n\
         - **Tasks**: {tasks} tokio {tokio} tasks on one multi-thread runtime of {workers} worker \
         threads (the machine's cores); task *t* inserts its own run of {per} keys, awaiting each \
         insert before the next, and times each one (`Instant` around `insert`). Throughput = \
         inserts / the time from the first spawn until the last task finished; the percentiles \
         are over every insert of a measurement (nearest rank).\n\
         - **End to end**: the time from the first spawn until `cache.flush()` returned, when the \
         store holds every write. Under Through and Around the store has every write when its \
         insert returns, and the flush has nothing to do.\n\
         - **Group commit**: `cache.write_back_stats()` after the flush: `appended` (writes made \
         durable), `log_commits` (every commit of the log, including those that record a batch as \
         saved, which share a transaction with the appends waiting beside them), writes per \
         commit = `appended / log_commits`, and the commit rate = `log_commits` / the end-to-end \
         time.\n\
         {tmpfs}\
         - **Log bytes per queued write**: a fresh Back cache whose store holds back every batch \
         call (the flusher's first batch waits), {held} distinct keys inserted from {tasks} tasks \
         in two halves, and the log's file size (`std::fs::metadata`) read before the first \
         insert, after the first half and after all; then the store is let go, the cache \
         flushed, and the store checked. Bytes per write = (file after all − empty file) / \
         writes; marginal = (after all − after half) / the second half's writes, which leaves \
         out the file's fixed part.\n\
         - **Raw redb baseline**: redb {redb} directly, a file on the same disk, one thread, \
         {commits} write transactions one after another, each of 1 or 64 records shaped as the \
         log's queue rows: a {row}-byte row (the log's row for a {rk}-byte key and the \
         {venc}-byte value) under the next `u64` number, so that each transaction appends at the \
         table's end. Two shapes: the floor, the queue table alone, opened once per transaction, \
         one insert per record; and as the log's thread writes a group of appends, both tables \
         (queue and dead letters) opened once per transaction, and per record an insert into the \
         queue and a removal of the key from the dead-letter table, which is empty, as in these \
         measurements. Committed with redb's default durability (`Immediate`: `fsync`ed); the \
         time from `begin_write` until `commit` returned.\n\
         - **Runs**: {runs}; each run measures every setup once, run *r* starting with the *r*-th \
         setup, then the held-back log and the baselines. The tables give medians over the runs; \
         the ratio is the median of each run's Back ÷ Through (a run's measurements are close in \
         time).\n\n",
        lat = LATENCY.as_millis(),
        cap = thousands(inserts).replace(',', "_"),
        dir = r.dir.display(),
        inserts = thousands(inserts),
        vb = VALUE_BYTES,
        venc = ENCODED_VALUE_BYTES,
        tasks = TASKS,
        tokio = machine.version("tokio"),
        workers = r.workers,
        per = thousands(inserts / TASKS as u64),
        held = thousands(held),
        redb = machine.version("redb"),
        commits = s.commits,
        runs = s.runs,
        row = RAW_ROW_BYTES,
        rk = RAW_KEY_BYTES,
    )
}

fn results_table(r: &Results, inserts: u64, ratio: f64, ratios: &[f64]) -> String {
    let mut md = String::from(
        "## Results\n\n| policy | inserts/s | p50 µs | p99 µs | p99.9 µs | max µs | store holds \
         all after (s) | store calls |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (setup, runs) in &r.measured {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {} |\n",
            setup.label(),
            n(med(runs, Measured::rate)),
            n(med(runs, |m| m.p50_us)),
            n(med(runs, |m| m.p99_us)),
            n(med(runs, |m| m.p999_us)),
            n(med(runs, |m| m.max_us)),
            med(runs, |m| m.end_to_end_s),
            n(med(runs, |m| m.store.calls as f64)),
        ));
    }
    let (lo, hi) = CLAIM;
    let claim = if ratio < lo {
        "below"
    } else if ratio > hi {
        "above"
    } else {
        "within"
    };
    let target = if ratio >= TARGET_RATIO {
        "met"
    } else {
        "**not met**"
    };
    let back = r.runs(Setup::Back);
    let through = r.runs(Setup::Through);
    let e2e_back = med(back, |m| m.end_to_end_s);
    let e2e_through = med(through, |m| m.end_to_end_s);
    md.push_str(&format!(
        "\n**Back ÷ Through insert throughput: {ratio:.2}×** (the runs: {}). That is {claim} the \
         claimed {lo:.0}–{hi:.0}×; the issue's target of at least {TARGET_RATIO:.0}× is {target}.\n\n\
         End to end, from the first of the {} inserts until the store holds them all, Back takes \
         {e2e_back:.2} s and Through {e2e_through:.2} s ({:.2}×).\n\n",
        list(ratios.iter().copied(), |v| format!("{v:.2}×")),
        thousands(inserts),
        e2e_through / e2e_back,
    ));
    md
}

fn group_commit(back: &[Measured], tmpfs: &[Measured]) -> String {
    let mut md = String::from(
        "## Write-back's log: group commit\n\n| setup | appended | log commits | writes per \
         commit | commits/s | ms per commit | store batch calls | keys per batch | most dirty \
         keys seen | inserts that found the log full |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (setup, runs) in [(Setup::Back, back), (Setup::BackTmpfs, tmpfs)] {
        if runs.is_empty() {
            continue;
        }
        let stat = |f: fn(&tiercache::policies::WriteBackStats) -> u64| {
            med(runs, |m| m.stats.map_or(f64::NAN, |s| f(&s) as f64))
        };
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} | {} | {:.2} | {} | {:.1} | {} | {} |\n",
            setup.label(),
            n(stat(|s| s.appended)),
            n(stat(|s| s.log_commits)),
            med(runs, per_commit),
            n(med(runs, commit_rate)),
            1e3 / med(runs, commit_rate),
            n(med(runs, |m| m.store.batches as f64)),
            med(runs, |m| m.store.batched as f64
                / m.store.batches.max(1) as f64),
            n(med(runs, |m| m.peak_dirty as f64)),
            n(stat(|s| s.full)),
        ));
    }
    md.push_str(
        "\n\"Most dirty keys seen\" samples `dirty_len()` every millisecond during the \
         measurement.\n\n",
    );
    md
}

/// CPU time and bytes written, per setup.
fn costs(r: &Results) -> String {
    let mut md = String::from(
        "## Where the time goes\n\nCPU time from `/proc/self/task/*/stat` and bytes written from \
         `/proc/self/io`, over each measurement (first insert until the flush returned), medians \
         over the runs. \"Busy\" is a thread kind's CPU time over the wall time (100 % = one \
         core).\n\n| setup | CPU µs per insert | log thread busy | runtime threads busy | \
         bytes written per insert | KiB written per log commit | write calls per log commit | \
         bytes to the device per insert |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (setup, runs) in &r.measured {
        let per_insert = |f: fn(&crate::procfs::Io) -> u64| {
            med(runs, |m| {
                m.io.map_or(f64::NAN, |io| f(&io) as f64 / m.inserts as f64)
            })
        };
        let per_commit = |f: fn(&crate::procfs::Io) -> u64| {
            med(runs, |m| match (m.io, m.stats) {
                (Some(io), Some(st)) => f(&io) as f64 / st.log_commits.max(1) as f64,
                _ => f64::NAN,
            })
        };
        let busy = |f: fn(&Measured) -> f64| {
            let v = med(runs, |m| f(m) / m.end_to_end_s * 100.0);
            if v > 0.0 {
                format!("{v:.0} %")
            } else {
                "–".into()
            }
        };
        let kib = per_commit(|io| io.wchar) / 1024.0;
        md.push_str(&format!(
            "| {} | {:.1} | {} | {} | {} | {} | {} | {} |\n",
            setup.label(),
            med(runs, |m| m.cpu.total() / m.inserts as f64 * 1e6),
            busy(|m| m.cpu.log),
            busy(|m| m.cpu.workers),
            n(per_insert(|io| io.wchar)),
            if kib.is_finite() {
                format!("{kib:.1}")
            } else {
                "–".into()
            },
            if kib.is_finite() {
                format!("{:.1}", per_commit(|io| io.syscw))
            } else {
                "–".into()
            },
            n(per_insert(|io| io.write_bytes)),
        ));
    }
    md.push('\n');
    md
}

fn bounds(
    r: &Results,
    back: &[Measured],
    through: &[Measured],
    tmpfs: &[Measured],
    ratio: f64,
    store_ms: f64,
) -> String {
    let back_rate = med(back, Measured::rate);
    let through_rate = med(through, Measured::rate);
    let wpc = med(back, per_commit);
    let commit_ms = 1e3 / med(back, commit_rate);
    let raw_ms = |group, shape| r.raw(group, shape, false).map_or(f64::NAN, Raw::median_ms);
    let raw1 = raw_ms(1, Shape::Lean);
    let raw64 = raw_ms(64, Shape::Lean);
    let raw64_log = raw_ms(64, Shape::AsTheLog);
    let mut md = format!(
        "## What bounds write-back here\n\n\
         Each of the {tasks} tasks has one insert outstanding at a time, so by Little's law \
         throughput = {tasks} / the mean insert latency: {back_l:.2} ms under Back, {thr_l:.2} ms \
         under Through (whose inserts each wait one store call, measured at {store_ms:.2} ms). \
         The ratio of the two policies is the ratio of those latencies, {ratio:.2}×, and no batch \
         size changes that: write-back's batches only decide how fast the *store* catches up.\n\n\
         A write-back insert returns once the log's commit that carries it is durable. {share} \
         The log commits every {commit_ms:.2} ms (the end-to-end time over the commits), and the \
         mean insert latency is {cycles:.2} of those intervals{waits}.\n\n",
        tasks = TASKS,
        back_l = little_ms(back_rate),
        thr_l = little_ms(through_rate),
        share = share_of_writers(wpc, "A commit"),
        cycles = little_ms(back_rate) / commit_ms,
        waits = commit_waits(little_ms(back_rate) / commit_ms),
    );
    // The floor: the faster of the two 64-row transactions on the disk (the
    // lean one, unless the disk's noise says otherwise).
    let (floor_ms, floor_shape) = if raw64_log < raw64 {
        (raw64_log, "the log-shaped one")
    } else {
        (raw64, "the queue table alone")
    };
    let ceiling = TASKS as f64 / floor_ms * 1e3;
    let best = ceiling / through_rate;
    // The insert latency 10× Through's throughput needs with these writers.
    let needed_ms = little_ms(TARGET_RATIO * through_rate);
    let room = if needed_ms < floor_ms {
        format!(
            "{:.1}× shorter than the raw 64-row commit on this disk, so with a redb commit of this \
             cost {TARGET_RATIO:.0}× is out of reach of {TASKS} writers here",
            floor_ms / needed_ms
        )
    } else {
        format!("which the raw 64-row commit on this disk, {floor_ms:.3} ms, leaves room for")
    };
    md.push_str(&format!(
        "By itself on this disk, a raw redb transaction of 64 of the log's rows takes \
         {raw64:.2} ms with the queue table alone, {raw64_log:.2} ms written as the log's thread \
         writes them (both tables, and a removal from the dead-letter table per row), and \
         {raw1:.2} ms for a single row; the log's commits come {commit_ms:.2} ms apart, \
         {vs_raw:.2}× the log-shaped 64-row transaction. That `fsync`ed commit is the floor under \
         a write-back insert: with the faster of the two 64-row transactions ({floor_shape}), \
         {tasks} / {floor_ms:.2} ms = {ceiling} writes/s is the most {tasks} writers can get \
         through it, {best:.2}× the {thr} inserts/s measured under Through, and Back's {back} \
         inserts/s is {of_ceiling:.0} % of it.\n\n\
         For {TARGET_RATIO:.0}× Through with {tasks} writers, a write-back insert would have to \
         take a tenth of a Through insert, {tasks} / ({TARGET_RATIO:.0} × {thr}/s) = \
         {needed_ms:.3} ms, its commit included: {room}. More writers sharing each commit would \
         raise the ceiling as long as a commit's time grows slower than its rows (here 64 rows \
         take {growth:.1}× the time of one; a group holds up to 4,096 commands). With {tasks} \
         writers, the way below a redb commit's cost would be an append-only log file with one \
         `fdatasync` per group in place of the redb commit, which writes its copy-on-write pages \
         and redb's own freed-page bookkeeping each time (this bench measures no such file, nor \
         a bare `fdatasync`).\n\n",
        tasks = TASKS,
        vs_raw = commit_ms / raw64_log,
        ceiling = n(ceiling),
        thr = n(through_rate),
        back = n(back_rate),
        of_ceiling = back_rate / ceiling * 100.0,
        growth = raw64 / raw1,
    ));
    if !tmpfs.is_empty() {
        let t_rate = med(tmpfs, Measured::rate);
        let t_commit_ms = 1e3 / med(tmpfs, commit_rate);
        md.push_str(&format!(
            "With the log on tmpfs, where `fsync` is free, Back reaches {} inserts/s ({:.2}× \
             Through), and the log commits every {t_commit_ms:.2} ms; {} What is left is the CPU \
             work of the engine, redb and the runtime, on {} cores shared by the {} tasks, the \
             log's thread and the flusher, and the log's waits for the writers.{}\n\n",
            n(t_rate),
            t_rate / through_rate,
            share_of_writers(med(tmpfs, per_commit), "a commit"),
            r.workers,
            TASKS,
            r.raw(64, Shape::AsTheLog, true)
                .map_or(String::new(), |raw| format!(
                    " Raw redb on tmpfs takes {:.2} ms for a transaction of 64 rows written as \
                     the log writes them: redb's own work, without the disk.",
                    raw.median_ms()
                )),
        ));
    }
    md.push_str(
        "| raw redb transaction | median ms | p99 ms | transactions/s | records/s |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for raw in &r.raw {
        let ms = raw.median_ms();
        md.push_str(&format!(
            "| {} | {ms:.3} | {:.3} | {} | {} |\n",
            raw.label(),
            median(raw.p99_s.iter().copied()) * 1e3,
            n(1e3 / ms),
            n(raw.group as f64 * 1e3 / ms),
        ));
    }
    md.push('\n');
    md
}

/// What `wpc` writes per commit say of how the [`TASKS`] writers share the
/// log's commits, as a sentence starting with `subject`.
fn share_of_writers(wpc: f64, subject: &str) -> String {
    let of = format!(
        "{subject} carries {wpc:.1} writes on average, {:.0} % of the {TASKS} writers",
        wpc / TASKS as f64 * 100.0
    );
    if wpc >= SHARED_COMMIT * TASKS as f64 {
        format!(
            "{of}: before it starts, the log's thread waits (at most half the previous commit's \
             duration, and at most 2 ms) for the writers the previous commit answered, so most \
             of them share each commit instead of taking turns."
        )
    } else {
        format!(
            "{of}: well below the writers, though the log's thread waits (at most half the \
             previous commit's duration, and at most 2 ms) for the writers the previous commit \
             answered. Not all of them come back within that wait, and a write that misses it \
             waits for the next commit, so the writers tend to take turns in cohorts, each \
             waiting out the others' commit."
        )
    }
}

/// What a mean insert latency of `cycles` commit intervals says.
fn commit_waits(cycles: f64) -> &'static str {
    if !cycles.is_finite() {
        ""
    } else if cycles < 1.5 {
        ": an insert waits about one commit"
    } else if cycles < 2.5 {
        ": an insert waits about two commits, the one under way when it arrives and the one \
         that carries it"
    } else {
        ": an insert waits several commits"
    }
}

fn log_bytes(logs: &[LogSize]) -> String {
    let m = |f: fn(&LogSize) -> f64| median(logs.iter().map(f));
    let queued = logs.first().map_or(0, |l| l.queued);
    let mut md = format!(
        "## Log bytes per queued write\n\n{} distinct keys queued while the store was held \
         down; file sizes in bytes, run by run, and the medians of the figures per write.\n\n\
         | run | empty log | half queued | all queued | after the flush | bytes per write | \
         marginal bytes per write | row and its number | file ÷ row | writes per commit while \
         queueing |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        thousands(queued)
    );
    let per_commit = |l: &LogSize| l.queued as f64 / l.commits.max(1) as f64;
    for (i, l) in logs.iter().enumerate() {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.2}× | {:.1} |\n",
            i + 1,
            thousands(l.empty_bytes),
            thousands(l.half_bytes),
            thousands(l.full_bytes),
            thousands(l.flushed_bytes),
            l.per_write(),
            l.marginal(),
            l.payload_bytes,
            l.per_write() / l.payload_bytes,
            per_commit(l),
        ));
    }
    let per_write = m(LogSize::per_write);
    let payload = m(|l| l.payload_bytes);
    md.push_str(&format!(
        "| **median** | | | | | **{per_write:.0}** | **{:.0}** | {payload:.1} | **{:.2}×** | \
         {:.1} |\n\n",
        m(LogSize::marginal),
        per_write / payload,
        m(per_commit),
    ));
    let shrinks = logs.iter().all(|l| l.flushed_bytes < l.full_bytes);
    let after = if shrinks && logs.iter().all(|l| l.flushed_bytes > l.empty_bytes) {
        "Once the queue empties the file shrinks (\"after the flush\"), though not to its \
         empty size: redb gives back free space at the file's end, and keeps the rest for reuse."
    } else if shrinks {
        "Once the queue empties the file shrinks (\"after the flush\"): redb gives back free \
         space at the file's end."
    } else {
        "The file need not shrink when the queue empties (\"after the flush\"): the commits \
         that record the flushed batches copy pages too, and redb gives back only free space at \
         the file's end."
    };
    let key_bytes = |k: u64| varint_len(k) as usize;
    let keys = match queued {
        0 => String::new(),
        q if key_bytes(0) == key_bytes(q - 1) => format!(" ({} here)", key_bytes(0)),
        q => format!(" ({}–{} here)", key_bytes(0), key_bytes(q - 1)),
    };
    md.push_str(&format!(
        "A queued write is one row of the log's queue, stored under the write's 8-byte number: \
         a 2-byte header, the key's 4-byte length and its bytes{keys}, the {ENCODED_VALUE_BYTES}-byte \
         encoded value and a 4-byte checksum (\"row and its number\", on average over the \
         queued keys). The rest of the file is redb's: its B-tree pages, which need not be full, and \
         the pages each copy-on-write commit frees, which only later commits reuse. {after}\n\n"
    ));
    md
}

fn every_run(r: &Results, ratios: &[f64]) -> String {
    let mut md = String::from(
        "## Every run\n\n| setup | inserts/s per run | p99 µs per run | store holds all after \
         (s) per run |\n|---|---|---|---|\n",
    );
    for (setup, runs) in &r.measured {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            setup.label(),
            list(runs.iter().map(Measured::rate), n),
            list(runs.iter().map(|m| m.p99_us), n),
            list(runs.iter().map(|m| m.end_to_end_s), |v| format!("{v:.2}")),
        ));
    }
    md.push_str(&format!(
        "| Back ÷ Through | {} | | |\n",
        list(ratios.iter().copied(), |v| format!("{v:.2}×"))
    ));
    md.push_str(&format!(
        "| log bytes per queued write | {} | | |\n",
        list(r.logs.iter().map(LogSize::per_write), |v| format!("{v:.0}"))
    ));
    for raw in &r.raw {
        md.push_str(&format!(
            "| raw redb ms, {} | {} | | |\n",
            raw.label(),
            list(raw.median_s.iter().map(|s| s * 1e3), |v| format!("{v:.3}"))
        ));
    }
    md
}

fn figures(
    s: &Settings,
    r: &Results,
    inserts: u64,
    ratio: f64,
    ratios: &[f64],
    store_ms: f64,
) -> serde_json::Value {
    let setups: serde_json::Map<_, _> = r
        .measured
        .iter()
        .map(|(setup, runs)| {
            let each: Vec<_> = runs
                .iter()
                .map(|m| {
                    json!({
                        "inserts_per_sec": m.rate(),
                        "insert_s": m.insert_s,
                        "end_to_end_s": m.end_to_end_s,
                        "p50_us": m.p50_us,
                        "p99_us": m.p99_us,
                        "p999_us": m.p999_us,
                        "max_us": m.max_us,
                        "store_calls": m.store.calls,
                        "store_batch_calls": m.store.batches,
                        "store_batched_keys": m.store.batched,
                        "store_mean_call_ms": m.store.mean_ms(),
                        "peak_dirty": m.peak_dirty,
                        "write_back": m.stats.map(|st| json!({
                            "appended": st.appended,
                            "log_commits": st.log_commits,
                            "saved": st.saved,
                            "full": st.full,
                            "retries": st.retries,
                            "writes_per_commit": per_commit(m),
                            "commits_per_sec": commit_rate(m),
                        })),
                    })
                })
                .collect();
            let value = json!({
                "label": setup.label(),
                "median_inserts_per_sec": med(runs, Measured::rate),
                "median_p50_us": med(runs, |m| m.p50_us),
                "median_p99_us": med(runs, |m| m.p99_us),
                "median_p999_us": med(runs, |m| m.p999_us),
                "median_end_to_end_s": med(runs, |m| m.end_to_end_s),
                "median_writes_per_commit": med(runs, per_commit),
                "median_commits_per_sec": med(runs, commit_rate),
                "runs": each,
            });
            (setup.key().to_string(), value)
        })
        .collect();
    let median_of = |f: fn(&LogSize) -> f64| median(r.logs.iter().map(f));
    let logs: Vec<_> = r
        .logs
        .iter()
        .map(|l| {
            json!({
                "queued": l.queued,
                "empty_bytes": l.empty_bytes,
                "half_bytes": l.half_bytes,
                "full_bytes": l.full_bytes,
                "flushed_bytes": l.flushed_bytes,
                "dirty": l.dirty,
                "bytes_per_write": l.per_write(),
                "marginal_bytes_per_write": l.marginal(),
                "record_bytes": l.payload_bytes,
                "log_commits": l.commits,
            })
        })
        .collect();
    let raw: Vec<_> = r
        .raw
        .iter()
        .map(|raw| {
            json!({
                "records_per_transaction": raw.group,
                "shape": format!("{:?}", raw.shape),
                "on_tmpfs": raw.on_tmpfs,
                "median_ms": raw.median_ms(),
                "runs_median_s": raw.median_s,
                "runs_p99_s": raw.p99_s,
            })
        })
        .collect();
    json!({
        "settings": {
            "inserts": inserts,
            "tasks": TASKS,
            "worker_threads": r.workers,
            "value_bytes": VALUE_BYTES,
            "store_latency_ms": LATENCY.as_secs_f64() * 1e3,
            "store_mean_call_ms": store_ms,
            "runs": s.runs,
            "held": r.logs.first().map_or(s.held, |l| l.queued),
            "raw_commits": s.commits,
            "log_dir": r.dir.display().to_string(),
            "tmpfs_dir": r.tmpfs.as_ref().map(|d| d.display().to_string()),
            "claim_ratio": [CLAIM.0, CLAIM.1],
            "target_ratio": TARGET_RATIO,
        },
        "ratio_back_to_through": ratio,
        "ratios": ratios,
        "target_met": ratio >= TARGET_RATIO,
        "setups": setups,
        "log_bytes": {
            "median_bytes_per_write": median_of(LogSize::per_write),
            "median_marginal_bytes_per_write": median_of(LogSize::marginal),
            "runs": logs,
        },
        "raw_redb": raw,
    })
}

#[cfg(test)]
mod tests {
    use tiercache::policies::WriteBackStats;

    use super::*;
    use crate::procfs::CpuSplit;
    use crate::store::Calls;

    /// A measurement of `inserts_per_s` over 10,000 inserts, with
    /// write-back's `writes_per_commit` where given.
    fn measured(inserts_per_s: f64, writes_per_commit: Option<f64>) -> Measured {
        let inserts = 10_000;
        let insert_s = inserts as f64 / inserts_per_s;
        Measured {
            inserts,
            insert_s,
            end_to_end_s: insert_s,
            p50_us: 1_000.0,
            p99_us: 2_000.0,
            p999_us: 3_000.0,
            max_us: 4_000.0,
            stats: writes_per_commit.map(|w| {
                let mut st = WriteBackStats::default();
                st.appended = inserts;
                st.log_commits = (inserts as f64 / w).round() as u64;
                st.saved = inserts;
                st
            }),
            peak_dirty: 100,
            store: Calls {
                calls: 10_000,
                batches: 40,
                batched: 10_000,
                nanos: 10_000 * 2_300_000,
            },
            io: None,
            cpu: CpuSplit::default(),
        }
    }

    fn raw(group: usize, shape: Shape, on_tmpfs: bool, ms: f64) -> Raw {
        Raw {
            group,
            shape,
            on_tmpfs,
            median_s: vec![ms / 1e3],
            p99_s: vec![ms / 1e3],
        }
    }

    /// The report of one run with these rates (inserts/s) and writes per
    /// commit, and the raw 64-row commits in ms (lean, as the log).
    fn render(back: (f64, f64), through: f64, tmpfs: (f64, f64), raw64: (f64, f64)) -> String {
        let s = Settings {
            inserts: 10_000,
            runs: 1,
            held: 6_400,
            commits: 50,
            dir: "target/bench-policies".into(),
            tmpfs: Some("/dev/shm".into()),
            out: None,
            json: None,
        };
        let r = Results {
            measured: vec![
                (Setup::Back, vec![measured(back.0, Some(back.1))]),
                (Setup::Through, vec![measured(through, None)]),
                (Setup::Around, vec![measured(through, None)]),
                (Setup::BackTmpfs, vec![measured(tmpfs.0, Some(tmpfs.1))]),
            ],
            logs: vec![LogSize {
                queued: 6_400,
                empty_bytes: 1_056_768,
                half_bytes: 3_000_000,
                full_bytes: 5_000_000,
                flushed_bytes: 2_000_000,
                payload_bytes: 534.0,
                dirty: 6_400,
                commits: 100,
            }],
            raw: vec![
                raw(1, Shape::Lean, false, 0.44),
                raw(64, Shape::Lean, false, raw64.0),
                raw(64, Shape::AsTheLog, false, raw64.1),
                raw(64, Shape::AsTheLog, true, 0.3),
            ],
            workers: 2,
            dir: s.dir.clone(),
            tmpfs: s.tmpfs.clone(),
        };
        let machine = Machine::collect(vec![("tokio", "1".into()), ("redb", "4".into())]);
        report(&s, &machine, &r, 1.0).0
    }

    #[test]
    fn the_prose_follows_the_measurements() {
        // Shared commits on the disk, cohorts on tmpfs; 10× out of reach.
        let md = render((32_000.0, 56.0), 26_800.0, (50_000.0, 38.0), (1.07, 1.16));
        assert!(md.contains("1.19×"), "{md}");
        assert!(md.contains("**not met**"));
        assert!(md.contains("most of them share each commit"));
        assert!(md.contains("an insert waits about one commit"));
        assert_eq!(md.matches("take turns in cohorts").count(), 1, "tmpfs only");
        assert!(md.contains("(the queue table alone)"));
        assert!(md.contains("64 / 1.07 ms = 59,813 writes/s"));
        assert!(md.contains("out of reach of 64 writers"));
        assert!(md.contains("one `fdatasync` per group"));
        assert!(md.contains("(1–2 here)"));
        assert!(!md.contains("per record, both tables"));
        // Cohorts on the disk too; a faster log-shaped commit is the floor;
        // a slow Through leaves room under the commit.
        let md = render((20_000.0, 32.0), 2_000.0, (50_000.0, 60.0), (1.2, 1.1));
        assert_eq!(
            md.matches("take turns in cohorts").count(),
            1,
            "the disk only"
        );
        assert!(md.contains("(the log-shaped one)"));
        assert!(md.contains("leaves room for"));
        assert!(!md.contains("out of reach"));
        assert!(md.contains("**met**") || md.contains("is met"));
    }
}

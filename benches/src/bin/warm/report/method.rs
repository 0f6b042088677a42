//! The report's method section: how every figure was measured.

use tiercache::warm::PrefetchSettings;
use tiercache_benches::{Machine, thousands};

use super::{Results, pct};
use crate::load::FILL_CAPACITY_OVER;
use crate::prefetch::{LOAD_DELAY, TASKS, THINK};
use crate::restart::{DISK_SYNC, LIFE_TASKS, WARM_CONCURRENCY};
use crate::workload::VALUE_BYTES;
use crate::{Settings, ZIPF_S};

pub(super) fn method(s: &Settings, machine: &Machine, r: &Results) -> String {
    let trace = match &r.trace {
        Some(t) => format!(
            " On the trace `{}` ({} requests, {} distinct keys) the previous life is its first {} \
             requests and the {} after them are measured, with a hot tier of {} entries (a \
             capacity of the traces README's table for it).",
            t.name,
            thousands(t.requests as u64),
            thousands(t.distinct as u64),
            thousands(s.trace_life as u64),
            thousands(s.after as u64),
            thousands(s.trace_capacity),
        ),
        None => String::new(),
    };
    let sessions = match r.sessions.first() {
        Some(&(requests, on_path, path_pages)) => format!(
            " The first run's {} sessions make {} requests, {} of them on their path; {} distinct \
             pages lie on some path.",
            thousands(2 * s.sessions as u64),
            thousands(requests as u64),
            pct(on_path as f64 / requests.max(1) as f64),
            thousands(path_pages as u64),
        ),
        None => String::new(),
    };
    let d = PrefetchSettings::default();
    format!(
        "## Method\n\n\
         - **Caches**: tiercache `Cache<u64, Vec<u8>>`, each value {VALUE_BYTES} bytes (its key, \
         then a pattern), checked on every answer; the default codec (postcard). The disk tier is \
         `RedbBackend::builder(path).durability(Durability::Periodic({sync} s))` added with \
         `CacheBuilder::backend`, otherwise what `CacheBuilder::disk` opens (1 GiB, redb {redb}), \
         in a directory under `{dir}`: `disk`'s immediate durability makes every commit wait \
         for an `fsync`, which would make each previous life (a couple of hundred thousand \
         inserts) several times slower without changing what a restart finds in the file (the \
         shutdown's close makes every write durable). Runtime: one \
         tokio {tokio} multi-thread runtime of {workers} worker threads (the machine's cores).\n\
         - **Part 1, restarts.** Keys are Zipf({ZIPF_S}) ranks over {keys} keys \
         (`rand_distr::Zipf`, {rd}; each run its own seed), each rank mapped to its key by \
         SplitMix64's finalizer, so that no tier's key order follows popularity. The **previous \
         life** is a cache of {cap} hot-tier entries with a loader (answering at once; it is \
         counted, not timed), over the redb tier or in memory alone, with \
         `CacheBuilder::snapshot(path, 1 h)`, answering the first {life} requests from \
         {LIFE_TASKS} tokio tasks (`get`, a miss loads and writes through to every tier); then \
         its last handle is dropped, a clean shutdown, which saves the snapshot and closes the \
         redb file. Each **restart** starts from a copy of those files in a fresh directory: \
         (a) **cold**: no snapshot (the redb tier, when there is one, still holds everything \
         the life wrote); (b) **snapshot**: the same builder with `snapshot(path, 1 h)`, which \
         loads the file at `build` (the build's time includes it; over a redb tier each record \
         is looked up there and the tier's copy installed); (c) **warmer from redb**: no \
         snapshot; `cache.warmer().source(cache.warm_from_tier(0)?).concurrency({WARM_CONCURRENCY})\
         .rate_limit(None).build()?.run().await`, run to completion before the requests (the \
         default rate limit, 10,000 keys a second, would stretch warming {cap} keys to \
         {default_warm_s:.0} s). Then the {after} requests that follow the life are made one \
         at a time: a request is a **hot-tier hit** when `cache.hot().contains_key(&key)` held \
         before its `get`; **answered without the loader** counts the requests during which the \
         loader was not called (hot-tier hits and redb hits). The **steady state** row is the \
         previous life's own last {after} requests: what the cache gave before it stopped (its \
         loader calls are those made from the window's first request to the end).{trace} \
         Each run makes a new previous life and a restart of each kind from it, run *r* \
         starting with the *r*-th kind.\n\
         - **Part 2, snapshot load.** A memory-only cache with room for {fill}× its entries is \
         given {entries} entries by `insert` (keys spread as above); each run times \
         `save_snapshot(path)` and then `load_snapshot(path)` into a fresh memory-only cache of \
         {entries} entries, both around the call (the load's report agrees with it; see every \
         run). \"Records/s\" is the file's records over the load's time. Then a cache over a redb \
         tier is given {dentries} entries (written through to the tier from {LIFE_TASKS} tasks) \
         and saved; each run loads that file into a fresh cache over the same redb tier and into \
         a fresh memory-only cache, both of {dentries} entries. {runs2} runs; medians.\n\
         - **Part 3, the prefetcher.** A loader that awaits `tokio::time::sleep({delay} ms)` (the \
         timer rounds up to its next millisecond tick) and counts its calls: on the request tasks \
         (marked by a tokio task-local) or on the cache's own tasks, which here are only the \
         prefetcher's fetches. Caches are fresh for each measurement: `max_capacity` and the \
         loader, and with the prefetcher `CacheBuilder::prefetch(PrefetchSettings::default())` \
         (threshold {th}, min_count {mc}, {cand} candidates, queue {q}, concurrency {conc}, \
         {mem} MiB). **User sessions**: {pages} pages; {paths} typical paths, each of {pl0} to \
         {pl1} distinct pages drawn uniformly; a session picks a path by Zipf({ps}) popularity \
         over the paths and visits its pages in order, each step visiting a page drawn uniformly \
         from all pages instead with probability {detour} (and going on with the path after it). \
         {TASKS} tokio tasks each run one session after another, each session inside \
         `tiercache::warm::in_session(session_id, ..)`, pausing {think} ms (a user reading) \
         between its pages (a prefetch must have time to land: without a pause the next page \
         is asked for while its prefetch is still loading, and waits for it all the same); hot \
         tier {pcap} entries. {ms} sessions of warm-up (not counted) are \
         followed by {ms} measured ones, a fresh set each run.{sessions} **Independent Zipf**: \
         Zipf({ZIPF_S}) over {keys} keys, hot tier {cap} entries, {TASKS} tasks making requests \
         back to back ({zr} of warm-up, then {zr} measured), with no sessions (each worker \
         thread's lookups then form one stream) or with a session per task. Between the phases, \
         and after the measured one, `prefetcher().idle()` waits for the prefetcher to finish; \
         its counters (`prefetch_stats()`) are taken there, and the report gives the measured \
         phase's difference. A request is a hot-tier hit as in part 1. **Loads** are the \
         loader's calls in the measured phase; \"by the prefetcher\" those it made. Precision \
         is `used / warmed` and coverage `used / (used + misses)` (`PrefetchStats`), over the \
         measured phase. {runs} runs, each measuring both setups, run *r* starting with the \
         *r*-th; medians.\n\n",
        sync = DISK_SYNC.as_secs(),
        redb = machine.version("redb"),
        dir = s.dir.display(),
        tokio = machine.version("tokio"),
        rd = machine.version("rand_distr"),
        workers = r.workers,
        keys = thousands(s.keys),
        cap = thousands(s.capacity),
        default_warm_s = s.capacity as f64 / 10_000.0,
        life = thousands(s.life as u64),
        after = thousands(s.after as u64),
        fill = FILL_CAPACITY_OVER,
        entries = thousands(s.entries as u64),
        dentries = thousands(s.disk_entries as u64),
        runs2 = s.load_runs,
        delay = LOAD_DELAY.as_millis(),
        th = d.threshold,
        mc = d.min_count,
        cand = d.candidates,
        q = d.queue,
        conc = d.concurrency,
        mem = d.memory_bytes >> 20,
        pages = thousands(s.shape.pages),
        paths = s.shape.paths,
        pl0 = s.shape.path_len.0,
        pl1 = s.shape.path_len.1,
        ps = s.shape.path_s,
        detour = s.shape.detour,
        think = THINK.as_millis(),
        pcap = thousands(s.page_capacity),
        ms = thousands(s.sessions as u64),
        zr = thousands(s.zipf_requests as u64),
        runs = s.runs,
    )
}

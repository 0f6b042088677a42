//! The Markdown report and its JSON figures.

use serde_json::json;
use tiercache_benches::{Machine, median, thousands};

use crate::Settings;
use crate::measure::{
    BUCKETS_US, CAPACITY_OVER_KEYS, Measured, OVER_MS, Part, REFRESH_AFTER, Setup, TASKS, TTL,
    ZIPF_S,
};
use crate::service::{LATENCY, MISSING_PERCENT, VALUE_BYTES, is_missing};

/// The target for part 1: calls for missing keys fall by at least
/// this share with negative caching.
const TARGET_FALL: f64 = 0.95;
/// The target for part 2: at least this many times fewer requests
/// wait for a load with refresh-ahead.
const TARGET_RATIO: f64 = 10.0;

/// One part's setups over one key space, run by run.
pub(crate) struct Scenario {
    pub(crate) part: Part,
    pub(crate) keys: u64,
    pub(crate) measured: Vec<(Setup, Vec<Measured>)>,
}

impl Scenario {
    fn runs(&self, setup: Setup) -> &[Measured] {
        self.measured
            .iter()
            .find(|(s, _)| *s == setup)
            .map_or(&[], |(_, m)| m.as_slice())
    }

    /// Each run's `f(on, other)` for the tiercache setup with the
    /// protection on against `other`.
    fn per_run(&self, other: Setup, f: impl Fn(&Measured, &Measured) -> f64) -> Vec<f64> {
        self.runs(Setup::On)
            .iter()
            .zip(self.runs(other))
            .map(|(on, o)| f(on, o))
            .collect()
    }
}

/// Everything measured.
pub(crate) struct Results {
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) workers: usize,
}

/// The median over `runs` of `f`.
fn med(runs: &[Measured], f: impl Fn(&Measured) -> f64) -> f64 {
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

/// A ratio, or "∞" when the divisor was zero.
fn times(v: f64) -> String {
    if v.is_infinite() {
        "∞".into()
    } else if v.is_finite() {
        format!("{v:.1}×")
    } else {
        "–".into()
    }
}

/// The share of a measurement's warm waits whose key's previous request
/// came at least the refresh window before.
fn sparse_of_warm(m: &Measured) -> f64 {
    let warm = m.waited - m.waited_cold;
    if warm == 0 {
        f64::NAN
    } else {
        m.waited_sparse as f64 / warm as f64
    }
}

/// Milliseconds to two decimals, or "–".
fn ms2(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "–".into()
    }
}

fn list(values: impl IntoIterator<Item = f64>, f: impl Fn(f64) -> String) -> String {
    values.into_iter().map(f).collect::<Vec<_>>().join(", ")
}

/// `a / b`, infinite when only `b` is zero.
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        if a == 0.0 { f64::NAN } else { f64::INFINITY }
    } else {
        a / b
    }
}

/// The fall from `before` to `after`, as a share of `before`.
fn fall(after: f64, before: f64) -> f64 {
    if before == 0.0 {
        f64::NAN
    } else {
        1.0 - after / before
    }
}

/// The probability of key `k` under Zipf(`ZIPF_S`) over `1..=keys`.
fn zipf_weight(keys: u64, k: u64) -> f64 {
    let all: f64 = (1..=keys).map(|i| (i as f64).powf(-ZIPF_S)).sum();
    (k as f64).powf(-ZIPF_S) / all
}

/// The share of Zipf(`ZIPF_S`) requests over `1..=keys` that ask for a
/// missing key.
fn missing_request_share(keys: u64) -> f64 {
    let (mut all, mut missing) = (0.0, 0.0);
    for k in 1..=keys {
        let p = (k as f64).powf(-ZIPF_S);
        all += p;
        if is_missing(k) {
            missing += p;
        }
    }
    missing / all
}

/// What a part's section found against the target: the medians
/// of the runs' own figures against tiercache with the protection off and
/// against moka.
struct Outcome {
    part: Part,
    keys: u64,
    vs_off: f64,
    vs_moka: f64,
    /// Why a target is not met, measured; empty when both are.
    bound: String,
}

impl Outcome {
    fn met(&self, v: f64) -> bool {
        match self.part {
            Part::Negative => v >= TARGET_FALL,
            Part::Refresh => v >= TARGET_RATIO,
        }
    }

    fn figure(&self, v: f64) -> String {
        match self.part {
            Part::Negative => format!("{} fewer", pct(v)),
            Part::Refresh => format!("{} fewer", times(v)),
        }
    }
}

/// The largest of `figures` over the smallest (1 for none).
fn spread(figures: &[f64]) -> f64 {
    let max = figures.iter().copied().fold(f64::NAN, f64::max);
    let min = figures.iter().copied().fold(f64::NAN, f64::min);
    if !max.is_nan() && min > 0.0 {
        max / min
    } else {
        1.0
    }
}

/// How many of the runs' own `figures` meet `outcome`'s target.
fn runs_meeting(outcome: &Outcome, figures: &[f64]) -> String {
    let meeting = figures.iter().filter(|&&v| outcome.met(v)).count();
    format!("{meeting} of {} runs meet it", figures.len())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

pub(crate) fn report(
    s: &Settings,
    machine: &Machine,
    r: &Results,
    elapsed: f64,
) -> (String, serde_json::Value) {
    let mut md = machine.report_header(
        "Load protection: negative caching and refresh-ahead in front of a 2 ms service",
        "load-protection",
        elapsed,
    );
    if s.quick {
        md.push_str(&format!(
            "**A quick check (`TIERCACHE_BENCH_QUICK=1`), not the reference figures: {} run(s) \
             of {} s per setup.**\n\n",
            s.runs, s.seconds
        ));
    }
    let mut sections = String::new();
    let mut outcomes = Vec::new();
    let mut scenarios = Vec::new();
    for sc in &r.scenarios {
        let (text, outcome, value) = match sc.part {
            Part::Negative => negative(sc, s.warmup),
            Part::Refresh => refresh(sc),
        };
        sections.push_str(&text);
        outcomes.push(outcome);
        scenarios.push(value);
    }
    md.push_str(&summary(&outcomes));
    md.push_str(&method(s, machine, r));
    md.push_str(&sections);
    md.push_str(&distribution(r));
    md.push_str(&every_run(r));
    let value = json!({
        "settings": {
            "keys": s.keys,
            "zipf_s": ZIPF_S,
            "missing_percent_of_keys": MISSING_PERCENT,
            "tasks": TASKS,
            "worker_threads": r.workers,
            "value_bytes": VALUE_BYTES,
            "service_latency_ms": LATENCY.as_secs_f64() * 1e3,
            "capacity_over_keys": CAPACITY_OVER_KEYS,
            "ttl_s": TTL.as_secs_f64(),
            "refresh_after_s": REFRESH_AFTER.as_secs_f64(),
            "seconds": s.seconds,
            "warmup_s": s.warmup,
            "runs": s.runs,
            "quick": s.quick,
            "target_fall": TARGET_FALL,
            "target_ratio": TARGET_RATIO,
        },
        "scenarios": scenarios,
    });
    (md, value)
}

fn summary(outcomes: &[Outcome]) -> String {
    let mut md = String::from(
        "## The targets\n\n| target | keys | against | measured | target |\n\
         |---|---:|---|---:|---|\n",
    );
    for o in outcomes {
        let what = match o.part {
            Part::Negative => format!(
                "part 1: loader calls/s for missing keys fall by at least {}",
                pct(TARGET_FALL)
            ),
            Part::Refresh => format!(
                "part 2: at least {TARGET_RATIO:.0}× fewer requests wait for a load with \
                 refresh-ahead"
            ),
        };
        let off = match o.part {
            Part::Negative => "tiercache, `negative_caching(false)`",
            Part::Refresh => "tiercache, no refresh-ahead",
        };
        for (against, v) in [(off, o.vs_off), ("moka `future::Cache`", o.vs_moka)] {
            md.push_str(&format!(
                "| {what} | {} | {against} | {} | {} |\n",
                thousands(o.keys),
                o.figure(v),
                verdict(o.met(v)),
            ));
        }
    }
    md.push('\n');
    for o in outcomes.iter().filter(|o| !o.bound.is_empty()) {
        md.push_str(&format!(
            "Part {} over {} keys: {}\n\n",
            part_label(o.part),
            thousands(o.keys),
            o.bound
        ));
    }
    md
}

fn method(s: &Settings, machine: &Machine, r: &Results) -> String {
    let service_ms = median(
        r.scenarios
            .iter()
            .flat_map(|sc| sc.measured.iter().flat_map(|(_, runs)| runs.iter()))
            .filter(|m| m.calls.total() > 0)
            .map(|m| m.calls.mean_ms()),
    );
    let spaces = list(s.keys.iter().map(|&k| k as f64), n);
    let missing: Vec<String> = s
        .keys
        .iter()
        .map(|&keys| {
            format!(
                "over {} keys, {} of them do not exist, which the Zipf weights make {} of the \
                 requests",
                thousands(keys),
                thousands((1..=keys).filter(|&k| is_missing(k)).count() as u64),
                pct(missing_request_share(keys))
            )
        })
        .collect();
    let tail: Vec<String> = s
        .keys
        .iter()
        .map(|&keys| {
            format!(
                "over {} keys the last is asked for about once in {} requests",
                thousands(keys),
                n(1.0 / zipf_weight(keys, keys))
            )
        })
        .collect();
    format!(
        "## Method\n\n\
         - **Service**: an async function that awaits `tokio::time::sleep({lat} ms)` and answers \
         the key's {vb}-byte value, or `None` for a key that does not exist. tokio's timer rounds \
         up to its next millisecond tick and wakes the task through the runtime, so a call takes \
         longer than {lat} ms: the median over the measurements of their calls' mean is \
         **{service_ms:.2} ms** (each measurement's in the last table). It counts the calls that \
         start in the measured window: made on a request's task, for existing and for missing \
         keys (and whether it is the key's first call since the service started), or on a task \
         of the cache's own (a refresh-ahead).\n\
         - **Keys**: `u64` ranks drawn from `rand_distr::Zipf::new(keys, {ZIPF_S})` ({rd}), each \
         task from its own seeded stream, over two key spaces, each measured in both parts: \
         {spaces}. In the larger, the tail is asked for rarely and the caches keep meeting keys \
         for the first time, as a cache in front of a large catalogue does; in the smaller, \
         every key is asked for within the warm-up, the steady state of a cache that has seen \
         its keys ({tail}). A key does not exist (part 1) when its SplitMix64 hash mod 100 is \
         below {MISSING_PERCENT}: {missing}.\n\
         - **Caches**: fresh for each measurement, with a fresh service, holding \
         {over}× the key space in entries (every key's value or negative entry fits, with a \
         margin because tiercache's hot tier gives each of its partitions an equal share), so \
         that nothing is evicted and what the loader sees is what the protection leaves. \
         tiercache `Cache<u64, Vec<u8>>`, memory-only; moka {moka} `moka::future::Cache<u64, \
         Vec<u8>>` with the same `max_capacity`.\n\
         - **Part 1, negative caching**: entries never expire. (a) tiercache \
         `optionally_get_with(key, service(key))`, negative caching on (the default \
         `negative_ttl` of 300 s, longer than a measurement); (b) the same with \
         `.negative_caching(false)`; (c) moka `optionally_get_with(key, service(key))`, which \
         caches nothing for `None`.\n\
         - **Part 2, refresh-ahead**: every key exists; `time_to_live({ttl} s)`. (a) tiercache \
         with `.loader(|k| service(k))` and `.refresh_after_write({ra} ms)`, each request a \
         `get(&key)` (a miss loads through the cache's loader; a hit on an entry older than \
         {ra} ms answers at once and reloads it in the background); (b) the same without \
         `refresh_after_write`; (c) moka `get_with(key, service(key))` with \
         `time_to_live({ttl} s)`.\n\
         - **Tasks**: {TASKS} tokio {tokio} tasks on one multi-thread runtime of {workers} worker \
         threads (the machine's cores), each making one request after another for {warm} s of \
         warm-up, not counted, and then {secs} s measured, with a `tokio::task::yield_now()` \
         after each request (as a server's request ends its task): without it a task whose \
         requests hit never gives its worker up, and the service's timers and refresh-ahead's \
         tasks wait behind it (a first version without it measured refresh-ahead's reloads at \
         45 ms for the 2 ms call). The window holds the requests that start in it, the \
         service's counters the calls that start in it, and rates are per second of it. Every \
         request is timed (`Instant` around the call) and checked (the key's own value, or \
         `None` for a missing key); percentiles are nearest-rank over every request of a \
         measurement.\n\
         - **A request that waits for a load**, counted exactly: the service keeps, per key, the \
         number of calls made on a request's task that have finished (a tokio task-local marks \
         the request tasks; refresh-ahead's reloads run on the cache's own tasks and are not \
         counted there). A request during which its key's count moved waited for a call, \
         whether it made it or joined the one that did. \"Answered without a load\" is the \
         rest. The shares of requests over {o0} ms and over {o1} ms are given beside it (a call \
         takes at least {lat} ms, but a request that joins a load near its end waits less, and \
         a hit can be held up by the scheduler), with the whole distribution below.\n\
         - **Part 2's floor**: a request whose key was not asked for in the previous {ttl} s (or \
         ever) finds its entry expired or absent whatever the cache does, since a refresh needs \
         a hit on the entry; \"cold\" requests are those (the tasks share, per key, the time of \
         its last request), and a cold request's wait is one that refresh-ahead cannot save.\n\
         - **Runs**: {runs}; each run measures every setup of each part and key space once, run \
         *r* starting with the *r*-th setup. The tables give medians over the runs; each fall \
         and ratio is the median of the runs' own (a run's measurements are close in time).\n\n",
        lat = LATENCY.as_millis(),
        vb = VALUE_BYTES,
        rd = machine.version("rand_distr"),
        missing = missing.join("; "),
        tail = tail.join(", "),
        over = CAPACITY_OVER_KEYS,
        moka = machine.version("moka"),
        ttl = TTL.as_secs_f64(),
        ra = REFRESH_AFTER.as_millis(),
        tokio = machine.version("tokio"),
        workers = r.workers,
        warm = s.warmup,
        secs = s.seconds,
        o0 = OVER_MS[0],
        o1 = OVER_MS[1],
        runs = s.runs,
    )
}

/// Part 1's section, its outcome and its figures.
fn negative(sc: &Scenario, warmup: f64) -> (String, Outcome, serde_json::Value) {
    let mut md = format!(
        "## Part 1: negative caching, {} keys ({MISSING_PERCENT} % missing)\n\n\
         | setup | requests/s | loader calls/s | for existing keys | for missing keys | p50 µs | \
         p99 µs | p99.9 µs | answered without a load |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        thousands(sc.keys)
    );
    for (setup, runs) in &sc.measured {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            setup.label(sc.part),
            n(med(runs, Measured::rate)),
            n(med(runs, |m| m.per_s(m.calls.total()))),
            n(med(runs, |m| m.per_s(m.calls.existing))),
            n(med(runs, |m| m.per_s(m.calls.missing))),
            n(med(runs, |m| m.p50_us)),
            n(med(runs, |m| m.p99_us)),
            n(med(runs, |m| m.p999_us)),
            pct(med(runs, Measured::hit_ratio)),
        ));
    }
    let on = sc.runs(Setup::On);
    let missing_per_s = |m: &Measured| m.per_s(m.calls.missing);
    let repeats_per_s = |m: &Measured| m.per_s(m.calls.missing - m.calls.missing_first);
    let falls_off = sc.per_run(Setup::Off, |a, b| fall(missing_per_s(a), missing_per_s(b)));
    let falls_moka = sc.per_run(Setup::Moka, |a, b| fall(missing_per_s(a), missing_per_s(b)));
    let per_request = |m: &Measured| m.calls.missing as f64 / m.requests.max(1) as f64;
    let falls_req = sc.per_run(Setup::Off, |a, b| fall(per_request(a), per_request(b)));
    let falls_repeat = sc.per_run(Setup::Off, |a, b| fall(repeats_per_s(a), missing_per_s(b)));
    let falls_repeat_moka =
        sc.per_run(Setup::Moka, |a, b| fall(repeats_per_s(a), missing_per_s(b)));
    let m = |v: &[f64]| median(v.iter().copied());
    let outcome = Outcome {
        part: sc.part,
        keys: sc.keys,
        vs_off: m(&falls_off),
        vs_moka: m(&falls_moka),
        bound: String::new(),
    };
    md.push_str(&format!(
        "\n**Loader calls for missing keys, negative caching on against off: {} fewer per second** \
         (the runs: {}); against moka: **{} fewer** (the runs: {}). Per request rather than per \
         second (with negative caching off about a fifth of the requests wait for the service, \
         so fewer are made a second): {} fewer. The issue's target of at least {} fewer is {} \
         against `negative_caching(false)` ({}) and {} against moka ({}).\n\n",
        pct(outcome.vs_off),
        list(falls_off.iter().copied(), pct),
        pct(outcome.vs_moka),
        list(falls_moka.iter().copied(), pct),
        pct(m(&falls_req)),
        pct(TARGET_FALL),
        verdict(outcome.met(outcome.vs_off)),
        runs_meeting(&outcome, &falls_off),
        verdict(outcome.met(outcome.vs_moka)),
        runs_meeting(&outcome, &falls_moka),
    ));
    let left = med(on, missing_per_s);
    let first = med(on, |m| m.per_s(m.calls.missing_first));
    let repeat = med(on, repeats_per_s);
    let mut bound = String::new();
    if left == 0.0 {
        md.push_str(
            "With negative caching on, no call for a missing key started in the window: each \
             missing key asked for was called once, during the warm-up, and its negative entry \
             answered it from then on.\n\n",
        );
    } else {
        md.push_str(&format!(
            "With negative caching on, {} calls/s for missing keys remain: {} are the key's \
             first call since the service started (a key never asked for before, which no \
             cache can answer) and {} calls of a key called before (which a negative entry \
             should have answered). Leaving the first calls out, the fall is {} against off \
             and {} against moka.\n\n",
            n(left),
            n(first),
            n(repeat),
            pct(m(&falls_repeat)),
            pct(m(&falls_repeat_moka)),
        ));
        let both = outcome.met(outcome.vs_off) && outcome.met(outcome.vs_moka);
        if !both && outcome.met(m(&falls_repeat)) && outcome.met(m(&falls_repeat_moka)) {
            bound = format!(
                "the fall is bounded by first calls, not by the negative entries: with \
                 negative caching on, {} of the {} calls/s for missing keys are a key's first \
                 (the window opens {warmup} s after the cache was built, and the Zipf \
                 tail is still being reached for the first time then; a first call is the \
                 same under every setup), and without them the fall is {} \
                 against off and {} against moka.",
                n(first),
                n(left),
                pct(m(&falls_repeat)),
                pct(m(&falls_repeat_moka)),
            );
        } else if !both {
            bound = format!(
                "{} calls/s for missing keys that had been called before remain with negative \
                 caching on, which its negative entries should have answered.",
                n(repeat)
            );
        }
    }
    let stat = |f: fn(&tiercache::LoadStats) -> u64, runs: &[Measured]| {
        med(runs, |m| m.stats.map_or(f64::NAN, |st| f(&st) as f64))
    };
    md.push_str(
        "tiercache's own counters (`load_stats()`, warm-up included), medians:\n\n\
         | setup | negative_hits | negatives_stored |\n|---|---:|---:|\n",
    );
    for setup in [Setup::On, Setup::Off] {
        let runs = sc.runs(setup);
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            setup.label(sc.part),
            n(stat(|st| st.negative_hits, runs)),
            n(stat(|st| st.negatives_stored, runs)),
        ));
    }
    md.push('\n');
    let value = json!({
        "part": sc.part.key(),
        "keys": sc.keys,
        "missing_request_share_expected": missing_request_share(sc.keys),
        "fall_missing_calls_per_s_vs_off": outcome.vs_off,
        "fall_missing_calls_per_s_vs_off_runs": falls_off,
        "fall_missing_calls_per_s_vs_moka": outcome.vs_moka,
        "fall_missing_calls_per_s_vs_moka_runs": falls_moka,
        "fall_missing_calls_per_request_vs_off": m(&falls_req),
        "fall_without_first_calls_vs_off": m(&falls_repeat),
        "fall_without_first_calls_vs_moka": m(&falls_repeat_moka),
        "target_met_vs_off": outcome.met(outcome.vs_off),
        "target_met_vs_moka": outcome.met(outcome.vs_moka),
        "setups": setups_json(sc),
    });
    (md, Outcome { bound, ..outcome }, value)
}

/// Part 2's section, its outcome and its figures.
fn refresh(sc: &Scenario) -> (String, Outcome, serde_json::Value) {
    let mut md = format!(
        "## Part 2: refresh-ahead, {} keys (all existing, TTL {} s)\n\n\
         | setup | requests/s | loader calls/s | of them refresh-ahead | requests that waited \
         for a load | over {} ms | over {} ms | p50 µs | p99 µs | p99.9 µs | max µs |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        thousands(sc.keys),
        TTL.as_secs_f64(),
        OVER_MS[0],
        OVER_MS[1],
    );
    for (setup, runs) in &sc.measured {
        md.push_str(&format!(
            "| {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} | {} |\n",
            setup.label(sc.part),
            n(med(runs, Measured::rate)),
            n(med(runs, |m| m.per_s(m.calls.total()))),
            n(med(runs, |m| m.per_s(m.calls.background))),
            pct(med(runs, Measured::waited_share)),
            pct(med(runs, |m| m.over[0] as f64 / m.requests.max(1) as f64)),
            pct(med(runs, |m| m.over[1] as f64 / m.requests.max(1) as f64)),
            n(med(runs, |m| m.p50_us)),
            n(med(runs, |m| m.p99_us)),
            n(med(runs, |m| m.p999_us)),
            n(med(runs, |m| m.max_us)),
        ));
    }
    let share = |m: &Measured| m.waited_share();
    let warm = |m: &Measured| m.waited_warm_share();
    let ratios_off = sc.per_run(Setup::Off, |a, b| ratio(share(b), share(a)));
    let ratios_moka = sc.per_run(Setup::Moka, |a, b| ratio(share(b), share(a)));
    let warm_off = sc.per_run(Setup::Off, |a, b| ratio(warm(b), warm(a)));
    let warm_moka = sc.per_run(Setup::Moka, |a, b| ratio(warm(b), warm(a)));
    let m = |v: &[f64]| median(v.iter().copied());
    let outcome = Outcome {
        part: sc.part,
        keys: sc.keys,
        vs_off: m(&ratios_off),
        vs_moka: m(&ratios_moka),
        bound: String::new(),
    };
    md.push_str(&format!(
        "\n**Requests that wait for a load: {} fewer with refresh-ahead than without** (the runs: \
         {}), **{} fewer than moka** (the runs: {}). The issue's target of at least {:.0}× fewer \
         is {} against tiercache without refresh-ahead ({}) and {} against moka ({}).\n\n",
        times(outcome.vs_off),
        list(ratios_off.iter().copied(), times),
        times(outcome.vs_moka),
        list(ratios_moka.iter().copied(), times),
        TARGET_RATIO,
        verdict(outcome.met(outcome.vs_off)),
        runs_meeting(&outcome, &ratios_off),
        verdict(outcome.met(outcome.vs_moka)),
        runs_meeting(&outcome, &ratios_moka),
    ));
    md.push_str(&format!(
        "Where the waits come from: a request whose key was not asked for in the previous {ttl} s \
         (\"cold\") must wait under every setup; a warm one waits only if its entry expired \
         since.\n\n\
         | setup | cold requests | waited, cold | waited, warm | of them, the key's previous \
         request {win} ms or more before | shortest wait µs | longest request without a wait \
         µs |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        ttl = TTL.as_secs_f64(),
        win = (TTL - REFRESH_AFTER).as_millis(),
    ));
    for (setup, runs) in &sc.measured {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            setup.label(sc.part),
            pct(med(runs, Measured::cold_share)),
            pct(med(runs, |m| m.waited_cold as f64 / m.requests.max(1) as f64)),
            pct(med(runs, warm)),
            pct(med(runs, sparse_of_warm)),
            n(med(runs, |m| m.min_waited_us)),
            n(med(runs, |m| m.max_unwaited_us)),
        ));
    }
    let on = sc.runs(Setup::On);
    let on_warm = med(on, warm);
    let on_sparse = med(on, sparse_of_warm);
    let on_share = med(on, share);
    let cold_floor = med(on, |m| m.waited_cold as f64 / m.requests.max(1) as f64);
    let cold_of_waits = med(on, |m| m.waited_cold as f64 / m.waited.max(1) as f64);
    md.push_str(&format!(
        "\nCounting only the warm requests' waits, the ones refresh-ahead can save: {} fewer \
         than without refresh-ahead (the runs: {}) and {} fewer than moka (the runs: {}). With \
         refresh-ahead {} of the requests still wait ({} requests a second, against {} without \
         it and {} with moka), {} of those waits cold{}.\n\n",
        times(m(&warm_off)),
        list(warm_off.iter().copied(), times),
        times(m(&warm_moka)),
        list(warm_moka.iter().copied(), times),
        pct(on_share),
        n(med(on, |m| m.per_s(m.waited))),
        n(med(sc.runs(Setup::Off), |m| m.per_s(m.waited))),
        n(med(sc.runs(Setup::Moka), |m| m.per_s(m.waited))),
        pct(cold_of_waits),
        if spread(&ratios_off) > 2.0 {
            "; where so few wait, a handful more or fewer moves the ratio a long way, which is \
             why it varies so from run to run"
        } else {
            ""
        },
    ));
    let both = outcome.met(outcome.vs_off) && outcome.met(outcome.vs_moka);
    let bound = if both {
        String::new()
    } else if cold_of_waits >= 0.5 {
        format!(
            "the ratio is bounded by cold requests, not by refresh-ahead: with it, {} of the \
             requests wait and {} of the requests are cold waits ({} of the waits), requests \
             for keys of the Zipf tail asked for less than once per {ttl} s TTL, whose entry had \
             expired (or was never loaded), with no hit to start a refresh. Every setup with a \
             {ttl} s TTL pays that floor. Counting warm requests only, refresh-ahead waits {} \
             fewer than without it and {} fewer than moka: of the warm waits left ({} of the \
             requests), {} are of a key whose previous request came {win} ms or more before: keys asked for a few times a second, for which a hit in the {win} ms \
             between an entry's {ra} ms and its expiry, which starts the refresh, is a matter of \
             chance.",
            pct(on_share),
            pct(cold_floor),
            pct(cold_of_waits),
            times(m(&warm_off)),
            times(m(&warm_moka)),
            pct(on_warm),
            pct(on_sparse),
            ttl = TTL.as_secs_f64(),
            win = (TTL - REFRESH_AFTER).as_millis(),
            ra = REFRESH_AFTER.as_millis(),
        )
    } else {
        format!(
            "with refresh-ahead {} of the requests still wait, most of them warm (only {} of \
             the waits are cold): their entries expired although the key had been asked for \
             within the TTL, when no hit fell between {} ms and {} s of the entry's age to \
             start a refresh.",
            pct(on_share),
            pct(cold_of_waits),
            REFRESH_AFTER.as_millis(),
            TTL.as_secs_f64(),
        )
    };
    let refreshes = med(on, |m| m.stats.map_or(f64::NAN, |st| st.refreshes as f64));
    md.push_str(&format!(
        "tiercache's `load_stats().refreshes` with refresh-ahead (warm-up included), median: \
         {}; refresh-ahead's calls take {:.2} ms on average (all calls of the setup).\n\n",
        n(refreshes),
        med(on, |m| m.calls.mean_ms()),
    ));
    let value = json!({
        "part": sc.part.key(),
        "keys": sc.keys,
        "ratio_waited_off_to_on": outcome.vs_off,
        "ratio_waited_off_to_on_runs": ratios_off,
        "ratio_waited_moka_to_on": outcome.vs_moka,
        "ratio_waited_moka_to_on_runs": ratios_moka,
        "ratio_warm_waited_off_to_on": m(&warm_off),
        "ratio_warm_waited_moka_to_on": m(&warm_moka),
        "target_met_vs_off": outcome.met(outcome.vs_off),
        "target_met_vs_moka": outcome.met(outcome.vs_moka),
        "setups": setups_json(sc),
    });
    (md, Outcome { bound, ..outcome }, value)
}

fn bucket_labels() -> Vec<String> {
    let fmt = |us: u64| {
        if us >= 1_000 {
            format!("{} ms", us as f64 / 1e3)
        } else {
            format!("{us} µs")
        }
    };
    let mut labels = Vec::new();
    let mut lower = None;
    for &b in &BUCKETS_US {
        labels.push(match lower {
            None => format!("< {}", fmt(b)),
            Some(l) => format!("{}–{}", fmt(l), fmt(b)),
        });
        lower = Some(b);
    }
    labels.push(format!("≥ {}", fmt(*BUCKETS_US.last().expect("buckets"))));
    labels
}

fn distribution(r: &Results) -> String {
    let labels = bucket_labels();
    let mut md = format!(
        "## Request latency distribution\n\nThe share of requests in each latency range, \
         medians over the runs.\n\n| part | keys | setup | {} |\n|---|---:|---|{}\n",
        labels.join(" | "),
        "---:|".repeat(labels.len())
    );
    for sc in &r.scenarios {
        for (setup, runs) in &sc.measured {
            let cells: Vec<String> = (0..labels.len())
                .map(|i| {
                    pct(med(runs, |m| {
                        m.buckets[i] as f64 / m.requests.max(1) as f64
                    }))
                })
                .collect();
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                part_label(sc.part),
                thousands(sc.keys),
                setup.label(sc.part),
                cells.join(" | ")
            ));
        }
    }
    md.push('\n');
    md
}

fn part_label(part: Part) -> &'static str {
    match part {
        Part::Negative => "1",
        Part::Refresh => "2",
    }
}

fn every_run(r: &Results) -> String {
    let mut md = String::from(
        "## Every run\n\n| part | keys | setup | requests/s per run | loader calls/s per run | \
         for missing keys per run | requests that waited per run | p99 µs per run | service \
         mean ms per run |\n|---|---:|---|---|---|---|---|---|---|\n",
    );
    for sc in &r.scenarios {
        for (setup, runs) in &sc.measured {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                part_label(sc.part),
                thousands(sc.keys),
                setup.label(sc.part),
                list(runs.iter().map(Measured::rate), n),
                list(runs.iter().map(|m| m.per_s(m.calls.total())), n),
                list(runs.iter().map(|m| m.per_s(m.calls.missing)), n),
                list(runs.iter().map(Measured::waited_share), pct),
                list(runs.iter().map(|m| m.p99_us), n),
                list(runs.iter().map(|m| m.calls.mean_ms()), ms2),
            ));
        }
    }
    md
}

fn setups_json(sc: &Scenario) -> serde_json::Value {
    let setups: serde_json::Map<_, _> = sc
        .measured
        .iter()
        .map(|(setup, runs)| {
            let each: Vec<_> = runs
                .iter()
                .map(|m| {
                    json!({
                        "seconds": m.seconds,
                        "requests": m.requests,
                        "requests_per_sec": m.rate(),
                        "missing_requests": m.missing,
                        "waited": m.waited,
                        "waited_missing": m.waited_missing,
                        "cold": m.cold,
                        "waited_cold": m.waited_cold,
                        "waited_warm_sparse": m.waited_sparse,
                        "over_1ms": m.over[0],
                        "over_1_5ms": m.over[1],
                        "buckets_us": BUCKETS_US,
                        "bucket_counts": m.buckets,
                        "p50_us": m.p50_us,
                        "p99_us": m.p99_us,
                        "p999_us": m.p999_us,
                        "max_us": m.max_us,
                        "min_waited_us": m.min_waited_us,
                        "max_unwaited_us": m.max_unwaited_us,
                        "calls": {
                            "existing": m.calls.existing,
                            "missing": m.calls.missing,
                            "existing_first": m.calls.existing_first,
                            "missing_first": m.calls.missing_first,
                            "background": m.calls.background,
                            "mean_ms": m.calls.mean_ms(),
                        },
                        "load_stats": m.stats,
                    })
                })
                .collect();
            let value = json!({
                "label": setup.label(sc.part),
                "median_requests_per_sec": med(runs, Measured::rate),
                "median_loader_calls_per_sec": med(runs, |m| m.per_s(m.calls.total())),
                "median_existing_calls_per_sec": med(runs, |m| m.per_s(m.calls.existing)),
                "median_missing_calls_per_sec": med(runs, |m| m.per_s(m.calls.missing)),
                "median_background_calls_per_sec": med(runs, |m| m.per_s(m.calls.background)),
                "median_waited_share": med(runs, Measured::waited_share),
                "median_hit_ratio": med(runs, Measured::hit_ratio),
                "median_p50_us": med(runs, |m| m.p50_us),
                "median_p99_us": med(runs, |m| m.p99_us),
                "median_p999_us": med(runs, |m| m.p999_us),
                "runs": each,
            });
            (setup.key().to_string(), value)
        })
        .collect();
    serde_json::Value::Object(setups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Calls;

    /// One second of `requests`, `waited` of them (`cold` of those cold),
    /// with `missing` calls for missing keys (`first` of them first calls).
    fn measured(requests: u64, waited: u64, cold: u64, missing: u64, first: u64) -> Measured {
        Measured {
            seconds: 1.0,
            requests,
            missing: requests / 5,
            waited,
            waited_missing: 0,
            cold,
            waited_cold: cold,
            waited_sparse: 0,
            over: [waited, waited],
            buckets: [requests - waited, 0, 0, 0, waited, 0, 0],
            max_unwaited_us: 50.0,
            min_waited_us: 10.0,
            p50_us: 1.0,
            p99_us: 3_000.0,
            p999_us: 4_000.0,
            max_us: 9_000.0,
            calls: Calls {
                existing: 100,
                missing,
                missing_first: first,
                existing_first: 100,
                background: 0,
                nanos: (100 + missing) * 3_000_000,
            },
            stats: None,
        }
    }

    fn render(negative_on: Measured, refresh_on: Measured) -> String {
        let s = Settings {
            keys: vec![1_000],
            seconds: 1.0,
            warmup: 1.0,
            runs: 1,
            quick: false,
            out: None,
            json: None,
        };
        let scenario = |part, on: Measured, off: Measured| Scenario {
            part,
            keys: 1_000,
            measured: vec![
                (Setup::On, vec![on]),
                (Setup::Off, vec![off.clone()]),
                (Setup::Moka, vec![off]),
            ],
        };
        let r = Results {
            scenarios: vec![
                scenario(
                    Part::Negative,
                    negative_on,
                    measured(100_000, 20_000, 0, 10_000, 0),
                ),
                scenario(
                    Part::Refresh,
                    refresh_on,
                    measured(100_000, 1_000, 100, 0, 0),
                ),
            ],
            workers: 2,
        };
        let machine = Machine::collect(vec![("tokio", "1".into()), ("moka", "0.12".into())]);
        report(&s, &machine, &r, 1.0).0
    }

    #[test]
    fn the_verdicts_follow_the_measurements() {
        // Both targets met: 99 % fewer missing-key calls, 20× fewer waits.
        let md = render(
            measured(1_000_000, 10, 0, 100, 100),
            measured(1_000_000, 500, 0, 0, 0),
        );
        assert!(md.contains("| 99.0 % fewer | met |"), "{md}");
        assert!(md.contains("| 20.0× fewer | met |"), "{md}");
        assert!(!md.contains("not met"), "{md}");
        // Missed, by first calls and by cold requests.
        let md = render(
            measured(100_000, 10_000, 0, 5_000, 5_000),
            measured(100_000, 800, 700, 0, 0),
        );
        assert!(md.contains("| 50.0 % fewer | **not met** |"), "{md}");
        assert!(md.contains("bounded by first calls"), "{md}");
        assert!(md.contains("| 1.2× fewer | **not met** |"), "{md}");
        assert!(md.contains("bounded by cold requests"), "{md}");
        // Missed by repeat calls: negative entries that did not answer.
        let md = render(
            measured(100_000, 10_000, 0, 5_000, 0),
            measured(1_000_000, 500, 0, 0, 0),
        );
        assert!(
            md.contains("which its negative entries should have answered"),
            "{md}"
        );
    }

    #[test]
    fn shares_and_ratios_read_plainly() {
        assert_eq!(pct(0.0), "0 %");
        assert_eq!(pct(0.985), "98.5 %");
        assert_eq!(pct(0.0123), "1.23 %");
        assert_eq!(pct(0.000_012), "0.0012 %");
        assert_eq!(times(f64::INFINITY), "∞");
        assert_eq!(times(12.34), "12.3×");
        assert_eq!(ratio(1.0, 0.0), f64::INFINITY);
        assert!(ratio(0.0, 0.0).is_nan());
        assert!((missing_request_share(100_000) - 0.218).abs() < 0.01);
    }
}

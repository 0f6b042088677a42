//! A snapshot save survives `kill -9`: a child process (this test binary,
//! run again in child mode) fills a cache with a large generation of
//! entries, saves it, and does so again and again with the next
//! generation, saying `saving <g>` before each save and `saved <g>
//! <records> <ms>` after it; the parent lets the first save complete, then
//! kills the child at a random moment during a later one. A fresh cache
//! then loads the snapshot: it must load, and hold exactly one whole
//! generation, the last one saved or the one the kill caught (its rename
//! may have happened just before the kill), never a mix and never a cut
//! one. The rounds share one directory, so each later child saves beside
//! the temporary files the earlier ones left, and the parent saves and
//! loads there once more at the end.
//!
//! `TIERCACHE_SNAPSHOT_CRASH_ROUNDS` sets the number of kills (5 by
//! default), `TIERCACHE_SNAPSHOT_CRASH_ENTRIES` the entries of a
//! generation (100,000 by default) and `TIERCACHE_SNAPSHOT_CRASH_SEED` the
//! seed of the kill delays (printed at the start).
#![cfg(unix)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tiercache::Cache;
use tiercache::warm::read_snapshot;

/// Set in the child's environment: the directory it saves in. Its
/// presence is what makes the test run the saver instead.
const CHILD_ENV: &str = "TIERCACHE_SNAPSHOT_CRASH_CHILD";
/// The child's round, which numbers its generations.
const CHILD_ROUND_ENV: &str = "TIERCACHE_SNAPSHOT_CRASH_CHILD_ROUND";
const ROUNDS_ENV: &str = "TIERCACHE_SNAPSHOT_CRASH_ROUNDS";
const ENTRIES_ENV: &str = "TIERCACHE_SNAPSHOT_CRASH_ENTRIES";
const SEED_ENV: &str = "TIERCACHE_SNAPSHOT_CRASH_SEED";

const DEFAULT_ROUNDS: u64 = 5;
/// Enough for a save of about 20 MB, which takes long enough in a debug
/// build for kills to land all through it, while five rounds stay under
/// 20 s on two cores.
const DEFAULT_ENTRIES: u64 = 100_000;
/// Each value is this long, so that a save takes long enough for a kill
/// to land inside it.
const VALUE_LEN: usize = 200;
/// Round `r`'s generations are numbered from `r * ROUND_SPAN` up.
const ROUND_SPAN: u64 = 1_000_000;
/// The name the child is run with, so that only this test runs in it.
const CRASH_TEST: &str = "a_save_killed_at_random_moments_leaves_one_whole_generation";
/// A child nobody killed stops by itself after this long.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
/// How long the parent waits for a child's line.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|e| panic!("{name}={text} is not a number: {e}")),
    )
}

fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join("hot.snap")
}

/// The value of entry `i` in generation `generation`: both numbers, then
/// filler that depends on them, so that a value from a cut or mixed file
/// cannot pass for a whole one.
fn value(generation: u64, i: u64) -> String {
    let head = format!("{generation:012}:{i:08}:");
    let fill = char::from(b'a' + ((generation + i) % 26) as u8);
    let mut v = head;
    while v.len() < VALUE_LEN {
        v.push(fill);
    }
    v
}

/// The generation a value belongs to, if it is a whole value of its key.
fn generation_of(i: u64, v: &str) -> Option<u64> {
    let generation: u64 = v.get(..12)?.parse().ok()?;
    (value(generation, i) == v).then_some(generation)
}

/// Prints one line for the parent and flushes it at once; a parent that is
/// gone ends the child.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(5);
    }
}

/// The child: fills and saves generation after generation until killed.
fn run_child(dir: &Path) -> ! {
    let round = env_number(CHILD_ROUND_ENV).expect("the parent sets the round");
    let entries = env_number(ENTRIES_ENV).unwrap_or(DEFAULT_ENTRIES);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    runtime.block_on(async {
        let cache: Cache<u64, String> = Cache::builder()
            .max_capacity(entries * 2)
            .build()
            .await
            .expect("the child's cache");
        let path = snapshot_path(dir);
        for generation in round * ROUND_SPAN.. {
            for i in 0..entries {
                cache
                    .insert(i, value(generation, i))
                    .await
                    .expect("an insert");
            }
            say(&format!("saving {generation}"));
            let t = Instant::now();
            let report = cache.save_snapshot(&path).await.unwrap_or_else(|e| {
                eprintln!("save {generation} failed: {e}");
                std::process::exit(4)
            });
            say(&format!(
                "saved {generation} {} {}",
                report.records,
                t.elapsed().as_millis()
            ));
            if started.elapsed() > CHILD_DEADLINE {
                break;
            }
        }
    });
    eprintln!("the crash child was not killed within {CHILD_DEADLINE:?}");
    std::process::exit(3)
}

/// What one child said before it died.
#[derive(Debug, Default)]
struct ChildRun {
    /// The generations it saw saved.
    saved: Vec<u64>,
    /// The generation whose `saving` line came last.
    last_saving: Option<u64>,
}

/// Runs one child in `dir` for round `round`; once it has saved once, the
/// next save it starts is killed `delay(save_ms)` after its `saving`
/// line, where `save_ms` is how long the child's last save took.
fn crash_one_child(dir: &Path, round: u64, delay: impl Fn(u64) -> Duration) -> ChildRun {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([CRASH_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the crash child starts");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if !line.ends_with('\n') => return,
                Ok(_) => {
                    if tx.send(line.trim_end().to_owned()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut run = ChildRun::default();
    let mut save_ms = None;
    let note = |run: &mut ChildRun, line: &str| -> Option<u64> {
        // The harness's "test <name> ... " has no newline of its own, so
        // it may share a line with the child's first one.
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            [.., "saving", g] => {
                run.last_saving = Some(g.parse().expect("a generation"));
                None
            }
            [.., "saved", g, records, ms] => {
                run.saved.push(g.parse().expect("a generation"));
                let records: u64 = records.parse().expect("a record count");
                let entries = env_number(ENTRIES_ENV).unwrap_or(DEFAULT_ENTRIES);
                assert_eq!(records, entries, "round {round}: a save missed entries");
                Some(ms.parse().expect("a duration"))
            }
            _ => None,
        }
    };
    // The first save completes; the kill comes during a later one.
    let mut killed_after = None;
    while killed_after.is_none() {
        let Ok(line) = rx.recv_timeout(LINE_TIMEOUT) else {
            break;
        };
        if let Some(ms) = note(&mut run, &line) {
            save_ms = Some(ms);
        }
        if let (Some(ms), Some(g)) = (save_ms, run.last_saving)
            && run.saved.last().is_some_and(|&s| s < g)
        {
            killed_after = Some(delay(ms));
        }
    }
    if let Some(delay) = killed_after {
        std::thread::sleep(delay);
    }
    // `Child::kill` sends SIGKILL: no destructor or flush of the child runs.
    child.kill().expect("the crash child can be killed");
    let status = child.wait().expect("the crash child is reaped");
    reader.join().expect("the stdout reader does not panic");
    let stderr = errors.join().expect("the stderr reader does not panic");
    for line in rx.try_iter() {
        note(&mut run, &line);
    }
    assert!(
        killed_after.is_some(),
        "round {round}: the child never started a second save ({status}); its stderr:\n{stderr}"
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: the crash child ended by itself ({status}); its stderr:\n{stderr}"
    );
    run
}

/// Loads the snapshot in `dir` into a fresh memory-only cache and returns
/// the one generation all its entries belong to, panicking otherwise.
async fn loaded_generation(dir: &Path, entries: u64, context: &str) -> u64 {
    let cache: Cache<u64, String> = Cache::builder()
        .max_capacity(entries * 2)
        .build()
        .await
        .unwrap();
    let report = cache
        .load_snapshot(snapshot_path(dir))
        .await
        .unwrap_or_else(|e| panic!("{context}: the snapshot does not load: {e}"));
    assert_eq!(report.records, entries, "{context}: {report:?}");
    assert_eq!(report.loaded, entries, "{context}: {report:?}");
    let mut generation = None;
    for i in 0..entries {
        let v = cache
            .hot()
            .get(&i)
            .unwrap_or_else(|| panic!("{context}: entry {i} was not loaded"));
        let g = generation_of(i, &v)
            .unwrap_or_else(|| panic!("{context}: entry {i} holds a damaged value {v:?}"));
        match generation {
            None => generation = Some(g),
            Some(first) => assert_eq!(
                g, first,
                "{context}: entry {i} is of generation {g}, entry 0 of {first}: a mixed snapshot"
            ),
        }
    }
    generation.expect("at least one entry")
}

/// The temporary files beside the snapshot.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("the directory lists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "hot.snap")
        .collect()
}

#[test]
fn a_save_killed_at_random_moments_leaves_one_whole_generation() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_child(Path::new(&dir));
    }
    let rounds = env_number(ROUNDS_ENV).unwrap_or(DEFAULT_ROUNDS);
    let entries = env_number(ENTRIES_ENV).unwrap_or(DEFAULT_ENTRIES);
    let seed = env_number(SEED_ENV).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos() as u64
    });
    println!("{ROUNDS_ENV}={rounds} {ENTRIES_ENV}={entries} {SEED_ENV}={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut last_saved: Option<u64> = None;
    let mut caught_in_flight = 0;
    for round in 1..=rounds {
        // Anywhere from the save's start to a little past its usual end.
        let fraction: f64 = rng.random_range(0.0..1.3);
        let run = crash_one_child(dir.path(), round, |ms| {
            Duration::from_secs_f64(ms as f64 / 1e3 * fraction)
        });
        if let Some(&g) = run.saved.last() {
            last_saved = Some(g);
        }
        let in_flight = run.last_saving.filter(|&g| Some(g) != last_saved);
        let context = format!(
            "round {round} (seed {seed}, killed {fraction:.2} of a save in, last saved {last_saved:?}, in flight {in_flight:?})"
        );
        let g = runtime.block_on(loaded_generation(dir.path(), entries, &context));
        assert!(
            Some(g) == last_saved || Some(g) == in_flight,
            "{context}: the snapshot holds generation {g}"
        );
        if Some(g) == in_flight {
            caught_in_flight += 1;
        }
        println!(
            "{context}: loaded generation {g}; files left beside it: {:?}",
            leftovers(dir.path())
        );
    }
    println!("{caught_in_flight} of {rounds} kills came after the rename of the save in flight");

    // Whatever the kills left beside the snapshot, a later save and load
    // there work.
    runtime.block_on(async {
        let cache: Cache<u64, String> = Cache::builder().max_capacity(1_000).build().await.unwrap();
        for i in 0..10 {
            cache.insert(i, value(7, i)).await.unwrap();
        }
        let saved = cache
            .save_snapshot(snapshot_path(dir.path()))
            .await
            .expect("a save beside the crashed saves' leftovers");
        assert_eq!(saved.records, 10);
        let (_, records) = read_snapshot(snapshot_path(dir.path())).unwrap();
        assert_eq!(records.len(), 10);
        assert_eq!(
            loaded_generation(dir.path(), 10, "after the kills").await,
            7
        );
    });
}

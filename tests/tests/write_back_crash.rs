//! Write-back survives `kill -9`: a child process (this test binary, run
//! again in child mode) writes under [`WritePolicy::Back`] to a store made
//! of files, printing each write before it starts and again once `insert`
//! or `remove` acknowledged it; the parent kills it at a random moment,
//! reopens a cache on the same log and store, flushes, and checks that the
//! store holds every key at its last acknowledged value (or at a value a
//! write the kill caught in flight left, which may have been durable
//! already), and that no key's history in the store ever went backwards.
//! The rounds share one log and one store; after some kills the parent
//! does not check, and the next child replays the crashed one's log while
//! it writes and is killed in turn, so that crashes during a replay are
//! covered too.
//!
//! `TIERCACHE_CRASH_ROUNDS` sets the number of kills (50 by default) and
//! `TIERCACHE_CRASH_SEED` the seed of the random choices (printed at the
//! start). A seed replays the kill delays and the child's choice of keys;
//! the timing of the child's threads is the machine's, so a seed narrows a
//! failure down rather than repeating it exactly.
#![cfg(unix)]

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tiercache::{Cache, Error, ErrorKind, Result, Store, WritePolicy};
use tiercache_tests::TestStore;

/// Set in the child's environment: the directory it writes in. Its
/// presence is what makes the crash test run the writer instead.
const CHILD_ENV: &str = "TIERCACHE_CRASH_CHILD";
/// The child's round number, which numbers its writes.
const CHILD_ROUND_ENV: &str = "TIERCACHE_CRASH_CHILD_ROUND";
/// The seed of the child's choice of keys and operations.
const CHILD_SEED_ENV: &str = "TIERCACHE_CRASH_CHILD_SEED";
/// How many times the parent kills a child.
const ROUNDS_ENV: &str = "TIERCACHE_CRASH_ROUNDS";
/// The parent's seed.
const SEED_ENV: &str = "TIERCACHE_CRASH_SEED";

/// The kills of a plain `cargo test`, enough to hit the log, the flusher
/// and the store at many different moments while staying well under a
/// minute on two cores in a debug build.
const DEFAULT_ROUNDS: u64 = 50;
/// The name the child is run with, so that only this test runs in it.
const CRASH_TEST: &str = "acknowledged_writes_survive_kill_9_at_random_moments";

/// The child's concurrent writers, each with keys of its own, so that a
/// key's writes come one after another and the order they were
/// acknowledged in is the order they must reach the store in.
const TASKS: usize = 8;
const KEYS_PER_TASK: usize = 16;
/// Round `r` numbers its writes of each key from `r * ROUND_SPAN` up, so
/// that the values of a key increase across rounds as well without the
/// child having to learn where the previous round stopped.
const ROUND_SPAN: u64 = 1_000_000;
/// The child's store answers each call this much later, like a database
/// across a network, so that the flusher is often in the middle of a batch
/// when the kill comes.
const CHILD_STORE_LATENCY: Duration = Duration::from_millis(1);
/// The flush interval: short, so that the child's flusher runs all the
/// time and a kill lands in every stage of it.
const FLUSH_INTERVAL: Duration = Duration::from_millis(5);
/// A child nobody killed stops by itself after this long, so that a
/// parent that died first does not leave it writing forever.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);
/// How long the parent waits for a child to open its cache.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A system of record made of files, which outlives the process that
/// writes it: one file per key with its value, replaced atomically (a
/// temporary file, synced, renamed over it), and one append-only history
/// per key with a line for every change applied (the value saved, or
/// `DEL`), so that the parent can check the order the changes came in.
#[derive(Clone, Debug)]
struct FileStore {
    dir: PathBuf,
    latency: Duration,
    /// Whether each change is synced to the disk before the call returns,
    /// as a database's commit is. The child's store syncs, which also
    /// keeps its flusher in the middle of a batch for longer; the
    /// parent's does not, since nothing kills the parent, and a kill
    /// leaves what the child wrote in the kernel's page cache either way.
    sync: bool,
}

fn store_error(what: &str, key: &str, e: io::Error) -> Error {
    Error::new(
        ErrorKind::Backend,
        format!("file store: cannot {what} {key}"),
    )
    .with_source(e)
}

impl FileStore {
    /// The child's store: slow, and synced.
    fn child(dir: PathBuf) -> Self {
        FileStore {
            dir,
            latency: CHILD_STORE_LATENCY,
            sync: true,
        }
    }

    /// The parent's store: as fast as the files allow.
    fn parent(dir: PathBuf) -> Self {
        FileStore {
            dir,
            latency: Duration::ZERO,
            sync: false,
        }
    }

    fn value_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.value"))
    }

    fn history_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.history"))
    }

    /// The value file of `key`, if there is one.
    fn read(&self, key: &str) -> io::Result<Option<String>> {
        match fs::read_to_string(self.value_path(key)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every line of `key`'s history, oldest first.
    fn history(&self, key: &str) -> io::Result<Vec<String>> {
        match fs::read_to_string(self.history_path(key)) {
            Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Appends `line` to `key`'s history in one `write`, so that a kill
    /// leaves either the whole line or none of it.
    fn append(&self, key: &str, line: &str) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.history_path(key))?;
        file.write_all(format!("{line}\n").as_bytes())?;
        if self.sync {
            file.sync_data()?;
        }
        Ok(())
    }

    /// The blocking file calls run on the runtime's thread: a test store
    /// may stall its caller for a moment, and the flusher is the only
    /// caller that waits on it.
    fn put(&self, key: &str, value: &str) -> Result<()> {
        let tmp = self.dir.join(format!("{key}.tmp"));
        let write = || -> io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(value.as_bytes())?;
            if self.sync {
                file.sync_all()?;
            }
            fs::rename(&tmp, self.value_path(key))?;
            self.append(key, value)
        };
        write().map_err(|e| store_error("save", key, e))
    }

    fn remove(&self, key: &str) -> Result<()> {
        let delete = || -> io::Result<()> {
            match fs::remove_file(self.value_path(key)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.append(key, "DEL")
        };
        delete().map_err(|e| store_error("delete", key, e))
    }

    async fn pause(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

impl Store<String, String> for FileStore {
    async fn load(&self, key: &String) -> Result<Option<String>> {
        self.read(key).map_err(|e| store_error("load", key, e))
    }

    async fn save(&self, key: &String, value: &String) -> Result<()> {
        self.pause().await;
        self.put(key, value)
    }

    async fn delete(&self, key: &String) -> Result<()> {
        self.pause().await;
        self.remove(key)
    }

    async fn save_many(&self, entries: &[(String, String)]) -> Result<()> {
        self.pause().await;
        for (key, value) in entries {
            self.put(key, value)?;
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.pause().await;
        for key in keys {
            self.remove(key)?;
        }
        Ok(())
    }
}

fn key_name(task: usize, i: usize) -> String {
    format!("t{task}-k{i:02}")
}

fn all_keys() -> Vec<String> {
    (0..TASKS)
        .flat_map(|t| (0..KEYS_PER_TASK).map(move |i| key_name(t, i)))
        .collect()
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("log.redb")
}

fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// A write-back cache on `dir`'s log and store. A log the previous
/// process (or the parent's last cache) still held is waited for, briefly:
/// a dropped cache lets its log go from a thread of its own, a moment
/// later, and the kernel lets a killed child's go once it is reaped.
async fn open_cache(dir: &Path, store: FileStore) -> Cache<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let built = Cache::<String, String>::builder()
            .store(store.clone())
            .write_policy(WritePolicy::Back)
            .write_back_log(log_path(dir))
            .flush_interval(FLUSH_INTERVAL)
            .build()
            .await;
        match built {
            Ok(cache) => return cache,
            Err(e) if e.to_string().contains("already open") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!(
                "the write-back cache on {} does not open: {e}",
                dir.display()
            ),
        }
    }
}

/// Prints one line for the parent and flushes it at once, so that it is in
/// the pipe (and survives the kill) before the child goes on. The lock on
/// stdout keeps the writers' lines whole, and a parent that is gone ends
/// the child.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(5);
    }
}

/// The child: writes until it is killed.
fn run_child(dir: &Path) -> ! {
    let round: u64 = env_number(CHILD_ROUND_ENV).expect("the parent sets the round");
    let seed: u64 = env_number(CHILD_SEED_ENV).expect("the parent sets the seed");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let cache = Arc::new(open_cache(dir, FileStore::child(store_dir(dir))).await);
        let opened = cache.write_back_stats().expect("a write-back cache");
        say(&format!("READY {} {}", opened.replayed, opened.corrupted));
        for task in 0..TASKS {
            tokio::spawn(write_forever(cache.clone(), task, round, seed));
        }
        tokio::time::sleep(CHILD_DEADLINE).await;
    });
    eprintln!("the crash child was not killed within {CHILD_DEADLINE:?}");
    std::process::exit(3)
}

/// One writer of the child: picks one of its keys, says `TRY <key> <n>
/// <value-or-DEL>`, writes it (the value is the write's number `n`),
/// and says `ACK <key> <n>` once the cache acknowledged it.
async fn write_forever(cache: Arc<Cache<String, String>>, task: usize, round: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ (task as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let keys: Vec<String> = (0..KEYS_PER_TASK).map(|i| key_name(task, i)).collect();
    let mut next = [round * ROUND_SPAN; KEYS_PER_TASK];
    loop {
        let i = rng.random_range(0..KEYS_PER_TASK);
        let n = next[i];
        next[i] += 1;
        let key = &keys[i];
        let delete = rng.random_ratio(1, 8);
        let result = if delete {
            say(&format!("TRY {key} {n} DEL"));
            cache.remove(key).await
        } else {
            say(&format!("TRY {key} {n} {n}"));
            cache.insert(key.clone(), n.to_string()).await
        };
        if let Err(e) = result {
            eprintln!("write {n} of {key} failed: {e}");
            std::process::exit(4);
        }
        say(&format!("ACK {key} {n}"));
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|e| panic!("{name}={text} is not a number: {e}")),
    )
}

/// What one child said before it died.
#[derive(Debug)]
struct ChildRun {
    /// Every complete line after `READY`.
    lines: Vec<String>,
    /// The dirty keys its cache found in the log when it opened: those a
    /// child before it left unflushed.
    replayed: u64,
    /// The log's records that failed their checksum when it opened.
    corrupted: u64,
    /// How long it wrote before the kill.
    wrote_for: Duration,
}

/// Runs one child on `dir` and kills it `delay` after it opened its
/// cache.
fn crash_one_child(dir: &Path, round: u64, seed: u64, delay: Duration) -> ChildRun {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([CRASH_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .env(CHILD_SEED_ENV, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the crash child starts");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match stdout.read_line(&mut line) {
                // A line cut short by the kill (no newline) was never
                // written whole, and is not one the child said.
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
    let ready_by = Instant::now() + READY_TIMEOUT;
    let mut ready = None;
    while ready.is_none() {
        let left = ready_by.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        // The harness's "test <name> ... " has no newline of its own, so
        // it shares a line with the child's first one.
        let words: Vec<&str> = line.split(' ').collect();
        if let [.., "READY", replayed, corrupted] = words[..] {
            let number = |w: &str| w.parse::<u64>().expect("READY's counts are numbers");
            ready = Some((number(replayed), number(corrupted)));
        }
    }
    let started = Instant::now();
    if ready.is_some() {
        std::thread::sleep(delay);
    }
    // `Child::kill` sends SIGKILL on Unix: no destructor, no flush, no
    // atexit handler of the child runs.
    child.kill().expect("the crash child can be killed");
    let status = child.wait().expect("the crash child is reaped");
    let wrote_for = started.elapsed();
    reader.join().expect("the stdout reader does not panic");
    let stderr = errors.join().expect("the stderr reader does not panic");
    let Some((replayed, corrupted)) = ready else {
        panic!(
            "round {round}: the crash child never opened its cache ({status}); its stderr:\n{stderr}"
        );
    };
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: the crash child ended by itself ({status}) before the kill; its stderr:\n{stderr}"
    );
    ChildRun {
        lines: rx.try_iter().collect(),
        replayed,
        corrupted,
        wrote_for,
    }
}

/// A key's value in the store: the number of the write that saved it, or
/// `None` while the key is absent.
type State = Option<u64>;

/// One write a child started: its number, the state it leaves, and
/// whether the child saw it acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Op {
    n: u64,
    state: State,
    acked: bool,
}

/// Reads one child's lines into the writes it started, per key and in
/// order, each marked if it was acknowledged, checking that they make
/// sense: a key's writes are numbered upward, and each is acknowledged
/// before the next one starts.
fn parse_run(round: u64, lines: &[String]) -> HashMap<String, Vec<Op>> {
    let mut keys: HashMap<String, Vec<Op>> = HashMap::new();
    for line in lines {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["TRY", key, n, what] => {
                let n: u64 = n.parse().expect("a write's number");
                let state = match what {
                    "DEL" => None,
                    v => Some(v.parse().expect("a value is a number")),
                };
                let ops = keys.entry(key.to_owned()).or_default();
                if let Some(last) = ops.last() {
                    assert!(
                        last.acked,
                        "round {round}: {key} started write {n} before {} was acknowledged",
                        last.n
                    );
                    assert!(
                        last.n < n,
                        "round {round}: {key}'s writes are not numbered upward at {n}"
                    );
                }
                ops.push(Op {
                    n,
                    state,
                    acked: false,
                });
            }
            ["ACK", key, n] => {
                let n: u64 = n.parse().expect("a write's number");
                let last = keys
                    .get_mut(key)
                    .and_then(|ops| ops.last_mut())
                    .filter(|op| op.n == n && !op.acked);
                let Some(last) = last else {
                    panic!("round {round}: {key} acknowledged {n}, which is not its last write");
                };
                last.acked = true;
            }
            // The test harness's own lines ("running 1 test" and so on).
            _ => {}
        }
    }
    keys
}

/// What the parent knows of a key between rounds.
#[derive(Clone, Debug, Default)]
struct KnownKey {
    /// Its value in the store after the last round's flush.
    state: State,
    /// How many lines of its history the earlier rounds accounted for.
    history_seen: usize,
}

/// Checks one key after the parent's flush, against `ops`, the writes
/// of it the children started since the last check: its value is the one
/// the last acknowledged write left (or one a later write left: those the
/// kills caught in flight, which may have been durable already), its new
/// history lines are writes of `ops` in an order that never goes back, and
/// its value file agrees with the last of them. Returns whether a write
/// caught in flight was the one that survived.
fn check_key(
    key: &str,
    known: &KnownKey,
    ops: &[Op],
    value: State,
    history: &[String],
) -> std::result::Result<bool, String> {
    let last_acked = ops.iter().rposition(|op| op.acked);
    let acked_state = last_acked.map_or(known.state, |i| ops[i].state);
    let in_flight = &ops[last_acked.map_or(0, |i| i + 1)..];
    let fmt = |s: State| s.map_or_else(|| "absent".to_owned(), |v| v.to_string());
    let survived_in_flight = if value == acked_state {
        false
    } else if in_flight.iter().any(|op| op.state == value) {
        true
    } else {
        return Err(format!(
            "{key} is {} in the store, but its last acknowledged write left it {} \
             (the writes in flight at the kills after it: {in_flight:?})",
            fmt(value),
            fmt(acked_state),
        ));
    };
    // Walk the history lines added since the last check, matching each to
    // a write at or after the one before: a value names its write; a
    // removal is the earliest removal from there on (a replay applies the
    // same removal again, so it may stay on one).
    let new = history.get(known.history_seen..).unwrap_or_default();
    let mut at: Option<usize> = None;
    for line in new {
        let from = at.unwrap_or(0);
        let found = if line == "DEL" {
            if at.is_some_and(|i| ops[i].state.is_none()) {
                at
            } else {
                let start = at.map_or(0, |i| i + 1);
                (start..ops.len()).find(|&i| ops[i].state.is_none())
            }
        } else {
            let v: u64 = line
                .parse()
                .map_err(|_| format!("{key}'s history holds {line:?}, not a value"))?;
            ops.iter()
                .position(|op| op.state == Some(v))
                .filter(|&i| i >= from)
        };
        match found {
            Some(i) => at = Some(i),
            None => {
                return Err(format!(
                    "{key}'s history went backwards or holds a write never made: {line} \
                     after {:?}; its history since the last check {new:?}, its writes {ops:?}",
                    at.map(|i| ops[i]),
                ));
            }
        }
    }
    let last_applied = at.map_or(known.state, |i| ops[i].state);
    if last_applied != value {
        return Err(format!(
            "{key}'s value file says {} but its history ends at {}",
            fmt(value),
            fmt(last_applied),
        ));
    }
    Ok(survived_in_flight)
}

/// What the parent's reopened cache found and did.
#[derive(Debug, Default)]
struct Reopened {
    replayed: u64,
    corrupted: u64,
    saved: u64,
    deleted: u64,
}

/// Reopens the cache on the crashed child's log, flushes everything it
/// replayed, and closes it again (with its runtime, so that nothing of it
/// is left running when the next child opens the log).
fn reopen_and_flush(dir: &Path, round: u64) -> Reopened {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let cache = open_cache(dir, FileStore::parent(store_dir(dir))).await;
        let opened = cache.write_back_stats().expect("a write-back cache");
        cache.flush().await.expect("the flush succeeds");
        let flushed = cache.write_back_stats().expect("a write-back cache");
        assert_eq!(
            cache.dirty_len(),
            0,
            "round {round}: keys stay dirty after the flush"
        );
        assert_eq!(
            flushed.dead_letters, 0,
            "round {round}: writes went to the dead-letter list"
        );
        Reopened {
            replayed: opened.replayed,
            corrupted: opened.corrupted,
            saved: flushed.saved,
            deleted: flushed.deleted,
        }
    })
}

#[test]
fn acknowledged_writes_survive_kill_9_at_random_moments() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_child(Path::new(&dir));
    }
    let rounds = env_number(ROUNDS_ENV).unwrap_or(DEFAULT_ROUNDS);
    let seed = env_number(SEED_ENV).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is past 1970")
            .as_nanos() as u64
    });
    println!("crash test: {rounds} kills, {SEED_ENV}={seed}");
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let store = FileStore::parent(store_dir(dir));
    fs::create_dir_all(&store.dir).expect("the store's directory");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut known: HashMap<String, KnownKey> = all_keys()
        .into_iter()
        .map(|k| (k, KnownKey::default()))
        .collect();
    // The writes of each key since the parent last checked the store, and
    // the rounds they came from.
    let mut since_check: HashMap<String, Vec<Op>> = HashMap::new();
    let mut first_unchecked = 1;
    let mut totals = Totals::default();
    for round in 1..=rounds {
        let delay = Duration::from_millis(rng.random_range(20..=300));
        let child_seed: u64 = rng.random();
        // Most kills are followed by the parent's check; after the others
        // the next child opens the crashed one's log itself, replays it
        // while it writes, and is killed in turn, so that crashes in the
        // middle of a replay are covered as well.
        let check_now = round == rounds || rng.random_ratio(2, 3);
        let run = crash_one_child(dir, round, child_seed, delay);
        assert_eq!(
            run.corrupted, 0,
            "round {round} (seed {seed}): records of the log failed their checksum after a kill"
        );
        totals.wrote_for += run.wrote_for;
        totals.child_replayed += run.replayed;
        totals.child_replays += u64::from(run.replayed > 0);
        for (key, ops) in parse_run(round, &run.lines) {
            totals.tried += ops.len() as u64;
            totals.acked += ops.iter().filter(|op| op.acked).count() as u64;
            since_check.entry(key).or_default().extend(ops);
        }
        if !check_now {
            continue;
        }
        let reopened = reopen_and_flush(dir, round);
        assert_eq!(
            reopened.corrupted, 0,
            "round {round} (seed {seed}): records of the log failed their checksum after the kill"
        );
        totals.replayed += reopened.replayed;
        totals.reopens += 1;
        totals.reopens_replaying += u64::from(reopened.replayed > 0);
        totals.saved += reopened.saved;
        totals.deleted += reopened.deleted;
        let mut failures = Vec::new();
        for (key, k) in known.iter_mut() {
            let ops = since_check.get(key).map_or(&[][..], Vec::as_slice);
            let value = store
                .read(key)
                .expect("the store's value file reads")
                .map(|v| v.parse::<u64>().expect("a stored value is a number"));
            let history = store.history(key).expect("the store's history reads");
            match check_key(key, k, ops, value, &history) {
                Ok(in_flight) => totals.in_flight_kept += u64::from(in_flight),
                Err(e) => failures.push(format!(
                    "rounds {first_unchecked}..={round} (seed {seed}, last kill after {delay:?}, \
                     the parent replayed {}): {e}",
                    reopened.replayed
                )),
            }
            k.state = value;
            k.history_seen = history.len();
        }
        if !failures.is_empty() {
            // Keep the log and the store for a look at what went wrong.
            let kept = tmp.keep();
            panic!(
                "acknowledged writes were lost or reordered; the log and store are kept in {}:\n{}",
                kept.display(),
                failures.join("\n")
            );
        }
        since_check.clear();
        first_unchecked = round + 1;
    }
    let t = &totals;
    println!(
        "crash test: {rounds} kills in {:.1?} ({:.1?} of writing): {} writes started, {} \
         acknowledged, every one found at its place; {} caught in flight were durable and kept; \
         {} dirty keys replayed in {} of {} reopens by the parent ({} saves and {} removals \
         flushed), {} in {} children opening a crashed child's log",
        started.elapsed(),
        t.wrote_for,
        t.tried,
        t.acked,
        t.in_flight_kept,
        t.replayed,
        t.reopens_replaying,
        t.reopens,
        t.saved,
        t.deleted,
        t.child_replayed,
        t.child_replays,
    );
    assert!(t.acked > 0, "the children acknowledged no write");
    assert!(
        t.reopens_replaying > 0,
        "no kill left dirty writes in the log, so nothing tested replay (seed {seed})"
    );
}

/// What the crash test counts, for its summary.
#[derive(Debug, Default)]
struct Totals {
    tried: u64,
    acked: u64,
    in_flight_kept: u64,
    wrote_for: Duration,
    reopens: u64,
    reopens_replaying: u64,
    replayed: u64,
    saved: u64,
    deleted: u64,
    child_replays: u64,
    child_replayed: u64,
}

#[test]
fn the_crash_check_tells_lost_and_reordered_writes_from_replays() {
    let known = KnownKey {
        state: Some(0),
        history_seen: 1,
    };
    let op = |n: u64, state: State, acked: bool| Op { n, state, acked };
    let lines = |history: &[&str]| history.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    // Before the check the key held 0 (one history line); a child then
    // saved 1 and removed it (write 2), both acknowledged, and was killed
    // with the save of 3 in flight.
    let ops = [
        op(1, Some(1), true),
        op(2, None, true),
        op(3, Some(3), false),
    ];
    let check =
        |value: State, history: &[&str]| check_key("k", &known, &ops, value, &lines(history));
    // A replay may apply a write again, in its place.
    assert_eq!(check(None, &["0", "1", "1", "DEL", "DEL"]), Ok(false));
    assert_eq!(check(None, &["0", "DEL"]), Ok(false));
    // The write in flight may have been durable, and is then flushed.
    assert_eq!(check(Some(3), &["0", "1", "DEL", "3"]), Ok(true));
    // Lost: the acknowledged removal never reached the store.
    assert!(check(Some(1), &["0", "1"]).is_err());
    assert!(check(Some(0), &["0"]).is_err());
    // Reordered: the older save reached the store after the removal.
    assert!(check(None, &["0", "DEL", "1", "DEL"]).is_err());
    // A value nobody wrote, and a value file its history contradicts.
    assert!(check(None, &["0", "7", "DEL"]).is_err());
    assert!(check(None, &["0", "1"]).is_err());

    // Two kills before a check: the first caught the save of 3 in flight,
    // the second child removed the key (acknowledged) and was killed with
    // the save of 11 in flight. Either in-flight write may survive only
    // where nothing acknowledged follows it.
    let ops = [
        op(1, Some(1), true),
        op(3, Some(3), false),
        op(10, None, true),
        op(11, Some(11), false),
    ];
    let check =
        |value: State, history: &[&str]| check_key("k", &known, &ops, value, &lines(history));
    assert_eq!(check(None, &["0", "1", "3", "DEL"]), Ok(false));
    assert_eq!(check(Some(11), &["0", "3", "3", "DEL", "11"]), Ok(true));
    assert!(check(Some(3), &["0", "1", "3"]).is_err());
    assert!(check(None, &["0", "DEL", "3", "DEL"]).is_err());
}

#[tokio::test]
async fn write_back_without_a_log_or_a_disk_tier_is_refused_at_build() {
    let e = Cache::<String, String>::builder()
        .store(TestStore::<String, String>::new())
        .write_policy(WritePolicy::Back)
        .build()
        .await
        .expect_err("write-back without a durable log must not build");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(e.message().contains("write_back_log"), "{e}");
}

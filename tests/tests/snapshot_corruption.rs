//! A damaged snapshot never installs a wrong value and never panics: every
//! single-bit flip of a saved file, every truncation, an empty file, a
//! text file and a directory are either refused, with an error naming the
//! file, and then nothing of them is in the cache, or loaded with exactly
//! the values that were saved. Records whose value no longer decodes (the
//! type changed) are counted and left out. `CacheBuilder::snapshot` on a
//! damaged file still builds, starts empty, counts the failed load and
//! replaces the file at its next save.

use std::path::Path;
use std::time::Duration;

use tiercache::warm::read_snapshot;
use tiercache::{Cache, Lookup, ManualClock};

/// What the original cache held: four values and one negative entry.
const VALUES: [(&str, &str); 4] = [
    ("alpha", "first value"),
    ("beta", "second value, a little longer"),
    ("gamma", ""),
    ("delta", "ünïcödé"),
];
const NEGATIVE: &str = "missing";

/// Saves the original snapshot at `path` and returns the file's bytes.
async fn save_original(path: &Path, clock: &ManualClock) -> Vec<u8> {
    let cache: Cache<String, String> = Cache::builder()
        .clock(clock.clock())
        .time_to_live(Duration::from_secs(3_600))
        .class("session", Duration::from_secs(600))
        .build()
        .await
        .unwrap();
    for (i, (key, value)) in VALUES.iter().enumerate() {
        if i % 2 == 0 {
            cache
                .insert(key.to_string(), value.to_string())
                .await
                .unwrap();
        } else {
            cache
                .insert_with_class(key.to_string(), value.to_string(), "session")
                .await
                .unwrap();
        }
    }
    cache
        .insert_negative(NEGATIVE.to_string(), Duration::from_secs(60))
        .await
        .unwrap();
    let report = cache.save_snapshot(path).await.unwrap();
    assert_eq!(report.records, 5);
    std::fs::read(path).unwrap()
}

fn fresh(clock: &ManualClock) -> impl Future<Output = Cache<String, String>> {
    let clock = clock.clock();
    async move {
        Cache::builder()
            .clock(clock)
            .class("session", Duration::from_secs(600))
            .build()
            .await
            .unwrap()
    }
}

/// Loads `path` into a fresh cache and checks the outcome: an error that
/// names the file, and then an empty cache; or a load whose every entry
/// is one of the originals, unchanged. Returns whether it was refused.
async fn load_checked(path: &Path, clock: &ManualClock, case: &str) -> bool {
    let cache = fresh(clock).await;
    match cache.load_snapshot(path).await {
        Err(e) => {
            assert!(
                e.message().contains(&path.display().to_string()),
                "{case}: the error does not name the file: {e}"
            );
            assert_eq!(
                cache.entry_count(),
                0,
                "{case}: a refused file installed entries ({e})"
            );
            let stats = cache.snapshot_stats();
            assert_eq!((stats.loads, stats.load_errors), (0, 1), "{case}");
            true
        }
        Ok(report) => {
            for (key, value) in VALUES {
                if let Some(got) = cache.hot().get(&key.to_string()) {
                    assert_eq!(got, value, "{case}: {key} loaded with a wrong value");
                }
            }
            match cache.lookup(&NEGATIVE.to_string()).await.unwrap() {
                Lookup::Negative(_) | Lookup::Miss => {}
                other => panic!("{case}: the negative entry came back as {other:?}"),
            }
            assert!(
                cache.entry_count() <= 5,
                "{case}: more entries than saved ({report:?})"
            );
            false
        }
    }
}

#[tokio::test]
async fn no_single_bit_flip_installs_a_wrong_value() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let original = save_original(&dir.path().join("original.snap"), &clock).await;
    assert!(!load_checked(&dir.path().join("original.snap"), &clock, "the original").await);
    let damaged = dir.path().join("damaged.snap");
    let (mut refused, mut loaded) = (0, 0);
    for bit in 0..original.len() * 8 {
        let mut bytes = original.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&damaged, &bytes).unwrap();
        if load_checked(&damaged, &clock, &format!("bit {bit} flipped")).await {
            refused += 1;
        } else {
            loaded += 1;
        }
    }
    println!(
        "{} bytes: {refused} flips refused, {loaded} loaded with the original values",
        original.len()
    );
    assert_eq!(refused + loaded, original.len() * 8);
}

#[tokio::test]
async fn a_truncated_file_is_refused_at_every_length() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let original = save_original(&dir.path().join("original.snap"), &clock).await;
    let cut = dir.path().join("cut.snap");
    for len in 0..original.len() {
        std::fs::write(&cut, &original[..len]).unwrap();
        assert!(
            load_checked(&cut, &clock, &format!("cut to {len} bytes")).await,
            "a file cut to {len} of {} bytes loaded",
            original.len()
        );
    }
    // Bytes after the trailer are damage too.
    let mut longer = original.clone();
    longer.extend_from_slice(b"R\0\0\0\0");
    std::fs::write(&cut, &longer).unwrap();
    assert!(load_checked(&cut, &clock, "bytes after the trailer").await);
}

#[tokio::test]
async fn foreign_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let empty = dir.path().join("empty.snap");
    std::fs::write(&empty, b"").unwrap();
    assert!(load_checked(&empty, &clock, "an empty file").await);
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "these are not the entries you are looking for\n".repeat(20),
    )
    .unwrap();
    assert!(load_checked(&text, &clock, "a text file").await);
    let missing = dir.path().join("never-saved.snap");
    assert!(load_checked(&missing, &clock, "a missing file").await);
    let directory = dir.path().join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    assert!(load_checked(&directory, &clock, "a directory").await);
}

#[tokio::test]
async fn values_that_no_longer_decode_are_counted_and_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strings.snap");
    let clock = ManualClock::default();
    save_original(&path, &clock).await;
    // The application now stores numbers under the same keys.
    let cache: Cache<String, u64> = Cache::builder().clock(clock.clock()).build().await.unwrap();
    let report = cache.load_snapshot(&path).await.unwrap();
    println!("{report:?}");
    assert_eq!(report.records, 5, "{report:?}");
    // "gamma" is an empty string, whose encoding (a zero length) is also
    // the number 0: the one value that decodes as the new type.
    for (key, _) in VALUES.iter().filter(|(key, _)| *key != "gamma") {
        assert_eq!(cache.hot().get(&key.to_string()), None, "{key}");
    }
    assert_eq!(report.undecodable, 3, "{report:?}");
    assert_eq!(cache.hot().get(&"gamma".to_string()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_starts_empty_on_a_damaged_file_and_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.snap");
    let clock = ManualClock::default();
    let mut bytes = save_original(&path, &clock).await;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();

    let cache: Cache<String, String> = Cache::builder()
        .clock(clock.clock())
        .snapshot(&path, Duration::from_secs(3_600))
        .build()
        .await
        .expect("a damaged snapshot does not fail the build");
    assert_eq!(cache.entry_count(), 0);
    let stats = cache.snapshot_stats();
    assert_eq!((stats.loads, stats.load_errors), (0, 1), "{stats:?}");
    let error = stats.last_error.expect("the failed load is kept");
    assert!(
        error.message().contains(&path.display().to_string()),
        "the error does not name the file: {error}"
    );
    for (key, _) in VALUES {
        assert_eq!(cache.get(&key.to_string()).await.unwrap(), None);
    }

    cache
        .insert("after".into(), "the restart".into())
        .await
        .unwrap();
    drop(cache);
    let (_, records) = read_snapshot(&path).expect("the shutdown save replaced the damaged file");
    assert_eq!(records.len(), 1);
}

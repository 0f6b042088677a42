//! The warming service: ordering, deduplication, limits, reports,
//! cancellation, the schedule and progress.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::{Error, ErrorKind};
use cache_warm::{WarmFn, WarmKey, WarmOutcome, WarmProgress, WarmSource, Warmer};
use futures::FutureExt;
use tokio::time::Instant;

/// The keys a warm function was called with, in call order.
type Calls = Arc<Mutex<Vec<u32>>>;

/// A warm function that records each key and warms it at once.
fn recording(calls: &Calls) -> WarmFn<u32> {
    let calls = Arc::clone(calls);
    Arc::new(move |key| {
        calls.lock().unwrap().push(key);
        async { WarmOutcome::Warmed }.boxed()
    })
}

/// A warm function that takes `time` (of the paused clock) per key.
fn sleeping(time: Duration) -> WarmFn<u32> {
    Arc::new(move |_| {
        async move {
            tokio::time::sleep(time).await;
            WarmOutcome::Warmed
        }
        .boxed()
    })
}

/// A builder without the rate limit, so that only what a test sets limits
/// the run.
fn unlimited() -> cache_warm::WarmerBuilder<u32> {
    Warmer::builder().rate_limit(None)
}

#[tokio::test]
async fn higher_priorities_start_first_then_higher_frequencies() {
    let calls = Calls::default();
    let warmer = unlimited()
        .concurrency(1)
        .source(
            WarmSource::weighted(
                "low",
                [
                    WarmKey::new(1),
                    WarmKey::with_frequency(2, 100),
                    WarmKey::with_frequency(3, 50),
                ],
                recording(&calls),
            )
            .priority(-1),
        )
        .source(
            WarmSource::weighted(
                "high",
                [
                    WarmKey::with_frequency(10, 1),
                    WarmKey::with_frequency(11, 5),
                    WarmKey::with_frequency(12, 3),
                ],
                recording(&calls),
            )
            .priority(10),
        )
        .source(
            WarmSource::new(
                "also-high",
                || async { Ok(vec![WarmKey::with_frequency(20, 5)]) },
                recording(&calls),
            )
            .priority(10),
        )
        .build()
        .unwrap();
    let report = warmer.run().await;
    // However frequent, "low"'s keys come last. 11 and 20 tie on priority
    // and frequency; "high" was given first.
    assert_eq!(*calls.lock().unwrap(), [11, 20, 12, 10, 2, 3, 1]);
    assert_eq!((report.total, report.warmed), (7, 7));
}

#[tokio::test]
async fn a_key_offered_twice_is_warmed_once_by_the_higher_priority() {
    let calls: Arc<Mutex<Vec<(&'static str, u32)>>> = Arc::default();
    let by = |name: &'static str| -> WarmFn<u32> {
        let calls = Arc::clone(&calls);
        Arc::new(move |key| {
            calls.lock().unwrap().push((name, key));
            async { WarmOutcome::Warmed }.boxed()
        })
    };
    let low = WarmSource::weighted(
        "low",
        [WarmKey::with_frequency(7, 9), WarmKey::new(30)],
        by("low"),
    );
    let high = WarmSource::weighted(
        "high",
        [WarmKey::with_frequency(8, 5), WarmKey::with_frequency(7, 1)],
        by("high"),
    )
    .priority(1);
    let warmer = unlimited()
        .concurrency(1)
        .source(low)
        .source(high)
        .build()
        .unwrap();
    let report = warmer.run().await;
    // Key 7 keeps the higher frequency "low" gave it, so it leads "high".
    assert_eq!(
        *calls.lock().unwrap(),
        [("high", 7), ("high", 8), ("low", 30)]
    );
    assert_eq!(report.total, 3);
    let [low, high] = &report.sources[..] else {
        panic!("two sources expected: {:?}", report.sources);
    };
    assert_eq!((low.listed, low.planned, low.warmed), (2, 1, 1));
    assert_eq!((high.listed, high.planned, high.warmed), (2, 2, 2));
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_is_reached_and_never_exceeded() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let warm: WarmFn<u32> = {
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        Arc::new(move |_| {
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                WarmOutcome::Warmed
            }
            .boxed()
        })
    };
    let warmer = unlimited()
        .concurrency(5)
        .source(WarmSource::list("keys", 0..40, warm))
        .build()
        .unwrap();
    let report = warmer.run().await;
    assert_eq!(report.warmed, 40);
    assert_eq!(most.load(Ordering::SeqCst), 5);
    // 40 keys, 5 at a time, 10 ms each.
    assert_eq!(report.elapsed, Duration::from_millis(80));
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_paces_starts_evenly() {
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let warm: WarmFn<u32> = {
        let starts = Arc::clone(&starts);
        Arc::new(move |_| {
            starts.lock().unwrap().push(Instant::now());
            async { WarmOutcome::Warmed }.boxed()
        })
    };
    let warmer = Warmer::builder()
        .rate_limit(Some(20))
        .concurrency(100)
        .source(WarmSource::list("keys", 0..100, warm))
        .build()
        .unwrap();
    let began = Instant::now();
    let report = warmer.run().await;
    assert_eq!(report.warmed, 100);
    let elapsed = began.elapsed();
    assert!(
        elapsed >= Duration::from_millis(4_900) && elapsed <= Duration::from_millis(5_100),
        "100 keys at 20/s took {elapsed:?}"
    );
    let starts = starts.lock().unwrap();
    for (i, &from) in starts.iter().enumerate() {
        let in_window = starts[i..]
            .iter()
            .take_while(|&&at| at < from + Duration::from_secs(1))
            .count();
        assert!(in_window <= 21, "{in_window} starts within a second");
    }
}

#[tokio::test]
async fn the_report_counts_outcomes_and_survives_a_failed_listing() {
    let by_key: WarmFn<u32> = Arc::new(|key| {
        let outcome = match key % 4 {
            0 => WarmOutcome::Warmed,
            1 => WarmOutcome::Present,
            2 => WarmOutcome::Missing,
            _ => WarmOutcome::Failed(Error::new(ErrorKind::Unavailable, "tier down")),
        };
        async move { outcome }.boxed()
    });
    let present: WarmFn<u32> = Arc::new(|_| async { WarmOutcome::Present }.boxed());
    let broken = WarmSource::new(
        "broken",
        || async { Err(Error::new(ErrorKind::Backend, "cannot list")) },
        present.clone(),
    )
    .priority(5);
    let warmer = unlimited()
        .source(WarmSource::list("mixed", 0..8, by_key))
        .source(broken)
        .source(WarmSource::list("present", 100..103, present))
        .build()
        .unwrap();
    let report = warmer.run().await;
    assert!(!report.cancelled);
    assert_eq!(report.run, 1);
    assert_eq!(
        (
            report.total,
            report.warmed,
            report.present,
            report.missing,
            report.failed
        ),
        (11, 2, 5, 2, 2)
    );
    let [mixed, broken, present] = &report.sources[..] else {
        panic!("three sources expected: {:?}", report.sources);
    };
    assert_eq!(mixed.name, "mixed");
    assert_eq!(
        (
            mixed.listed,
            mixed.warmed,
            mixed.present,
            mixed.missing,
            mixed.failed
        ),
        (8, 2, 2, 2, 2)
    );
    assert!(mixed.listing_error.is_none());
    assert_eq!(broken.listed, 0);
    assert_eq!(
        broken.listing_error.as_ref().map(Error::kind),
        Some(ErrorKind::Backend)
    );
    assert_eq!((present.listed, present.present), (3, 3));
    let kinds: Vec<ErrorKind> = report.errors.iter().map(Error::kind).collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::Backend,
            ErrorKind::Unavailable,
            ErrorKind::Unavailable
        ]
    );
    assert_eq!(warmer.progress(), report.progress());
}

#[tokio::test]
async fn max_keys_keeps_the_hottest() {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;

    let mut frequencies: Vec<u32> = (0..200).collect();
    frequencies.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    let keys: Vec<WarmKey<u32>> = frequencies
        .iter()
        .enumerate()
        .map(|(key, &frequency)| WarmKey::with_frequency(key as u32, frequency))
        .collect();
    let calls = Calls::default();
    let warmer = unlimited()
        .concurrency(1)
        .max_keys(10)
        .source(WarmSource::weighted("keys", keys, recording(&calls)))
        .build()
        .unwrap();
    let report = warmer.run().await;
    assert_eq!((report.total, report.warmed), (10, 10));
    assert_eq!(report.sources[0].listed, 200);
    let warmed: Vec<u32> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|&key| frequencies[key as usize])
        .collect();
    assert_eq!(warmed, (190..200).rev().collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_new_starts_and_lets_started_keys_finish() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let late = Arc::new(AtomicUsize::new(0));
    let warm: WarmFn<u32> = {
        let (cancelled, started, late) = (
            Arc::clone(&cancelled),
            Arc::clone(&started),
            Arc::clone(&late),
        );
        Arc::new(move |_| {
            started.fetch_add(1, Ordering::SeqCst);
            if cancelled.load(Ordering::SeqCst) {
                late.fetch_add(1, Ordering::SeqCst);
            }
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                WarmOutcome::Warmed
            }
            .boxed()
        })
    };
    let warmer = unlimited()
        .concurrency(2)
        .source(WarmSource::list("keys", 0..20, warm))
        .build()
        .unwrap();
    let canceller = {
        let (warmer, cancelled) = (warmer.clone(), Arc::clone(&cancelled));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            cancelled.store(true, Ordering::SeqCst);
            warmer.cancel();
        })
    };
    let report = warmer.run().await;
    canceller.await.unwrap();
    assert!(report.cancelled);
    assert_eq!(report.total, 20);
    let started = started.load(Ordering::SeqCst) as u64;
    // Two keys a second for 2.5 s: the pair started at 2 s finishes.
    assert_eq!(started, 6);
    assert_eq!(report.warmed, started, "started keys must finish");
    assert_eq!(late.load(Ordering::SeqCst), 0, "a key started after cancel");
    assert_eq!(report.elapsed, Duration::from_secs(3));
    let progress = warmer.progress();
    assert!(progress.finished && progress.done == 6 && progress.total == 20);
    // The warmer works again after a cancel.
    assert!(!warmer.run().await.cancelled);
}

#[tokio::test(start_paused = true)]
async fn cancelling_interrupts_a_rate_limit_wait() {
    let calls = Calls::default();
    let warmer = Warmer::builder()
        .rate_limit(Some(1))
        .source(WarmSource::list("keys", 0..10, recording(&calls)))
        .build()
        .unwrap();
    let canceller = {
        let warmer = warmer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            warmer.cancel();
        })
    };
    let report = warmer.run().await;
    canceller.await.unwrap();
    assert!(report.cancelled);
    assert_eq!(*calls.lock().unwrap(), [0, 1]);
    assert_eq!(report.elapsed, Duration::from_millis(1_500));
}

#[tokio::test(start_paused = true)]
async fn a_spawned_warmer_runs_at_start_then_every_interval_until_stopped() {
    let listings = Arc::new(AtomicUsize::new(0));
    let calls = Calls::default();
    let source = {
        let listings = Arc::clone(&listings);
        WarmSource::new(
            "counted",
            move || {
                listings.fetch_add(1, Ordering::SeqCst);
                async { Ok(vec![WarmKey::new(1), WarmKey::new(2)]) }
            },
            recording(&calls),
        )
    };
    let warmer = unlimited()
        .every(Some(Duration::from_secs(10)))
        .source(source)
        .build()
        .unwrap();
    let handle = warmer.spawn();
    let first = handle.first_run().await;
    assert_eq!((first.run, first.warmed), (1, 2));
    tokio::time::sleep(Duration::from_secs(35)).await;
    // At 0, 10, 20 and 30 s.
    assert_eq!(listings.load(Ordering::SeqCst), 4);
    let runs: Vec<u64> = handle.reports().iter().map(|r| r.run).collect();
    assert_eq!(runs, [1, 2, 3, 4]);
    assert_eq!(handle.first_run().await.run, 1);
    assert_eq!(handle.progress().run, 4);
    handle.stop().await;
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(listings.load(Ordering::SeqCst), 4);
    assert_eq!(calls.lock().unwrap().len(), 8);
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_warmer_ends_its_schedules() {
    let calls = Calls::default();
    let warmer = unlimited()
        .every(Some(Duration::from_secs(10)))
        .source(WarmSource::list("keys", [1], recording(&calls)))
        .build()
        .unwrap();
    let handle = warmer.spawn();
    tokio::time::sleep(Duration::from_secs(15)).await;
    warmer.cancel();
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(calls.lock().unwrap().len(), 2);
    assert!(handle.is_finished());
    assert_eq!(handle.reports().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn runs_never_overlap() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let warm: WarmFn<u32> = {
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        Arc::new(move |_| {
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                WarmOutcome::Warmed
            }
            .boxed()
        })
    };
    // Each run takes 3 s, longer than the interval.
    let warmer = unlimited()
        .concurrency(1)
        .every(Some(Duration::from_secs(1)))
        .source(WarmSource::list("keys", 0..3, warm))
        .build()
        .unwrap();
    let handle = warmer.spawn();
    let direct = warmer.run().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let reports = handle.reports();
    handle.stop().await;
    assert_eq!(most.load(Ordering::SeqCst), 1, "two runs overlapped");
    assert_eq!(direct.warmed, 3);
    assert!(reports.len() >= 2);
    assert!(reports.windows(2).all(|pair| pair[0].run < pair[1].run));
}

#[tokio::test(start_paused = true)]
async fn progress_is_monotonic_and_ends_finished() {
    let seen: Arc<Mutex<Vec<(Instant, WarmProgress)>>> = Arc::default();
    let warmer = {
        let seen = Arc::clone(&seen);
        unlimited()
            .concurrency(2)
            .source(WarmSource::list(
                "keys",
                0..50,
                sleeping(Duration::from_millis(30)),
            ))
            .on_progress(move |progress| {
                seen.lock()
                    .unwrap()
                    .push((Instant::now(), progress.clone()));
            })
            .build()
            .unwrap()
    };
    assert_eq!(warmer.progress(), WarmProgress::default());
    let report = warmer.run().await;
    let seen = seen.lock().unwrap();
    // Listed, every 100 ms of 750 ms, and the end.
    assert!(seen.len() >= 8, "only {} progress calls", seen.len());
    for pair in seen.windows(2) {
        let ((_, before), (_, after)) = (&pair[0], &pair[1]);
        assert!(after.done >= before.done, "{before:?} then {after:?}");
        assert_eq!(after.run, before.run);
    }
    // All but the last call are at least 100 ms apart.
    for pair in seen[..seen.len() - 1].windows(2) {
        assert!(pair[1].0 - pair[0].0 >= Duration::from_millis(100));
    }
    let (_, last) = seen.last().unwrap();
    assert!(last.finished);
    assert_eq!((last.done, last.total, last.warmed), (50, 50, 50));
    assert_eq!(last.fraction(), 1.0);
    assert!(seen[..seen.len() - 1].iter().all(|(_, p)| !p.finished));
    assert_eq!(*last, report.progress());
    assert_eq!(warmer.progress(), *last);
}

#[tokio::test]
async fn a_stream_source_is_made_per_run_and_drained_up_to_max_keys() {
    let made = Arc::new(AtomicUsize::new(0));
    let calls = Calls::default();
    let source = {
        let made = Arc::clone(&made);
        WarmSource::stream(
            "endless",
            move || {
                made.fetch_add(1, Ordering::SeqCst);
                futures::stream::iter(0u32..)
            },
            recording(&calls),
        )
    };
    let warmer = unlimited()
        .concurrency(1)
        .max_keys(25)
        .source(source)
        .build()
        .unwrap();
    for run in 1..=2 {
        let report = warmer.run().await;
        assert_eq!(report.run, run);
        assert_eq!((report.sources[0].listed, report.warmed), (25, 25));
    }
    assert_eq!(made.load(Ordering::SeqCst), 2);
    let expected: Vec<u32> = (0..25).chain(0..25).collect();
    assert_eq!(*calls.lock().unwrap(), expected);
}

#[tokio::test]
async fn a_panicking_warm_fn_or_listing_fails_only_its_part() {
    let warm: WarmFn<u32> = Arc::new(|key| {
        assert_ne!(key, 2, "the warm function fails on key 2");
        async { WarmOutcome::Warmed }.boxed()
    });
    let panicking = WarmSource::new(
        "panicking",
        || async { panic!("the listing fails") },
        warm.clone(),
    );
    let warmer = unlimited()
        .source(WarmSource::list("keys", 0..4, warm))
        .source(panicking)
        .build()
        .unwrap();
    let report = warmer.run().await;
    assert_eq!((report.warmed, report.failed), (3, 1));
    assert_eq!(report.errors[0].kind(), ErrorKind::LoaderAborted);
    assert!(report.sources[1].listing_error.is_some());
}

#[test]
fn zero_limits_are_invalid_config() {
    let invalid = [
        unlimited().concurrency(0).build(),
        unlimited().rate_limit(Some(0)).build(),
        unlimited().max_keys(0).build(),
        unlimited().every(Some(Duration::ZERO)).build(),
    ];
    for built in invalid {
        assert_eq!(built.unwrap_err().kind(), ErrorKind::InvalidConfig);
    }
    assert!(Warmer::<u32>::builder().build().is_ok());
}

//! The report's last section: every run's figures.

use tiercache_benches::thousands;

use super::{Measured, Restarted, Results, Start, Timed, list, n, pct, secs, workload_label};

pub(super) fn every_run(r: &Results) -> String {
    let mut md = String::from("## Every run\n\n");
    if !r.restart.is_empty() {
        md.push_str(
            "| part 1 | stack | start | hot-tier hit ratio per run | without the loader per run \
             | build s per run | warming s per run |\n|---|---|---|---|---|---|---|\n",
        );
        for case in &r.restart {
            let w = workload_label(r, case.workload);
            md.push_str(&format!(
                "| {w} | {} | steady state | {} | {} | – | – |\n",
                case.stack.label(),
                list(
                    case.lives
                        .iter()
                        .map(|l| l.steady_hot_hits as f64 / l.steady_requests.max(1) as f64),
                    pct
                ),
                list(
                    case.lives
                        .iter()
                        .map(|l| 1.0
                            - l.steady_loader_calls as f64 / l.steady_requests.max(1) as f64),
                    pct
                ),
            ));
            for (start, runs) in &case.restarts {
                md.push_str(&format!(
                    "| {w} | {} | {} | {} | {} | {} | {} |\n",
                    case.stack.label(),
                    start.label(),
                    list(runs.iter().map(Restarted::hot_ratio), pct),
                    list(runs.iter().map(Restarted::no_load_ratio), pct),
                    list(runs.iter().map(|r| r.build_s), secs),
                    if *start == Start::Warmer {
                        list(
                            runs.iter()
                                .filter_map(|r| r.warm.as_ref())
                                .map(|w| w.seconds),
                            secs,
                        )
                    } else {
                        "–".into()
                    },
                ));
            }
        }
        md.push('\n');
    }
    if let Some(l) = &r.load {
        md.push_str(&format!(
            "Part 2, {} entries: save s per run {}; load s per run {} (the load's own report: {}); \
             records/s per run {}.",
            thousands(l.filled_entries),
            list(l.memory.iter().map(|t| t.save_s), secs),
            list(l.memory.iter().map(|t| t.load_s), secs),
            list(l.memory.iter().map(|t| t.load_report_s), secs),
            list(l.memory.iter().map(Timed::records_per_s), n),
        ));
        if !l.disk.is_empty() {
            md.push_str(&format!(
                " Over redb, records/s per run: memory-only {}, over the redb tier {}.",
                list(l.disk.iter().map(|(m, _)| m.records_per_s()), n),
                list(l.disk.iter().map(|(_, d)| d.records_per_s()), n),
            ));
        }
        md.push_str("\n\n");
    }
    if !r.prefetch.is_empty() {
        md.push_str(
            "| part 3 | prefetcher | hot-tier hit ratio per run | loads per 1,000 requests per \
             run | by the prefetcher per run | precision per run | coverage per run |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for case in &r.prefetch {
            for (label, runs) in [("off", &case.off), ("on", &case.on)] {
                let stats: Vec<_> = runs.iter().filter_map(|m| m.stats.as_ref()).collect();
                md.push_str(&format!(
                    "| {} | {label} | {} | {} | {} | {} | {} |\n",
                    case.workload.label(),
                    list(runs.iter().map(Measured::hot_ratio), pct),
                    list(
                        runs.iter().map(|m| 1e3 * m.loads_per_request()),
                        |v| format!("{v:.1}")
                    ),
                    list(
                        runs.iter().map(|m| 1e3 * m.prefetch_load_share()),
                        |v| format!("{v:.1}")
                    ),
                    if stats.is_empty() {
                        "–".into()
                    } else {
                        list(stats.iter().map(|p| p.precision()), pct)
                    },
                    if stats.is_empty() {
                        "–".into()
                    } else {
                        list(stats.iter().map(|p| p.coverage()), pct)
                    },
                ));
            }
        }
        md.push('\n');
    }
    md
}

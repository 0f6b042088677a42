//! The baseline of the Redis tier: `redis-benchmark -t set,get` against
//! the same server, read from its CSV output.

use std::process::Command;
use std::time::Duration;

use crate::measure::Figures;

/// What one `redis-benchmark` invocation is asked to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub(crate) port: u16,
    /// Parallel connections (`-c`), one request in flight on each.
    pub(crate) clients: usize,
    /// Requests of each test (`-n`).
    pub(crate) requests: u64,
    /// Value bytes of each `SET` (`-d`).
    pub(crate) value_size: usize,
    /// Keys are drawn at random from this many (`-r`).
    pub(crate) keyspace: usize,
}

/// The figures of the `SET` and the `GET` test of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub(crate) set: Figures,
    pub(crate) get: Figures,
}

/// Runs `redis-benchmark -t set,get` (it runs `SET` first, so the `GET`s
/// find the keys it wrote).
pub(crate) fn run(load: Load) -> Result<Outcome, String> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &load.port.to_string()])
        .args(["-t", "set,get", "--csv"])
        .args(["-n", &load.requests.to_string()])
        .args(["-c", &load.clients.to_string()])
        .args(["-d", &load.value_size.to_string()])
        .args(["-r", &load.keyspace.to_string()])
        .output()
        .map_err(|e| format!("cannot run redis-benchmark: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&String::from_utf8_lossy(&out.stdout), load.requests)
}

/// How many requests make a timed run of about `seconds` at the rate a
/// warm-up run reached (the slower of its two tests), and at least 10,000.
pub(crate) fn requests_for(warm_up: &Outcome, seconds: Duration) -> u64 {
    let rate = warm_up.set.ops_per_sec.min(warm_up.get.ops_per_sec);
    ((rate * seconds.as_secs_f64()) as u64).max(10_000)
}

/// Reads the `SET` and `GET` rows of `redis-benchmark --csv`:
///
/// ```text
/// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
/// "SET","57306.59","0.552","0.168","0.463","1.063","2.327","5.495"
/// ```
fn parse(csv: &str, requests: u64) -> Result<Outcome, String> {
    let mut header: Option<Vec<String>> = None;
    let (mut set, mut get) = (None, None);
    for line in csv.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<String> = line
            .split(',')
            .map(|f| f.trim_matches('"').to_string())
            .collect();
        let Some(names) = &header else {
            if fields.first().is_some_and(|f| f == "test") {
                header = Some(fields);
            }
            continue;
        };
        let column = |name: &str| -> Result<f64, String> {
            let at = names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| format!("redis-benchmark printed no `{name}` column"))?;
            fields
                .get(at)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("redis-benchmark: no number for `{name}` in `{line}`"))
        };
        let figures = Figures {
            ops_per_sec: column("rps")?,
            p50_us: column("p50_latency_ms")? * 1_000.0,
            p99_us: column("p99_latency_ms")? * 1_000.0,
            ops: requests,
            failed: 0,
        };
        match fields[0].as_str() {
            "SET" => set = Some(figures),
            "GET" => get = Some(figures),
            _ => {}
        }
    }
    match (set, get) {
        (Some(set), Some(get)) => Ok(Outcome { set, get }),
        _ => Err(format!(
            "redis-benchmark printed no SET and GET rows:\n{csv}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_csv_rows() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                   \"SET\",\"57306.59\",\"0.552\",\"0.168\",\"0.463\",\"1.063\",\"2.327\",\"5.495\"\n\
                   \"GET\",\"70422.53\",\"0.408\",\"0.120\",\"0.335\",\"0.719\",\"1.975\",\"4.007\"\n";
        let outcome = parse(csv, 20_000).unwrap();
        assert_eq!(outcome.set.ops_per_sec, 57_306.59);
        assert!((outcome.set.p50_us - 463.0).abs() < 1e-9);
        assert!((outcome.get.p99_us - 1_975.0).abs() < 1e-9);
        assert_eq!(outcome.get.ops, 20_000);
        assert!(parse("\"test\",\"rps\"\n", 1).is_err());
        assert_eq!(
            requests_for(&outcome, Duration::from_secs(2)),
            114_613,
            "two seconds at the slower test's rate"
        );
    }
}

//! The command line of `simulate`.

use std::path::PathBuf;

use tiercache_benches::PolicyKind;

use crate::reference::{reference_capacities, reference_traces};

pub(crate) const USAGE: &str = "\
usage: simulate --trace PATH[,PATH...] --capacity N[,N...] [options]
       simulate --all [options]

Replays gzip'd access traces (.lis, .trace, .txt, each optionally .gz)
through tiercache's memory engine, an exact LRU, Belady's OPT, the peer
crates and reference policies at exact capacity (ARC, LIRS, moka synced
after every insert), and prints hit ratios (%) as a Markdown table on
stdout; progress goes to stderr.

options:
  --trace PATH[,PATH...]   a trace file; may be repeated
  --capacity N[,N...]      capacities in entries (required without --all)
  --policies P[,P...]      tiercache,tiercache-exact,lru,opt,moka,
                           quick_cache,foyer-lfu,foyer-s3fifo,arc,lirs,
                           moka-synced (default: all)
  --all                    every trace and capacity of the reference table in
                           the traces README
  --traces-dir DIR         where --all finds the traces
                           (default: ../shared/traces from the workspace root)
  --json PATH              also write the results as JSON
  --markdown-out PATH      also write a Markdown report (method, table,
                           comparison with the reference figures, plots)
  --plot-dir DIR           write one SVG per trace: hit ratio vs capacity
  --plot-points N          capacities per plot, log-spaced across the
                           table's capacities of the trace (default 7)
  --threads N              replays run in parallel (default: the cores)
  --runs N                 replays of each table row for the policies that
                           seed their hashing at random (tiercache, moka,
                           moka-synced, quick_cache); the table gives the
                           median, the report the range (default 1)
  -h, --help               this text";

/// The parsed command line.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) traces: Vec<PathBuf>,
    pub(crate) capacities: Vec<u64>,
    pub(crate) policies: Vec<PolicyKind>,
    pub(crate) all: bool,
    pub(crate) traces_dir: PathBuf,
    pub(crate) json: Option<PathBuf>,
    pub(crate) markdown_out: Option<PathBuf>,
    pub(crate) plot_dir: Option<PathBuf>,
    pub(crate) plot_points: usize,
    pub(crate) threads: usize,
    pub(crate) runs: usize,
}

impl Args {
    /// Each trace to run with the capacities of its table rows.
    pub(crate) fn jobs(&self) -> Vec<(PathBuf, Vec<u64>)> {
        if self.all {
            reference_traces()
                .into_iter()
                .map(|file| (self.traces_dir.join(file), reference_capacities(file)))
                .collect()
        } else {
            self.traces
                .iter()
                .map(|t| (t.clone(), self.capacities.clone()))
                .collect()
        }
    }
}

/// Parses the arguments after the program name; `Ok(None)` asks for help.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        traces: Vec::new(),
        capacities: Vec::new(),
        policies: PolicyKind::ALL.to_vec(),
        all: false,
        traces_dir: tiercache_benches::workspace_root().join("../shared/traces"),
        json: None,
        markdown_out: None,
        plot_dir: None,
        plot_points: 7,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        runs: 1,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--all" => parsed.all = true,
            "--trace" => parsed.traces.extend(list(&value()?).map(PathBuf::from)),
            "--capacity" => {
                for c in list(&value()?) {
                    parsed.capacities.push(number(c, "--capacity")?);
                }
            }
            "--policies" => {
                parsed.policies = list(&value()?)
                    .map(|p| PolicyKind::from_id(p).ok_or_else(|| format!("unknown policy `{p}`")))
                    .collect::<Result<_, _>>()?;
                parsed.policies.sort_unstable();
                parsed.policies.dedup();
            }
            "--traces-dir" => parsed.traces_dir = PathBuf::from(value()?),
            "--json" => parsed.json = Some(PathBuf::from(value()?)),
            "--markdown-out" => parsed.markdown_out = Some(PathBuf::from(value()?)),
            "--plot-dir" => parsed.plot_dir = Some(PathBuf::from(value()?)),
            "--plot-points" => parsed.plot_points = number(&value()?, &flag)? as usize,
            "--threads" => parsed.threads = (number(&value()?, &flag)? as usize).max(1),
            "--runs" => parsed.runs = (number(&value()?, &flag)? as usize).max(1),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if parsed.policies.is_empty() {
        return Err("--policies names no policy".to_string());
    }
    if parsed.all {
        if !parsed.traces.is_empty() || !parsed.capacities.is_empty() {
            return Err("--all runs the reference rows; leave out --trace and --capacity".into());
        }
    } else {
        if parsed.traces.is_empty() {
            return Err("give --trace, or --all".to_string());
        }
        if parsed.capacities.is_empty() {
            return Err("give --capacity, or --all".to_string());
        }
        parsed.capacities.sort_unstable();
        parsed.capacities.dedup();
    }
    Ok(Some(parsed))
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn number(text: &str, flag: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|e| format!("{flag}: `{text}` is not a whole number ({e})"))
}

/// `points` capacities log-spaced from the smallest to the largest of
/// `table`, for the plots (the table's own capacities are added by the
/// caller). None when the table has a single capacity or `points < 2`.
pub(crate) fn plot_capacities(table: &[u64], points: usize) -> Vec<u64> {
    let (Some(&lo), Some(&hi)) = (table.iter().min(), table.iter().max()) else {
        return Vec::new();
    };
    if points < 2 || lo == hi || lo == 0 {
        return Vec::new();
    }
    let ratio = hi as f64 / lo as f64;
    (0..points)
        .map(|i| (lo as f64 * ratio.powf(i as f64 / (points - 1) as f64)).round() as u64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Option<Args>, String> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn traces_and_capacities_take_lists_and_repeats() {
        let args = parse_line("--trace a.lis.gz,b.txt.gz --trace=c.trace --capacity 1_000,250,250")
            .unwrap()
            .unwrap();
        assert_eq!(args.traces.len(), 3);
        assert_eq!(args.capacities, [250, 1000]);
        assert_eq!(args.policies, PolicyKind::ALL);
        assert_eq!(args.jobs().len(), 3);
    }

    #[test]
    fn policies_are_checked() {
        let args = parse_line("--trace t.txt --capacity 5 --policies opt,lru")
            .unwrap()
            .unwrap();
        assert_eq!(args.policies, [PolicyKind::Lru, PolicyKind::Opt]);
        assert!(parse_line("--trace t.txt --capacity 5 --policies clock").is_err());
        let args = parse_line("--trace t.txt --capacity 5 --policies moka-synced,lirs,arc")
            .unwrap()
            .unwrap();
        assert_eq!(
            args.policies,
            [PolicyKind::Arc, PolicyKind::Lirs, PolicyKind::MokaSynced]
        );
    }

    #[test]
    fn all_excludes_trace_and_needs_no_capacity() {
        let args = parse_line("--all").unwrap().unwrap();
        assert_eq!(args.jobs().len(), 6);
        assert!(parse_line("--all --capacity 5").is_err());
        assert!(parse_line("--trace t.txt").is_err());
        assert!(parse_line("--help").unwrap().is_none());
    }

    #[test]
    fn plot_capacities_are_log_spaced_between_the_table_rows() {
        assert_eq!(
            plot_capacities(&[100, 10_000], 5),
            [100, 316, 1000, 3162, 10_000]
        );
        assert!(plot_capacities(&[100], 5).is_empty());
    }
}

//! How much of the machine other work took while a part ran: the CPU
//! time every process used (`/proc/stat`) less this process's own
//! (`/proc/self/stat`), and the time the hypervisor took (steal), so that
//! the report can say whether its timings had the machine to themselves.

use std::time::Instant;

/// Clock ticks a second of `/proc`'s CPU times (`getconf CLK_TCK`; 100
/// where it cannot say, as on every common Linux build).
fn ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// The CPU counters at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    at: Instant,
    /// Ticks every CPU spent busy (not idle, not waiting for I/O), steal
    /// left out.
    busy: u64,
    steal: u64,
    /// Ticks this process spent, user and system.
    own: u64,
}

/// What other work used between two samples.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Shared {
    pub(crate) wall_s: f64,
    /// CPU seconds of other processes.
    pub(crate) others_s: f64,
    /// CPU seconds the hypervisor took from this machine.
    pub(crate) steal_s: f64,
}

impl Sample {
    /// Now, or `None` without procfs.
    pub(crate) fn now() -> Option<Sample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is
        // counted in user already).
        let field = |i: usize| cpu.get(i).copied().unwrap_or(0);
        let busy = field(0) + field(1) + field(2) + field(5) + field(6);
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command name, which is in parentheses and
        // may hold spaces: utime and stime are the 12th and 13th of them.
        let rest = own_stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let own = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Sample {
            at: Instant::now(),
            busy,
            steal: field(7),
            own,
        })
    }

    /// What other work used from `self` to `later`.
    pub(crate) fn until(&self, later: &Sample) -> Shared {
        let tick = ticks_per_s();
        let busy = later.busy.saturating_sub(self.busy);
        let own = later.own.saturating_sub(self.own);
        Shared {
            wall_s: later.at.duration_since(self.at).as_secs_f64(),
            others_s: busy.saturating_sub(own) as f64 / tick,
            steal_s: later.steal.saturating_sub(self.steal) as f64 / tick,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_read_and_subtract() {
        let Some(a) = Sample::now() else {
            return;
        };
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let b = Sample::now().unwrap();
        let shared = a.until(&b);
        assert!(shared.wall_s > 0.0);
        assert!(shared.others_s >= 0.0 && shared.steal_s >= 0.0);
    }
}

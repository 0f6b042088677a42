//! Where and when a benchmark ran, for the reports: the commit, the
//! peers' versions, the date.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The workspace root, wherever a benchmark binary is run from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches has a parent directory")
        .to_path_buf()
}

/// The short hash of `HEAD` (`git rev-parse --short HEAD`), with
/// " (+ uncommitted changes)" when tracked files differ from it; `None`
/// outside a git checkout.
pub fn git_commit() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(workspace_root())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let hash = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{hash} (+ uncommitted changes)")
    } else {
        hash
    })
}

/// The versions the workspace's `Cargo.lock` pins for the crates `names`,
/// in the order the lock file lists them; names it lacks are left out.
pub fn locked_versions(names: &[&'static str]) -> Vec<(&'static str, String)> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap_or_default();
    let mut found = Vec::new();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("name = \"")
            .and_then(|r| r.strip_suffix('"'))
        else {
            continue;
        };
        let Some(&wanted) = names.iter().find(|&&n| n == name) else {
            continue;
        };
        if let Some(version) = lines
            .next()
            .and_then(|l| l.strip_prefix("version = \""))
            .and_then(|r| r.strip_suffix('"'))
        {
            found.push((wanted, version.to_string()));
        }
    }
    found
}

/// The kernel release (`uname -r`), or "unknown".
pub fn kernel_release() -> String {
    Command::new("uname")
        .arg("-r")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The processor's model name from `/proc/cpuinfo`; `None` where there is
/// no procfs or it names none.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, name)| name.trim().to_string())
}

/// The current time as `YYYY-MM-DD HH:MM`, UTC.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Writes a generated document, creating its folder if needed; the error
/// names the path.
pub fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn the_lock_file_pins_the_peers() {
        let versions = locked_versions(&["moka", "no-such-crate"]);
        assert_eq!(versions.len(), 1);
        assert!(versions[0].1.starts_with("0.12"), "{versions:?}");
    }
}

/// The machine and build that benchmark figures come from, for the header
/// of a report.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Cores available to the process.
    pub cores: usize,
    /// The kernel release.
    pub kernel: String,
    /// The processor model, where the system says.
    pub cpu: Option<String>,
    /// When the figures were taken (UTC).
    pub date: String,
    /// The commit measured (`unknown` outside a checkout).
    pub commit: String,
    /// Versions of the crates and tools the report names.
    pub versions: Vec<(&'static str, String)>,
}

impl Machine {
    /// This machine now, with `versions` of what was measured.
    pub fn collect(versions: Vec<(&'static str, String)>) -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: kernel_release(),
            cpu: cpu_model(),
            date: utc_now(),
            commit: git_commit().unwrap_or_else(|| "unknown".to_string()),
            versions,
        }
    }

    /// The head of a generated report: its `title`, which `cargo xtask
    /// bench` command wrote it, when, from which commit and in how long,
    /// and this machine.
    pub fn report_header(&self, title: &str, bench: &str, elapsed_s: f64) -> String {
        let cpu = self
            .cpu
            .as_deref()
            .map_or(String::new(), |cpu| format!(", {cpu}"));
        format!(
            "# {title}\n\nGenerated by `cargo xtask bench {bench}` on {} UTC at commit `{}`, in \
             {elapsed_s:.0} s. Do not edit by hand: run it again.\n\nMachine: {} cores \
             (`std::thread::available_parallelism`){cpu}, Linux kernel `{}`.\n\n",
            self.date, self.commit, self.cores, self.kernel
        )
    }

    /// A generated report as JSON: where and when it was measured (as in
    /// [`report_header`](Self::report_header)), then the fields of
    /// `figures`, pretty-printed with a final newline.
    ///
    /// # Panics
    ///
    /// If `figures` is not a JSON object.
    pub fn report_json(&self, elapsed_s: f64, figures: serde_json::Value) -> String {
        let serde_json::Value::Object(figures) = figures else {
            panic!("a report's figures are a JSON object");
        };
        let versions: serde_json::Map<String, serde_json::Value> = self
            .versions
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_str().into()))
            .collect();
        let mut value = serde_json::json!({
            "generated_utc": self.date,
            "commit": self.commit,
            "elapsed_s": elapsed_s,
            "cores": self.cores,
            "kernel": self.kernel,
            "cpu": self.cpu,
            "versions": versions,
        });
        if let serde_json::Value::Object(fields) = &mut value {
            fields.extend(figures);
        }
        let mut text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
        text.push('\n');
        text
    }

    /// The version recorded for `name`, or `?`.
    pub fn version(&self, name: &str) -> &str {
        self.versions
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("?", |(_, v)| v.as_str())
    }
}

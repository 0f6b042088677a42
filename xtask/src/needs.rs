//! Test groups that need a program from outside the workspace, listed in
//! one place. When a group's programs are missing, `cargo xtask test`
//! leaves its tests out with a nextest filter (the summary counts them as
//! skipped, not passed) and says so, with the command that installs them;
//! when the group is required (its flag, or its environment variable set to
//! `1`, as CI sets), a missing program fails the run instead.

use std::process::{Command, Stdio};

use anyhow::{Result, bail};

/// A group of tests and the outside programs they need.
#[derive(Debug)]
pub(crate) struct Need {
    /// What the group is, for messages: "Redis".
    pub(crate) name: &'static str,
    /// The `cargo xtask test` flag that requires it.
    pub(crate) flag: &'static str,
    /// The environment variable that requires it when `1`; the tests read
    /// it too, and fail rather than return early without the programs.
    pub(crate) env: &'static str,
    /// The programs that must answer `--version`.
    pub(crate) programs: &'static [&'static str],
    /// The nextest filter expression that selects the group's tests. Each
    /// binary-level predicate (`binary`, `package`) is joined to a test-level
    /// one, so that nextest lists the binaries and counts every test left out
    /// as skipped; a binary excluded whole is left out of the summary's count.
    pub(crate) tests: &'static str,
    /// How to install the programs.
    pub(crate) install: &'static str,
}

/// Every group. A test that needs a Redis server is in a `tests/tests`
/// binary named `redis_*`, or has `redis` in its name in another binary of
/// `tiercache-tests`; a Redis test that needs no server (a client facing a
/// server that is not there) goes in a binary named otherwise
/// (`unreachable_redis`).
pub(crate) const NEEDS: &[Need] = &[Need {
    name: "Redis",
    flag: "--redis",
    env: "TIERCACHE_REQUIRE_REDIS",
    programs: &["redis-server", "redis-cli"],
    tests: "package(tiercache-tests) & ((binary(/^redis_/) & test(/./)) | test(/redis/))",
    install: "Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis",
}];

/// A group whose tests this run leaves out, and why.
#[derive(Debug)]
pub(crate) struct Skipped<'a> {
    pub(crate) need: &'a Need,
    pub(crate) missing: Vec<&'static str>,
}

impl Skipped<'_> {
    /// The line printed at the start and the end of the run.
    pub(crate) fn line(&self, count: Option<usize>) -> String {
        let count = count.map_or(String::new(), |n| format!(" {n}"));
        format!(
            "xtask: skipping the{count} {} tests: {} not found (install: {}); `cargo xtask test {}` makes this a failure",
            self.need.name,
            self.missing.join(" and "),
            self.need.install,
            self.need.flag,
        )
    }
}

/// Which groups this run skips, given the flags it was called with, the
/// environment variable reader `env` and the program probe `runs`: a group
/// with every program runs; one missing a program is skipped, or fails the
/// run when required.
pub(crate) fn plan<'a>(
    needs: &'a [Need],
    flags: &[String],
    env: impl Fn(&str) -> Option<String>,
    runs: impl Fn(&str) -> bool,
) -> Result<Vec<Skipped<'a>>> {
    let mut skipped = Vec::new();
    for need in needs {
        let missing: Vec<&'static str> =
            need.programs.iter().copied().filter(|p| !runs(p)).collect();
        if missing.is_empty() {
            continue;
        }
        let required =
            flags.iter().any(|f| f == need.flag) || env(need.env).is_some_and(|v| v == "1");
        if required {
            bail!(
                "the {} tests are required ({} or {}=1) but {} could not be run (install: {})",
                need.name,
                need.flag,
                need.env,
                missing.join(" and "),
                need.install
            );
        }
        skipped.push(Skipped { need, missing });
    }
    Ok(skipped)
}

/// The nextest filter expression that leaves out every skipped group's
/// tests; `None` when nothing is skipped.
pub(crate) fn skip_filter(skipped: &[Skipped<'_>]) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    let groups: Vec<String> = skipped
        .iter()
        .map(|s| format!("({})", s.need.tests))
        .collect();
    Some(format!("not ({})", groups.join(" | ")))
}

/// The flags of `cargo xtask test` that belong to the groups, apart from
/// the arguments that go on to the test runner.
pub(crate) fn split_flags(args: &[String]) -> (Vec<String>, Vec<String>) {
    args.iter()
        .cloned()
        .partition(|a| NEEDS.iter().any(|n| n.flag == a))
}

/// Whether `program --version` runs and succeeds.
pub(crate) fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis() -> &'static Need {
        &NEEDS[0]
    }

    #[test]
    fn a_group_with_its_programs_runs_and_filters_nothing() {
        let skipped = plan(NEEDS, &[], |_| None, |_| true).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(skip_filter(&skipped), None);
    }

    #[test]
    fn a_missing_program_skips_exactly_the_group_tests() {
        let skipped = plan(NEEDS, &[], |_| None, |p| p != "redis-server").unwrap();
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].missing, ["redis-server"]);
        assert_eq!(
            skip_filter(&skipped).unwrap(),
            format!("not (({}))", redis().tests)
        );
        let line = skipped[0].line(Some(42));
        assert!(line.contains("skipping the 42 Redis tests"), "{line}");
        assert!(line.contains("redis-server not found"), "{line}");
        assert!(line.contains("apt-get install -y redis-server"), "{line}");
        assert!(line.contains("brew install redis"), "{line}");
    }

    #[test]
    fn a_required_group_fails_when_a_program_is_missing() {
        let flag = vec!["--redis".to_string()];
        let err = plan(NEEDS, &flag, |_| None, |_| false).unwrap_err();
        assert!(
            err.to_string().contains("redis-server and redis-cli"),
            "{err}"
        );
        let from_env = |v: &str| (v == "TIERCACHE_REQUIRE_REDIS").then(|| "1".to_string());
        assert!(plan(NEEDS, &[], from_env, |_| false).is_err());
        // Any other value of the variable leaves the group optional.
        let other = |_: &str| Some("0".to_string());
        assert_eq!(plan(NEEDS, &[], other, |_| false).unwrap().len(), 1);
        // Required and present: it runs.
        assert!(plan(NEEDS, &flag, |_| None, |_| true).unwrap().is_empty());
    }

    #[test]
    fn group_flags_are_taken_out_of_the_runner_arguments() {
        let args: Vec<String> = ["--redis", "-E", "test(x)"].map(String::from).into();
        let (flags, rest) = split_flags(&args);
        assert_eq!(flags, ["--redis"]);
        assert_eq!(rest, ["-E", "test(x)"]);
    }

    /// The filter's convention, checked against the tree: every integration
    /// test file that starts a Redis server is a `redis_*` binary, or names
    /// each test that does with `redis`; and no `redis_*` binary runs
    /// without one.
    #[test]
    fn the_redis_filter_matches_the_tests_that_start_a_server() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tests");
        let starts_server = |text: &str| {
            [
                "RedisServer::",
                "RedisCluster::",
                "RedisSentinel::",
                "redis_available(",
            ]
            .iter()
            .any(|m| text.contains(m))
        };
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            if name.starts_with("redis_") {
                seen += 1;
                assert!(starts_server(&text), "{name} needs no server: rename it");
            } else if starts_server(&text) {
                // Such a file must name its Redis tests for Redis (the
                // filter selects them by name); a test there that reaches a
                // server through a helper is not traced, so at least one
                // test must carry the name.
                let tests: Vec<&str> = text
                    .split("#[tokio::test")
                    .skip(1)
                    .filter_map(|t| t.split("fn ").nth(1)?.split('(').next())
                    .collect();
                assert!(
                    tests.iter().any(|t| t.contains("redis")),
                    "{name} starts a Redis server but no test in it is named for it"
                );
            }
        }
        assert!(seen > 10, "only {seen} redis_* binaries found in {dir:?}");
    }
}

//! Smoke runs of the benchmark scripts with small inputs, on the binaries of this build: each
//! finishes and prints its one line with sane figures. The figures themselves are not judged here
//! (the machine may be busy); `tests/bench/*.sh` with their default sizes are the benchmarks.

use std::process::Command;

use intelmq_tests::{binary, shared_dir, workspace_dir};

/// Runs `tests/bench/<script> <args>` and returns its standard output.
fn run_script(script: &str, args: &[&str]) -> String {
    let gen = shared_dir().join("bench/gen_feed.py");
    assert!(gen.exists(), "{} is missing: the bench scripts need ../shared/bench", gen.display());
    let path = workspace_dir().join("tests/bench").join(script);
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .env("INTELMQ_NODE_BIN", binary("intelmq-node"))
        .env("INTELMQCTL_BIN", binary("intelmqctl"))
        .env("INTELMQ_SHARED_DIR", shared_dir())
        .env("BENCH_TIMEOUT", "300")
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} {args:?} failed ({}):\n{stdout}\n{stderr}", path.display(), out.status);
    stdout
}

/// The only line of `out`.
fn only_line(out: &str) -> &str {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {out}");
    lines[0]
}

/// The number after `label` in `line` (e.g. `peak RSS ` -> 41.2).
fn figure(line: &str, label: &str) -> f64 {
    let rest = line.split(label).nth(1).unwrap_or_else(|| panic!("no `{label}` in {line:?}"));
    let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    num.parse().unwrap_or_else(|_| panic!("no number after `{label}` in {line:?}"))
}

#[test]
fn pipeline_bench_runs_the_bench_pipeline_and_prints_its_line() {
    let out = run_script("pipeline-bench.sh", &["3000"]);
    let line = only_line(&out);
    assert!(line.starts_with("pipeline-bench: 3000 rows -> "), "{line}");
    // gen_feed.py repeats every 10th row; the deduplicator drops the repeats (the script checks
    // the count against the unique rows).
    let events = figure(line, "rows -> ");
    assert!((2700.0..=3000.0).contains(&events), "{line}");
    assert!(figure(line, " = ") > 0.0, "{line}");
    assert!(figure(line, "peak RSS ") > 0.0, "{line}");
}

#[test]
fn backlog_bench_queues_drains_and_prints_its_line() {
    let out = run_script("backlog-bench.sh", &["20000"]);
    let line = only_line(&out);
    assert!(line.starts_with("backlog-bench: 20000 queued, peak RSS "), "{line}");
    let rss = figure(line, "peak RSS ");
    assert!(rss > 0.0 && rss < 300.0, "peak RSS out of bounds: {line}");
    assert!(figure(line, "drain ") > 0.0, "{line}");
    // 20,000 events fit in the memtables: the store's shrinking after a drain is for backlogs of
    // 50,000 and more (store unit tests and the full run).
    assert!(figure(line, "before/after ") > 0.0 && figure(line, "MB/") > 0.0, "{line}");
}

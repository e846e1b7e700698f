//! `cargo xtask demo` end to end: it runs the whole flow on localkube, and
//! the per-package coverage that `cov-report` prints (as the last Skaffold
//! hook) equals what Go's own `go tool covdata percent` says about the files
//! `cov-collect` brought home; afterwards no process of the demo is left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Per-package coverage lines as `go tool covdata percent` prints them:
/// `<package> coverage: <p>% of statements`.
fn coverage_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| l.contains("coverage:") && l.contains("of statements"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let package = words.next()?.to_owned();
            let percent = l.split("coverage:").nth(1)?.split_whitespace().next()?;
            Some((package, percent.to_owned()))
        })
        .collect()
}

/// Every folder under `root` that holds a Go coverage meta-data file.
fn coverage_dirs(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut has_meta = false;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if entry.file_name().to_string_lossy().starts_with("covmeta.") {
                has_meta = true;
            }
        }
        if has_meta {
            found.push(dir);
        }
    }
    found.sort();
    found
}

/// Processes whose executable lies under `dir` (Linux: /proc/<pid>/exe).
fn processes_under(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let exe = std::fs::read_link(e.path().join("exe")).ok()?;
            exe.starts_with(dir).then(|| {
                format!(
                    "pid {} ({})",
                    e.file_name().to_string_lossy(),
                    exe.display()
                )
            })
        })
        .collect()
}

#[test]
fn demo_runs_end_to_end_and_reports_what_go_reports() {
    toolchain::require_go();
    toolchain::require_kubectl();
    let work = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("demo")
        .arg("--work-dir")
        .arg(work.path())
        .current_dir(toolchain::workspace_root())
        .output()
        .expect("running xtask demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo xtask demo failed ({}):\n{stdout}\n{stderr}",
        out.status
    );

    let work = work.path().canonicalize().expect("work dir");
    assert!(
        processes_under(&work).is_empty(),
        "processes left behind: {:?}",
        processes_under(&work)
    );

    // Exactly the rendered manifests were deployed: the overlay's Service too.
    assert!(
        stdout.contains("services: default/greeter "),
        "the rendered Service was not deployed:\n{stdout}"
    );

    let pods = coverage_dirs(&work.join("greeter/reports/coverage"));
    assert_eq!(
        pods.len(),
        2,
        "coverage collected from both replicas, found {pods:?}\n{stdout}"
    );

    let printed = coverage_lines(&stdout);
    assert!(
        !printed.is_empty(),
        "the demo printed no per-package coverage:\n{stdout}"
    );

    let inputs = pods
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let oracle = toolchain::go_command()
        .expect("go")
        .args(["tool", "covdata", "percent", "-i", &inputs])
        .output()
        .expect("running go tool covdata percent");
    assert!(
        oracle.status.success(),
        "{}",
        String::from_utf8_lossy(&oracle.stderr)
    );
    let expected = coverage_lines(&String::from_utf8_lossy(&oracle.stdout));
    assert_eq!(
        printed, expected,
        "cov-report (left) differs from go tool covdata percent (right)"
    );
    // The integration test ran: some of the handlers are covered, not all.
    let handlers = &expected["example.com/greeter/internal/handlers"];
    assert!(
        handlers != "0.0%" && handlers != "100.0%",
        "handlers coverage {handlers}"
    );
}

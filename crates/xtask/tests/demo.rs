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

/// What one run of the demo printed.
struct Demo {
    stdout: String,
    stderr: String,
    work: PathBuf,
    _dir: tempfile::TempDir,
}

/// `cargo xtask demo [--profile P]`, checked end to end: it succeeds, leaves no
/// process behind, deploys the Service, collects from both replicas, and the
/// per-package coverage it prints equals `go tool covdata percent` on the
/// collected files.
fn demo(profile: Option<&str>) -> Demo {
    match profile {
        Some(p) => demo_with(&["--profile", p], 2),
        None => demo_with(&[], 2),
    }
}

/// `cargo xtask demo ARGS`, checked as [`demo`] says, with `expected_pods` pod folders
/// of coverage expected; the coverage compared is what the last `cov-report`
/// hook printed.
fn demo_with(args: &[&str], expected_pods: usize) -> Demo {
    toolchain::require_go();
    toolchain::require_kubectl();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("demo").arg("--work-dir").arg(dir.path()).args(args);
    let out = cmd
        .current_dir(toolchain::workspace_root())
        .output()
        .expect("running xtask demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "cargo xtask demo {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );

    let work = dir.path().canonicalize().expect("work dir");
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
        expected_pods,
        "coverage collected from every pod, found {pods:?}\n{stdout}"
    );

    let last_report = stdout
        .rfind(": cov-report ")
        .map_or(stdout.as_str(), |at| &stdout[at..]);
    let printed = coverage_lines(last_report);
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
    Demo {
        stdout,
        stderr,
        work,
        _dir: dir,
    }
}

/// The config of the OCI layout at `dir` (its first manifest's).
fn image_config(dir: &Path) -> serde_json::Value {
    let blob = |digest: &str| -> serde_json::Value {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        let text = std::fs::read(dir.join("blobs/sha256").join(hex)).expect("blob");
        serde_json::from_slice(&text).expect("json blob")
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
            .expect("index json");
    let manifest = blob(
        index["manifests"][0]["digest"]
            .as_str()
            .expect("manifest digest"),
    );
    blob(
        manifest["config"]["digest"]
            .as_str()
            .expect("config digest"),
    )
}

#[test]
fn demo_runs_end_to_end_and_reports_what_go_reports() {
    let d = demo(None);
    // The coverage profile's image carries busybox: the tools exec there.
    assert!(
        d.stdout
            .contains("no helper containers: the tools exec'd in the service's container"),
        "{}",
        d.stdout
    );
}

#[test]
fn distroless_profile_runs_the_nonroot_image_through_helpers() {
    let d = demo(Some("coverage-distroless"));
    // The image is distroless static:nonroot's shape: uid 65532, no shell.
    let config = image_config(&d.work.join("images/greeter"));
    assert_eq!(config["config"]["User"], "65532:65532", "{config}");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/ko-app/greeter"])
    );
    assert!(
        d.stdout
            .contains("on a gcr.io/distroless/static-debian12:nonroot-like base"),
        "{}",
        d.stdout
    );
    // --via auto found no kill/ls/tar and said so, once per pod (cov-signal;
    // cov-collect then finds the helpers running and goes straight to them)…
    let all = format!("{}{}", d.stdout, d.stderr);
    let told = all
        .lines()
        .filter(|l| {
            l.contains("lacks the programs exec needs") && l.contains("using a helper container")
        })
        .count();
    assert_eq!(told, 2, "two pods, told by cov-signal:\n{all}");
    // …and the demo shows the helpers it added: one per pod.
    let line = d
        .stdout
        .lines()
        .find(|l| l.contains("helper containers the tools added"))
        .unwrap_or_else(|| panic!("the demo does not show its helpers:\n{}", d.stdout));
    assert_eq!(line.matches(": cov-helper").count(), 2, "{line}");
}

/// `cargo xtask demo --dev`: two `skaffold dev` iterations with the Deployment
/// rolled in between. The last report equals `go tool covdata` over the files
/// of both generations of pods (checked by `demo_with`), and the first
/// generation's files were kept: collected at the end of iteration 1 and
/// again by the follower while the rollout's preStop hold kept each pod.
#[test]
fn dev_demo_keeps_the_first_generations_coverage_across_a_rollout() {
    let d = demo_with(&["--dev"], 4);
    let names = |prefix: &str| -> Vec<String> {
        let line = d
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line:\n{}", d.stdout));
        line.split(", ").map(str::to_owned).collect()
    };
    let first = names("generation 1 pods (replaced): ");
    let second = names("generation 2 pods: ");
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(
        first.iter().all(|p| !second.contains(p)),
        "{first:?} {second:?}"
    );
    let collected = coverage_dirs(&d.work.join("greeter/reports/coverage"));
    for pod in &first {
        let dir = collected
            .iter()
            .find(|c| c.components().any(|part| part.as_os_str() == pod.as_str()))
            .unwrap_or_else(|| panic!("nothing kept of {pod}: {collected:?}"));
        let counters = std::fs::read_dir(dir)
            .expect("pod folder")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("covcounters."))
            .count();
        assert!(
            counters >= 2,
            "{pod}: {counters} counter file(s); expected iteration 1's and the rollout's"
        );
    }
    // The follower of iteration 2 lost no pod of the rollout.
    assert!(
        d.stdout.contains("4 pod(s) collected, 0 lost"),
        "{}",
        d.stdout
    );
}

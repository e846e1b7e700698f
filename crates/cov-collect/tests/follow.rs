//! `cov-collect --follow` against localkube and the real Go service: pods
//! deleted mid-test and rolled out are collected while their preStop hook
//! holds them; a watch that is dropped resumes, one answered 410 re-lists; a
//! pod removed without a grace period is reported lost (exit 1); the counters
//! of a container restarted (by a fault, then by localkube's kubelet-like
//! restart after a crash) are merged; an interrupted follower leaves its
//! files intact and a rerun continues; the service's SIGTERM path writes its
//! counters. `go tool covdata` is the oracle.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use localkube::Fault;

const HANDLERS: &str = "example.com/greeter/internal/handlers";

/// A follower started in the background; its stderr lines arrive on `lines`.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Follower {
    fn start(cluster: &Cluster, out: &Path, extra: &[&str]) -> Follower {
        let mut cmd = Command::new(tool("cov-collect"));
        cmd.arg("--kubeconfig")
            .arg(cluster.kube.kubeconfig())
            .args(["--follow", "--run-id", RUN_ID, "--output", "json", "--out"])
            .arg(out)
            .args(extra)
            .env_remove("SKAFFOLD_RUN_ID")
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting cov-collect --follow");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("follower: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut f = Follower {
            child,
            lines,
            seen: Vec::new(),
        };
        f.wait_for("cov-collect: following");
        f
    }

    /// Wait (up to 30 s) for a stderr line containing `text`.
    fn wait_for(&mut self, text: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
            return l.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no line {text:?} from the follower; saw {:?}", self.seen)
            });
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    /// SIGTERM, then its exit code and JSON summary.
    fn stop(self) -> (i32, serde_json::Value) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let out = self
            .child
            .wait_with_output()
            .expect("waiting for the follower");
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "summary is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.code().unwrap_or(-1), json)
    }
}

fn kubectl(cluster: &Cluster, args: &[&str]) {
    let out = Command::new(toolchain::require_kubectl())
        .arg("--kubeconfig")
        .arg(cluster.kube.kubeconfig())
        .arg("--cache-dir")
        .arg(cluster.dir.path().join("kubectl-cache"))
        .args(args)
        .output()
        .expect("running kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn counter_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.starts_with("covcounters."))
        .collect()
}

fn pod_dir(out: &Path, pod: &str) -> PathBuf {
    out.join("default").join(pod).join("app")
}

fn pod_summary<'a>(json: &'a serde_json::Value, pod: &str) -> &'a serde_json::Value {
    json["pods"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["pod"] == pod))
        .unwrap_or_else(|| panic!("{pod} not in the summary: {json:#}"))
}

fn handlers_percent(dirs: &[PathBuf]) -> f64 {
    covdata("percent", dirs, &[])
        .lines()
        .find(|l| l.contains(HANDLERS))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|p| p.trim_end_matches('%').parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn deleted_and_rolled_pods_are_collected_watches_resume_and_a_pod_without_grace_is_lost() {
    let cluster = start(&[(manifest("greeter-dev.yaml"), None, vec![])]);
    let out = cluster.dir.path().join("out");
    let mut follower = Follower::start(&cluster, &out, &[]);
    let gen1: Vec<String> = cluster.run_pods().into_iter().map(|p| p.name).collect();
    assert_eq!(gen1.len(), 2);
    let hash1 = cluster.run_pods()[0].labels["pod-template-hash"].clone();

    // Mid-test, one pod is deleted: it is collected while preStop holds it.
    traffic(&cluster, &["/greet?name=a", "/sum?a=1&b=2"]);
    let first_deleted = gen1[0].clone();
    kubectl(&cluster, &["delete", "pod", &first_deleted, "--wait=false"]);
    follower.wait_for(&format!("{first_deleted} is being deleted"));
    assert!(eventually(Duration::from_secs(20), || {
        !counter_files(&pod_dir(&out, &first_deleted)).is_empty()
    }));
    // Its replacement (same template) runs; the deleted one goes.
    assert!(eventually(Duration::from_secs(20), || {
        let now = cluster.run_pods();
        now.len() == 2 && now.iter().all(|p| p.name != first_deleted)
    }));
    for p in cluster.run_pods() {
        wait_ready(p.address.expect("address"));
    }

    // The watch is dropped and resumes; then it is expired with 410 Gone, and
    // the follower re-lists.
    cluster.kube.drop_watches();
    std::thread::sleep(Duration::from_millis(500));
    cluster.kube.expire_watches();
    std::thread::sleep(Duration::from_millis(500));

    // A rollout: every first-generation pod is collected as it goes.
    traffic(&cluster, &["/fizzbuzz/15"]);
    let mut gen1: Vec<String> = cluster.run_pods().into_iter().map(|p| p.name).collect();
    gen1.push(first_deleted.clone());
    kubectl(&cluster, &["rollout", "restart", "deployment/greeter-dev"]);
    assert!(
        eventually(Duration::from_secs(60), || {
            let now = cluster.run_pods();
            now.len() == 2 && now.iter().all(|p| p.labels["pod-template-hash"] != hash1)
        }),
        "the rollout did not finish"
    );
    let gen2: Vec<String> = cluster.run_pods().into_iter().map(|p| p.name).collect();
    for p in cluster.run_pods() {
        wait_ready(p.address.expect("address"));
    }
    traffic(&cluster, &["/greet?name=b"]);

    // A pod removed at once (grace period 0) cannot be collected: lost.
    kubectl(
        &cluster,
        &["delete", "pod", &gen2[0], "--grace-period=0", "--force"],
    );
    follower.wait_for(&format!("LOST default/{}", gen2[0]));

    let (code, json) = follower.stop();
    assert_eq!(code, 1, "a lost pod makes the exit status 1: {json:#}");
    assert_eq!(json["lost"], 1, "{json:#}");
    assert_eq!(pod_summary(&json, &gen2[0])["state"], "lost");
    assert!(
        pod_summary(&json, &gen2[0])["reason"]
            .as_str()
            .is_some_and(|r| r.contains("without a grace period")),
        "{json:#}"
    );
    for pod in gen1.iter().chain(&gen2[1..]) {
        assert_eq!(pod_summary(&json, pod)["state"], "collected", "{json:#}");
        assert!(!counter_files(&pod_dir(&out, pod)).is_empty(), "{pod}");
    }
    assert!(json["watch_resumes"].as_u64().unwrap() >= 1, "{json:#}");
    assert!(json["relists"].as_u64().unwrap() >= 1, "{json:#}");

    // Coverage of the first generation was kept, and the whole is what Go reads.
    let first: Vec<PathBuf> = gen1.iter().map(|p| pod_dir(&out, p)).collect();
    assert!(handlers_percent(&first) > 0.0);
    percent_matches_go(&out);
}

#[test]
fn a_restarted_containers_counters_are_merged_and_an_interrupted_follow_can_be_rerun() {
    let cluster = start(&[(manifest("greeter-dev.yaml"), None, vec![])]);
    let out = cluster.dir.path().join("out");
    let pid_file = cluster.dir.path().join("follow.pid");
    let pid_arg = pid_file.to_str().unwrap();
    let pod = cluster.run_pods()[0].name.clone();
    let dir = pod_dir(&out, &pod);

    // In the background, collecting every 300 ms.
    let started = cluster.run(
        "cov-collect",
        &[
            "--follow",
            "--run-id",
            RUN_ID,
            "--out",
            out.to_str().unwrap(),
            "--interval",
            "300ms",
            "--detach",
            "--pid-file",
            pid_arg,
        ],
        &[],
    );
    assert!(started.status.success());
    traffic(&cluster, &["/greet?name=a"]);
    assert!(eventually(Duration::from_secs(20), || counter_files(&dir)
        .len()
        >= 2));

    // The container is killed and restarted: what its first instance flushed
    // stays in the emptyDir and is collected with the second's.
    let before = counter_files(&dir);
    cluster
        .kube
        .set_fault(
            "default",
            &pod,
            Fault::ContainerRestarted {
                container: "app".into(),
            },
        )
        .unwrap();
    let addr = cluster.run_pods()[0].address.unwrap();
    wait_ready(addr);
    traffic(&cluster, &["/sum?a=2&b=3"]);
    assert!(eventually(Duration::from_secs(20), || {
        counter_files(&dir).len() > before.len() + 1
    }));

    // A crash: the service is killed from outside (as by the OOM killer) and
    // localkube restarts it as a kubelet does (restartPolicy Always, the first
    // restart at once); the follower keeps collecting the new instance.
    let before = counter_files(&dir);
    let crashed = cluster.run_pods()[0].containers[0].pid.unwrap();
    // SAFETY: kill(2) on the container's PID 1, a process of this test's localkube.
    unsafe { libc::kill(crashed, libc::SIGKILL) };
    assert!(eventually(Duration::from_secs(20), || {
        let c = &cluster.run_pods()[0].containers[0];
        c.restart_count == 2 && c.running && c.pid != Some(crashed)
    }));
    let addr = cluster.run_pods()[0].address.unwrap();
    wait_ready(addr);
    traffic(&cluster, &["/greet?name=b"]);
    assert!(eventually(Duration::from_secs(20), || {
        counter_files(&dir).len() > before.len()
    }));

    // The follower is killed hard: no summary, but every file it took is whole.
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on the follower's pid, read from its pid file.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(eventually(Duration::from_secs(5), || !process_alive(pid)));
    let kept: Vec<(String, Vec<u8>)> = files(&dir)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(dir.join(&f)).unwrap()))
        .collect();
    let stopped = cluster.run("cov-collect", &["--stop", "--pid-file", pid_arg], &[]);
    assert_eq!(stopped.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("ended without a summary"));
    percent_matches_go(&out);

    // A rerun continues: it only adds files, and stops with a summary.
    let again = cluster.run(
        "cov-collect",
        &[
            "--follow",
            "--run-id",
            RUN_ID,
            "--out",
            out.to_str().unwrap(),
            "--detach",
            "--pid-file",
            pid_arg,
            "--output",
            "json",
        ],
        &[],
    );
    assert!(again.status.success());
    traffic(&cluster, &["/fizzbuzz/3"]);
    let stopped = cluster.run("cov-collect", &["--stop", "--pid-file", pid_arg], &[]);
    assert_eq!(stopped.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&stopped.stdout).unwrap();
    assert_eq!(json["lost"], 0, "{json:#}");
    assert_eq!(json["collected"], 2, "{json:#}");
    for (name, bytes) in &kept {
        assert_eq!(
            &std::fs::read(dir.join(name)).unwrap(),
            bytes,
            "{name} changed"
        );
    }
    let kept_counters = kept
        .iter()
        .filter(|(n, _)| n.starts_with("covcounters."))
        .count();
    assert!(counter_files(&dir).len() > kept_counters);
    assert!(!pid_file.exists());
    // Both instances' counters add up: the requests of each are in the total.
    let d = vec![dir.clone()];
    let text = counts(&d);
    assert!(text.values().any(|c| *c > 0));
    percent_matches_go(&out);
}

fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// The example service's SIGTERM path under localkube: killed with SIGTERM
/// (what a kubelet sends a container it stops), it drains, writes its counters
/// into the emptyDir and exits; localkube restarts it as a kubelet does
/// (restartPolicy Always, the emptyDir kept), and the counters written on
/// SIGTERM are there to collect, though no SIGUSR1 was ever sent.
#[test]
fn sigterm_writes_the_counters_and_a_restart_keeps_them() {
    let cluster = start(&[(manifest("greeter-dev.yaml"), None, vec![])]);
    let pod = cluster.run_pods()[0].clone();
    let volume = pod.volumes["coverage-data"].clone();
    traffic(&cluster, &["/greet?name=term"]);
    assert!(counter_files(&volume).is_empty(), "no flush yet");
    let pid = pod.containers[0].pid.unwrap();
    // SAFETY: kill(2) on the container's PID 1, a process of this test's localkube.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(eventually(Duration::from_secs(20), || {
        let c = &cluster.run_pods()[0].containers[0];
        c.restart_count == 1 && c.running
    }));
    // The flush on SIGTERM (and Go's own exit hook writes what ran since, at os.Exit).
    assert!(!counter_files(&volume).is_empty(), "{:?}", files(&volume));

    let out = cluster.dir.path().join("out");
    let collected = cluster.run(
        "cov-collect",
        &["--run-id", RUN_ID, "--out", out.to_str().unwrap()],
        &[],
    );
    assert!(
        collected.status.success(),
        "{}",
        String::from_utf8_lossy(&collected.stderr)
    );
    assert!(handlers_percent(&[pod_dir(&out, &pod.name)]) > 0.0);
    percent_matches_go(&out);
}

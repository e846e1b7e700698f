//! `localkube up` as a process: prints the context and pods, serves kubectl,
//! stops cleanly on SIGTERM leaving no process behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn up_serves_until_sigterm_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 2));
    let dir = tmp.path().join("kube");
    let mut child = Command::new(env!("CARGO_BIN_EXE_localkube"))
        .args(["up", "--dir"])
        .arg(&dir)
        .arg("-f")
        .arg(&m)
        .arg("--image")
        .arg(format!("example/sleeper={}", sleeper_image().display()))
        .args(["--label", "skaffold.dev/run-id=bin", "--context", "demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim().to_string());
    }
    assert!(
        lines[0].starts_with("context demo at https://127.0.0.1:"),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        format!(
            "export KUBECONFIG={}",
            dir.canonicalize().unwrap().join("kubeconfig").display()
        )
    );
    let pods: Vec<String> = lines[2..]
        .iter()
        .map(|l| {
            assert!(
                l.starts_with("pod default/web-") && l.contains(" Running containers=app"),
                "{l}"
            );
            l.split_whitespace()
                .nth(1)
                .unwrap()
                .trim_start_matches("default/")
                .to_string()
        })
        .collect();

    let listed = Command::new(toolchain::require_kubectl())
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .args(["get", "pods", "-l", "skaffold.dev/run-id=bin", "-o", "name"])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let mut got: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| l.trim_start_matches("pod/").to_string())
        .collect();
    got.sort();
    let mut want = pods.clone();
    want.sort();
    assert_eq!(got, want);

    // The container PID 1s are children of localkube running `sleep infinity`.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))
        .unwrap_or_default();
    let _ = children;
    // Children of localkube with this command name.
    let children_named = |ppid: u32, comm: &str| -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map(|(_, r)| r.split_whitespace().collect())
                    .unwrap_or_default();
                fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid)
                    && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim() == comm)
            })
            .collect()
    };
    let mut pids = children_named(child.id(), "sleep");
    assert_eq!(pids.len(), 2, "expected two container processes");
    // And each pod's network namespace holder.
    let holders = children_named(child.id(), "pod-network");
    assert_eq!(holders.len(), 2, "expected two pod network holders");
    pids.extend(holders);

    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(eventually(Duration::from_secs(2), || pids
        .iter()
        .all(|p| !process_alive(*p))));
}

#[test]
fn bad_manifest_exits_2_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(
        tmp.path(),
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_localkube"))
        .args(["up", "--dir"])
        .arg(tmp.path().join("kube"))
        .arg("-f")
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cm.yaml") && err.contains("ConfigMap"),
        "{err}"
    );
}

/// Not root: every container gets a user namespace in which it is root.
#[test]
fn up_works_unprivileged_with_user_namespaces() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 1));
    let dir = tmp.path().join("kube");
    // Run as `nobody` (the tests run as root here; setpriv drops the privileges).
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_localkube"))
        .args(["up", "--dir"])
        .arg(&dir)
        .arg("-f")
        .arg(&m)
        .arg("--image")
        .arg(format!("example/sleeper={}", sleeper_image().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("setpriv (util-linux) runs");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim().to_string());
    }
    let pod = lines[2]
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{lines:?}"))
        .trim_start_matches("default/")
        .to_string();
    let exec = Command::new(toolchain::require_kubectl())
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .args([
            "exec",
            &pod,
            "--",
            "sh",
            "-c",
            "id -u; echo hi > /coverage-data/f; cat /proc/1/cmdline",
        ])
        .output()
        .unwrap();
    assert!(
        exec.status.success(),
        "{}",
        String::from_utf8_lossy(&exec.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&exec.stdout),
        "0\n/busybox/sleep\0infinity\0"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let volume = dir
        .join("pods")
        .join(format!("default_{pod}"))
        .join("volumes/coverage/f");
    assert_eq!(std::fs::read_to_string(volume).unwrap(), "hi\n");
}

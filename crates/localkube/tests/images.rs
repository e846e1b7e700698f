//! Images as root filesystems, checked with independent tools: `skopeo
//! inspect` reads the layouts `ocilayout` writes, `skopeo copy` turns them
//! into `docker save` and OCI archives that localkube then runs; real kubectl
//! sees the users, groups and refusals a kubelet would give.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use localkube::LocalKube;

fn skopeo() -> PathBuf {
    toolchain::skopeo().unwrap_or_else(|e| panic!("{e}"))
}

fn busybox() -> PathBuf {
    toolchain::busybox().unwrap_or_else(|e| panic!("{e}"))
}

fn layout(dir: &Path, name: &str, flavour: ocilayout::Flavour) -> PathBuf {
    let out = dir.join(name);
    ocilayout::go_image(flavour, go_service(), "/ko-app/goapp", Some(&busybox()))
        .and_then(|i| i.write_layout(&out))
        .expect("layout");
    out
}

fn skopeo_json(args: &[&str], target: &str) -> serde_json::Value {
    let out = Command::new(skopeo())
        .args(args)
        .arg(target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn pod_yaml(name: &str, image: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
{extra}  containers:
    - name: app
      image: {image}
      env:
        - {{name: GOCOVERDIR, value: /coverage-data}}
      volumeMounts:
        - {{name: coverage, mountPath: /coverage-data}}
  volumes:
    - {{name: coverage, emptyDir: {{}}}}
---
"#
    )
}

/// The uid and gid lines of a host process's status: (real, effective, ...).
fn ids(pid: i32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    (line("Uid:"), line("Gid:"))
}

#[test]
fn layouts_pass_skopeo_and_every_form_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let debug = layout(tmp.path(), "debug", ocilayout::Flavour::Debug);
    let nonroot = layout(tmp.path(), "nonroot", ocilayout::Flavour::Nonroot);
    let stat = layout(tmp.path(), "static", ocilayout::Flavour::Static);

    let cfg = skopeo_json(
        &["inspect", "--config"],
        &format!("oci:{}", debug.display()),
    );
    assert_eq!(cfg["config"]["Entrypoint"][0], "/ko-app/goapp");
    assert!(
        cfg["config"]["Env"][0]
            .as_str()
            .unwrap()
            .ends_with(":/busybox")
    );
    let cfg = skopeo_json(
        &["inspect", "--config"],
        &format!("oci:{}", nonroot.display()),
    );
    assert_eq!(cfg["config"]["User"], "65532:65532");
    let info = skopeo_json(&["inspect"], &format!("oci:{}", stat.display()));
    assert_eq!(info["Layers"].as_array().unwrap().len(), 2);

    // skopeo writes the archives: docker save's format and an OCI archive.
    let docker = tmp.path().join("docker.tar");
    let oci = tmp.path().join("oci.tar");
    for target in [
        format!("docker-archive:{}:example/docker:v1", docker.display()),
        format!("oci-archive:{}", oci.display()),
    ] {
        let out = Command::new(skopeo())
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}", debug.display()))
            .arg(&target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut yaml = String::new();
    for (name, image) in [
        ("from-docker", "example/docker:v1"),
        ("from-oci", "example/oci"),
        ("from-binary", "example/binary"),
        ("nonroot", "example/nonroot"),
        ("no-shell", "example/static"),
    ] {
        yaml.push_str(&pod_yaml(name, image, ""));
    }
    let m = manifest(tmp.path(), "pods.yaml", &yaml);
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/docker", &docker)
        .image("example/oci", &oci)
        .image("example/binary", go_service())
        .image("example/nonroot", &nonroot)
        .image("example/static", &stat)
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    for pod in ["from-docker", "from-oci"] {
        let out = kubectl_ok(&kube, &cache, &["exec", pod, "--", "ls", "/ko-app", "/etc"]);
        assert!(
            out.contains("goapp") && out.contains("passwd"),
            "{pod}: {out}"
        );
        let pid1 = kubectl_ok(
            &kube,
            &cache,
            &["exec", pod, "--", "cat", "/proc/1/cmdline"],
        );
        assert_eq!(pid1, "/ko-app/goapp\0");
    }
    // A single binary: only it, at /<name>, and nothing to exec.
    let pods = kube.pods();
    let binary = pods.iter().find(|p| p.name == "from-binary").unwrap();
    let pid = binary.containers[0].pid.expect("running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"/localkube-goapp\0");
    let out = kubectl(&kube, &cache, &["exec", "from-binary", "--", "ls", "/"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(r#"exec: "ls": executable file not found in $PATH"#),
        "{err}"
    );
    // distroless nonroot: the service runs as 65532 on the host too.
    let nonroot = pods.iter().find(|p| p.name == "nonroot").unwrap();
    let (uid, gid) = ids(nonroot.containers[0].pid.expect("running"));
    assert_eq!((uid.as_str(), gid.as_str()), ("65532", "65532"));
}

#[test]
fn security_context_ids_fs_group_and_run_as_non_root() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = "  securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000}\n";
    let mut yaml = pod_yaml("ids", "example/sleeper", sc)
        .replace("      env:", "      args: [\"infinity\"]\n      env:");
    yaml.push_str(&pod_yaml(
        "refused",
        "example/sleeper",
        "  securityContext: {runAsNonRoot: true}\n",
    ));
    yaml.push_str(&pod_yaml(
        "refused-uid",
        "example/sleeper",
        "  securityContext: {runAsNonRoot: true, runAsUser: 0}\n",
    ));
    let m = manifest(tmp.path(), "pods.yaml", &yaml);
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    let out = kubectl_ok(
        &kube,
        &cache,
        &[
            "exec",
            "ids",
            "--",
            "sh",
            "-c",
            "id; touch /coverage-data/f; stat -c '%u %g %a' /coverage-data/f /coverage-data",
        ],
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("uid=1000 gid=3000 groups=2000,3000"),
        "{out}"
    );
    assert_eq!(
        lines.next(),
        Some("1000 2000 644"),
        "fsGroup owns new files: {out}"
    );
    assert_eq!(lines.next(), Some("0 2000 2777"), "{out}");
    let pid = kube
        .pods()
        .iter()
        .find(|p| p.name == "ids")
        .unwrap()
        .containers[0]
        .pid
        .unwrap();
    assert_eq!(ids(pid), ("1000".into(), "3000".into()));

    // The kubelet's refusals: Pending, waiting with its message.
    let table = kubectl_ok(&kube, &cache, &["get", "pods"]);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{table}"))
            .to_string()
    };
    assert!(
        row("refused").contains("CreateContainerConfigError"),
        "{table}"
    );
    let describe = kubectl_ok(&kube, &cache, &["describe", "pod", "refused"]);
    assert!(describe.contains("Status:           Pending"), "{describe}");
    assert!(
        describe.contains("Reason:       CreateContainerConfigError"),
        "{describe}"
    );
    // kubectl describe prints no waiting message (a cluster says it in an
    // Event); the status carries the kubelet's words.
    let json = kubectl_ok(&kube, &cache, &["get", "pod", "refused", "-o", "json"]);
    let pod: serde_json::Value = serde_json::from_str(&json).unwrap();
    let message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("container has runAsNonRoot and image will run as root (pod: "),
        "{pod}"
    );
    let json = kubectl_ok(&kube, &cache, &["get", "pod", "refused-uid", "-o", "json"]);
    let pod: serde_json::Value = serde_json::from_str(&json).unwrap();
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "CreateContainerConfigError");
    assert!(
        waiting["message"].as_str().unwrap().starts_with(
            "container's runAsUser breaks non-root policy (pod: \"refused-uid_default("
        ),
        "{waiting}"
    );
}

//! Capabilities as containerd and runc give them: a container without
//! `capabilities` gets containerd's default set (`pkg/oci/spec.go`
//! `populateDefaultUnixSpec`), `drop`/`add` change it (containerd's CRI
//! `WithCapabilities`), a non-root uid has none after `execve`, and `kubectl
//! exec` gets the container's set (runc exec). So a root process that drops
//! ALL may not signal a process of another uid, as on a node: the kernel
//! wants the same uid or `CAP_KILL` (`kernel/signal.c` `kill_ok_by_cred`).

mod common;

use common::*;
use localkube::LocalKube;

/// containerd's defaults: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
/// SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD,
/// AUDIT_WRITE, SETFCAP, as `/proc/<pid>/status` prints them.
const DEFAULT: &str = "00000000a80425fb";

const PODS: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: caps
spec:
  shareProcessNamespace: true
  containers:
    - name: default
      image: example/sleeper
      args: ["1000001"]
    - name: dropped
      image: example/sleeper
      args: ["1000002"]
      securityContext: {capabilities: {drop: [ALL]}}
    - name: bind-only
      image: example/sleeper
      args: ["1000003"]
      securityContext: {capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}
    - name: nonroot
      image: example/sleeper
      args: ["1000004"]
      securityContext: {runAsUser: 1000}
"#;

/// `CapEff` and `CapBnd` of `/proc/<pid>/status` text.
fn caps(status: &str) -> (String, String) {
    let line = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {status}"))
            .trim()
            .to_string()
    };
    (line("CapEff:"), line("CapBnd:"))
}

#[test]
fn containers_get_the_runtimes_capabilities_and_signals_follow_them() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(manifest(tmp.path(), "pods.yaml", PODS))
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    let pod = kube.pods().into_iter().find(|p| p.name == "caps").unwrap();
    let expected = [
        ("default", DEFAULT, DEFAULT),
        ("dropped", "0000000000000000", "0000000000000000"),
        ("bind-only", "0000000000000400", "0000000000000400"),
        ("nonroot", "0000000000000000", DEFAULT),
    ];
    for (name, eff, bnd) in expected {
        // The container's process…
        let c = pod.containers.iter().find(|c| c.name == name).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid.unwrap())).unwrap();
        assert_eq!(caps(&status), (eff.into(), bnd.into()), "{name}");
        // …and what kubectl exec runs there.
        let out = kubectl_ok(
            &kube,
            &cache,
            &["exec", "caps", "-c", name, "--", "cat", "/proc/self/status"],
        );
        assert_eq!(caps(&out), (eff.into(), bnd.into()), "exec in {name}");
    }

    // The pod shares one PID namespace: signal the uid-1000 sleeper from each root container.
    // (The only process of uid 1000 is that sleeper.)
    let find = "grep -l '^Uid:[[:space:]]*1000[[:space:]]' /proc/[0-9]*/status | cut -d/ -f3";
    let signal = |from: &str| {
        kubectl(
            &kube,
            &cache,
            &[
                "exec",
                "caps",
                "-c",
                from,
                "--",
                "sh",
                "-c",
                &format!("kill -0 $({find})"),
            ],
        )
    };
    let out = signal("default");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = signal("dropped");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
}

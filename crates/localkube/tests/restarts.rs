//! Containers whose program ends, as a kubelet handles them (see
//! `src/restart.rs` for the kubelet sources): `restartPolicy` decides, the
//! restart back-off shows as `CrashLoopBackOff`, `lastState.terminated` and
//! `restartCount` follow, the phase is the kubelet's `getPhase`, and real
//! kubectl 1.35 `get`/`describe`/`logs`/`logs --previous` show it all.

mod common;

use std::time::Duration;

use common::*;
use localkube::LocalKube;
use serde_json::Value;

/// A pod on the busybox image whose shell `script` runs with a counter of its
/// runs in `$n` (kept in an emptyDir, so it survives restarts).
fn pod(name: &str, policy: &str, script: &str) -> String {
    let script =
        format!("n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; {script}");
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {policy}
  containers:
    - name: app
      image: example/sleeper
      command: ["/busybox/sh", "-c", {script:?}]
      volumeMounts:
        - {{name: data, mountPath: /data}}
  volumes:
    - {{name: data, emptyDir: {{}}}}
---
"#
    )
}

fn pod_json(kube: &LocalKube, cache: &std::path::Path, name: &str) -> Value {
    serde_json::from_str(&kubectl_ok(
        kube,
        cache,
        &["get", "pod", name, "-o", "json"],
    ))
    .unwrap()
}

fn app_status(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

/// Words of kubectl's output, so column widths do not matter.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn restart_policy_backoff_crash_loop_and_previous_logs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut yaml = String::new();
    // Always crashes: restarts at once, then waits 5 s, then 10 s (the cap).
    yaml += &pod("crasher", "Always", "echo boom $n; exit 1");
    // Fails twice, then keeps running.
    yaml += &pod(
        "recovers",
        "OnFailure",
        "if [ $n -le 2 ]; then echo boom $n; exit 1; fi; echo up $n; exec sleep 1000",
    );
    yaml += &pod("fails-once", "Never", "echo failed $n; exit 3");
    yaml += &pod("succeeds", "OnFailure", "echo done $n");
    yaml += &pod("completes", "Always", "echo done $n");
    let manifest = manifest(dir.path(), "pods.yaml", &yaml);
    let kube = LocalKube::builder(dir.path().join("kube"))
        .manifest(&manifest)
        .image("example/sleeper", sleeper_image())
        .crash_loop_backoff(Duration::from_secs(5), Duration::from_secs(10))
        .start()
        .unwrap();

    // The crash loop: the second wait is 10 s, time enough to look at it.
    let mut crasher = Value::Null;
    assert!(
        eventually(Duration::from_secs(30), || {
            crasher = pod_json(&kube, &cache, "crasher");
            app_status(&crasher)["restartCount"] == 2
                && app_status(&crasher)["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        }),
        "crasher never reached its second back-off: {crasher:#}"
    );
    let info = kube
        .pods()
        .into_iter()
        .find(|p| p.name == "crasher")
        .unwrap();
    let c = &info.containers[0];
    assert_eq!(
        (c.running, c.exit_code, c.restart_count),
        (false, Some(1), 2)
    );
    let status = app_status(&crasher);
    let uid = crasher["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        status["state"]["waiting"]["message"],
        format!("back-off 10s restarting failed container=app pod=crasher_default({uid})")
    );
    let last = &status["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 1, "{status:#}");
    assert_eq!(last["reason"], "Error");
    assert!(last["startedAt"].is_string() && last["finishedAt"].is_string());
    assert_eq!(status["ready"], false);
    assert_eq!(crasher["status"]["phase"], "Running");

    let table = kubectl_ok(&kube, &cache, &["get", "pod", "crasher"]);
    let row = words(table.lines().nth(1).unwrap());
    assert!(
        row.starts_with("crasher 0/1 CrashLoopBackOff 2 ("),
        "kubectl get pod: {table}"
    );
    let describe = words(&kubectl_ok(&kube, &cache, &["describe", "pod", "crasher"]));
    for want in [
        "State: Waiting Reason: CrashLoopBackOff",
        "Last State: Terminated Reason: Error Exit Code: 1",
        "Ready: False Restart Count: 2",
    ] {
        assert!(describe.contains(want), "{want:?} not in: {describe}");
    }
    // Waiting to restart, both name the last terminated instance (the third run).
    assert_eq!(kubectl_ok(&kube, &cache, &["logs", "crasher"]), "boom 3\n");
    assert_eq!(
        kubectl_ok(&kube, &cache, &["logs", "--previous", "crasher"]),
        "boom 3\n"
    );

    // Recovered: running, ready; `logs` is this instance, `--previous` the last crash.
    let mut recovers = Value::Null;
    assert!(
        eventually(Duration::from_secs(20), || {
            recovers = pod_json(&kube, &cache, "recovers");
            app_status(&recovers)["ready"] == true
        }),
        "recovers never ran again: {recovers:#}"
    );
    let status = app_status(&recovers);
    assert_eq!(status["restartCount"], 2, "{status:#}");
    assert!(status["state"]["running"].is_object());
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(recovers["status"]["phase"], "Running");
    assert_eq!(kubectl_ok(&kube, &cache, &["logs", "recovers"]), "up 3\n");
    assert_eq!(
        kubectl_ok(&kube, &cache, &["logs", "recovers", "--previous"]),
        "boom 2\n"
    );

    // restartPolicy Never: not restarted, the pod Failed; no previous instance.
    let failed = pod_json(&kube, &cache, "fails-once");
    let status = app_status(&failed);
    assert_eq!(failed["status"]["phase"], "Failed", "{failed:#}");
    assert_eq!(status["restartCount"], 0);
    assert_eq!(status["state"]["terminated"]["exitCode"], 3);
    assert_eq!(status["state"]["terminated"]["reason"], "Error");
    assert_eq!(
        kubectl_ok(&kube, &cache, &["logs", "fails-once"]),
        "failed 1\n"
    );
    let out = kubectl(&kube, &cache, &["logs", "fails-once", "--previous"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        r#"Error from server (BadRequest): previous terminated container "app" in pod "fails-once" not found"#
    );

    // OnFailure and exit 0: done, Succeeded.
    let done = pod_json(&kube, &cache, "succeeds");
    assert_eq!(done["status"]["phase"], "Succeeded", "{done:#}");
    assert_eq!(app_status(&done)["restartCount"], 0);
    assert_eq!(
        app_status(&done)["state"]["terminated"]["reason"],
        "Completed"
    );

    // Always and exit 0: restarted all the same, with back-off.
    let completes = pod_json(&kube, &cache, "completes");
    let status = app_status(&completes);
    assert!(status["restartCount"].as_i64().unwrap() >= 1, "{status:#}");
    assert_eq!(status["lastState"]["terminated"]["reason"], "Completed");
    assert_eq!(completes["status"]["phase"], "Running");
}

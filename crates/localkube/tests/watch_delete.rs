//! Watches and graceful deletion: `kubectl get pods -w`, `kubectl delete pod`
//! (preStop, SIGTERM, SIGKILL at the end of the grace period, the emptyDir goes
//! with the pod), force deletion, and kube-rs watches that are dropped, resumed,
//! bookmarked and answered with 410 Gone.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, WatchEvent, WatchParams};
use localkube::LocalKube;

/// A bare Pod (no controller replaces it) running `sh -c SCRIPT`, with a preStop
/// hook and an emptyDir.
fn shell_pod(name: &str, grace: u32, pre_stop: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  terminationGracePeriodSeconds: {grace}
  containers:
    - name: app
      image: example/shell
      command: ["/busybox/sh", "-c", {script:?}]
      lifecycle:
        preStop:
          {pre_stop}
      volumeMounts:
        - {{name: data, mountPath: /data}}
  volumes:
    - name: data
      emptyDir: {{}}
"#
    )
}

fn start(dir: &std::path::Path, yaml: &str) -> LocalKube {
    let m = manifest(dir, "app.yaml", yaml);
    LocalKube::builder(dir.join("kube"))
        .manifest(&m)
        .image("example/shell", sleeper_image())
        .bookmark_interval(Duration::from_millis(200))
        .start()
        .unwrap()
}

#[test]
fn kubectl_delete_runs_pre_stop_then_sigterm_then_sigkill_and_get_w_shows_it() {
    let tmp = tempfile::tempdir().unwrap();
    // PID 1 without a SIGTERM handler ignores SIGTERM: only SIGKILL ends it.
    let kube = start(
        tmp.path(),
        &shell_pod(
            "web",
            3,
            r#"exec: {command: ["/busybox/sh", "-c", "echo prestop-ran > /proc/1/fd/1"]}"#,
            "echo started; exec sleep infinity",
        ),
    );
    let cache = tmp.path().join("cache");
    let pod = kube.pods()[0].clone();
    let volume = pod.volumes["data"].clone();
    assert!(volume.is_dir());
    let log = pod.containers[0].log_file.clone();

    let mut watch = Command::new(toolchain::require_kubectl())
        .arg("--kubeconfig")
        .arg(kube.kubeconfig())
        .arg("--cache-dir")
        .arg(&cache)
        .args(["get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));

    let began = Instant::now();
    let out = kubectl_ok(&kube, &cache, &["delete", "pod", &pod.name]);
    let took = began.elapsed();
    assert!(out.contains("deleted"), "{out}");
    // kubectl delete waits (a watch on the name) until the object is gone: the
    // preStop ran, SIGTERM was ignored, SIGKILL came at the end of the 3 s.
    assert!(
        took >= Duration::from_millis(2800),
        "deleted after {took:?}"
    );
    assert!(took < Duration::from_secs(10), "deleted after {took:?}");
    assert!(kube.pods().is_empty());
    assert!(!volume.exists(), "the emptyDir goes with the pod");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("prestop-ran"), "{logged}");
    let gone = kubectl(&kube, &cache, &["get", "pod", &pod.name]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NotFound"));

    std::thread::sleep(Duration::from_millis(300));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(&pod.name)).collect();
    assert!(rows.len() >= 3, "kubectl get -w printed:\n{text}");
    assert!(rows[0].contains("Running"), "{text}");
    assert!(
        rows[1..].iter().all(|r| r.contains("Terminating")),
        "{text}"
    );
    assert!(
        rows.last().unwrap().contains("0/1"),
        "the containers stopped before the pod went:\n{text}"
    );
}

#[test]
fn a_container_that_handles_sigterm_ends_the_deletion_early_and_force_deletion_is_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(
        tmp.path(),
        &shell_pod(
            "trap",
            30,
            "sleep: {seconds: 1}",
            "trap 'echo got-term; exit 0' TERM; echo started; while :; do sleep 0.05; done",
        ),
    );
    let cache = tmp.path().join("cache");
    let pod = kube.pods()[0].clone();
    let began = Instant::now();
    kubectl_ok(&kube, &cache, &["delete", "pod", &pod.name]);
    let took = began.elapsed();
    // The 1 s preStop sleep, then SIGTERM ends it: well within the 30 s.
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let logged = std::fs::read_to_string(&pod.containers[0].log_file).unwrap();
    assert!(logged.contains("got-term"), "{logged}");

    let tmp2 = tempfile::tempdir().unwrap();
    let kube = start(
        tmp2.path(),
        &shell_pod("force", 30, "sleep: {seconds: 20}", "exec sleep infinity"),
    );
    let pod = kube.pods()[0].clone();
    let pid = pod.containers[0].pid.unwrap();
    let began = Instant::now();
    kubectl_ok(
        &kube,
        &tmp2.path().join("cache"),
        &["delete", "pod", &pod.name, "--grace-period=0", "--force"],
    );
    assert!(
        kube.pods().is_empty(),
        "a forced deletion removes the object at once"
    );
    assert!(began.elapsed() < Duration::from_secs(3));
    // On the node the container still gets a short grace period, not the 20 s hook.
    assert!(eventually(Duration::from_secs(6), || !process_alive(pid)));
    assert!(eventually(Duration::from_secs(2), || !pod.volumes["data"].exists()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_dropped_resumed_bookmarked_and_answered_410_when_too_old() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = sleep_deployment("web", 2);
    let m = manifest(tmp.path(), "app.yaml", &yaml);
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .bookmark_interval(Duration::from_millis(200))
        .start()
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client(&kube).await);
    let list = pods.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.clone().unwrap();
    assert_eq!(list.items.len(), 2);
    let victim = list.items[0].metadata.name.clone().unwrap();

    // A watch from the list's version, with bookmarks: a bookmark arrives, then
    // the deletion's events.
    let wp = WatchParams::default(); // bookmarks are on by default in kube-rs
    let mut stream = pods.watch(&wp, &rv).await.unwrap().boxed();
    let mut last = rv.clone();
    let mut saw_bookmark = false;
    while !saw_bookmark {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Bookmark(b) => {
                last = b.metadata.resource_version;
                saw_bookmark = true;
            }
            other => panic!("nothing changed, yet {other:?}"),
        }
    }
    assert_eq!(last, rv, "a bookmark carries the latest version");

    // The watch is dropped; the pod is deleted while nobody watches.
    kube.drop_watches();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), async {
            while stream.next().await.is_some() {}
        })
        .await
        .is_ok(),
        "a dropped watch ends"
    );
    pods.delete(&victim, &DeleteParams::default().grace_period(1))
        .await
        .unwrap();
    // Resuming from the last version seen delivers what happened meanwhile, in order.
    let mut stream = pods.watch(&wp, &last).await.unwrap().boxed();
    let mut kinds = Vec::new();
    let mut versions = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !kinds.contains(&"DELETED") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Modified(p))))
                if p.metadata.name.as_deref() == Some(&victim) =>
            {
                assert!(p.metadata.deletion_timestamp.is_some());
                assert_eq!(p.metadata.deletion_grace_period_seconds, Some(1));
                kinds.push("MODIFIED");
                versions.push(p.metadata.resource_version.unwrap().parse::<u64>().unwrap());
            }
            Ok(Ok(Some(WatchEvent::Deleted(p)))) => {
                assert_eq!(p.metadata.name.as_deref(), Some(victim.as_str()));
                kinds.push("DELETED");
                versions.push(p.metadata.resource_version.unwrap().parse::<u64>().unwrap());
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("watch ended early: {other:?}"),
        }
    }
    assert_eq!(kinds.first(), Some(&"MODIFIED"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"DELETED"), "{kinds:?}");
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    drop(stream);

    // After compaction the old version is gone: one ERROR event with 410, then the end.
    kube.compact_history();
    let mut stream = pods.watch(&wp, &rv).await.unwrap().boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410, "{e:?}");
            assert!(e.message.contains("too old resource version"), "{e:?}");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(stream.try_next().await.unwrap().is_none());
    // A re-list gives a version a new watch can start from.
    let now = pods.list(&ListParams::default()).await.unwrap();
    // The Deployment replaced the deleted pod.
    assert_eq!(now.items.len(), 2);
    assert!(
        now.items
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some(&victim))
    );
    let fresh = now.metadata.resource_version.unwrap();
    let mut stream = pods.watch(&wp, &fresh).await.unwrap().boxed();
    assert!(matches!(
        stream.try_next().await.unwrap(),
        Some(WatchEvent::Bookmark(_))
    ));
}

/// Pod names of the Deployment `web`, by pod-template-hash.
fn generations(kube: &LocalKube) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    for p in kube.pods() {
        out.entry(p.labels["pod-template-hash"].clone())
            .or_default()
            .push(p.name);
    }
    out
}

#[test]
fn deployments_replace_deleted_pods_and_roll_on_restart_and_apply() {
    let tmp = tempfile::tempdir().unwrap();
    // `sleep` ignores SIGTERM as PID 1: a short grace period keeps the test quick.
    let yaml = sleep_deployment("web", 2).replace(
        "    spec:\n      containers:",
        "    spec:\n      terminationGracePeriodSeconds: 1\n      containers:",
    );
    assert!(yaml.contains("terminationGracePeriodSeconds"));
    let m = manifest(tmp.path(), "web.yaml", &yaml);
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .label("skaffold.dev/run-id", "r1")
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    let first = generations(&kube);
    assert_eq!(first.len(), 1);
    let (hash1, pods1) = first.into_iter().next().unwrap();
    assert_eq!(pods1.len(), 2);

    // A deleted pod is replaced at once by its ReplicaSet (same template).
    kubectl_ok(&kube, &cache, &["delete", "pod", &pods1[0], "--wait=false"]);
    assert!(eventually(Duration::from_secs(10), || {
        let g = generations(&kube);
        let others = g[&hash1].iter().filter(|p| **p != pods1[0]).count();
        g.len() == 1 && others == 2
    }));

    let out = kubectl_ok(&kube, &cache, &["get", "deployments"]);
    assert!(out.contains("web") && out.contains("2/2"), "{out}");

    // rollout restart: a new template (restartedAt), new pods, the old ones go.
    let out = kubectl_ok(&kube, &cache, &["rollout", "restart", "deployment/web"]);
    assert!(out.contains("restarted"), "{out}");
    assert!(
        eventually(Duration::from_secs(30), || {
            let g = generations(&kube);
            g.len() == 1 && !g.contains_key(&hash1) && g.values().all(|p| p.len() == 2)
        }),
        "{:?}",
        generations(&kube)
    );
    let hash2 = generations(&kube).into_keys().next().unwrap();
    // Pods of the new generation keep the labels the run stamped.
    assert!(
        kube.pods()
            .iter()
            .all(|p| p.labels["skaffold.dev/run-id"] == "r1")
    );
    let revision = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ],
    );
    assert_eq!(revision, "2");

    // kubectl apply of a changed template (strategic merge patch) rolls again.
    // localkube serves no OpenAPI document, so client-side validation is off.
    let changed = yaml.replace(
        "args: [\"infinity\"]",
        "args: [\"infinity\"]\n          env: [{name: LEVEL, value: \"2\"}]",
    );
    let m2 = manifest(tmp.path(), "web2.yaml", &changed);
    let out = kubectl_ok(
        &kube,
        &cache,
        &["apply", "--validate=false", "-f", m2.to_str().unwrap()],
    );
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert!(
        eventually(Duration::from_secs(30), || {
            let g = generations(&kube);
            g.len() == 1 && !g.contains_key(&hash2) && g.values().all(|p| p.len() == 2)
        }),
        "{:?}",
        generations(&kube)
    );
    let env = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].spec.containers[0].env[0].value}",
        ],
    );
    assert_eq!(env, "2 2");
    // An immutable field is refused as the API server refuses it.
    let bad = kubectl(
        &kube,
        &cache,
        &[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"selector":{"matchLabels":{"app":"other"}}}}"#,
        ],
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("field is immutable"), "{stderr}");
}

//! Ephemeral containers against the real kubectl 1.35 (`kubectl debug -it
//! --target`) and kube-rs: the three patch types, the API server's validation
//! (no removal, no change, no subPath), status, image pull failures, the PID
//! namespace of the target, Pod Security `restricted`, and the subresource
//! switched off.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use localkube::LocalKube;
use serde_json::json;

fn start(
    dir: &std::path::Path,
    build: impl FnOnce(localkube::LocalKubeBuilder) -> localkube::LocalKubeBuilder,
) -> LocalKube {
    let web = manifest(dir, "web.yaml", &sleep_deployment("web", 1));
    build(
        LocalKube::builder(dir.join("kube"))
            .manifest(&web)
            .image("example/sleeper", sleeper_image())
            .image("busybox", sleeper_image()),
    )
    .start()
    .unwrap()
}

fn pod_name(kube: &LocalKube) -> String {
    kube.pods()[0].name.clone()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The waiting reason (or "running"/"terminated") of one ephemeral container.
fn ephemeral_state(pod: &Pod, name: &str) -> Option<String> {
    let s = pod
        .status
        .as_ref()?
        .ephemeral_container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == name)?;
    let st = s.state.as_ref()?;
    if st.running.is_some() {
        return Some("running".into());
    }
    if st.terminated.is_some() {
        return Some("terminated".into());
    }
    st.waiting.as_ref()?.reason.clone()
}

#[test]
fn kubectl_debug_it_with_target_sees_the_target_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path(), |b| b);
    let pod = pod_name(&kube);
    let cache = tmp.path().join("cache");
    let mut child = Command::new(toolchain::require_kubectl())
        .arg("--kubeconfig")
        .arg(kube.kubeconfig())
        .arg("--context")
        .arg(kube.context())
        .arg("--cache-dir")
        .arg(&cache)
        .args([
            "debug",
            "-it",
            &pod,
            "--image=busybox:1.37",
            "--target=app",
            "--container=dbg",
            "--",
            "sh",
            "-c",
            // Waits for stdin, so its output comes while kubectl is attached.
            "read line; echo \"got $line\"; tr '\\0' ' ' </proc/1/cmdline; echo",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kubectl");
    // kubectl attaches once the container runs; the line waits in the pipe.
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubectl debug failed: {stderr}\n{stdout}"
    );
    assert!(
        stdout.contains("got hello"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    // PID 1 of the debug container's PID namespace is the target's program.
    assert!(
        stdout.contains("/busybox/sleep infinity"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let spec = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "pod",
            &pod,
            "-o",
            "jsonpath={.spec.ephemeralContainers[*].name} {.spec.ephemeralContainers[*].targetContainerName}",
        ],
    );
    assert_eq!(spec.trim(), "dbg app");
    let p = &kube.pods()[0];
    assert_eq!(p.ephemeral_containers.len(), 1);
    assert_eq!(p.ephemeral_containers[0].name, "dbg");
}

#[test]
fn patch_types_and_the_api_servers_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path(), |b| b);
    let name = pod_name(&kube);
    runtime().block_on(async {
        let pods: Api<Pod> = Api::namespaced(client(&kube).await, "default");
        let add = |n: &str, extra: serde_json::Value| {
            let mut c = json!({
                "name": n, "image": "busybox:1.37", "command": ["sleep", "1000"],
                "targetContainerName": "app",
                "volumeMounts": [{"name": "coverage", "mountPath": "/coverage-data"}],
            });
            if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
                c.extend(extra.clone());
            }
            c
        };
        // Strategic merge: appended by name.
        let pp = PatchParams::default();
        let patched = pods
            .patch_ephemeral_containers(
                &name,
                &pp,
                &Patch::Strategic(json!({"spec": {"ephemeralContainers": [add("one", json!({}))]}})),
            )
            .await
            .unwrap();
        let names = |p: &Pod| -> Vec<String> {
            p.spec
                .as_ref()
                .unwrap()
                .ephemeral_containers
                .iter()
                .flatten()
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(names(&patched), ["one"]);
        // Defaults as the API server sets them.
        let one = &patched.spec.as_ref().unwrap().ephemeral_containers.as_ref().unwrap()[0];
        assert_eq!(one.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(one.termination_message_policy.as_deref(), Some("File"));
        // JSON patch add (through kubectl): appended too.
        let json_patch = |ops: serde_json::Value| {
            kubectl(
                &kube,
                &tmp.path().join("cache"),
                &[
                    "patch", "pod", &name, "--subresource=ephemeralcontainers", "--type=json",
                    "-p", &ops.to_string(),
                ],
            )
        };
        let out = json_patch(json!([
            {"op": "add", "path": "/spec/ephemeralContainers/-", "value": add("two", json!({}))}
        ]));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let two = pods.get(&name).await.unwrap();
        assert_eq!(names(&two), ["one", "two"]);
        // It runs, in the target's PID namespace, with the volume mounted.
        assert!(eventually(Duration::from_secs(10), || {
            kube.pods()[0].ephemeral_containers.iter().filter(|c| c.running).count() == 2
        }));
        let pod = pods.get_ephemeral_containers(&name).await.unwrap();
        assert_eq!(ephemeral_state(&pod, "one").as_deref(), Some("running"));
        let p = &kube.pods()[0];
        let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        let target = p.containers[0].pid.unwrap();
        let helper = p.ephemeral_containers[0].pid.unwrap();
        assert_eq!(ns(helper), ns(target), "not in the target's PID namespace");

        let err = |e: kube::Error| match e {
            kube::Error::Api(s) => (s.code, s.message),
            other => panic!("unexpected error {other}"),
        };
        // A merge patch replaces the list: leaving out existing entries removes them.
        let e = pods
            .patch_ephemeral_containers(
                &name,
                &pp,
                &Patch::Merge(json!({"spec": {"ephemeralContainers": [add("three", json!({}))]}})),
            )
            .await
            .unwrap_err();
        let (code, message) = err(e);
        assert_eq!(code, 422, "{message}");
        assert!(
            message.contains("existing ephemeral containers \"one\" may not be removed"),
            "{message}"
        );
        // Changing an existing entry.
        let out = json_patch(json!([
            {"op": "replace", "path": "/spec/ephemeralContainers/0/image", "value": "busybox:1.36"}
        ]));
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("\"one\" may not be changed"), "{stderr}");
        // subPath, ports, a duplicate name, an unknown target.
        let e = pods
            .patch_ephemeral_containers(
                &name,
                &pp,
                &Patch::Strategic(json!({"spec": {"ephemeralContainers": [add("four", json!({
                    "volumeMounts": [{"name": "coverage", "mountPath": "/c", "subPath": "x"}],
                    "ports": [{"containerPort": 80}],
                    "targetContainerName": "nope",
                }))]}})),
            )
            .await
            .unwrap_err();
        let (code, message) = err(e);
        assert_eq!(code, 422);
        for wanted in [
            "spec.ephemeralContainers[2].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
            "spec.ephemeralContainers[2].ports: Forbidden: cannot be set for an Ephemeral Container",
            "spec.ephemeralContainers[2].targetContainerName: Not found: \"nope\"",
        ] {
            assert!(message.contains(wanted), "{wanted} not in {message}");
        }
        let e = pods
            .patch_ephemeral_containers(
                &name,
                &pp,
                &Patch::Strategic(json!({"spec": {"ephemeralContainers": [add("app", json!({}))]}})),
            )
            .await
            .unwrap_err();
        let (code, message) = err(e);
        assert_eq!(code, 422);
        assert!(message.contains("name: Duplicate value: \"app\""), "{message}");
        // Nothing of the refused patches stuck.
        let pod = pods.get(&name).await.unwrap();
        assert_eq!(names(&pod), ["one", "two"]);

        // PUT with the current object plus one more.
        let mut pod = pods.get_ephemeral_containers(&name).await.unwrap();
        let mut list = pod.spec.as_ref().unwrap().ephemeral_containers.clone().unwrap();
        list.push(serde_json::from_value(add("five", json!({}))).unwrap());
        pod.spec.as_mut().unwrap().ephemeral_containers = Some(list);
        let put = pods
            .replace_ephemeral_containers(&name, &PostParams::default(), &pod)
            .await;
        // The resource version may have moved on (containers starting): retry once.
        let put = match put {
            Ok(p) => p,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let mut fresh = pods.get_ephemeral_containers(&name).await.unwrap();
                fresh.spec = pod.spec.clone();
                pods.replace_ephemeral_containers(&name, &PostParams::default(), &fresh)
                    .await
                    .unwrap()
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!(names(&put), ["one", "two", "five"]);
    });
}

#[test]
fn an_image_the_node_cannot_pull_backs_off() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path(), |b| b);
    let name = pod_name(&kube);
    runtime().block_on(async {
        let pods: Api<Pod> = Api::namespaced(client(&kube).await, "default");
        pods.patch_ephemeral_containers(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ephemeralContainers": [
                {"name": "h", "image": "registry.invalid/nothing:1", "command": ["sleep", "9"]}
            ]}})),
        )
        .await
        .unwrap();
        let mut seen = Vec::new();
        for _ in 0..100 {
            let pod = pods.get(&name).await.unwrap();
            if let Some(s) = ephemeral_state(&pod, "h")
                && seen.last() != Some(&s)
            {
                seen.push(s);
            }
            if seen.last().map(String::as_str) == Some("ImagePullBackOff") {
                let st = pod.status.unwrap().ephemeral_container_statuses.unwrap();
                let msg = st[0]
                    .state
                    .as_ref()
                    .unwrap()
                    .waiting
                    .as_ref()
                    .unwrap()
                    .message
                    .clone();
                assert_eq!(
                    msg.as_deref(),
                    Some("Back-off pulling image \"registry.invalid/nothing:1\"")
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, ["ErrImagePull", "ImagePullBackOff"]);
    });
}

#[test]
fn restricted_pod_security_and_disabled_subresource() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path(), |b| b.pod_security_restricted("default"));
    let name = pod_name(&kube);
    runtime().block_on(async {
        let pods: Api<Pod> = Api::namespaced(client(&kube).await, "default");
        let pp = PatchParams::default();
        let e = pods
            .patch_ephemeral_containers(
                &name,
                &pp,
                &Patch::Strategic(json!({"spec": {"ephemeralContainers": [
                    {"name": "h", "image": "busybox", "command": ["sleep", "9"]}
                ]}})),
            )
            .await
            .unwrap_err();
        let kube::Error::Api(s) = e else { panic!("{e}") };
        assert_eq!(s.code, 403);
        assert!(
            s.message.starts_with(&format!(
                "pods \"{name}\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
            )),
            "{}",
            s.message
        );
        // A container that follows the profile is admitted.
        pods.patch_ephemeral_containers(
            &name,
            &pp,
            &Patch::Strategic(json!({"spec": {"ephemeralContainers": [
                {"name": "h", "image": "busybox", "command": ["sleep", "9"],
                 "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 65532, "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}
            ]}})),
        )
        .await
        .unwrap();
    });

    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path(), |b| b.ephemeral_containers(false));
    let name = pod_name(&kube);
    let cache = tmp.path().join("cache");
    let out = kubectl(
        &kube,
        &cache,
        &[
            "debug",
            &name,
            "--image=busybox",
            "--target=app",
            "--",
            "true",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ephemeral containers are disabled for this cluster"),
        "{stderr}"
    );
}

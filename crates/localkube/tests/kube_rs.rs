//! localkube through kube-rs (the client our tools use): list with label and
//! field selectors, get, exec with status, and the faults the tools must survive.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use localkube::{Fault, LocalKube};
use tokio::io::AsyncReadExt;

/// What an exec produced: stdout, stderr and the final status (None: no status arrived).
struct ExecResult {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
}

async fn exec(pods: &Api<Pod>, pod: &str, argv: &[&str]) -> kube::Result<ExecResult> {
    let params = AttachParams::default()
        .container("app")
        .max_stdout_buf_size(1 << 20)
        .max_stderr_buf_size(1 << 16);
    let mut attached = pods.exec(pod, argv.to_vec(), &params).await?;
    // Read both streams at once, in tasks: when the connection breaks, kube-rs ends
    // its session with an error but never closes these pipes, so reading to the
    // end would wait forever. The session's end (join) decides when we stop.
    let drain = |mut r: tokio::io::ReadHalf<tokio::io::SimplexStream>| {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&buf);
        let task = tokio::spawn(async move {
            let mut chunk = vec![0u8; 64 * 1024];
            while let Ok(n) = r.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        (buf, task)
    };
    let (out, out_task) = drain(attached.stdout().unwrap());
    let (err, err_task) = drain(attached.stderr().unwrap());
    let status = attached.take_status().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(30), attached.join())
        .await
        .expect("exec session ended in time");
    let status = tokio::time::timeout(Duration::from_secs(5), status)
        .await
        .expect("status future settles once the session is over");
    for task in [out_task, err_task] {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    let take =
        |b: std::sync::Arc<std::sync::Mutex<Vec<u8>>>| std::mem::take(&mut *b.lock().unwrap());
    Ok(ExecResult {
        stdout: take(out),
        stderr: take(err),
        status,
    })
}

fn start(tmp: &std::path::Path, replicas: u32) -> LocalKube {
    let m = manifest(tmp, "web.yaml", &sleep_deployment("web", replicas));
    let other = manifest(tmp, "other.yaml", &sleep_deployment("other", 1));
    LocalKube::builder(tmp.join("kube"))
        .manifest(&m)
        .manifest_with(&other, Some("ns2"), [("skaffold.dev/run-id", "other")])
        .image("example/sleeper", sleeper_image())
        .label("skaffold.dev/run-id", "abc")
        .start()
        .unwrap()
}

#[tokio::test]
async fn list_get_and_exec() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path(), 2);
    let client = client(&kube).await;
    let all: Api<Pod> = Api::all(client.clone());

    let listed = all
        .list(&ListParams::default().labels("skaffold.dev/run-id=abc"))
        .await
        .unwrap();
    let got: BTreeSet<_> = listed
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    let want: BTreeSet<_> = kube
        .pods()
        .into_iter()
        .filter(|p| p.namespace == "default")
        .map(|p| p.name)
        .collect();
    assert_eq!(got, want);

    let selector =
        kube_selector::parse_label_selector("skaffold.dev/run-id in (other),app=other").unwrap();
    let listed = all
        .list(
            &ListParams::default()
                .labels_from(&selector)
                .fields("status.phase=Running"),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].metadata.namespace.as_deref(), Some("ns2"));

    let ns2: Api<Pod> = Api::namespaced(client.clone(), "ns2");
    assert_eq!(
        ns2.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    let default: Api<Pod> = Api::default_namespaced(client.clone());
    let name = want.iter().next().unwrap().clone();
    let pod = default.get(&name).await.unwrap();
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let cs = &status.container_statuses.unwrap()[0];
    assert!(cs.state.as_ref().unwrap().running.is_some());
    assert_eq!(cs.restart_count, 0);
    // The pod's own address (its network namespace's), not the host's.
    let ip = kube
        .pods()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
        .ip
        .to_string();
    assert!(ip.starts_with("10.244."), "{ip}");
    assert_eq!(status.pod_ip.as_deref(), Some(ip.as_str()));
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));

    match default.get("nope").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }

    // exec: a tar of the volume, read while stderr is drained too.
    let volume = kube
        .pods()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
        .volumes["coverage"]
        .clone();
    std::fs::write(volume.join("covcounters.x"), vec![1u8; 300_000]).unwrap();
    let r = exec(
        &default,
        &name,
        &["tar", "-C", "/coverage-data", "-cf", "-", "."],
    )
    .await
    .unwrap();
    assert_eq!(
        r.status.as_ref().and_then(|s| s.status.as_deref()),
        Some("Success")
    );
    let mut archive = tar::Archive::new(r.stdout.as_slice());
    let mut found = false;
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with("covcounters.x") {
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            assert_eq!(data, vec![1u8; 300_000]);
            found = true;
        }
    }
    assert!(found);

    // A non-zero exit arrives as NonZeroExitCode with the code as a cause.
    let r = exec(&default, &name, &["sh", "-c", "echo oops >&2; exit 3"])
        .await
        .unwrap();
    assert_eq!(r.stderr, b"oops\n");
    let s = r.status.expect("a status");
    assert_eq!(s.status.as_deref(), Some("Failure"));
    assert_eq!(s.reason.as_deref(), Some("NonZeroExitCode"));
    let causes = s.details.unwrap().causes.unwrap();
    assert_eq!(causes[0].reason.as_deref(), Some("ExitCode"));
    assert_eq!(causes[0].message.as_deref(), Some("3"));

    // Unauthenticated: a client without the token gets a 401 Status.
    let mut config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kube.kubeconfig()).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    config.auth_info.token = None;
    let anonymous: Api<Pod> = Api::all(kube::Client::try_from(config).unwrap());
    match anonymous.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 401);
            assert_eq!(s.reason, "Unauthorized");
        }
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn stream_faults() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path(), 1);
    let client = client(&kube).await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let name = kube
        .pods()
        .into_iter()
        .find(|p| p.namespace == "default")
        .unwrap()
        .name;

    kube.set_fault("default", &name, Fault::CutStreamAfter(1000))
        .unwrap();
    let r = exec(&pods, &name, &["head", "-c", "200000", "/dev/zero"])
        .await
        .unwrap();
    assert_eq!(r.stdout.len(), 1000);
    assert!(r.status.is_none(), "a cut stream has no status");
    kube.clear_faults("default", &name);

    kube.set_fault(
        "default",
        &name,
        Fault::SlowStream {
            bytes_per_sec: 20_000,
        },
    )
    .unwrap();
    let t = Instant::now();
    let r = exec(&pods, &name, &["head", "-c", "10000", "/dev/zero"])
        .await
        .unwrap();
    assert_eq!(r.stdout.len(), 10_000);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    kube.clear_faults("default", &name);

    for code in [403u16, 500] {
        kube.set_fault("default", &name, Fault::ExecRefused(code))
            .unwrap();
        let err = exec(&pods, &name, &["true"]).await.err().expect("refused");
        assert!(err.to_string().contains(&code.to_string()), "{err}");
        kube.clear_faults("default", &name);
    }
    let r = exec(&pods, &name, &["true"]).await.unwrap();
    assert_eq!(r.status.unwrap().status.as_deref(), Some("Success"));

    // A client that goes away stops its command.
    let params = AttachParams::default().container("app");
    let attached = pods
        .exec(&name, vec!["sleep", "31.5"], &params)
        .await
        .unwrap();
    let running = || {
        std::fs::read_dir("/proc").unwrap().any(|e| {
            let path = e.unwrap().path().join("cmdline");
            std::fs::read(path).is_ok_and(|c| c == b"sleep\x0031.5\x00")
        })
    };
    assert!(eventually(Duration::from_secs(5), running));
    attached.abort();
    drop(attached);
    // Poll asynchronously: the aborted client task must get to run to drop its connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while running() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!running(), "the command outlived its client");

    kube.set_fault("default", &name, Fault::Terminating)
        .unwrap();
    let pod = pods.get(&name).await.unwrap();
    assert!(pod.metadata.deletion_timestamp.is_some());
}

#[tokio::test]
async fn container_faults_keep_the_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path(), 1);
    let client = client(&kube).await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let info = kube
        .pods()
        .into_iter()
        .find(|p| p.namespace == "default")
        .unwrap();
    let name = info.name.clone();
    let volume = info.volumes["coverage"].clone();
    std::fs::write(volume.join("covmeta.1"), b"kept").unwrap();
    let first_pid = info.containers[0].pid.unwrap();

    kube.set_fault(
        "default",
        &name,
        Fault::ContainerExited {
            container: "app".into(),
            exit_code: 7,
        },
    )
    .unwrap();
    assert!(!process_alive(first_pid));
    let pod = pods.get(&name).await.unwrap();
    let cs = &pod.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(
        cs.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        7
    );
    assert!(!cs.ready);
    assert_eq!(std::fs::read(volume.join("covmeta.1")).unwrap(), b"kept");
    assert!(exec(&pods, &name, &["true"]).await.is_err());

    kube.clear_faults("default", &name);
    let info = kube.pods().into_iter().find(|p| p.name == name).unwrap();
    assert!(info.containers[0].running);
    assert_eq!(info.containers[0].restart_count, 1);
    let r = exec(&pods, &name, &["cat", "/coverage-data/covmeta.1"])
        .await
        .unwrap();
    assert_eq!(r.stdout, b"kept");

    let before = info.containers[0].pid.unwrap();
    kube.set_fault(
        "default",
        &name,
        Fault::ContainerRestarted {
            container: "app".into(),
        },
    )
    .unwrap();
    let info = kube.pods().into_iter().find(|p| p.name == name).unwrap();
    assert_eq!(info.containers[0].restart_count, 2);
    assert_ne!(info.containers[0].pid.unwrap(), before);
    assert!(!process_alive(before));
    let pod = pods.get(&name).await.unwrap();
    let cs = &pod.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(cs.restart_count, 2);
    assert!(cs.last_state.as_ref().unwrap().terminated.is_some());
    let r = exec(&pods, &name, &["cat", "/coverage-data/covmeta.1"])
        .await
        .unwrap();
    assert_eq!(r.stdout, b"kept");

    // A hostile tar: exec runs the test's program instead.
    let hostile = tmp.path().join("hostile-tar");
    std::fs::write(&hostile, "#!/busybox/sh\necho hostile \"$@\"\n").unwrap();
    std::fs::set_permissions(
        &hostile,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    kube.set_fault(
        "default",
        &name,
        Fault::ReplaceProgram {
            name: "tar".into(),
            with: hostile.clone(),
        },
    )
    .unwrap();
    let r = exec(&pods, &name, &["tar", "-cf", "-", "."]).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        "hostile -cf - .\n",
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // Only that applet: the rest of busybox is untouched.
    let r = exec(&pods, &name, &["ls", "/busybox/busybox"])
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "/busybox/busybox\n");
    // Only inside the pod: the host's tar is untouched.
    let host = std::process::Command::new("tar")
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&host.stdout).contains("GNU tar"));
    kube.clear_faults("default", &name);
    let r = exec(&pods, &name, &["tar", "--help"]).await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(text.contains("BusyBox"), "{text}");
}

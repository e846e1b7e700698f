//! localkube against the real kubectl 1.35: listing with selectors, exec with
//! tar, a coverage flush in a Go service, exit codes, auth and error shapes.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use localkube::{Fault, LocalKube};

fn names(kube: &LocalKube, f: impl Fn(&localkube::PodInfo) -> bool) -> BTreeSet<String> {
    kube.pods()
        .iter()
        .filter(|p| f(p))
        .map(|p| format!("pod/{}", p.name))
        .collect()
}

fn lines(s: &str) -> BTreeSet<String> {
    s.lines().map(str::to_string).collect()
}

#[test]
fn get_pods_with_label_and_field_selectors() {
    let tmp = tempfile::tempdir().unwrap();
    let web = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 2));
    let other = manifest(tmp.path(), "other.yaml", &sleep_deployment("other", 1));
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&web)
        .manifest_with(&other, Some("ns2"), [("skaffold.dev/run-id", "other")])
        .image("example/sleeper", sleeper_image())
        .label("skaffold.dev/run-id", "abc")
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    assert_eq!(kube.pods().len(), 3);

    let abc = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "pods",
            "-A",
            "-l",
            "skaffold.dev/run-id=abc",
            "-o",
            "name",
        ],
    );
    let expected = names(&kube, |p| p.labels["skaffold.dev/run-id"] == "abc");
    assert_eq!(expected.len(), 2);
    assert_eq!(lines(&abc), expected);

    let both = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "pods",
            "-A",
            "-l",
            "skaffold.dev/run-id in (abc,other)",
            "-o",
            "name",
        ],
    );
    assert_eq!(lines(&both), names(&kube, |_| true));

    let not_abc = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "pods",
            "-A",
            "-l",
            "skaffold.dev/run-id notin (abc),app",
            "-o",
            "name",
        ],
    );
    assert_eq!(lines(&not_abc), names(&kube, |p| p.namespace == "ns2"));

    let none = kubectl_ok(
        &kube,
        &cache,
        &["get", "pods", "-A", "-l", "!app", "-o", "name"],
    );
    assert_eq!(none.trim(), "");

    // Namespaced listing: the default namespace only.
    let default_ns = kubectl_ok(&kube, &cache, &["get", "pods", "-o", "name"]);
    assert_eq!(
        lines(&default_ns),
        names(&kube, |p| p.namespace == "default")
    );

    // Field selector on the phase, with one pod made Pending.
    let pending = kube
        .pods()
        .into_iter()
        .find(|p| p.namespace == "default")
        .unwrap();
    kube.set_fault("default", &pending.name, Fault::Phase("Pending".into()))
        .unwrap();
    let running = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "pods",
            "-A",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name",
        ],
    );
    assert_eq!(lines(&running), names(&kube, |p| p.name != pending.name));
    let not_running = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "pods",
            "-A",
            "--field-selector",
            "status.phase!=Running",
            "-o",
            "name",
        ],
    );
    assert_eq!(
        lines(&not_running),
        BTreeSet::from([format!("pod/{}", pending.name)])
    );

    // An unsupported field is a 400 that kubectl reports.
    let bad = kubectl(
        &kube,
        &cache,
        &[
            "get",
            "pods",
            "-A",
            "--field-selector",
            "status.bogus=x",
            "-o",
            "name",
        ],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("field label not supported: status.bogus"),
        "{err}"
    );

    // The human table (server-side Table) lists every pod with its status.
    let table = kubectl_ok(&kube, &cache, &["get", "pods", "-A"]);
    assert!(table.contains("NAMESPACE"), "{table}");
    assert!(
        table.contains(&pending.name) && table.contains("Pending"),
        "{table}"
    );
}

#[test]
fn exec_tar_returns_the_pods_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 2));
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    let pods = kube.pods();
    let (a, b) = (&pods[0], &pods[1]);
    // One file from the host side, one written inside the container.
    std::fs::write(a.volumes["coverage"].join("covmeta.abc"), b"meta bytes").unwrap();
    std::fs::create_dir(a.volumes["coverage"].join("sub")).unwrap();
    std::fs::write(a.volumes["coverage"].join("sub/nested"), vec![7u8; 100_000]).unwrap();
    kubectl_ok(
        &kube,
        &cache,
        &[
            "exec",
            &a.name,
            "-c",
            "app",
            "--",
            "sh",
            "-c",
            "echo inside > /coverage-data/inside.txt",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(a.volumes["coverage"].join("inside.txt")).unwrap(),
        "inside\n"
    );

    let out = kubectl(
        &kube,
        &cache,
        &[
            "exec",
            &a.name,
            "-c",
            "app",
            "--",
            "tar",
            "-C",
            "/coverage-data",
            "-cf",
            "-",
            ".",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    let mut entries = BTreeSet::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if path == "./sub/nested" {
            assert_eq!(data, vec![7u8; 100_000]);
        }
        if path == "./covmeta.abc" {
            assert_eq!(data, b"meta bytes");
        }
        entries.insert(path);
    }
    for want in ["./covmeta.abc", "./inside.txt", "./sub/nested"] {
        assert!(entries.contains(want), "{want} missing from {entries:?}");
    }

    // The other pod's volume is its own.
    let listing = kubectl_ok(
        &kube,
        &cache,
        &["exec", &b.name, "--", "ls", "-A", "/coverage-data"],
    );
    assert_eq!(listing.trim(), "");

    // PID 1 in the container is the container's own program.
    let cmdline = kubectl_ok(
        &kube,
        &cache,
        &["exec", &a.name, "--", "cat", "/proc/1/cmdline"],
    );
    assert_eq!(cmdline, "/busybox/sleep\0infinity\0");
    let hostname = kubectl_ok(&kube, &cache, &["exec", &a.name, "--", "hostname"]);
    assert_eq!(hostname.trim(), a.name);

    // The mount point exists only inside the pods.
    assert!(!std::path::Path::new("/coverage-data").exists());
}

#[test]
fn exec_kill_usr1_makes_the_go_service_write_counters() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "svc.yaml", &go_deployment("svc"));
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/goapp", go_image())
        .publish_ports(true)
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    let pod = kube.pods().remove(0);
    let addr = pod.address.expect("the pod declares a port");
    // The service is reachable from the host on its published port.
    let answered = eventually(Duration::from_secs(10), || {
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            return false;
        };
        let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply.contains(&format!("hello from {} pid 1", pod.name))
    });
    assert!(answered, "the Go service did not answer on {addr}");

    let volume = &pod.volumes["coverage"];
    assert!(
        eventually(Duration::from_secs(5), || !files_with_prefix(
            volume, "covmeta."
        )
        .is_empty()),
        "no covmeta file at start"
    );
    assert!(files_with_prefix(volume, "covcounters.").is_empty());
    kubectl_ok(
        &kube,
        &cache,
        &["exec", &pod.name, "--", "kill", "-USR1", "1"],
    );
    assert!(
        eventually(Duration::from_secs(10), || files_with_prefix(
            volume,
            "covcounters."
        )
        .len()
            == 1),
        "no covcounters file after SIGUSR1; log: {}",
        std::fs::read_to_string(&pod.containers[0].log_file).unwrap_or_default()
    );
    // The container's output is served as its log.
    let logs = kubectl_ok(&kube, &cache, &["logs", &pod.name]);
    assert!(
        logs.contains("counters written to /coverage-data"),
        "{logs}"
    );
    // The files are readable by Go's own tooling: the oracle agrees they are coverage data.
    let mut go = toolchain::go_command().unwrap();
    let out = go
        .args(["tool", "covdata", "percent", "-i"])
        .arg(volume)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("coverage:"));
}

#[test]
fn exec_exit_codes_reach_kubectl() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 1));
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    let pod = kube.pods().remove(0);
    let out = kubectl(
        &kube,
        &cache,
        &[
            "exec",
            &pod.name,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err\n"));

    // A program the image lacks: the runtime's exec fails (no exit code), as
    // containerd/runc answer: an InternalError Status naming the executable.
    let missing = kubectl(&kube, &cache, &["exec", &pod.name, "--", "no-such-program"]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec")
            && err.contains(r#"OCI runtime exec failed: exec failed: unable to start container process: exec: "no-such-program": executable file not found in $PATH: unknown"#),
        "{err}"
    );
    let missing = kubectl(&kube, &cache, &["exec", &pod.name, "--", "/bin/bash"]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains(r#"exec: "/bin/bash": stat /bin/bash: no such file or directory: unknown"#),
        "{err}"
    );

    // stdin reaches the command (kubectl -i closes it with the v5 close frame).
    let mut child = std::process::Command::new(toolchain::require_kubectl())
        .arg("--kubeconfig")
        .arg(kube.kubeconfig())
        .arg("--cache-dir")
        .arg(&cache)
        .args(["exec", "-i", &pod.name, "--", "wc", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&[b'x'; 12345])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "12345");
}

#[test]
fn errors_have_kubernetes_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 1));
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .context("lk-errors")
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");

    let out = kubectl(&kube, &cache, &["get", "pod", "nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error from server (NotFound): pods \"nope\" not found"),
        "{err}"
    );

    let out = kubectl(&kube, &cache, &["get", "--raw", "/no/such/path"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "Error from server (NotFound): the server could not find the requested resource"
        ),
        "{err}"
    );

    // Same server without the token: kubectl says Unauthorized.
    let config = std::fs::read_to_string(kube.kubeconfig()).unwrap();
    let no_token = config.replace(kube.token(), "wrong-token");
    let bad_config = tmp.path().join("bad-kubeconfig");
    std::fs::write(&bad_config, no_token).unwrap();
    let out = std::process::Command::new(toolchain::require_kubectl())
        .arg("--kubeconfig")
        .arg(&bad_config)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache2"))
        .args(["get", "pods"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // kubectl's words for a 401 (the Status body itself is checked through kube-rs).
    assert!(err.contains("You must be logged in to the server"), "{err}");

    // Exec refused by a fault: kubectl shows the Forbidden status.
    let pod = kube.pods().remove(0);
    kube.set_fault("default", &pod.name, Fault::ExecRefused(403))
        .unwrap();
    let out = kubectl(&kube, &cache, &["exec", &pod.name, "--", "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("forbidden"), "{err}");
    kube.clear_faults("default", &pod.name);
    kubectl_ok(&kube, &cache, &["exec", &pod.name, "--", "true"]);

    // A failed pod: kubectl itself refuses.
    kube.set_fault("default", &pod.name, Fault::Phase("Failed".into()))
        .unwrap();
    let out = kubectl(&kube, &cache, &["exec", &pod.name, "--", "true"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("completed pod"));
}

#[test]
fn drop_leaves_no_process_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 2));
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let pids: Vec<i32> = kube
        .pods()
        .iter()
        .flat_map(|p| p.containers.iter().filter_map(|c| c.pid))
        .collect();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|p| process_alive(*p)));
    drop(kube);
    for pid in pids {
        assert!(!process_alive(pid), "container process {pid} survived");
    }
}

/// Services deploy with their app and are listed and read like on a cluster.
#[test]
fn services_are_served_as_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(
        tmp.path(),
        "web.yaml",
        &format!(
            "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, labels: {{app: web}}}}\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80, targetPort: 8080}}]\n",
            sleep_deployment("web", 1)
        ),
    );
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .manifest_with(&m, Some("other"), [("skaffold.dev/run-id", "other")])
        .image("example/sleeper", sleeper_image())
        .label("skaffold.dev/run-id", "abc")
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    assert_eq!(kube.services().len(), 2);
    let listed = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "services",
            "-A",
            "-l",
            "skaffold.dev/run-id=abc",
            "-o",
            "name",
        ],
    );
    assert_eq!(listed, "service/web\n");
    let port = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "svc",
            "web",
            "-n",
            "other",
            "-o",
            "jsonpath={.spec.ports[0].port}",
        ],
    );
    assert_eq!(port, "80");
    let table = kubectl_ok(&kube, &cache, &["get", "services"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("PORT(S)"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("web ") && lines[1].contains("80/TCP"),
        "{table}"
    );
    let all = kubectl_ok(&kube, &cache, &["get", "all", "-n", "other", "-o", "name"]);
    assert!(all.lines().any(|l| l == "service/web"), "{all}");
    let missing = kubectl(&kube, &cache, &["get", "service", "nope"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("services \"nope\" not found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// `shareProcessNamespace: true`: the containers see one process tree whose
/// PID 1 is the pause process, which shrugs off signals sent from inside; all
/// of it is gone after drop.
#[test]
fn shared_process_namespace_has_a_pause_process_as_pid_1() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(
        tmp.path(),
        "shared.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: shared}
spec:
  shareProcessNamespace: true
  containers:
    - {name: a, image: example/sleeper, args: ["infinity"]}
    - {name: b, image: example/sleeper, args: ["infinity"]}
"#,
    );
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    let pod = kube.pods().remove(0);
    let pause = pod.pause_pid.expect("a pause process");
    let pids: Vec<i32> = pod.containers.iter().filter_map(|c| c.pid).collect();
    assert_eq!(pids.len(), 2);

    let exec = |container: &str, argv: &[&str]| {
        let mut args = vec!["exec", "shared", "-c", container, "--"];
        args.extend(argv);
        kubectl_ok(&kube, &cache, &args)
    };
    assert_eq!(exec("a", &["cat", "/proc/1/comm"]), "pause\n");
    // Both containers' processes, in start order, from either container.
    for c in ["a", "b"] {
        assert_eq!(
            exec(c, &["cat", "/proc/2/cmdline", "/proc/3/cmdline"]),
            "/busybox/sleep\0infinity\0".repeat(2)
        );
    }
    exec("b", &["kill", "-USR1", "1"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(process_alive(pause), "the pause process died of SIGUSR1");
    assert!(kube.pods()[0].containers.iter().all(|c| c.running));

    drop(kube);
    for pid in pids.into_iter().chain([pause]) {
        assert!(!process_alive(pid), "process {pid} survived");
    }
}

/// The container's root is its image: mount points are made inside the pod
/// only (also below other mounts, subPath included), and nothing of the host
/// is visible.
#[test]
fn nested_mount_points_stay_inside_the_pod_and_the_host_is_invisible() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = r#"apiVersion: v1
kind: Pod
metadata:
  name: nested
  namespace: team
spec:
  containers:
    - name: app
      image: example/sleeper
      command: ["/busybox/sleep"]
      args: ["infinity"]
      workingDir: /var/lib/lk-nested/data
      volumeMounts:
        - {name: data, mountPath: /var/lib/lk-nested/data}
        - {name: data, mountPath: /var/lib/lk-nested/data/inner/deeper, subPath: sub}
  volumes:
    - {name: data, emptyDir: {}}
"#;
    let m = manifest(tmp.path(), "nested.yaml", yaml);
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    let args = |cmd: &'static str| ["exec", "-n", "team", "nested", "--", "sh", "-c", cmd];
    let cmdline = kubectl_ok(&kube, &cache, &args("cat /proc/1/cmdline"));
    assert_eq!(cmdline, "/busybox/sleep\0infinity\0");
    let pwd = kubectl_ok(
        &kube,
        &cache,
        &args("pwd; touch inner/deeper/x; ls /var/lib"),
    );
    let mut lines = pwd.lines();
    assert_eq!(lines.next(), Some("/var/lib/lk-nested/data"));
    assert_eq!(lines.collect::<Vec<_>>(), ["lk-nested"]);
    assert!(!std::path::Path::new("/var/lib/lk-nested").exists());
    let volume = &kube.pods()[0].volumes["data"];
    assert!(
        volume.join("sub/x").is_file(),
        "subPath mount writes into the volume"
    );
    // The root holds the image's entries and what the runtime adds, nothing else.
    let root = kubectl_ok(&kube, &cache, &args("ls -A /"));
    let root: BTreeSet<&str> = root.lines().collect();
    let want: BTreeSet<&str> = [
        "busybox", "dev", "etc", "home", "proc", "root", "tmp", "var",
    ]
    .into_iter()
    .collect();
    assert_eq!(root, want);
    let dev = kubectl_ok(&kube, &cache, &args("ls -A /dev"));
    let dev: BTreeSet<&str> = dev.lines().collect();
    let want: BTreeSet<&str> = [
        "core", "fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "tty",
        "urandom", "zero",
    ]
    .into_iter()
    .collect();
    assert_eq!(dev, want);
    let etc = kubectl_ok(
        &kube,
        &cache,
        &args(
            "cat /etc/hostname; grep nested /etc/hosts; grep -c search /etc/resolv.conf; ls /usr 2>&1; echo $?",
        ),
    );
    let mut etc = etc.lines();
    assert_eq!(etc.next(), Some("nested"));
    assert_eq!(etc.next(), Some("127.0.0.1\tnested"));
    assert_eq!(etc.next(), Some("1"));
    assert!(etc.next().is_some_and(|l| l.contains("No such file")));
    assert_eq!(etc.next(), Some("1"));
}

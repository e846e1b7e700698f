//! Shared fixtures: the Go test service (built once), manifests, kubectl runs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The Go test service built with `-cover -covermode=atomic`, once per test binary.
pub fn go_service() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("localkube-goapp");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goapp");
        let mut cmd = toolchain::go_command().unwrap_or_else(|e| panic!("{e}"));
        let status = cmd
            .current_dir(&src)
            .args(["build", "-cover", "-covermode=atomic", "-o"])
            .arg(&out)
            .arg(".")
            .status()
            .expect("running go build");
        assert!(status.success(), "go build of tests/goapp failed");
        out
    })
}

/// Write a manifest into `dir` and return its path.
pub fn manifest(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("writing manifest");
    path
}

/// A Deployment of `replicas` pods running `sleep` with a coverage volume.
pub fn sleep_deployment(name: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: example/sleeper:latest
          args: ["infinity"]
          volumeMounts:
            - {{name: coverage, mountPath: /coverage-data}}
      volumes:
        - name: coverage
          emptyDir: {{}}
"#
    )
}

/// The Go service as a Deployment, GOCOVERDIR on an emptyDir, a declared port.
pub fn go_deployment(name: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: example/goapp
          ports:
            - containerPort: 8080
          env:
            - {{name: GOCOVERDIR, value: /coverage-data}}
          volumeMounts:
            - {{name: coverage, mountPath: /coverage-data}}
      volumes:
        - name: coverage
          emptyDir: {{}}
"#
    )
}

/// `kubectl` with the instance's kubeconfig and its own discovery cache.
pub fn kubectl(kube: &localkube::LocalKube, cache: &Path, args: &[&str]) -> Output {
    Command::new(toolchain::require_kubectl())
        .arg("--kubeconfig")
        .arg(kube.kubeconfig())
        .arg("--context")
        .arg(kube.context())
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("running kubectl")
}

/// kubectl's stdout as text, failing the test with its stderr if it failed.
pub fn kubectl_ok(kube: &localkube::LocalKube, cache: &Path, args: &[&str]) -> String {
    let out = kubectl(kube, cache, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kubectl output is UTF-8")
}

/// Poll until `f` holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Whether a host process exists (and is not a zombie).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Files in a folder whose names start with `prefix`.
pub fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// An OCI image layout like distroless `:debug` (busybox at `/busybox`, on
/// `PATH`) whose entrypoint is busybox's `sleep`; built once per test binary.
pub fn sleeper_image() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("localkube-sleeper-{}", std::process::id()));
        let busybox = toolchain::busybox().unwrap_or_else(|e| panic!("{e}"));
        ocilayout::Image::busybox(&busybox)
            .expect("busybox base")
            .entrypoint(["/busybox/sleep"])
            .write_layout(&dir)
            .expect("writing the sleeper image");
        dir
    })
}

/// The Go test service on the busybox base, at `/ko-app/goapp` (as ko puts it).
pub fn go_image() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("localkube-goapp-image-{}", std::process::id()));
        let busybox = toolchain::busybox().unwrap_or_else(|e| panic!("{e}"));
        ocilayout::go_image(
            ocilayout::Flavour::Debug,
            go_service(),
            "/ko-app/goapp",
            Some(&busybox),
        )
        .and_then(|i| i.write_layout(&dir))
        .expect("writing the goapp image");
        dir
    })
}

/// A kube-rs client for `kube`, from its kubeconfig.
pub async fn client(kube: &localkube::LocalKube) -> kube::Client {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let kc = Kubeconfig::read_from(kube.kubeconfig()).unwrap();
    let options = KubeConfigOptions {
        context: Some(kube.context().to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

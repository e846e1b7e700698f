//! Shared fixtures for the end-to-end tests: the example Go service built once
//! per test binary with `-cover -covermode=atomic`, the tool binaries, a
//! localkube with the service deployed, traffic, and the `go tool covdata` oracle.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const RUN_ID: &str = "run-1";
pub const IMAGE: &str = "example/greeter";

/// A test manifest in `tests/k8s/`.
pub fn manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/k8s")
        .join(name)
}

fn build_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cov-collect-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp build dir");
        dir
    })
}

/// Build the example service with `go build -cover -covermode=<mode>` (once per mode).
pub fn go_service(mode: &str) -> PathBuf {
    static ATOMIC: OnceLock<PathBuf> = OnceLock::new();
    static SET: OnceLock<PathBuf> = OnceLock::new();
    let cell = if mode == "atomic" { &ATOMIC } else { &SET };
    cell.get_or_init(|| {
        toolchain::require_go();
        let src = toolchain::workspace_root().join("examples/go-integration-coverage");
        let out = build_dir().join(format!("greeter-{mode}"));
        let status = toolchain::go_command()
            .expect("go installed")
            .args(["build", "-cover", &format!("-covermode={mode}"), "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&src)
            .status()
            .expect("run go build");
        assert!(status.success(), "go build of {} failed", src.display());
        out
    })
    .clone()
}

/// The service built with `-covermode=<mode>` as an OCI image layout of
/// `flavour` (see `ocilayout::Flavour`), at `/ko-app/greeter` as ko puts it.
pub fn go_image(flavour: ocilayout::Flavour, mode: &str) -> PathBuf {
    let dir = build_dir().join(format!("image-{flavour:?}-{mode}"));
    if !dir.join("index.json").exists() {
        let busybox = toolchain::busybox().unwrap_or_else(|e| panic!("{e}"));
        let tmp = build_dir().join(format!(
            "image-{flavour:?}-{mode}.{:?}",
            std::thread::current().id()
        ));
        ocilayout::go_image(
            flavour,
            &go_service(mode),
            "/ko-app/greeter",
            Some(&busybox),
        )
        .and_then(|i| i.write_layout(&tmp))
        .expect("writing the service's image");
        // Tests of one binary run in parallel: the first rename wins.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    dir
}

/// A binary of this workspace; other packages' binaries are built on first use.
pub fn tool(name: &'static str) -> PathBuf {
    if name == "cov-collect" {
        return PathBuf::from(env!("CARGO_BIN_EXE_cov-collect"));
    }
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The test's own CARGO_* / RUSTC* variables would make build scripts
        // rerun and the next `cargo test` rebuild half the dependency tree.
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            let keep = matches!(
                k.as_ref(),
                "CARGO_HOME" | "CARGO_TARGET_DIR" | "RUSTUP_HOME" | "RUSTUP_TOOLCHAIN"
            );
            if !keep
                && (k.starts_with("CARGO_")
                    || k.starts_with("RUSTC")
                    || k.starts_with("DEP_")
                    || k == "OUT_DIR")
            {
                cmd.env_remove(&key);
            }
        }
        let status = cmd
            .args(["build", "--quiet", "-p", "cov-signal", "-p", "cov-report"])
            .current_dir(toolchain::workspace_root())
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p cov-signal -p cov-report failed"
        );
    });
    toolchain::workspace_binary(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A started localkube and where its files are.
pub struct Cluster {
    pub kube: localkube::LocalKube,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn pods(&self) -> Vec<localkube::PodInfo> {
        self.kube.pods()
    }

    /// Pods of the run (not the decoy), sorted by namespace/name.
    pub fn run_pods(&self) -> Vec<localkube::PodInfo> {
        let mut pods: Vec<_> = self
            .pods()
            .into_iter()
            .filter(|p| p.labels.get("skaffold.dev/run-id").map(String::as_str) == Some(RUN_ID))
            .collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        pods
    }

    /// Run a tool against this cluster with `args`; SKAFFOLD_* cleared unless given in `env`.
    pub fn run(&self, tool_name: &'static str, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_with_kubeconfig(self.kube.kubeconfig(), tool_name, args, env)
    }

    /// [`Cluster::run`] with another kubeconfig (another identity).
    pub fn run_with_kubeconfig(
        &self,
        kubeconfig: &Path,
        tool_name: &'static str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = Command::new(tool(tool_name));
        cmd.arg("--kubeconfig").arg(kubeconfig);
        cmd.args(args);
        for var in [
            "SKAFFOLD_RUN_ID",
            "SKAFFOLD_KUBE_CONTEXT",
            "SKAFFOLD_NAMESPACES",
            "SKAFFOLD_WORK_DIR",
            "KUBECONFIG",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run tool");
        eprintln!(
            "$ {tool_name} {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Run a tool with `--output json` and parse its report.
    pub fn run_json(&self, tool_name: &'static str, args: &[&str]) -> (i32, serde_json::Value) {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.run(tool_name, &all, &[]);
        let code = out.status.code().unwrap_or(-1);
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (code, json)
    }
}

/// Start localkube with `manifests` (path, namespace, extra labels); every pod is labelled with [`RUN_ID`].
/// A manifest to deploy: file, namespace override, extra pod labels.
pub type Deploy<'a> = (PathBuf, Option<&'a str>, Vec<(&'a str, &'a str)>);

pub fn start(manifests: &[Deploy]) -> Cluster {
    start_with(manifests, |b| b)
}

/// [`start`] with more builder settings (images, features).
pub fn start_with(
    manifests: &[Deploy],
    more: impl FnOnce(localkube::LocalKubeBuilder) -> localkube::LocalKubeBuilder,
) -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = more(
        localkube::LocalKube::builder(dir.path().join("kube"))
            .image(IMAGE, go_image(ocilayout::Flavour::Debug, "atomic"))
            .label("skaffold.dev/run-id", RUN_ID)
            .context("localkube-test")
            // The tests drive traffic straight at each pod.
            .publish_ports(true),
    );
    for (path, ns, labels) in manifests {
        b = b.manifest_with(path, *ns, labels.clone());
    }
    let kube = b
        .start()
        .expect("localkube starts (needs root or user namespaces)");
    let cluster = Cluster { kube, dir };
    for p in cluster.pods() {
        if let Some(addr) = p.address
            && !ready(addr)
        {
            let logs: Vec<String> = p
                .containers
                .iter()
                .map(|c| {
                    format!(
                        "{}: {}",
                        c.name,
                        std::fs::read_to_string(&c.log_file).unwrap_or_default()
                    )
                })
                .collect();
            panic!(
                "{}/{} at {addr} never answered /healthz; {:?}; logs:\n{}",
                p.namespace,
                p.name,
                p.containers,
                logs.join("\n")
            );
        }
    }
    cluster
}

/// Wait until the service answers /healthz.
pub fn wait_ready(addr: SocketAddr) {
    assert!(ready(addr), "service at {addr} never answered /healthz");
}

/// Whether the service answers /healthz within 20 s.
pub fn ready(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if get(addr, "/healthz").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// One HTTP GET; the response text, or None when the service is not reachable.
pub fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Drive `paths` at every pod of the run.
pub fn traffic(cluster: &Cluster, paths: &[&str]) {
    for p in cluster.run_pods() {
        let addr = p.address.expect("pod has an address");
        for path in paths {
            get(addr, path).unwrap_or_else(|| panic!("GET {path} on {}/{}", p.namespace, p.name));
        }
    }
}

/// Every folder under `root` that holds a covmeta file (the inputs Go's tools need, as `-i`).
pub fn data_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut has_meta = false;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().starts_with("covmeta.") {
                has_meta = true;
            }
        }
        if has_meta {
            out.push(dir);
        }
    }
    out.sort();
    out
}

/// Regular files in `dir` (names), sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `go tool covdata <sub> -i=<dirs>` output (the oracle).
pub fn covdata(sub: &str, dirs: &[PathBuf], extra: &[&str]) -> String {
    let joined = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let out = toolchain::go_command()
        .expect("go installed")
        .args(["tool", "covdata", sub, &format!("-i={joined}")])
        .args(extra)
        .output()
        .expect("run go tool covdata");
    assert!(
        out.status.success(),
        "go tool covdata {sub} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cov-report percent` on `root` prints exactly what `go tool covdata percent`
/// prints for the data folders under it.
pub fn percent_matches_go(root: &Path) {
    let dirs = data_dirs(root);
    assert!(
        !dirs.is_empty(),
        "no coverage data under {}",
        root.display()
    );
    let go = covdata("percent", &dirs, &[]);
    let ours = std::process::Command::new(tool("cov-report"))
        .arg("percent")
        .arg(root)
        .output()
        .expect("run cov-report");
    assert!(
        ours.status.success(),
        "cov-report failed: {}",
        String::from_utf8_lossy(&ours.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        go,
        "cov-report vs go tool covdata on {}",
        root.display()
    );
}

/// `go tool covdata textfmt` as (block → count) pairs.
pub fn counts(dirs: &[PathBuf]) -> std::collections::BTreeMap<String, u64> {
    let tmp = tempfile::NamedTempFile::new().expect("temp");
    let o = format!("-o={}", tmp.path().display());
    covdata("textfmt", dirs, &[&o]);
    let text = std::fs::read_to_string(tmp.path()).expect("textfmt output");
    let mut map = std::collections::BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut parts = line.rsplitn(3, ' ');
        let count: u64 = parts.next().and_then(|c| c.parse().ok()).expect("count");
        let _stmts = parts.next();
        let block = parts.next().expect("block").to_string();
        *map.entry(block).or_insert(0) += count;
    }
    map
}

/// The results of a report, as (where, state, message).
pub fn results(json: &serde_json::Value) -> Vec<(String, String, String)> {
    json["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let c = r["container"]
                        .as_str()
                        .map(|c| format!("/{c}"))
                        .unwrap_or_default();
                    (
                        format!(
                            "{}/{}{c}",
                            r["namespace"].as_str().unwrap_or(""),
                            r["pod"].as_str().unwrap_or("")
                        ),
                        r["state"].as_str().unwrap_or("").to_string(),
                        r["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

//! `cargo xtask bench collect`: cov-signal + cov-collect against the
//! tutorial's way of getting coverage out of pods, on localkube with 1, 10 and
//! 50 replicas of the example service.
//!
//! The tutorial's way is timed as its shell script does it, with the real
//! kubectl 1.35: `kubectl exec POD -- kill -USR1 1` per pod, then per pod
//! `kubectl exec POD -- tar -cf - -C /coverage-data . | tar -xf - -C OUT/POD`.
//! Ours is the release builds of `cov-signal` (which also waits for the flush
//! to be confirmed) and `cov-collect`. Bytes over the wire: ours from
//! cov-collect's report; the tutorial's is the size of the `tar -cf` stream
//! of the same folder (GNU tar, computed locally from the pod volume).
//! Afterwards both output folders must hold the same files.
//!
//! Next to the times: the execs and API requests per container each tool
//! made, as localkube counted them (every exec is an API server → kubelet →
//! runtime round trip on a real cluster, and load on a shared control plane).
//!
//! The helper-mode row times signal + collect with `--via exec` on the
//! busybox image, then, on the same service on a no-shell image (distroless
//! `static`, which only a helper can serve), `--via helper` twice (the first
//! run adds a `cov-helper` ephemeral container to every pod, the second
//! reuses them) and `--via auto` once (one failed exec per pod, then the
//! helper). Target: the second helper run within 1.5x of exec mode.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Replica counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
    pub replicas: Vec<usize>,
    /// Folder for the benchmark's files (default: bench-collect/ in the target folder).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Pods for the helper-mode row (0 skips it): exec mode on the busybox
    /// image, then on a no-shell image a first run through helper containers
    /// (adds them), a second (reuses them) and one with --via auto.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub helper_pods: usize,
}

const RUN_ID: &str = "bench-run";
const IMAGE: &str = "example/greeter";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| toolchain::workspace_root().join("target"))
}

fn build_tools() -> Result<(PathBuf, PathBuf)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "cov-signal",
            "-p",
            "cov-collect",
        ])
        .current_dir(toolchain::workspace_root())
        .status()
        .context("running cargo build --release")?;
    ensure!(
        status.success(),
        "cargo build --release -p cov-signal -p cov-collect failed"
    );
    let rel = target_dir().join("release");
    Ok((rel.join("cov-signal"), rel.join("cov-collect")))
}

/// The service's images: what the coverage profile ships (busybox base) and
/// the same binary on distroless `static` (no shell, no tools).
struct Images {
    debug: PathBuf,
    no_shell: PathBuf,
}

fn build_service(dir: &Path) -> Result<Images> {
    let out = dir.join("greeter");
    let src = toolchain::workspace_root().join("examples/go-integration-coverage");
    let status = toolchain::go_command()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .args(["build", "-cover", "-covermode=atomic", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .status()
        .context("running go build")?;
    ensure!(
        status.success(),
        "go build -cover of {} failed",
        src.display()
    );
    let busybox = toolchain::busybox()?;
    let image = |flavour: ocilayout::Flavour, name: &str| -> Result<PathBuf> {
        let image = dir.join(name);
        let _ = std::fs::remove_dir_all(&image);
        ocilayout::go_image(flavour, &out, "/ko-app/greeter", Some(&busybox))
            .and_then(|i| i.write_layout(&image))
            .context("assembling the service's image")?;
        Ok(image)
    };
    Ok(Images {
        debug: image(ocilayout::Flavour::Debug, "greeter-image")?,
        no_shell: image(ocilayout::Flavour::Static, "greeter-static-image")?,
    })
}

fn manifest(dir: &Path, replicas: usize) -> Result<PathBuf> {
    let path = dir.join(format!("greeter-{replicas}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: greeter\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: greeter\n  template:\n    metadata:\n      labels:\n        app: greeter\n    spec:\n      containers:\n        - name: app\n          image: {IMAGE}\n          ports:\n            - containerPort: 8080\n          env:\n            - name: GOCOVERDIR\n              value: /coverage-data\n          volumeMounts:\n            - name: coverage-data\n              mountPath: /coverage-data\n      volumes:\n        - name: coverage-data\n          emptyDir: {{}}\n"
        ),
    )?;
    Ok(path)
}

fn get(addr: std::net::SocketAddr, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    s.read_to_string(&mut buf).is_ok() && buf.starts_with("HTTP/1.")
}

fn traffic(kube: &localkube::LocalKube) -> Result<()> {
    for p in kube.pods() {
        let addr = p.address.context("pod without address")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !get(addr, "/healthz") {
            ensure!(Instant::now() < deadline, "{} never became ready", p.name);
            std::thread::sleep(Duration::from_millis(50));
        }
        for path in [
            "/greet?name=Ada",
            "/greet?name=Ada&lang=fr&shout=1",
            "/sum?a=1&b=2",
            "/fizzbuzz/15",
        ] {
            get(addr, path);
        }
    }
    Ok(())
}

/// The tutorial's script, for kubectl at `kubectl`.
const TUTORIAL: &str = r#"set -e
K="$KUBECTL --kubeconfig $KCFG --context $CTX --cache-dir $CACHE -n default"
for pod in $($K get pods -l skaffold.dev/run-id=$RUN -o name); do
  $K exec "$pod" -c app -- kill -USR1 1
done
for pod in $($K get pods -l skaffold.dev/run-id=$RUN -o name); do
  dir="$OUT/${pod#pod/}"
  mkdir -p "$dir"
  $K exec "$pod" -c app -- tar -cf - -C /coverage-data . | tar -xf - -C "$dir"
done
"#;

/// File name → content of every coverage file under `root`, keyed by pod.
fn snapshot_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("covmeta.") || name.starts_with("covcounters.")) {
                continue;
            }
            // The pod name is the folder holding the file (tutorial: OUT/pod, ours: OUT/ns/pod/app).
            let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
            let pod = if parent.file_name().is_some_and(|n| n == "app") {
                parent
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            } else {
                parent.file_name().map(|n| n.to_string_lossy().into_owned())
            }
            .unwrap_or_default();
            out.insert(
                format!("{pod}/{name}"),
                std::fs::read(&p).unwrap_or_default(),
            );
        }
    }
    out
}

/// Size of `tar -cf - -C dir .` (what the tutorial's pipe carries).
fn tar_size(dir: &Path) -> Result<u64> {
    let out = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(dir)
        .arg(".")
        .output()
        .context("running tar")?;
    ensure!(out.status.success(), "tar -cf of {} failed", dir.display());
    Ok(out.stdout.len() as u64)
}

fn json_number(json: &str, key: &str) -> Option<u64> {
    let at = json.rfind(&format!("\"{key}\": "))?;
    let rest = &json[at + key.len() + 4..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

struct Row {
    replicas: usize,
    tutorial: Duration,
    ours: Duration,
    signal: Duration,
    collect: Duration,
    tutorial_bytes: u64,
    our_bytes: u64,
    same_files: bool,
    /// What cov-signal and cov-collect cost the API server.
    signal_cost: localkube::RequestCounts,
    collect_cost: localkube::RequestCounts,
}

/// Requests made between two readings.
fn cost(
    before: localkube::RequestCounts,
    after: localkube::RequestCounts,
) -> localkube::RequestCounts {
    localkube::RequestCounts {
        requests: after.requests - before.requests,
        execs: after.execs - before.execs,
    }
}

/// "E execs, R requests" per container.
fn per_container(c: localkube::RequestCounts, containers: usize) -> String {
    let n = containers.max(1) as f64;
    format!(
        "{:.1} execs, {:.1} requests",
        c.execs as f64 / n,
        c.requests as f64 / n
    )
}

fn measure(
    work: &Path,
    service: &Path,
    tools: &(PathBuf, PathBuf),
    replicas: usize,
) -> Result<Row> {
    let dir = work.join(format!("r{replicas}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let kube = localkube::LocalKube::builder(dir.join("kube"))
        .manifest(manifest(&dir, replicas)?)
        .image(IMAGE, service)
        .label("skaffold.dev/run-id", RUN_ID)
        .context("bench")
        // The benchmark drives traffic straight at each pod.
        .publish_ports(true)
        .start()
        .context("starting localkube")?;
    traffic(&kube)?;
    let kcfg = kube.kubeconfig().to_path_buf();

    // Ours.
    let ours_out = dir.join("ours");
    let common = |cmd: &mut Command| {
        cmd.arg("--kubeconfig")
            .arg(&kcfg)
            .args(["--context", "bench", "--run-id", RUN_ID]);
        for v in [
            "SKAFFOLD_RUN_ID",
            "SKAFFOLD_NAMESPACES",
            "SKAFFOLD_KUBE_CONTEXT",
            "SKAFFOLD_WORK_DIR",
        ] {
            cmd.env_remove(v);
        }
    };
    let counts0 = kube.request_counts();
    let t0 = Instant::now();
    let mut sig = Command::new(&tools.0);
    common(&mut sig);
    let sig_out = sig.output().context("running cov-signal")?;
    let signal = t0.elapsed();
    let counts1 = kube.request_counts();
    ensure!(
        sig_out.status.success(),
        "cov-signal failed:\n{}",
        String::from_utf8_lossy(&sig_out.stdout)
    );
    let t1 = Instant::now();
    let mut col = Command::new(&tools.1);
    common(&mut col);
    col.arg("--out").arg(&ours_out).args(["--output", "json"]);
    let col_out = col.output().context("running cov-collect")?;
    let collect = t1.elapsed();
    let ours = t0.elapsed();
    let counts2 = kube.request_counts();
    let report = String::from_utf8_lossy(&col_out.stdout).into_owned();
    ensure!(col_out.status.success(), "cov-collect failed:\n{report}");
    let our_bytes = json_number(&report, "bytes_transferred")
        .context("bytes_transferred in cov-collect's report")?;

    // The tutorial's way.
    let tut_out = dir.join("tutorial");
    std::fs::create_dir_all(&tut_out)?;
    let kubectl = toolchain::kubectl().map_err(|e| anyhow::anyhow!("{e}"))?;
    let t2 = Instant::now();
    let status = Command::new("sh")
        .args(["-c", TUTORIAL])
        .env("KUBECTL", &kubectl)
        .env("KCFG", &kcfg)
        .env("CTX", "bench")
        .env("CACHE", dir.join("kubectl-cache"))
        .env("RUN", RUN_ID)
        .env("OUT", &tut_out)
        .status()
        .context("running the tutorial's script")?;
    let tutorial = t2.elapsed();
    ensure!(status.success(), "the tutorial's script failed");
    let mut tutorial_bytes = 0;
    for p in kube.pods() {
        if let Some(vol) = p.volumes.get("coverage-data") {
            tutorial_bytes += tar_size(vol)?;
        }
    }

    // Same files: collect once more (untimed, after the tutorial's flush) and compare.
    std::thread::sleep(Duration::from_millis(500));
    let final_out = dir.join("ours-final");
    let mut col = Command::new(&tools.1);
    common(&mut col);
    col.arg("--out").arg(&final_out);
    ensure!(col.output()?.status.success(), "final cov-collect failed");
    let a = snapshot_files(&final_out);
    let b = snapshot_files(&tut_out);
    let same_files = a == b;
    if !same_files {
        let only_ours: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
        let only_tut: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
        eprintln!("  files differ: only ours {only_ours:?}, only tutorial {only_tut:?}");
    }
    let ours_first = snapshot_files(&ours_out);
    ensure!(
        ours_first.iter().all(|(k, v)| a.get(k) == Some(v)),
        "cov-collect's timed output differs from the files in the pods"
    );
    kube.shutdown();
    Ok(Row {
        replicas,
        tutorial,
        ours,
        signal,
        collect,
        tutorial_bytes,
        our_bytes,
        same_files,
        signal_cost: cost(counts0, counts1),
        collect_cost: cost(counts1, counts2),
    })
}

/// The helper-mode timings at `pods` pods.
struct HelperRow {
    pods: usize,
    /// `--via exec` on the busybox (`:debug`) image.
    exec: Duration,
    /// `--via helper` on the no-shell image: adds the helpers.
    first: Duration,
    /// `--via helper` again: reuses them.
    second: Duration,
    /// `--via auto` (the default) on the no-shell image, helpers in place:
    /// one failed exec per pod, then the helper.
    auto: Duration,
}

/// The image the helper row maps `--helper-image`'s default to.
const HELPER_IMAGE: &str = "docker.io/library/busybox";

/// signal + collect with `--via via` against `kube`, output in `out`; the time of both.
fn round(
    kube: &localkube::LocalKube,
    tools: &(PathBuf, PathBuf),
    via: &str,
    out: &Path,
) -> Result<Duration> {
    let t = Instant::now();
    for (tool, extra) in [
        (&tools.0, vec![]),
        (
            &tools.1,
            vec!["--out".to_string(), out.display().to_string()],
        ),
    ] {
        let output = Command::new(tool)
            .arg("--kubeconfig")
            .arg(kube.kubeconfig())
            .args(["--context", "bench", "--run-id", RUN_ID, "--via", via])
            .args(&extra)
            .env_remove("SKAFFOLD_RUN_ID")
            .env_remove("SKAFFOLD_NAMESPACES")
            .env_remove("SKAFFOLD_KUBE_CONTEXT")
            .env_remove("SKAFFOLD_WORK_DIR")
            .output()
            .with_context(|| format!("running {}", tool.display()))?;
        ensure!(
            output.status.success(),
            "{} --via {via} failed:\n{}",
            tool.display(),
            String::from_utf8_lossy(&output.stdout)
        );
    }
    Ok(t.elapsed())
}

/// Exec mode on the busybox image, then helper mode on the same service on a
/// no-shell image (distroless `static`), which exec cannot serve: each on its
/// own localkube with `pods` pods.
fn measure_helper(
    work: &Path,
    images: &Images,
    tools: &(PathBuf, PathBuf),
    pods: usize,
) -> Result<HelperRow> {
    let dir = work.join(format!("helper{pods}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // What the default --helper-image (busybox) would pull: busybox with its
    // applets on PATH (the binary alone would have no `sleep` to idle with).
    let busybox = dir.join("busybox-image");
    ocilayout::Image::busybox(&toolchain::busybox()?)
        .and_then(|i| i.write_layout(&busybox))
        .context("assembling the busybox helper image")?;
    let start = |name: &str, image: &Path| -> Result<localkube::LocalKube> {
        let kube = localkube::LocalKube::builder(dir.join(name))
            .manifest(manifest(&dir, pods)?)
            .image(IMAGE, image)
            .image(HELPER_IMAGE, &busybox)
            .label("skaffold.dev/run-id", RUN_ID)
            .context("bench")
            .publish_ports(true)
            .start()
            .context("starting localkube")?;
        traffic(&kube)?;
        Ok(kube)
    };
    let kube = start("kube-exec", &images.debug)?;
    let exec = round(&kube, tools, "exec", &dir.join("exec"))?;
    kube.shutdown();

    let kube = start("kube-helper", &images.no_shell)?;
    let first = round(&kube, tools, "helper", &dir.join("helper-1"))?;
    let second = round(&kube, tools, "helper", &dir.join("helper-2"))?;
    let auto = round(&kube, tools, "auto", &dir.join("auto"))?;
    let helpers: usize = kube
        .pods()
        .iter()
        .map(|p| p.ephemeral_containers.len())
        .sum();
    ensure!(
        helpers == pods,
        "expected one helper per pod after three runs, found {helpers} for {pods} pods"
    );
    kube.shutdown();
    Ok(HelperRow {
        pods,
        exec,
        first,
        second,
        auto,
    })
}

pub fn run(args: &Args) -> Result<()> {
    if args.replicas.is_empty() {
        bail!("--replicas needs at least one count");
    }
    toolchain::kubectl().map_err(|e| anyhow::anyhow!("{e}"))?;
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| target_dir().join("bench-collect"));
    std::fs::create_dir_all(&work)?;
    eprintln!("building the Go service and release builds of cov-signal, cov-collect…");
    let images = build_service(&work)?;
    let tools = build_tools()?;
    let mut rows = Vec::new();
    for &n in &args.replicas {
        eprintln!("measuring {n} replica(s)…");
        rows.push(measure(&work, &images.debug, &tools, n)?);
    }
    println!(
        "{:>5}  {:>12}  {:>22}  {:>7}  {:>14}  {:>12}  {:>6}  same files",
        "pods",
        "tutorial",
        "ours (signal+collect)",
        "speedup",
        "tutorial bytes",
        "our bytes",
        "ratio"
    );
    for r in &rows {
        println!(
            "{:>5}  {:>11.2}s  {:>8.2}s ({:.2}+{:.2})  {:>6.1}x  {:>14}  {:>12}  {:>5.1}x  {}",
            r.replicas,
            r.tutorial.as_secs_f64(),
            r.ours.as_secs_f64(),
            r.signal.as_secs_f64(),
            r.collect.as_secs_f64(),
            r.tutorial.as_secs_f64() / r.ours.as_secs_f64(),
            r.tutorial_bytes,
            r.our_bytes,
            r.tutorial_bytes as f64 / r.our_bytes.max(1) as f64,
            if r.same_files { "yes" } else { "NO" }
        );
    }
    println!("per container (as localkube counted them):");
    for r in &rows {
        println!(
            "{:>5}  cov-signal {}; cov-collect {}",
            r.replicas,
            per_container(r.signal_cost, r.replicas),
            per_container(r.collect_cost, r.replicas)
        );
    }
    if args.helper_pods > 0 {
        eprintln!("measuring helper mode at {} pods…", args.helper_pods);
        let h = measure_helper(&work, &images, &tools, args.helper_pods)?;
        let ratio = h.second.as_secs_f64() / h.exec.as_secs_f64();
        println!(
            "helper mode at {} pods (signal+collect): exec on the busybox image {:.2}s; on the no-shell image: --via helper first run {:.2}s (adds {} helpers), second run {:.2}s (reuses them), --via auto {:.2}s; second/exec {ratio:.2}x (target <= 1.5x: {})",
            h.pods,
            h.exec.as_secs_f64(),
            h.first.as_secs_f64(),
            h.pods,
            h.second.as_secs_f64(),
            h.auto.as_secs_f64(),
            if ratio <= 1.5 { "met" } else { "MISSED" }
        );
    }
    if let Some(r) = rows.iter().find(|r| r.replicas == 50) {
        let speed = r.tutorial.as_secs_f64() / r.ours.as_secs_f64();
        println!(
            "target at 50 pods: >= 10x faster ({speed:.1}x: {}), fewer bytes ({}: {})",
            if speed >= 10.0 { "met" } else { "MISSED" },
            r.our_bytes,
            if r.our_bytes < r.tutorial_bytes {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    Ok(())
}

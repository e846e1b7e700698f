//! The demo's steps, in order; see the parent module for what it shows.

use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{Options, cluster, dev, hooks};
use crate::tools::run as run_cmd;

/// The example the demo runs, relative to the workspace root.
const EXAMPLE: &str = "examples/go-integration-coverage";
/// The image name the manifests use for the service (ko builds it in Skaffold).
const IMAGE: &str = "greeter";
/// The tools the hooks call, built from this workspace.
const TOOLS: [&str; 3] = ["cov-signal", "cov-collect", "cov-report"];

/// One line per step, numbered, so a slow step is easy to spot.
pub(super) struct Steps {
    started: Instant,
    n: usize,
}

impl Steps {
    pub(super) fn say(&mut self, what: impl std::fmt::Display) {
        self.n += 1;
        println!(
            "demo [{:>4.1}s] {}. {what}",
            self.started.elapsed().as_secs_f64(),
            self.n
        );
    }
}

pub fn run(opts: Options) -> Result<()> {
    let mut steps = Steps {
        started: Instant::now(),
        n: 0,
    };
    let root = toolchain::workspace_root();
    let example = root.join(EXAMPLE);
    let work = match opts.work_dir {
        Some(dir) => dir,
        None => target_dir().join("demo"),
    };
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let work = work
        .canonicalize()
        .with_context(|| format!("resolving {}", work.display()))?;

    steps.say(
        "installing Go, kubectl and the test tools into .tools/ if missing (cargo xtask tools)",
    );
    crate::tools::install()?;

    steps.say(format!("building {} (cargo build)", TOOLS.join(", ")));
    let tool_dir = build_tools(&root)?;

    let project = work.join("greeter");
    steps.say(format!(
        "copying {EXAMPLE} to {} (Skaffold's working folder: the hooks run here)",
        project.display()
    ));
    if project.exists() {
        fs::remove_dir_all(&project)
            .with_context(|| format!("removing the previous run's {}", project.display()))?;
    }
    copy_tree(&example, &project)?;

    let binary = work.join("bin").join(IMAGE);
    steps.say(format!(
        "building the service: go build -cover -covermode=atomic -o {}",
        binary.display()
    ));
    let mut go = toolchain::go_command()?;
    go.args(["build", "-cover", "-covermode=atomic", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&project);
    run_cmd(&mut go, "go build -cover -covermode=atomic")?;

    let profile = if opts.dev {
        dev::PROFILE
    } else {
        opts.profile.as_str()
    };
    let skaffold_yaml = project.join("skaffold.yaml");
    let overlay = hooks::overlay(&skaffold_yaml, profile)?;

    // What ko builds with the profile's fromImage: the binary at
    // /ko-app/<name> on a distroless-like base (busybox at /busybox for
    // `:debug`, uid 65532 for `:nonroot`, nothing else for `static`).
    let from = hooks::from_image(&skaffold_yaml, profile)?;
    let flavour = if from.ends_with(":debug") {
        ocilayout::Flavour::Debug
    } else if from.ends_with(":nonroot") {
        ocilayout::Flavour::Nonroot
    } else {
        ocilayout::Flavour::Static
    };
    let image = work.join("images").join(IMAGE);
    steps.say(format!(
        "assembling the image as an OCI layout in {}: the service at /ko-app/{IMAGE} on a {from}-like base",
        image.display()
    ));
    let busybox = toolchain::busybox()?;
    ocilayout::go_image(
        flavour,
        &binary,
        &format!("/ko-app/{IMAGE}"),
        Some(&busybox),
    )
    .and_then(|i| i.write_layout(&image))
    .context("assembling the service's image")?;
    // What the tools' default --helper-image (busybox) would pull.
    let helper = work.join("images").join("busybox");
    ocilayout::Image::busybox(&busybox)
        .and_then(|i| i.write_layout(&helper))
        .context("assembling the busybox helper image")?;

    let manifests = work.join("manifests.yaml");
    steps.say(format!(
        "rendering {overlay} (profile {profile}) with kubectl kustomize into {}",
        manifests.display()
    ));
    render_overlay(&project.join(&overlay), &manifests)?;

    let run_id = new_run_id();
    steps.say(format!(
        "starting localkube with the rendered manifests (label skaffold.dev/run-id={run_id})"
    ));
    let mut cluster = cluster::Cluster::start(
        &work.join("localkube"),
        &manifests,
        IMAGE,
        &image,
        &helper,
        &run_id,
    )?;
    let pods: Vec<String> = cluster
        .pods()
        .iter()
        .map(|p| format!("{}/{} (podIP {})", p.namespace, p.name, p.ip))
        .collect();
    println!("         pods: {}", pods.join(", "));
    let services: Vec<String> = cluster
        .services()
        .iter()
        .map(|(ns, name)| format!("{ns}/{name}"))
        .collect();
    if !services.is_empty() {
        println!(
            "         services: {} (the integration test reaches them with kubectl port-forward)",
            services.join(", ")
        );
    }

    if opts.dev {
        dev::iterations(
            &mut steps,
            &mut cluster,
            &manifests,
            &project,
            &tool_dir,
            &run_id,
        )?;
    } else {
        let hooks = hooks::after_deploy(&project.join("skaffold.yaml"), profile)?;
        let env = hook_env(&cluster, &run_id, &project, &tool_dir)?;
        run_hooks(&mut steps, &hooks, &project, &env)?;
    }

    let helpers = cluster.helpers();
    if helpers.is_empty() {
        println!("         no helper containers: the tools exec'd in the service's container");
    } else {
        println!(
            "         helper containers the tools added (ephemeral, they stay until the pod is replaced): {}",
            helpers.join(", ")
        );
    }

    let reports = project.join("reports");
    steps.say(format!("reports are in {}", reports.display()));
    for line in describe_reports(&reports)? {
        println!("         {line}");
    }

    steps.say("stopping localkube");
    let stopped = cluster.stop()?;
    println!(
        "demo: done in {:.1}s; {stopped} pod processes stopped, none left running",
        steps.started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs host hooks in order as Skaffold does, numbered as steps.
pub(super) fn run_hooks(
    steps: &mut Steps,
    hooks: &[hooks::HostHook],
    project: &Path,
    env: &[(String, String)],
) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        if !hook.runs_here() {
            steps.say(format!(
                "skipping hook {}/{} `{}` (os: {})",
                i + 1,
                hooks.len(),
                hook.display(),
                hook.os.join(", ")
            ));
            continue;
        }
        steps.say(format!(
            "Skaffold hook {}/{}: {}",
            i + 1,
            hooks.len(),
            hook.display()
        ));
        hooks::run(hook, project, env)?;
    }
    Ok(())
}

/// Where cargo puts build output: `CARGO_TARGET_DIR`, else `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| toolchain::workspace_root().join("target"))
}

/// Builds the three tools (debug profile, the one `cargo xtask test` builds,
/// so a warm machine rebuilds nothing) and returns the folder holding them.
fn build_tools(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet"]).current_dir(root);
    // `cargo run` and `cargo test` hand their program per-crate variables
    // (CARGO_PKG_*, CARGO_MANIFEST_DIR, OUT_DIR, ...). Passed on, they can
    // change what build scripts and env! see, and rebuild half the tree.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        let per_crate = [
            "CARGO_PKG_",
            "CARGO_BIN_EXE_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ]
        .iter()
        .any(|prefix| key_text.starts_with(prefix));
        if per_crate {
            cmd.env_remove(&key);
        }
    }
    for tool in TOOLS {
        cmd.args(["-p", tool]);
    }
    run_cmd(&mut cmd, "cargo build of the tools")?;
    let first = toolchain::workspace_binary(TOOLS[0])?;
    Ok(first
        .parent()
        .context("a built binary has a parent folder")?
        .to_path_buf())
}

fn render_overlay(overlay: &Path, out: &Path) -> Result<()> {
    let kubectl = toolchain::kubectl()?;
    let output = Command::new(&kubectl)
        .arg("kustomize")
        .arg(overlay)
        .output()
        .with_context(|| format!("starting {}", kubectl.display()))?;
    if !output.status.success() {
        bail!(
            "kubectl kustomize {} failed ({}):\n{}",
            overlay.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    fs::write(out, &output.stdout).with_context(|| format!("writing {}", out.display()))
}

/// The environment Skaffold gives deploy host hooks, plus what makes the
/// hooks find this workspace's tools and the pods without a real cluster:
/// PATH (tools, Go, kubectl), KUBECONFIG (localkube's), the Go settings of
/// `.tools`. The integration test finds the service itself, with
/// `kubectl port-forward service/greeter`, as it does against a cluster.
pub(super) fn hook_env(
    cluster: &cluster::Cluster,
    run_id: &str,
    project: &Path,
    tool_dir: &Path,
) -> Result<Vec<(String, String)>> {
    let mut path = vec![tool_dir.to_path_buf(), toolchain::bin_dir()];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(path).context("joining PATH")?;

    let mut namespaces: Vec<&str> = cluster
        .pods()
        .iter()
        .map(|p| p.namespace.as_str())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();

    let mut env = vec![
        ("PATH".to_owned(), path.to_string_lossy().into_owned()),
        (
            "KUBECONFIG".to_owned(),
            cluster.kubeconfig().display().to_string(),
        ),
        ("SKAFFOLD_RUN_ID".to_owned(), run_id.to_owned()),
        (
            "SKAFFOLD_KUBE_CONTEXT".to_owned(),
            cluster.context().to_owned(),
        ),
        ("SKAFFOLD_NAMESPACES".to_owned(), namespaces.join(",")),
        (
            "SKAFFOLD_WORK_DIR".to_owned(),
            project.display().to_string(),
        ),
    ];
    // The same Go environment the tests use: private cache, no network.
    let go = toolchain::go_command()?;
    for (key, value) in go.get_envs() {
        if let Some(value) = value {
            env.push((
                key.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            ));
        }
    }
    Ok(env)
}

/// A fresh run id in the form Skaffold uses (a random UUID, version 4).
fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's random source per instance.
    let random = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        h.finish()
    };
    let (hi, lo) = (random(), random());
    let hi = (hi & !0xF000) | 0x4000; // version 4
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// Copies the example's source tree, leaving out reports of earlier runs.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "reports" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// One line per report file, and one per folder of Go coverage data (with
/// its file count) rather than a line per coverage file.
fn describe_reports(dir: &Path) -> Result<Vec<String>> {
    let base = dir.parent().unwrap_or(dir);
    let show = |p: &Path| p.strip_prefix(base).unwrap_or(p).display().to_string();
    let mut lines = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let (mut meta, mut counters) = (0, 0);
        for entry in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if path.is_dir() {
                todo.push(path);
            } else if name.starts_with("covmeta.") {
                meta += 1;
            } else if name.starts_with("covcounters.") {
                counters += 1;
            } else {
                lines.push(show(&path));
            }
        }
        if meta + counters > 0 {
            lines.push(format!(
                "{}/ ({meta} meta-data, {counters} counter files)",
                show(&d)
            ));
        }
    }
    lines.sort();
    Ok(lines)
}

//! The example's Skaffold wiring and the hook fragments, checked as data:
//! `skaffold.yaml` parses, its `coverage` profile builds with coverage and
//! runs the integration test and the three tools as `after` deploy hooks in
//! order, and the coverage overlay (rendered by real `kubectl kustomize`)
//! gives the container GOCOVERDIR on an emptyDir volume.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

fn example() -> PathBuf {
    toolchain::workspace_root().join("examples/go-integration-coverage")
}

// The parts of Skaffold's schema this project relies on; unknown fields
// are ignored, missing ones are errors.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    api_version: String,
    kind: String,
    build: Build,
    manifests: Manifests,
    deploy: Deploy,
    profiles: Vec<Profile>,
}

#[derive(Debug, Deserialize)]
struct Profile {
    name: String,
    build: Build,
    manifests: Manifests,
    deploy: Deploy,
}

#[derive(Debug, Deserialize)]
struct Build {
    artifacts: Vec<Artifact>,
}

#[derive(Debug, Deserialize)]
struct Artifact {
    image: String,
    ko: Ko,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ko {
    from_image: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Manifests {
    kustomize: Kustomize,
}

#[derive(Debug, Deserialize)]
struct Kustomize {
    paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Deploy {
    kubectl: Option<Deployer>,
    helm: Option<Deployer>,
}

#[derive(Debug, Deserialize)]
struct Deployer {
    hooks: Option<Hooks>,
}

#[derive(Debug, Deserialize)]
struct Hooks {
    after: Vec<HookItem>,
}

#[derive(Debug, Deserialize)]
struct HookItem {
    host: HostHook,
}

#[derive(Debug, Deserialize)]
struct HostHook {
    command: Vec<String>,
    os: Vec<String>,
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn skaffold() -> Config {
    read_yaml(&example().join("skaffold.yaml"))
}

/// Checks the hooks are host hooks for darwin and linux and that they run
/// the integration test, then cov-signal, cov-collect, cov-report.
fn assert_coverage_hooks(hooks: &Hooks, origin: &str) {
    for hook in &hooks.after {
        assert_eq!(
            hook.host.os,
            ["darwin", "linux"],
            "{origin}: hook {:?} must run on darwin and linux",
            hook.host.command
        );
    }
    let programs: Vec<&str> = hooks
        .after
        .iter()
        .map(|h| h.host.command[0].as_str())
        .collect();
    assert_eq!(
        programs,
        ["go", "cov-signal", "cov-collect", "cov-report"],
        "{origin}: after hooks in the wrong order or missing"
    );
    let test = &hooks.after[0].host.command;
    assert!(
        test.iter().any(|a| a == "test") && test.iter().any(|a| a.contains("integration")),
        "{origin}: the first hook must run the integration test, not {test:?}"
    );
}

#[test]
fn skaffold_yaml_is_current_schema() {
    let config = skaffold();
    assert_eq!(config.kind, "Config");
    let version = config
        .api_version
        .strip_prefix("skaffold/v4beta")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| {
            panic!(
                "apiVersion {:?} is not skaffold/v4betaN",
                config.api_version
            )
        });
    assert!(
        version >= 13,
        "apiVersion {} is older than skaffold/v4beta13",
        config.api_version
    );
}

/// The first Skaffold release that reads each schema the example may use
/// (v4beta13: GoogleContainerTools/skaffold#9741, released in v2.15.0).
const FIRST_RELEASE: &[(&str, (u32, u32, u32))] = &[("skaffold/v4beta13", (2, 15, 0))];

#[test]
fn example_readme_states_the_skaffold_release_its_schema_needs() {
    let config = skaffold();
    let (_, needed) = FIRST_RELEASE
        .iter()
        .find(|(schema, _)| *schema == config.api_version)
        .unwrap_or_else(|| {
            panic!(
                "add {} and the Skaffold release that first shipped it to FIRST_RELEASE",
                config.api_version
            )
        });
    let readme = std::fs::read_to_string(example().join("README.md")).expect("example README");
    let line = readme
        .lines()
        .find(|l| l.contains("[Skaffold](https://skaffold.dev) v"))
        .expect("the README names a minimum Skaffold version");
    let stated: Vec<u32> = line
        .split("https://skaffold.dev) v")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|v| v.split('.').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    let stated = (
        stated.first().copied().unwrap_or(0),
        stated.get(1).copied().unwrap_or(0),
        stated.get(2).copied().unwrap_or(0),
    );
    assert!(
        stated >= *needed,
        "the example README says Skaffold {stated:?} or newer, but {} first shipped in {needed:?}",
        config.api_version
    );
}

#[test]
fn base_config_builds_without_coverage_and_has_no_hooks() {
    let config = skaffold();
    assert_eq!(config.manifests.kustomize.paths, ["k8s/base"]);
    for artifact in &config.build.artifacts {
        assert!(
            !artifact.ko.flags.iter().any(|f| f.starts_with("-cover")),
            "the base build of {} must not use coverage flags",
            artifact.image
        );
    }
    let kubectl = config.deploy.kubectl.expect("base deploys with kubectl");
    assert!(
        kubectl.hooks.is_none(),
        "the base config runs no coverage hooks"
    );
}

#[test]
fn coverage_profile_builds_with_atomic_coverage_and_runs_the_tools_as_hooks() {
    let config = skaffold();
    let profile = config
        .profiles
        .iter()
        .find(|p| p.name == "coverage")
        .expect("a `coverage` profile");
    let [artifact] = profile.build.artifacts.as_slice() else {
        panic!("the coverage profile builds one artifact");
    };
    assert_eq!(artifact.image, "greeter");
    for flag in ["-cover", "-covermode=atomic"] {
        assert!(
            artifact.ko.flags.iter().any(|f| f == flag),
            "ko.flags lacks {flag}"
        );
    }
    let base = artifact
        .ko
        .from_image
        .as_deref()
        .expect("ko.fromImage is set");
    assert!(
        base.ends_with(":debug") || base.contains("busybox"),
        "base image {base} must carry kill and tar (a busybox-based image)"
    );
    assert_eq!(profile.manifests.kustomize.paths, ["k8s/overlays/coverage"]);
    let hooks = profile
        .deploy
        .kubectl
        .as_ref()
        .and_then(|k| k.hooks.as_ref())
        .expect("deploy.kubectl.hooks in the coverage profile");
    assert_coverage_hooks(hooks, "skaffold.yaml profile coverage");
}

#[test]
fn hook_fragments_parse_and_name_the_tools() {
    let hooks_dir = toolchain::workspace_root().join("hooks");
    let kubectl: Deploy = read_yaml(&hooks_dir.join("kubectl-deployer.yaml"));
    let helm: Deploy = read_yaml(&hooks_dir.join("helm-deployer.yaml"));
    assert_coverage_hooks(
        kubectl
            .kubectl
            .and_then(|k| k.hooks)
            .as_ref()
            .expect("kubectl.hooks"),
        "hooks/kubectl-deployer.yaml",
    );
    assert_coverage_hooks(
        helm.helm
            .and_then(|k| k.hooks)
            .as_ref()
            .expect("helm.hooks"),
        "hooks/helm-deployer.yaml",
    );
}

/// The rendered overlay, as generic YAML documents.
fn kustomize(path: &str) -> Vec<serde_json::Value> {
    let kubectl = toolchain::require_kubectl();
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(example().join(path))
        .output()
        .expect("running kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_slice_multiple(&out.stdout).expect("kustomize output is YAML")
}

fn deployment(docs: &[serde_json::Value]) -> &serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment")
}

#[test]
fn coverage_overlay_mounts_an_empty_dir_at_gocoverdir() {
    let docs = kustomize("k8s/overlays/coverage");
    assert!(
        docs.iter().any(|d| d["kind"] == "Service"),
        "the Service is kept"
    );
    let deploy = deployment(&docs);
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    let app = pod["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "app"))
        .expect("container `app`");
    let gocoverdir = app["env"]
        .as_array()
        .and_then(|env| env.iter().find(|e| e["name"] == "GOCOVERDIR"))
        .and_then(|e| e["value"].as_str())
        .expect("GOCOVERDIR in app's env");
    let mount = app["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == gocoverdir))
        .expect("a volume mounted at GOCOVERDIR");
    let volume = pod["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == mount["name"]))
        .expect("the mounted volume is declared");
    assert!(
        volume.get("emptyDir").is_some(),
        "{volume:?} is not an emptyDir"
    );
}

#[test]
fn base_has_no_coverage_settings() {
    let docs = kustomize("k8s/base");
    let text = serde_json::to_string(deployment(&docs)).expect("YAML");
    assert!(
        !text.contains("GOCOVERDIR"),
        "the base must not set GOCOVERDIR"
    );
}

#[test]
fn coverage_overlay_holds_a_deleted_pod_with_a_native_sleep_and_leaves_time_to_flush() {
    let docs = kustomize("k8s/overlays/coverage");
    let pod = &deployment(&docs)["spec"]["template"]["spec"];
    let app = pod["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "app"))
        .expect("container `app`");
    let pre_stop = &app["lifecycle"]["preStop"];
    // The sleep action (Kubernetes 1.30+), not exec: distroless images have no shell.
    assert!(pre_stop.get("exec").is_none(), "{pre_stop:?}");
    let sleep = pre_stop["sleep"]["seconds"]
        .as_i64()
        .expect("lifecycle.preStop.sleep.seconds");
    assert!(sleep >= 3, "too short for cov-collect --follow: {sleep}s");
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    // main.go drains for up to 5 s after SIGTERM, then flushes.
    assert!(grace >= sleep + 5 + 5, "grace {grace}s vs preStop {sleep}s");
}

#[test]
fn distroless_profile_ships_the_nonroot_image_with_the_same_hooks() {
    let config = skaffold();
    let find = |name: &str| {
        config
            .profiles
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("a `{name}` profile"))
    };
    let (coverage, distroless) = (find("coverage"), find("coverage-distroless"));
    let [artifact] = distroless.build.artifacts.as_slice() else {
        panic!("the coverage-distroless profile builds one artifact");
    };
    assert_eq!(
        artifact.ko.from_image.as_deref(),
        Some("gcr.io/distroless/static-debian12:nonroot")
    );
    assert_eq!(
        artifact.ko.flags, coverage.build.artifacts[0].ko.flags,
        "the same coverage build flags"
    );
    let hooks = |p: &Profile| {
        p.deploy
            .kubectl
            .as_ref()
            .and_then(|k| k.hooks.as_ref())
            .map(|h| {
                h.after
                    .iter()
                    .map(|i| i.host.command.clone())
                    .collect::<Vec<_>>()
            })
            .expect("hooks")
    };
    assert_eq!(
        hooks(distroless),
        hooks(coverage),
        "the hooks are unchanged"
    );
    assert_eq!(
        distroless.manifests.kustomize.paths,
        ["k8s/overlays/coverage-distroless"]
    );
    // The overlay keeps GOCOVERDIR on its emptyDir and states the image's uid,
    // which the helper container copies.
    let docs = kustomize("k8s/overlays/coverage-distroless");
    let pod = &deployment(&docs)["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let app = pod["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "app"))
        .expect("container `app`");
    assert!(
        app["env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["name"] == "GOCOVERDIR"))
    );
}

#[test]
fn dev_profile_follows_the_pods_across_redeploys() {
    let text = std::fs::read_to_string(example().join("skaffold.yaml")).expect("skaffold.yaml");
    let config: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
    let dev = config["profiles"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "dev"))
        .expect("a dev profile");
    assert_eq!(
        dev["manifests"]["kustomize"]["paths"][0], "k8s/overlays/coverage",
        "the dev profile deploys the overlay with the preStop hold"
    );
    let fragment: serde_json::Value =
        read_yaml(&toolchain::workspace_root().join("hooks/kubectl-dev.yaml"));
    for (hooks, origin) in [
        (
            &dev["deploy"]["kubectl"]["hooks"],
            "skaffold.yaml profile dev",
        ),
        (&fragment["kubectl"]["hooks"], "hooks/kubectl-dev.yaml"),
    ] {
        let command = |h: &serde_json::Value| -> Vec<String> {
            h["host"]["command"]
                .as_array()
                .expect("a host command")
                .iter()
                .map(|a| a.as_str().expect("a string").to_string())
                .collect()
        };
        let before: Vec<Vec<String>> = hooks["before"]
            .as_array()
            .expect("before hooks")
            .iter()
            .map(command)
            .collect();
        let after: Vec<Vec<String>> = hooks["after"]
            .as_array()
            .expect("after hooks")
            .iter()
            .map(command)
            .collect();
        assert_eq!(before.len(), 1, "{origin}");
        let start = &before[0];
        assert_eq!(start[0], "cov-collect", "{origin}");
        for flag in ["--follow", "--detach", "--pid-file"] {
            assert!(
                start.iter().any(|a| a == flag),
                "{origin}: {start:?} lacks {flag}"
            );
        }
        let pid_file = &start[start.iter().position(|a| a == "--pid-file").unwrap() + 1];
        let programs: Vec<&str> = after.iter().map(|c| c[0].as_str()).collect();
        assert_eq!(programs, ["go", "cov-collect", "cov-report"], "{origin}");
        assert_eq!(
            after[1][1..],
            ["--stop".to_string(), "--pid-file".into(), pid_file.clone()],
            "{origin}"
        );
    }
}

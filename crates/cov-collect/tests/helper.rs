//! `--via helper|auto` on the images Go services ship: a helper (ephemeral)
//! container does the signal and the copy for a service on distroless
//! `static` (no shell, root), `static:nonroot` (no shell, uid 65532) and under
//! a restricted security context, against localkube and the real example
//! service, through the real binaries. One helper per pod, reused by later runs
//! and by both tools; the shared process namespace; `subPath` read through
//! `/proc/<pid>/root`; `auto` picking exec or a helper; and each error a user
//! can meet (disabled, RBAC, admission, image pull, a helper that exited).
//!
//! What is collected is checked against the files themselves: the same files,
//! and `go tool covdata percent` on them prints what it prints on the pod's
//! volume.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ocilayout::Flavour;

/// The helper image the tests map (the default `--helper-image`).
const HELPER_IMAGE: &str = "docker.io/library/busybox";
/// The service on distroless `static` (no shell, root).
const STATIC: &str = "example/greeter-static";
/// The service on distroless `static:nonroot` (no shell, 65532).
const NONROOT: &str = "example/greeter-nonroot";

/// A busybox image, as the default helper image (busybox) is, written once per test binary.
fn busybox_image() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cov-helper-image-{}", std::process::id()));
    if !dir.join("index.json").exists() {
        let busybox = toolchain::busybox().unwrap_or_else(|e| panic!("{e}"));
        let tmp = dir.with_extension(format!("{:?}", std::thread::current().id()));
        ocilayout::Image::busybox(&busybox)
            .and_then(|i| i.write_layout(&tmp))
            .expect("writing the helper image");
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    dir
}

/// The helper image and the no-shell images of the service.
fn images(b: localkube::LocalKubeBuilder) -> localkube::LocalKubeBuilder {
    b.image(HELPER_IMAGE, busybox_image())
        .image(STATIC, go_image(Flavour::Static, "atomic"))
        .image(NONROOT, go_image(Flavour::Nonroot, "atomic"))
}

/// Test manifest `name` with the service's image replaced by `image`, written to `dir`.
fn on_image(dir: &Path, name: &str, image: &str) -> PathBuf {
    let text = std::fs::read_to_string(manifest(name)).expect("test manifest");
    let out = dir.join(format!("{image}-{name}").replace('/', "_"));
    std::fs::write(
        &out,
        text.replace("image: example/greeter\n", &format!("image: {image}\n")),
    )
    .expect("writing a manifest");
    out
}

/// Names of the ephemeral containers of each run pod in `namespace`.
fn ephemeral(cluster: &Cluster, namespace: &str) -> Vec<Vec<String>> {
    cluster
        .run_pods()
        .into_iter()
        .filter(|p| p.namespace == namespace)
        .map(|p| {
            p.ephemeral_containers
                .iter()
                .map(|c| c.name.clone())
                .collect()
        })
        .collect()
}

/// The result for container `app` of the (only) pod in `namespace`.
fn app_result<'a>(json: &'a serde_json::Value, namespace: &str) -> &'a serde_json::Value {
    json["results"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["container"] == "app" && r["namespace"] == namespace)
        })
        .unwrap_or_else(|| panic!("no app result in {namespace}: {json}"))
}

fn message(json: &serde_json::Value, namespace: &str) -> String {
    app_result(json, namespace)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Run `tool` with `--output json`: exit code, report, stderr.
fn run3(cluster: &Cluster, tool: &'static str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = cluster.run(tool, &all, &[]);
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What cov-collect brought home for the pods of `namespace` under `out` is
/// what their coverage volume holds: the same files, byte for byte, and the
/// same `go tool covdata percent`; and cov-report agrees with Go on it. Only
/// the pods labelled `app=<app>` when `app` is given.
fn collected_is_the_volume(cluster: &Cluster, out: &Path, namespace: &str, app: Option<&str>) {
    let pods: Vec<_> = cluster
        .run_pods()
        .into_iter()
        .filter(|p| {
            p.namespace == namespace
                && app.is_none_or(|a| p.labels.get("app").map(String::as_str) == Some(a))
        })
        .collect();
    assert!(!pods.is_empty(), "no pods in {namespace}");
    let (mut local_dirs, mut volume_dirs) = (Vec::new(), Vec::new());
    for p in &pods {
        let local = out.join(&p.namespace).join(&p.name).join("app");
        let volume = p
            .volumes
            .values()
            .find(|v| !files(v).is_empty() || v.join("coverage").is_dir())
            .map(|v| {
                // greeter-subpath mounts the `coverage` folder of its volume.
                if v.join("coverage").is_dir() {
                    v.join("coverage")
                } else {
                    v.clone()
                }
            })
            .unwrap_or_else(|| panic!("no coverage volume in {}/{}", p.namespace, p.name));
        assert!(
            !files(&volume).is_empty(),
            "no coverage files in {}",
            volume.display()
        );
        assert_eq!(files(&local), files(&volume), "{}/{}", p.namespace, p.name);
        for n in files(&volume) {
            assert_eq!(
                std::fs::read(local.join(&n)).ok(),
                std::fs::read(volume.join(&n)).ok(),
                "{n}"
            );
        }
        local_dirs.push(local);
        volume_dirs.push(volume);
    }
    assert_eq!(
        covdata("percent", &local_dirs, &[]),
        covdata("percent", &volume_dirs, &[]),
        "go tool covdata percent: collected (left) vs the pods' volumes (right)"
    );
    if app.is_none() {
        percent_matches_go(&out.join(namespace));
    }
}

/// Host uid of a process (`/proc/<pid>/status`).
fn uid_of(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .expect("Uid line")
}

#[test]
fn auto_takes_exec_for_busybox_and_a_helper_for_a_no_shell_image_then_reuses_it() {
    let files = tempfile::tempdir().expect("tmp");
    let cluster = start_with(
        &[
            (
                on_image(files.path(), "greeter.yaml", STATIC),
                Some("static"),
                vec![],
            ),
            (
                on_image(files.path(), "greeter-with-sidecar.yaml", STATIC),
                Some("static2"),
                vec![],
            ),
            (manifest("greeter.yaml"), Some("debug"), vec![]),
        ],
        images,
    );
    traffic(&cluster, &["/greet?name=Ada", "/sum?a=1&b=2"]);
    let out = cluster.dir.path().join("out");
    let out_s = out.to_str().expect("utf8");

    // --via exec on the no-shell image: a clear error naming the missing program.
    let (code, json, _) = run3(
        &cluster,
        "cov-signal",
        &["--run-id", RUN_ID, "-n", "static", "--via", "exec"],
    );
    assert_eq!(code, 1, "{json}");
    let msg = message(&json, "static");
    // (cov-signal lists the folder before it signals: `ls` is the first program it misses.)
    assert!(
        (msg.contains("`ls` is not in the container image")
            || msg.contains("`kill` is not in the container image"))
            && msg.contains("--via auto"),
        "{msg}"
    );
    let (code, json, _) = run3(
        &cluster,
        "cov-collect",
        &[
            "--run-id", RUN_ID, "-n", "static", "--via", "exec", "--out", out_s,
        ],
    );
    assert_eq!(code, 1, "{json}");
    let msg = message(&json, "static");
    assert!(
        msg.contains("`tar` is not in the container image") && msg.contains("--via auto"),
        "{msg}"
    );
    assert_eq!(ephemeral(&cluster, "static"), [Vec::<String>::new()]);

    // auto (the default): exec in the busybox image, a helper for the no-shell
    // ones, said once per pod when first found (greeter-with-sidecar: two pods, each with two
    // containers of which `app` has coverage).
    let no_shell_pods: Vec<String> = cluster
        .run_pods()
        .into_iter()
        .filter(|p| p.namespace.starts_with("static"))
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    assert_eq!(no_shell_pods.len(), 3, "{no_shell_pods:?}");
    // The switch is told once per pod by the run that finds exec lacking;
    // later runs see the running helper in the listing and go straight to it.
    let told = |stderr: &str, tool: &str, switched: bool| {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("lacks the programs exec needs"))
            .collect();
        if !switched {
            assert!(lines.is_empty(), "{tool}: {lines:?}");
            return;
        }
        for pod in &no_shell_pods {
            assert_eq!(
                lines
                    .iter()
                    .filter(|l| l.contains(&format!("pod {pod}:")))
                    .count(),
                1,
                "{tool} tells once for {pod}: {lines:?}"
            );
        }
        assert_eq!(lines.len(), no_shell_pods.len(), "{lines:?}");
        assert!(lines[0].starts_with(&format!("{tool}: pod ")), "{lines:?}");
    };
    for round in 1..=2 {
        let (code, json, stderr) = run3(&cluster, "cov-signal", &["--run-id", RUN_ID]);
        assert_eq!(code, 0, "{json}");
        told(&stderr, "cov-signal", round == 1);
        let msg = message(&json, "debug");
        assert!(!msg.contains("helper"), "{msg}");
        let msg = message(&json, "static");
        let added = if round == 1 { ", added" } else { "" };
        assert!(
            msg.ends_with(&format!("(via helper container cov-helper{added})")),
            "{msg}"
        );
        assert_eq!(app_result(&json, "static")["details"]["confirmed"], true);

        let (code, json, stderr) = run3(
            &cluster,
            "cov-collect",
            &["--run-id", RUN_ID, "--out", out_s],
        );
        assert_eq!(code, 0, "{json}");
        told(&stderr, "cov-collect", false);
        assert!(!message(&json, "debug").contains("helper"));
        let msg = message(&json, "static");
        assert!(msg.ends_with("(via helper container cov-helper)"), "{msg}");
        for ns in ["static", "static2", "debug"] {
            collected_is_the_volume(&cluster, &out, ns, None);
        }
        // One helper per pod, whatever the number of runs and tools; none where exec works.
        assert_eq!(ephemeral(&cluster, "static"), [["cov-helper"]]);
        assert_eq!(
            ephemeral(&cluster, "static2"),
            [["cov-helper"], ["cov-helper"]]
        );
        assert_eq!(ephemeral(&cluster, "debug"), [Vec::<String>::new()]);
        traffic(&cluster, &["/greet?name=Bob"]);
    }
}

#[test]
fn nonroot_image_with_and_without_a_restricted_security_context_through_a_helper() {
    let files = tempfile::tempdir().expect("tmp");
    let cluster = start_with(
        &[
            (
                on_image(files.path(), "greeter-restricted.yaml", NONROOT),
                Some("locked"),
                vec![],
            ),
            (
                on_image(files.path(), "greeter.yaml", STATIC),
                Some("locked"),
                vec![],
            ),
            (
                on_image(files.path(), "greeter.yaml", NONROOT),
                Some("plain"),
                vec![],
            ),
        ],
        |b| images(b).pod_security_restricted("locked"),
    );
    traffic(&cluster, &["/greet?name=Ada"]);
    let restricted = cluster
        .run_pods()
        .into_iter()
        .find(|p| p.labels.get("app").map(String::as_str) == Some("greeter-restricted"))
        .expect("the restricted pod");
    let service_pid = restricted.containers[0].pid.expect("service running");
    assert_eq!(
        uid_of(service_pid),
        65532,
        "the service runs as distroless nonroot"
    );

    // The helper copies runAsNonRoot and the uid: admitted, and as the same
    // user it may signal the service and read its files (no capabilities).
    let select = [
        "--run-id",
        RUN_ID,
        "-n",
        "locked",
        "-l",
        "app=greeter-restricted",
    ];
    let out = cluster.dir.path().join("out");
    for round in 1..=2 {
        let (code, json, _) = run3(&cluster, "cov-signal", &select);
        assert_eq!(code, 0, "{json}");
        assert!(message(&json, "locked").contains("(via helper container cov-helper"));
        assert_eq!(app_result(&json, "locked")["details"]["confirmed"], true);
        let mut args = select.to_vec();
        args.extend(["--out", out.to_str().expect("utf8")]);
        let (code, json, _) = run3(&cluster, "cov-collect", &args);
        assert_eq!(code, 0, "{json}");
        collected_is_the_volume(&cluster, &out, "locked", Some("greeter-restricted"));
        let pod = cluster
            .run_pods()
            .into_iter()
            .find(|p| p.name == restricted.name)
            .expect("pod");
        let helpers = &pod.ephemeral_containers;
        assert_eq!(helpers.len(), 1, "round {round}: {helpers:?}");
        assert_eq!(uid_of(helpers[0].pid.expect("helper running")), 65532);
        traffic(&cluster, &["/greet?name=Bob"]);
    }

    // The nonroot image with no securityContext (the uid only in the image):
    // the helper runs as its own image's root, with the runtime's default
    // capabilities as the service has; CAP_KILL lets it signal uid 65532.
    let (code, json, _) = run3(&cluster, "cov-signal", &["--run-id", RUN_ID, "-n", "plain"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(app_result(&json, "plain")["details"]["confirmed"], true);
    let (code, json, _) = run3(
        &cluster,
        "cov-collect",
        &[
            "--run-id",
            RUN_ID,
            "-n",
            "plain",
            "--out",
            out.to_str().expect("utf8"),
        ],
    );
    assert_eq!(code, 0, "{json}");
    assert!(message(&json, "plain").ends_with("(via helper container cov-helper)"));
    collected_is_the_volume(&cluster, &out, "plain", None);
    let pod = cluster
        .run_pods()
        .into_iter()
        .find(|p| p.namespace == "plain")
        .expect("pod");
    assert_eq!(uid_of(pod.containers[0].pid.expect("service")), 65532);
    assert_eq!(uid_of(pod.ephemeral_containers[0].pid.expect("helper")), 0);

    // A pod that is not runAsNonRoot: Pod Security refuses its helper, and the message says so.
    let (code, json, _) = run3(
        &cluster,
        "cov-signal",
        &["--run-id", RUN_ID, "-n", "locked", "-l", "app=greeter-solo"],
    );
    assert_eq!(code, 1, "{json}");
    let msg = message(&json, "locked");
    assert!(
        msg.contains("the cluster's admission refused the helper container")
            && msg.contains("violates PodSecurity \"restricted:latest\": ")
            && msg.contains("runAsNonRoot != true")
            && msg.contains("Allow it in the policy"),
        "{msg}"
    );
}

#[test]
fn shared_process_namespace_and_sub_path_through_a_helper() {
    let files = tempfile::tempdir().expect("tmp");
    let cluster = start_with(
        &[
            (
                on_image(files.path(), "greeter-shared-pid.yaml", STATIC),
                Some("shared"),
                vec![],
            ),
            (
                on_image(files.path(), "greeter-subpath.yaml", STATIC),
                Some("subpath"),
                vec![],
            ),
        ],
        images,
    );
    traffic(&cluster, &["/greet?name=Ada", "/sum?a=1&b=2"]);

    // Shared: PID 1 is the pause process; the service is found from the helper.
    let (code, json, _) = run3(
        &cluster,
        "cov-signal",
        &["--run-id", RUN_ID, "-n", "shared", "--via", "helper"],
    );
    assert_eq!(code, 0, "{json}");
    let app = app_result(&json, "shared");
    assert_eq!(app["details"]["pid_detected"], true, "{app}");
    assert_eq!(app["details"]["confirmed"], true, "{app}");
    let out = cluster.dir.path().join("out");
    let out_s = out.to_str().expect("utf8");
    let (code, json, _) = run3(
        &cluster,
        "cov-collect",
        &[
            "--run-id", RUN_ID, "-n", "shared", "--via", "helper", "--out", out_s,
        ],
    );
    assert_eq!(code, 0, "{json}");
    collected_is_the_volume(&cluster, &out, "shared", None);
    assert_eq!(ephemeral(&cluster, "shared"), [["cov-helper"]]);

    // subPath: no mount in the helper; the folder is read through PID 1's root.
    let (code, json, _) = run3(
        &cluster,
        "cov-signal",
        &["--run-id", RUN_ID, "-n", "subpath", "--via", "helper"],
    );
    assert_eq!(code, 0, "{json}");
    let app = app_result(&json, "subpath");
    assert_eq!(app["details"]["dir"], "/proc/1/root/coverage-data", "{app}");
    assert_eq!(app["details"]["confirmed"], true, "{app}");
    let (code, json, _) = run3(
        &cluster,
        "cov-collect",
        &[
            "--run-id", RUN_ID, "-n", "subpath", "--via", "helper", "--out", out_s,
        ],
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        app_result(&json, "subpath")["details"]["remote_dir"],
        "/proc/1/root/coverage-data"
    );
    collected_is_the_volume(&cluster, &out, "subpath", None);
}

/// `hooks/rbac/namespace.yaml` for `namespace`, without its ephemeral-containers rule when `helper_rule` is false.
fn hooks_role(namespace: &str, helper_rule: bool) -> String {
    let text =
        std::fs::read_to_string(toolchain::workspace_root().join("hooks/rbac/namespace.yaml"))
            .expect("hooks/rbac/namespace.yaml");
    let text = text.replace("NAMESPACE", namespace);
    if helper_rule {
        return text;
    }
    let start = text
        .find("  # Only for the helper container")
        .expect("the helper rule's comment in hooks/rbac/namespace.yaml");
    let end = text.find("\n---").expect("the RoleBinding document");
    format!("{}{}", &text[..start], &text[end + 1..])
}

/// The cluster's kubeconfig with `token` in place of the admin's.
fn kubeconfig_for(cluster: &Cluster, token: &str) -> PathBuf {
    let text = std::fs::read_to_string(cluster.kube.kubeconfig()).expect("kubeconfig");
    assert!(text.contains(cluster.kube.token()));
    let path = cluster.dir.path().join(format!("{token}.kubeconfig"));
    std::fs::write(&path, text.replace(cluster.kube.token(), token)).expect("kubeconfig");
    path
}

#[test]
fn helper_errors_say_what_to_do() {
    let files = tempfile::tempdir().expect("tmp");
    let roles = files.path().join("roles.yaml");
    std::fs::write(
        &roles,
        format!(
            "{}\n---\n{}",
            hooks_role("team-a", true),
            hooks_role("team-b", false)
        ),
    )
    .expect("roles");
    // A helper image without `sleep` (a layer deletes it), so its idle command cannot run.
    let no_sleep = files.path().join("no-sleep");
    ocilayout::Image::busybox(&toolchain::busybox().unwrap_or_else(|e| panic!("{e}")))
        .map(|i| i.new_layer().whiteout("/busybox/sleep"))
        .and_then(|i| i.write_layout(&no_sleep))
        .expect("the helper image without sleep");
    let cluster = start_with(
        &[
            (
                on_image(files.path(), "greeter.yaml", STATIC),
                Some("team-a"),
                vec![],
            ),
            (
                on_image(files.path(), "greeter.yaml", STATIC),
                Some("team-b"),
                vec![],
            ),
            (
                on_image(files.path(), "greeter.yaml", STATIC),
                Some("pull"),
                vec![],
            ),
            (
                on_image(files.path(), "greeter.yaml", STATIC),
                Some("exits"),
                vec![],
            ),
        ],
        |b| images(b).rbac(&roles).image("example/no-sleep", &no_sleep),
    );
    for ns in ["team-a", "team-b"] {
        cluster.kube.add_token(
            &format!("{ns}-token"),
            localkube::UserInfo::new(
                format!("system:serviceaccount:{ns}:coverage-tools"),
                &["system:serviceaccounts"],
            ),
        );
    }
    let out = cluster.dir.path().join("out");
    let out_s = out.to_str().expect("utf8");
    let as_user = |ns: &str, tool: &'static str, args: &[&str]| {
        let kubeconfig = kubeconfig_for(&cluster, &format!("{ns}-token"));
        let mut all = vec!["--run-id", RUN_ID, "-n", ns, "--output", "json"];
        all.extend(args);
        if tool == "cov-collect" {
            all.extend(["--out", out_s]);
        }
        let out = cluster.run_with_kubeconfig(&kubeconfig, tool, &all, &[]);
        (
            out.status.code().unwrap_or(-1),
            serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .unwrap_or(serde_json::Value::Null),
        )
    };

    // The role hooks/rbac/ ships is enough for the helper path.
    traffic(&cluster, &["/greet?name=Ada"]);
    let (code, json) = as_user("team-a", "cov-signal", &[]);
    assert_eq!(code, 0, "{json}");
    assert!(message(&json, "team-a").contains("(via helper container cov-helper, added)"));
    let (code, json) = as_user("team-a", "cov-collect", &[]);
    assert_eq!(code, 0, "{json}");
    collected_is_the_volume(&cluster, &out, "team-a", None);

    // RBAC: the same role without `patch` on pods/ephemeralcontainers.
    for tool in ["cov-signal", "cov-collect"] {
        let (code, json) = as_user("team-b", tool, &[]);
        assert_eq!(code, 1, "{json}");
        let msg = message(&json, "team-b");
        assert!(
            msg.contains("not allowed to add a helper container")
                && msg.contains(r#"cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace "team-b""#)
                && msg.contains("Grant `patch` on `pods/ephemeralcontainers` (see hooks/rbac/)"),
            "{tool}: {msg}"
        );
    }
    assert_eq!(ephemeral(&cluster, "team-b"), [Vec::<String>::new()]);

    // An image the cluster cannot pull.
    let (code, json, _) = run3(
        &cluster,
        "cov-collect",
        &[
            "--run-id",
            RUN_ID,
            "-n",
            "pull",
            "--helper-image",
            "registry.invalid/busybox:1",
            "--out",
            out_s,
        ],
    );
    assert_eq!(code, 1, "{json}");
    let msg = message(&json, "pull");
    assert!(
        msg.contains("the helper image registry.invalid/busybox:1 cannot be pulled (ErrImagePull")
            || msg.contains(
                "the helper image registry.invalid/busybox:1 cannot be pulled (ImagePullBackOff"
            ),
        "{msg}"
    );
    assert!(
        msg.contains("pass --helper-image with an image the cluster can pull"),
        "{msg}"
    );

    // A helper whose idle command cannot run: it ends at once, and cannot be restarted.
    for tool in ["cov-signal", "cov-collect"] {
        let mut args = vec![
            "--run-id",
            RUN_ID,
            "-n",
            "exits",
            "--helper-image",
            "example/no-sleep",
        ];
        if tool == "cov-collect" {
            args.extend(["--out", out_s]);
        }
        let (code, json, _) = run3(&cluster, tool, &args);
        assert_eq!(code, 1, "{json}");
        let msg = message(&json, "exits");
        assert!(
            msg.contains("the helper container cov-helper exited (StartError, exit code 128")
                && msg.contains("replace the pod (e.g. kubectl delete pod) or use --via exec"),
            "{tool}: {msg}"
        );
    }
    assert_eq!(ephemeral(&cluster, "exits"), [["cov-helper"]]);
}

#[test]
fn disabled_ephemeral_containers_say_what_to_do() {
    let files = tempfile::tempdir().expect("tmp");
    let cluster = start_with(
        &[(
            on_image(files.path(), "greeter.yaml", STATIC),
            Some("solo"),
            vec![],
        )],
        |b| images(b).ephemeral_containers(false),
    );
    for tool in ["cov-signal", "cov-collect"] {
        let out = cluster.dir.path().join("out");
        let mut args = vec!["--run-id", RUN_ID];
        if tool == "cov-collect" {
            args.extend(["--out", out.to_str().expect("utf8")]);
        }
        let (code, json, _) = run3(&cluster, tool, &args);
        assert_eq!(code, 1, "{json}");
        let msg = message(&json, "solo");
        assert!(
            msg.contains("ephemeral containers are disabled in this cluster")
                && msg.contains("HTTP 404")
                && msg.contains("--via exec"),
            "{tool}: {msg}"
        );
    }
}

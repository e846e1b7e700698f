//! `--via helper|auto`: a helper (ephemeral) container does the signal and the
//! copy, against localkube and the real example service. One helper per pod,
//! reused by later runs and by both tools; the shared process namespace;
//! `subPath` read through `/proc/<pid>/root`; a restricted security context;
//! and each error a user can meet (disabled, admission, image pull).

mod common;

use common::*;

/// The helper image the tests map (the default `--helper-image`).
const HELPER_IMAGE: &str = "docker.io/library/busybox";

fn with_helper_image(b: localkube::LocalKubeBuilder) -> localkube::LocalKubeBuilder {
    // A busybox image, as the default helper image (busybox) is.
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
    b.image(HELPER_IMAGE, dir)
}

/// The ephemeral containers of the run's pods in `namespace`.
fn ephemeral(cluster: &Cluster, namespace: &str) -> Vec<(String, Vec<String>)> {
    cluster
        .run_pods()
        .into_iter()
        .filter(|p| p.namespace == namespace)
        .map(|p| {
            (
                p.name.clone(),
                p.ephemeral_containers
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
            )
        })
        .collect()
}

fn app_result(json: &serde_json::Value) -> &serde_json::Value {
    json["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["container"] == "app"))
        .unwrap_or_else(|| panic!("no app result in {json}"))
}

#[test]
fn helper_signals_and_collects_then_is_reused() {
    let cluster = start_with(
        &[(manifest("greeter.yaml"), Some("solo"), vec![])],
        with_helper_image,
    );
    traffic(&cluster, &["/greet?name=Ada", "/sum?a=1&b=2"]);
    let args = ["--run-id", RUN_ID, "-n", "solo", "--via", "helper"];
    let (code, json) = cluster.run_json("cov-signal", &args);
    assert_eq!(code, 0, "{json}");
    let app = app_result(&json);
    assert_eq!(app["state"], "ok", "{app}");
    let msg = app["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("(via helper container cov-helper, added)"),
        "{msg}"
    );
    assert_eq!(app["details"]["confirmed"], true);
    assert_eq!(ephemeral(&cluster, "solo")[0].1, ["cov-helper"]);

    let out = cluster.dir.path().join("out");
    let mut collect_args = args.to_vec();
    collect_args.extend(["--out", out.to_str().expect("utf8")]);
    let (code, json) = cluster.run_json("cov-collect", &collect_args);
    assert_eq!(code, 0, "{json}");
    let app = app_result(&json);
    let msg = app["message"].as_str().unwrap_or_default();
    assert!(msg.ends_with("(via helper container cov-helper)"), "{msg}");
    percent_matches_go(&out);

    // A second run of both tools: the same helper, still one ephemeral container.
    traffic(&cluster, &["/greet?name=Bob"]);
    let (code, json) = cluster.run_json("cov-signal", &args);
    assert_eq!(code, 0, "{json}");
    let (code, json2) = cluster.run_json("cov-collect", &collect_args);
    assert_eq!(code, 0, "{json2}");
    for j in [&json, &json2] {
        let msg = app_result(j)["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(msg.ends_with("(via helper container cov-helper)"), "{msg}");
    }
    assert_eq!(ephemeral(&cluster, "solo")[0].1, ["cov-helper"]);
    percent_matches_go(&out);
}

#[test]
fn auto_uses_exec_when_the_image_has_the_tools() {
    let cluster = start_with(
        &[(manifest("greeter.yaml"), Some("solo"), vec![])],
        with_helper_image,
    );
    traffic(&cluster, &["/greet?name=Ada"]);
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID]);
    assert_eq!(code, 0, "{json}");
    let msg = app_result(&json)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!msg.contains("helper"), "{msg}");
    assert!(ephemeral(&cluster, "solo")[0].1.is_empty());
}

#[test]
fn shared_process_namespace_and_sub_path_through_a_helper() {
    let cluster = start_with(
        &[
            (manifest("greeter-shared-pid.yaml"), Some("shared"), vec![]),
            (manifest("greeter-subpath.yaml"), Some("subpath"), vec![]),
        ],
        with_helper_image,
    );
    traffic(&cluster, &["/greet?name=Ada", "/sum?a=1&b=2"]);

    // Shared: the service is found behind the pause process, from the helper.
    let (code, json) = cluster.run_json(
        "cov-signal",
        &["--run-id", RUN_ID, "-n", "shared", "--via", "helper"],
    );
    assert_eq!(code, 0, "{json}");
    let app = app_result(&json);
    assert_eq!(app["details"]["pid_detected"], true, "{app}");
    let out = cluster.dir.path().join("out-shared");
    let (code, json) = cluster.run_json(
        "cov-collect",
        &[
            "--run-id",
            RUN_ID,
            "-n",
            "shared",
            "--via",
            "helper",
            "--out",
            out.to_str().expect("utf8"),
        ],
    );
    assert_eq!(code, 0, "{json}");
    percent_matches_go(&out);
    assert_eq!(ephemeral(&cluster, "shared")[0].1, ["cov-helper"]);

    // subPath: no mount in the helper; the folder is read through PID 1's root.
    let (code, json) = cluster.run_json(
        "cov-signal",
        &["--run-id", RUN_ID, "-n", "subpath", "--via", "helper"],
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        app_result(&json)["details"]["dir"],
        "/proc/1/root/coverage-data"
    );
    let out = cluster.dir.path().join("out-subpath");
    let (code, json) = cluster.run_json(
        "cov-collect",
        &[
            "--run-id",
            RUN_ID,
            "-n",
            "subpath",
            "--via",
            "helper",
            "--out",
            out.to_str().expect("utf8"),
        ],
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        app_result(&json)["details"]["remote_dir"],
        "/proc/1/root/coverage-data"
    );
    percent_matches_go(&out);
}

#[test]
fn restricted_pod_security_admits_the_helper() {
    let cluster = start_with(
        &[
            (manifest("greeter-restricted.yaml"), Some("locked"), vec![]),
            (manifest("greeter.yaml"), Some("locked"), vec![]),
        ],
        |b| with_helper_image(b).pod_security_restricted("locked"),
    );
    traffic(&cluster, &["/greet?name=Ada"]);
    // The restricted pod: the helper copies runAsNonRoot and the uid and is admitted.
    let (code, json) = cluster.run_json(
        "cov-signal",
        &[
            "--run-id",
            RUN_ID,
            "-n",
            "locked",
            "-l",
            "app=greeter-restricted",
            "--via",
            "helper",
        ],
    );
    assert_eq!(code, 0, "{json}");
    let out = cluster.dir.path().join("out");
    let (code, json) = cluster.run_json(
        "cov-collect",
        &[
            "--run-id",
            RUN_ID,
            "-n",
            "locked",
            "-l",
            "app=greeter-restricted",
            "--via",
            "helper",
            "--out",
            out.to_str().expect("utf8"),
        ],
    );
    assert_eq!(code, 0, "{json}");
    percent_matches_go(&out);
    // A pod that is not runAsNonRoot: admission refuses, and the message says so.
    let (code, json) = cluster.run_json(
        "cov-signal",
        &[
            "--run-id",
            RUN_ID,
            "-n",
            "locked",
            "-l",
            "app=greeter-solo",
            "--via",
            "helper",
        ],
    );
    assert_eq!(code, 1, "{json}");
    let msg = app_result(&json)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("the cluster's admission refused the helper container")
            && msg.contains("violates PodSecurity \"restricted:latest\": runAsNonRoot != true"),
        "{msg}"
    );
}

#[test]
fn each_helper_error_says_what_to_do() {
    // Ephemeral containers switched off.
    let cluster = start_with(&[(manifest("greeter.yaml"), Some("solo"), vec![])], |b| {
        with_helper_image(b).ephemeral_containers(false)
    });
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID, "--via", "helper"]);
    assert_eq!(code, 1, "{json}");
    let msg = app_result(&json)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("ephemeral containers are disabled in this cluster")
            && msg.contains("--via exec"),
        "{msg}"
    );
    drop(cluster);

    // An image the cluster cannot pull.
    let cluster = start_with(
        &[(manifest("greeter.yaml"), Some("pull"), vec![])],
        with_helper_image,
    );
    let (code, json) = cluster.run_json(
        "cov-collect",
        &[
            "--run-id",
            RUN_ID,
            "-n",
            "pull",
            "--via",
            "helper",
            "--helper-image",
            "registry.invalid/busybox:1",
            "--out",
            cluster.dir.path().join("o").to_str().expect("utf8"),
        ],
    );
    assert_eq!(code, 1, "{json}");
    let msg = app_result(&json)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("the helper image registry.invalid/busybox:1 cannot be pulled (ErrImagePull")
            || msg.contains(
                "the helper image registry.invalid/busybox:1 cannot be pulled (ImagePullBackOff"
            ),
        "{msg}"
    );
    assert!(msg.contains("--helper-image"), "{msg}");
}

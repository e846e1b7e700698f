//! `shareProcessNamespace: true`: PID 1 of the pod is the pause process, so
//! `kill -USR1 1` writes nothing; cov-signal finds the service inside the
//! container instead, and stops with a message when it cannot tell which
//! process it is.

mod common;

use common::*;

/// The service's PID as its own namespace numbers it (last field of `NSpid`).
fn pid_in_pod(host_pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .expect("NSpid line")
        .to_string()
}

#[test]
fn signal_finds_the_service_behind_the_pause_process() {
    let cluster = start(&[
        (manifest("greeter-shared-pid.yaml"), Some("shared"), vec![]),
        (
            manifest("greeter-shared-ambiguous.yaml"),
            Some("ambiguous"),
            vec![],
        ),
    ]);
    let pod = cluster
        .pods()
        .into_iter()
        .find(|p| p.namespace == "shared")
        .expect("shared pod");
    let pause = pod.pause_pid.expect("a pause process");
    let app = pod
        .containers
        .iter()
        .find(|c| c.name == "app")
        .expect("app");
    let volume = &pod.volumes["coverage-data"];
    traffic(&cluster, &["/greet?name=Ada", "/sum?a=1&b=2"]);

    // What the tutorial's `kill -USR1 1` does here: hits the pause process, nothing is written.
    let (code, json) = cluster.run_json(
        "cov-signal",
        &[
            "--run-id", RUN_ID, "-n", "shared", "--pid", "1", "--wait", "1s",
        ],
    );
    assert_eq!(code, 1, "{json}");
    let res = results(&json);
    let app_res = res.iter().find(|r| r.0.ends_with("/app")).expect("app");
    assert!(
        app_res.2.contains("no counters written")
            && app_res.2.contains("PID 1 is the pause process"),
        "{res:?}"
    );
    assert!(files(volume).iter().all(|n| !n.starts_with("covcounters.")));
    assert!(std::path::Path::new(&format!("/proc/{pause}")).exists());

    // Without --pid: the service is found from inside the container and flushes.
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID, "-n", "shared"]);
    assert_eq!(code, 0, "{json}");
    let app_json = json["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["container"] == "app"))
        .expect("app result");
    assert_eq!(app_json["state"], "ok", "{app_json}");
    assert_eq!(app_json["details"]["pid_detected"], true);
    assert_eq!(
        app_json["details"]["pid"],
        pid_in_pod(app.pid.expect("app running"))
    );
    assert_eq!(json["totals"]["confirmed"], 1);
    let sidecar = res
        .iter()
        .find(|r| r.0.ends_with("/sidecar"))
        .expect("sidecar");
    assert_eq!(sidecar.1, "skipped");

    let out = cluster.dir.path().join("out");
    let (code, json) = cluster.run_json(
        "cov-collect",
        &[
            "--run-id",
            RUN_ID,
            "-n",
            "shared",
            "--out",
            out.to_str().expect("utf8"),
        ],
    );
    assert_eq!(code, 0, "{json}");
    percent_matches_go(&out);

    // Two containers with the same GOCOVERDIR: no guessing.
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID, "-n", "ambiguous"]);
    assert_eq!(code, 1, "{json}");
    let res = results(&json);
    assert_eq!(res.len(), 2, "{res:?}");
    for r in &res {
        assert_eq!(r.1, "failed", "{r:?}");
        assert!(
            r.2.contains("shareProcessNamespace")
                && r.2
                    .contains("several processes have GOCOVERDIR=/coverage-data")
                && r.2.contains("pass --pid"),
            "{r:?}"
        );
    }
}

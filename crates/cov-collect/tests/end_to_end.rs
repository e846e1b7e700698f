//! The whole flow against localkube with the real Go service: selection across
//! namespaces with a decoy run, signal + collect, coverage equal to Go's own
//! `go tool covdata`, counts adding up across flushes, snapshots separating
//! suites, sidecars skipped, idempotent collection, run-id detection.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;

fn layout() -> Vec<Deploy<'static>> {
    vec![
        // team-a: two pods, each with the app and a sidecar without GOCOVERDIR.
        (
            manifest("greeter-with-sidecar.yaml"),
            Some("team-a"),
            vec![],
        ),
        // team-b: one pod.
        (manifest("greeter.yaml"), Some("team-b"), vec![]),
        // A decoy of another run in team-a, which must never be touched.
        (
            manifest("greeter.yaml"),
            Some("team-a"),
            vec![("skaffold.dev/run-id", "other-run")],
        ),
    ]
}

#[test]
fn signal_and_collect_a_run() {
    let cluster = start(&layout());
    let run_pods = cluster.run_pods();
    assert_eq!(run_pods.len(), 3);
    let out = cluster.dir.path().join("out");
    let out_s = out.to_str().expect("utf8 path");

    // Suite A.
    traffic(&cluster, &["/greet?name=Ada", "/greet?name=Ada&lang=fr"]);
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID, "--snapshot", "a"]);
    assert_eq!(code, 0, "{json}");
    let res = results(&json);
    let oks: Vec<&String> = res.iter().filter(|r| r.1 == "ok").map(|r| &r.0).collect();
    assert_eq!(oks.len(), 3, "{res:?}");
    assert!(oks.iter().all(|w| w.ends_with("/app")));
    let sidecars: Vec<_> = res.iter().filter(|r| r.0.ends_with("/sidecar")).collect();
    assert_eq!(sidecars.len(), 2);
    assert!(
        sidecars
            .iter()
            .all(|r| r.1 == "skipped" && r.2.contains("GOCOVERDIR"))
    );
    assert!(
        res.iter().all(|r| !r.0.starts_with("team-a/greeter-solo")),
        "decoy selected: {res:?}"
    );
    assert_eq!(json["totals"]["confirmed"], 3);

    let (code, json) = cluster.run_json(
        "cov-collect",
        &["--run-id", RUN_ID, "--out", out_s, "--snapshot", "a"],
    );
    assert_eq!(code, 0, "{json}");
    assert_eq!(results(&json).iter().filter(|r| r.1 == "ok").count(), 3);

    // Exactly the run's app containers, byte for byte as in the pod volumes.
    for p in &run_pods {
        let local = out.join("a").join(&p.namespace).join(&p.name).join("app");
        let volume = &p.volumes["coverage-data"];
        let names = files(&local);
        assert!(names.iter().any(|n| n.starts_with("covmeta.")), "{names:?}");
        assert_eq!(
            names
                .iter()
                .filter(|n| n.starts_with("covcounters."))
                .count(),
            1
        );
        for n in &names {
            assert_eq!(
                std::fs::read(local.join(n)).ok(),
                std::fs::read(volume.join(n)).ok(),
                "{n}"
            );
        }
        assert!(
            !out.join("a")
                .join(&p.namespace)
                .join(&p.name)
                .join("sidecar")
                .exists()
        );
    }
    let decoy = cluster
        .pods()
        .into_iter()
        .find(|p| p.labels["skaffold.dev/run-id"] == "other-run")
        .expect("decoy");
    assert!(
        !out.join("a")
            .join(&decoy.namespace)
            .join(&decoy.name)
            .exists()
    );
    assert!(
        files(&decoy.volumes["coverage-data"])
            .iter()
            .all(|n| !n.starts_with("covcounters.")),
        "decoy was signalled"
    );

    // Suite B: more traffic, second flush (ClearCounters ran, so only B's counts).
    traffic(&cluster, &["/sum?a=1&b=2", "/fizzbuzz/15", "/fizzbuzz/7"]);
    let (code, _) = cluster.run_json("cov-signal", &["--run-id", RUN_ID, "--snapshot", "b"]);
    assert_eq!(code, 0);
    let (code, json) = cluster.run_json(
        "cov-collect",
        &["--run-id", RUN_ID, "--out", out_s, "--snapshot", "b"],
    );
    assert_eq!(code, 0, "{json}");

    // Snapshots hold disjoint counter files; together they are everything the pods wrote.
    let counter_set = |root: &Path| -> BTreeSet<String> {
        data_dirs(root)
            .iter()
            .flat_map(|d| {
                files(d)
                    .into_iter()
                    .filter(|n| n.starts_with("covcounters."))
            })
            .collect()
    };
    let (a, b) = (counter_set(&out.join("a")), counter_set(&out.join("b")));
    assert_eq!(a.len(), 3);
    assert_eq!(b.len(), 3);
    assert!(a.is_disjoint(&b));
    let in_pods: BTreeSet<String> = run_pods
        .iter()
        .flat_map(|p| {
            files(&p.volumes["coverage-data"])
                .into_iter()
                .filter(|n| n.starts_with("covcounters."))
        })
        .collect();
    assert_eq!(a.union(&b).cloned().collect::<BTreeSet<_>>(), in_pods);

    // Suite A's coverage alone excludes /sum; B's includes it; the union adds up.
    let func_a = covdata("func", &data_dirs(&out.join("a")), &[]);
    let func_b = covdata("func", &data_dirs(&out.join("b")), &[]);
    let sum_line = |text: &str| {
        text.lines()
            .find(|l| l.contains("\tsum\t"))
            .map(str::to_string)
            .expect("sum row")
    };
    assert!(sum_line(&func_a).ends_with("0.0%"), "{func_a}");
    assert!(!sum_line(&func_b).ends_with("\t0.0%"), "{func_b}");
    let (ca, cb, cu) = (
        counts(&data_dirs(&out.join("a"))),
        counts(&data_dirs(&out.join("b"))),
        counts(&data_dirs(&out)),
    );
    for (block, total) in &cu {
        assert_eq!(
            *total,
            ca.get(block).copied().unwrap_or(0) + cb.get(block).copied().unwrap_or(0),
            "{block}"
        );
    }

    // cov-report agrees with Go on each snapshot and on the union.
    percent_matches_go(&out.join("a"));
    percent_matches_go(&out.join("b"));
    percent_matches_go(&out);

    // The record is where the docs say, and names both snapshots.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("cov-collect-snapshots.json")).expect("record"),
    )
    .expect("json");
    assert_eq!(record["snapshots"], serde_json::json!(["a", "b"]));

    // Plain collection: everything, and running it twice changes nothing.
    let all = cluster.dir.path().join("all");
    let all_s = all.to_str().expect("utf8");
    let (code, first) = cluster.run_json("cov-collect", &["--run-id", RUN_ID, "--out", all_s]);
    assert_eq!(code, 0);
    assert_eq!(first["totals"]["files"], 9);
    assert!(first["totals"]["bytes_transferred"].as_u64().unwrap_or(0) > 0);
    let (code, second) = cluster.run_json("cov-collect", &["--run-id", RUN_ID, "--out", all_s]);
    assert_eq!(code, 0);
    assert_eq!(second["totals"]["bytes_written"], 0);
    percent_matches_go(&all);

    // SKAFFOLD_WORK_DIR anchors the default output folder.
    let work = cluster.dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let out_env = cluster.run(
        "cov-collect",
        &[],
        &[
            ("SKAFFOLD_RUN_ID", RUN_ID),
            ("SKAFFOLD_WORK_DIR", work.to_str().expect("utf8")),
        ],
    );
    assert_eq!(out_env.status.code(), Some(0));
    assert_eq!(data_dirs(&work.join("reports/coverage")).len(), 3);
}

#[test]
fn selection_rules() {
    let cluster = start(&layout());
    // No run id, two runs visible: exit 2 naming both.
    let out = cluster.run(
        "cov-collect",
        &[
            "--out",
            cluster.dir.path().join("x").to_str().expect("utf8"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(RUN_ID) && err.contains("other-run"), "{err}");

    // Only team-b holds one run: detected and used.
    let (code, json) = cluster.run_json("cov-signal", &["--namespace", "team-b", "--no-wait"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["detected_run_id"], RUN_ID);
    assert_eq!(results(&json).len(), 1);

    // SKAFFOLD_NAMESPACES with a flag beating it.
    let out = cluster.run(
        "cov-signal",
        &["--no-wait", "--output", "json"],
        &[
            ("SKAFFOLD_NAMESPACES", "team-b"),
            ("SKAFFOLD_RUN_ID", RUN_ID),
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(results(&json).len(), 1);
    let out = cluster.run(
        "cov-signal",
        &["--no-wait", "--output", "json", "--run-id", "other-run"],
        &[("SKAFFOLD_RUN_ID", RUN_ID)],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let res = results(&json);
    assert_eq!(res.len(), 1, "{res:?}");
    assert!(res[0].0.starts_with("team-a/greeter-solo"));

    // --selector alone, and --container globs picking the sidecar too.
    let (code, json) = cluster.run_json(
        "cov-signal",
        &[
            "--selector",
            "app=greeter",
            "--container",
            "app",
            "--no-wait",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(results(&json).len(), 2);
    let (_, json) = cluster.run_json(
        "cov-signal",
        &["--run-id", RUN_ID, "--container", "*", "--no-wait"],
    );
    assert_eq!(
        results(&json)
            .iter()
            .filter(|r| r.0.ends_with("/sidecar"))
            .count(),
        2
    );

    // Nothing matched: exit 2 saying what was searched.
    let out = cluster.run("cov-signal", &["--run-id", "nope"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("localkube-test") && err.contains("all namespaces") && err.contains("nope"),
        "{err}"
    );

    // Unknown context and bad selector are usage errors.
    assert_eq!(
        cluster
            .run(
                "cov-signal",
                &["--context", "missing", "--run-id", RUN_ID],
                &[]
            )
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        cluster
            .run(
                "cov-collect",
                &["--selector", "a in (", "--run-id", RUN_ID],
                &[]
            )
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        cluster
            .run(
                "cov-signal",
                &["--run-id", RUN_ID],
                &[("SKAFFOLD_KUBE_CONTEXT", "missing")]
            )
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn set_mode_binary_is_diagnosed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kube = localkube::LocalKube::builder(dir.path().join("kube"))
        .image(IMAGE, go_image(ocilayout::Flavour::Debug, "set"))
        .manifest(manifest("greeter.yaml"))
        .label("skaffold.dev/run-id", RUN_ID)
        .publish_ports(true)
        .start()
        .expect("localkube");
    let cluster = Cluster { kube, dir };
    for p in cluster.pods() {
        wait_ready(p.address.expect("address"));
    }
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID, "--wait", "1s"]);
    assert_eq!(code, 1, "{json}");
    let res = results(&json);
    assert_eq!(res[0].1, "failed");
    assert!(
        res[0].2.contains("signalled, no counters written"),
        "{}",
        res[0].2
    );
    assert!(res[0].2.contains("-covermode=set"), "{}", res[0].2);
    assert_eq!(json["results"][0]["details"]["counter_mode"], "set");
}

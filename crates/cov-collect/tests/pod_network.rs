//! Each pod has its own network, as on a cluster: three replicas of the example
//! service on one fixed port (no `containerPort`) all run, get distinct pod
//! addresses, and all have their coverage signalled and collected.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Wait until every container of the run logged that it listens.
fn wait_listening(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for p in cluster.run_pods() {
        let log = &p.containers[0].log_file;
        while !std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("listening on :8080")
        {
            assert!(
                Instant::now() < deadline,
                "{}/{} never listened: {:?}",
                p.namespace,
                p.name,
                std::fs::read_to_string(log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn three_replicas_on_one_fixed_port_all_run_and_are_collected() {
    let cluster = start(&[(manifest("greeter-fixed-port.yaml"), None, vec![])]);
    wait_listening(&cluster);
    // A bind conflict ("address already in use") ends the process at once.
    std::thread::sleep(Duration::from_millis(300));
    let pods = cluster.run_pods();
    assert_eq!(pods.len(), 3);
    for p in &pods {
        assert!(
            p.containers[0].running,
            "{}/{} ended: {:?}; log: {}",
            p.namespace,
            p.name,
            p.containers[0],
            std::fs::read_to_string(&p.containers[0].log_file).unwrap_or_default()
        );
        assert!(p.address.is_none(), "no containerPort, nothing published");
    }
    let ips: BTreeSet<_> = pods.iter().map(|p| p.ip).collect();
    assert_eq!(ips.len(), 3, "pod IPs are distinct: {ips:?}");

    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["totals"]["confirmed"], 3, "{json}");
    let out = cluster.dir.path().join("out");
    let (code, json) = cluster.run_json(
        "cov-collect",
        &["--run-id", RUN_ID, "--out", out.to_str().expect("utf8")],
    );
    assert_eq!(code, 0, "{json}");
    let oks = results(&json).iter().filter(|r| r.1 == "ok").count();
    assert_eq!(oks, 3, "{json}");
    for p in &pods {
        let names = files(&out.join(&p.namespace).join(&p.name).join("app"));
        assert!(names.iter().any(|n| n.starts_with("covmeta.")), "{names:?}");
        assert!(
            names.iter().any(|n| n.starts_with("covcounters.")),
            "{names:?}"
        );
    }
    percent_matches_go(&out);
}

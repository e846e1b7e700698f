//! Every localkube fault gives its documented per-pod result and exit code,
//! and never costs the other pods their data.

mod common;

use common::*;
use localkube::Fault;

#[test]
fn each_fault_has_its_documented_result() {
    let cluster = start(&[(manifest("fleet.yaml"), None, vec![])]);
    let pods = cluster.run_pods();
    assert_eq!(pods.len(), 9);
    traffic(&cluster, &["/greet?name=Ada"]);
    // Flush every pod before faults are switched on, so each has counters to collect.
    let (code, _) = cluster.run_json("cov-signal", &["--run-id", RUN_ID]);
    assert_eq!(code, 0);

    let ns = pods[0].namespace.clone();
    let name = |i: usize| pods[i].name.clone();
    let faults: Vec<(usize, Fault)> = vec![
        (1, Fault::ExecRefused(403)),
        (2, Fault::ExecRefused(503)),
        (3, Fault::CutStreamAfter(100)),
        (4, Fault::SlowStream { bytes_per_sec: 20 }),
        (5, Fault::Phase("Pending".into())),
        (6, Fault::Terminating),
        (
            7,
            Fault::ContainerExited {
                container: "app".into(),
                exit_code: 3,
            },
        ),
        (
            8,
            Fault::ContainerRestarted {
                container: "app".into(),
            },
        ),
    ];
    for (i, f) in &faults {
        cluster
            .kube
            .set_fault(&ns, &name(*i), f.clone())
            .expect("set fault");
    }
    // Expected (state, words in the message) per pod index.
    let expect: Vec<(&str, &str)> = vec![
        ("ok", "file(s)"),
        ("failed", "HTTP 403"),
        ("failed", "after 3 attempt(s)"),
        ("failed", "without an exit status"),
        ("failed", "timed out"),
        ("skipped", "Pending"),
        ("skipped", "terminating"),
        ("skipped", "exit code 3"),
        ("ok", "file(s)"),
    ];

    let out = cluster.dir.path().join("out");
    let out_s = out.to_str().expect("utf8");
    let (code, json) = cluster.run_json(
        "cov-collect",
        &[
            "--run-id",
            RUN_ID,
            "--out",
            out_s,
            "--timeout",
            "3s",
            "--retries",
            "2",
        ],
    );
    assert_eq!(code, 1, "{json}");
    let res = results(&json);
    for (i, (state, words)) in expect.iter().enumerate() {
        let r = res
            .iter()
            .find(|r| r.0.contains(&name(i)))
            .unwrap_or_else(|| panic!("no line for {}: {res:?}", name(i)));
        assert_eq!(r.1, *state, "{}: {r:?}", name(i));
        assert!(
            r.2.contains(words),
            "{}: {:?} should mention {words:?}",
            name(i),
            r.2
        );
    }
    // The healthy pod's data is complete and identical to its volume.
    for i in [0, 8] {
        let local = out.join(&ns).join(name(i)).join("app");
        let volume = &pods[i].volumes["coverage-data"];
        assert_eq!(files(&local), files(volume), "{}", name(i));
    }
    let restarted = json["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["pod"] == name(8).as_str()))
        .expect("line");
    assert!(
        restarted["warnings"].to_string().contains("restarted"),
        "{restarted}"
    );

    // cov-signal sees the same faults the same way.
    let (code, json) = cluster.run_json(
        "cov-signal",
        &[
            "--run-id",
            RUN_ID,
            "--timeout",
            "3s",
            "--retries",
            "1",
            "--wait",
            "2s",
        ],
    );
    assert_eq!(code, 1, "{json}");
    let res = results(&json);
    let sig = |i: usize| {
        res.iter()
            .find(|r| r.0.contains(&name(i)))
            .cloned()
            .expect("line")
    };
    assert_eq!(sig(0).1, "ok");
    assert_eq!(sig(1).1, "failed");
    assert!(sig(1).2.contains("403"));
    assert_eq!(sig(5).1, "skipped");
    assert_eq!(sig(6).1, "skipped");
    assert_eq!(sig(7).1, "skipped");

    // Skipped pods alone don't fail a run, unless --strict.
    for (i, _) in &faults {
        cluster.kube.clear_faults(&ns, &name(*i));
    }
    cluster
        .kube
        .set_fault(&ns, &name(5), Fault::Phase("Pending".into()))
        .expect("fault");
    let (code, json) = cluster.run_json("cov-collect", &["--run-id", RUN_ID, "--out", out_s]);
    assert_eq!(code, 0, "{json}");
    let (code, _) = cluster.run_json(
        "cov-collect",
        &["--run-id", RUN_ID, "--out", out_s, "--strict"],
    );
    assert_eq!(code, 1);
}

#[test]
fn pods_without_kill_get_a_useful_message() {
    let cluster = start(&[(manifest("greeter.yaml"), None, vec![])]);
    let pod = cluster.run_pods()[0].clone();
    let missing = cluster.dir.path().join("no-kill");
    // What a shell-based image without a kill binary answers.
    std::fs::write(
        &missing,
        "#!/busybox/sh\necho 'sh: kill: not found' >&2\nexit 127\n",
    )
    .expect("script");
    std::fs::set_permissions(
        &missing,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    cluster
        .kube
        .set_fault(
            &pod.namespace,
            &pod.name,
            Fault::ReplaceProgram {
                name: "kill".into(),
                with: missing,
            },
        )
        .expect("fault");
    // The exec path's own diagnosis; `--via auto` would turn to a helper container instead.
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID, "--via", "exec"]);
    assert_eq!(code, 1, "{json}");
    let msg = &results(&json)[0].2;
    assert!(
        msg.contains("busybox") && msg.contains("distroless :debug"),
        "{msg}"
    );
}

/// An API server that stalls (connections accepted and never answered; or
/// headers and never a body) makes both tools give up within `--timeout`
/// with an error naming the server and the flag, not hang a Skaffold hook.
#[test]
fn a_stalled_api_server_ends_both_tools_within_the_timeout() {
    let cluster = start(&[(manifest("greeter.yaml"), None, vec![])]);
    let out = cluster.dir.path().join("out");
    let server = cluster.kube.server_url();
    // Built before the clock starts (the first use of cov-signal builds it).
    tool("cov-signal");
    for stall in [localkube::Stall::Accept, localkube::Stall::Headers] {
        cluster.kube.set_stall(Some(stall));
        for tool in ["cov-signal", "cov-collect"] {
            let started = std::time::Instant::now();
            let run = cluster.run(
                tool,
                &[
                    "--run-id",
                    RUN_ID,
                    "--timeout",
                    "1s",
                    "--out",
                    out.to_str().expect("utf8"),
                ][..if tool == "cov-signal" { 4 } else { 6 }],
                &[],
            );
            let took = started.elapsed();
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert_ne!(run.status.code(), Some(0), "{tool} {stall:?}");
            // 1 s per API call, far below the 60 s default; the rest is
            // process start and connecting on a busy CI machine.
            assert!(
                took < std::time::Duration::from_secs(8),
                "{tool} {stall:?} took {took:?}"
            );
            assert!(
                stderr.contains(&server) && stderr.contains("--timeout"),
                "{tool} {stall:?}: {stderr}"
            );
        }
    }
    cluster.kube.set_stall(None);
}

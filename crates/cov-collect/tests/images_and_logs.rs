//! What real images and real pods throw at the tools: a `tar` without `-z`
//! (busybox built without gzip), a counter file whose meta file is gone, and
//! logs at the highest verbosity, which must never show the bearer token or
//! certificate material.

mod common;

use common::*;
use localkube::Fault;
use std::os::unix::fs::PermissionsExt;

fn script(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn tar_without_gzip_falls_back_to_uncompressed() {
    let cluster = start(&[(manifest("greeter.yaml"), None, vec![])]);
    let pod = cluster.run_pods()[0].clone();
    traffic(&cluster, &["/greet?name=Ada"]);
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID]);
    assert_eq!(code, 0, "{json}");

    // The image's tar: refuses -z as a busybox built without gzip does,
    // otherwise is busybox's (the fault replaces only the `tar` applet link).
    let fake = cluster.dir.path().join("tar-without-z");
    script(
        &fake,
        "#!/busybox/sh\nfor a in \"$@\"; do case \"$a\" in -*z*) echo \"tar: invalid option -- 'z'\" >&2; exit 1;; esac; done\nexec /busybox/busybox tar \"$@\"\n",
    );
    cluster
        .kube
        .set_fault(
            &pod.namespace,
            &pod.name,
            Fault::ReplaceProgram {
                name: "tar".into(),
                with: fake,
            },
        )
        .expect("fault");

    let out = cluster.dir.path().join("out");
    let (code, json) = cluster.run_json(
        "cov-collect",
        &["--run-id", RUN_ID, "--out", out.to_str().expect("utf8")],
    );
    assert_eq!(code, 0, "{json}");
    let r = &json["results"][0];
    assert_eq!(r["details"]["gzip"], false, "{r}");
    assert!(
        r["warnings"].to_string().contains("cannot compress (-z)"),
        "{r}"
    );
    let local = out.join(&pod.namespace).join(&pod.name).join("app");
    let volume = &pod.volumes["coverage-data"];
    assert_eq!(files(&local), files(volume));
    for n in files(volume) {
        assert_eq!(
            std::fs::read(local.join(&n)).ok(),
            std::fs::read(volume.join(&n)).ok()
        );
    }
    percent_matches_go(&out);
}

#[test]
fn counter_file_without_its_meta_file_is_collected_with_a_warning() {
    let cluster = start(&[(manifest("greeter.yaml"), None, vec![])]);
    let pod = cluster.run_pods()[0].clone();
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID]);
    assert_eq!(code, 0, "{json}");
    // A flush of another binary whose meta file never reached this folder.
    let volume = &pod.volumes["coverage-data"];
    let counters = files(volume)
        .into_iter()
        .find(|n| n.starts_with("covcounters."))
        .expect("a counter file");
    let orphan = "covcounters.00112233445566778899aabbccddeeff.7.1";
    std::fs::copy(volume.join(&counters), volume.join(orphan)).expect("orphan");

    let out = cluster.dir.path().join("out");
    let (code, json) = cluster.run_json(
        "cov-collect",
        &["--run-id", RUN_ID, "--out", out.to_str().expect("utf8")],
    );
    assert_eq!(code, 0, "{json}");
    let warnings = json["results"][0]["warnings"].to_string();
    assert!(
        warnings.contains("without their meta file") && warnings.contains(orphan),
        "{json}"
    );
    let local = out.join(&pod.namespace).join(&pod.name).join("app");
    assert!(local.join(orphan).is_file(), "nothing collected is dropped");
}

#[test]
fn no_token_or_certificate_in_logs_at_any_verbosity() {
    let cluster = start(&[(manifest("greeter.yaml"), None, vec![])]);
    let token = cluster.kube.token().to_string();
    let ca = std::fs::read_to_string(
        cluster
            .kube
            .kubeconfig()
            .parent()
            .expect("kubeconfig folder")
            .join("ca.crt"),
    )
    .expect("ca.crt");
    // Every line of the certificate's base64 body.
    let ca_lines: Vec<&str> = ca
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect();
    assert!(!ca_lines.is_empty());
    let out_dir = cluster.dir.path().join("out");
    let out_s = out_dir.to_str().expect("utf8");
    for (tool, extra) in [
        ("cov-signal", vec![]),
        ("cov-collect", vec!["--out", out_s]),
    ] {
        for verbosity in ["-v", "-vv"] {
            let mut args = vec!["--run-id", RUN_ID, verbosity];
            args.extend(&extra);
            let out = cluster.run(tool, &args, &[]);
            assert!(out.status.success(), "{tool} {verbosity} failed");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // Something is logged at all: the context (-v), each exec (-vv).
            assert!(
                text.contains("context localkube-test at https://"),
                "{text}"
            );
            if verbosity == "-vv" {
                assert!(text.contains("exec in "), "{text}");
            }
            assert!(
                !text.contains(&token),
                "{tool} {verbosity} logged the token"
            );
            for l in &ca_lines {
                assert!(!text.contains(l), "{tool} {verbosity} logged the CA");
            }
            assert!(!text.contains("PRIVATE KEY") && !text.contains("BEGIN CERTIFICATE"));
        }
    }
}

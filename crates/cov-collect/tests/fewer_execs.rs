//! cov-signal's cost per container, as localkube counts execs: signal and
//! confirmation in one exec where the image has a shell (also when the
//! service must be found behind a pause process), and a listing no file name
//! can forge, on the one-exec path and on the step-by-step path for images
//! without a shell.

mod common;

use common::*;
use localkube::Fault;
use std::path::{Path, PathBuf};

#[test]
fn signal_and_confirmation_take_one_exec_per_container() {
    let cluster = start(&[
        (manifest("greeter.yaml"), None, vec![]),
        (manifest("greeter-shared-pid.yaml"), Some("shared"), vec![]),
    ]);
    traffic(&cluster, &["/greet?name=Ada"]);
    let before = cluster.kube.request_counts();
    let (code, json) = cluster.run_json("cov-signal", &["--run-id", RUN_ID]);
    let cost = cluster.kube.request_counts();
    assert_eq!(code, 0, "{json}");
    // The shared-PID pod's sidecar has no GOCOVERDIR: skipped, no exec.
    let worked: Vec<&serde_json::Value> = json["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["state"] != "skipped")
        .collect();
    assert_eq!(worked.len(), 2, "{json}");
    for r in &worked {
        assert_eq!(r["details"]["confirmed"], true, "{r}");
    }
    let shared = json["results"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["namespace"] == "shared" && r["container"] == "app")
        })
        .expect("the shared-PID pod's app");
    assert_eq!(shared["details"]["pid_detected"], true, "{shared}");
    assert_eq!(
        cost.execs - before.execs,
        worked.len() as u64,
        "one exec per container: {json}"
    );
}

/// The service's `:debug` image with GNU `ls` (and the glibc it needs) at
/// `/bin/ls`, ahead of busybox on `PATH`; `without_sh` deletes `/busybox/sh`.
fn image_with_gnu_ls(dir: &Path, without_sh: bool) -> PathBuf {
    let busybox = toolchain::busybox().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join(format!("gnu-ls-image-{without_sh}"));
    let image = ocilayout::go_image(
        ocilayout::Flavour::Debug,
        &go_service("atomic"),
        "/ko-app/greeter",
        Some(&busybox),
    )
    .and_then(|i| i.new_layer().host_program("/bin/ls", Path::new("/bin/ls")))
    .expect("GNU ls layer");
    let image = if without_sh {
        image.new_layer().whiteout("/busybox/sh")
    } else {
        image
    };
    image.write_layout(&out).expect("writing the image");
    out
}

/// A `kill` that signals nothing and instead adds a file whose name, listed
/// by GNU `ls -ln`, reads as a line of its own for a new counter file.
fn forging_kill(dir: &Path) -> PathBuf {
    let path = dir.join("forging-kill");
    std::fs::write(
        &path,
        "#!/busybox/ash\nn=$(printf 'covmeta.x\\n-rw-r--r-- 1 0 0 77 Nov 26 12:00 covcounters.0123456789abcdef0123456789abcdef.9.9')\nprintf x > \"/coverage-data/$n\"\n",
    )
    .expect("script");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path
}

#[test]
fn a_file_name_cannot_forge_a_counter_file() {
    let files_dir = tempfile::tempdir().expect("tmp");
    let kill = forging_kill(files_dir.path());
    for without_sh in [false, true] {
        let image = image_with_gnu_ls(files_dir.path(), without_sh);
        let cluster = start_with(&[(manifest("greeter.yaml"), None, vec![])], |b| {
            b.image(IMAGE, &image)
        });
        let pod = cluster.run_pods()[0].clone();
        cluster
            .kube
            .set_fault(
                &pod.namespace,
                &pod.name,
                Fault::ReplaceProgram {
                    name: "kill".into(),
                    with: kill.clone(),
                },
            )
            .expect("fault");
        let before = cluster.kube.request_counts();
        let (code, json) = cluster.run_json(
            "cov-signal",
            &["--run-id", RUN_ID, "--wait", "1s", "--via", "exec"],
        );
        let execs = cluster.kube.request_counts().execs - before.execs;
        assert_eq!(code, 1, "without sh {without_sh}: {json}");
        let line = &json["results"][0];
        assert_eq!(line["details"]["confirmed"], false, "{line}");
        assert!(
            line["message"]
                .as_str()
                .unwrap_or("")
                .contains("signalled, no counters written"),
            "{line}"
        );
        let forged = std::fs::read_dir(&pod.volumes["coverage-data"])
            .expect("volume")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains('\n'));
        assert!(forged, "the forging kill ran");
        // No shell: the step-by-step path (sh, ls before, kill, ls polls, head).
        assert_eq!(execs > 2, without_sh, "{execs} execs");
    }
}

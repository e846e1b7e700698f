//! A missing coverage folder is not a missing program. busybox's `tar` and
//! `ls` answer "No such file or directory" when the folder is missing, which
//! must not be read as "tar/ls is not in the image"; a program really missing
//! from the image is what the runtime reports for it (exit 127 with
//! `executable file not found in $PATH`, as runc does; localkube does the
//! same when the container's `PATH` lacks the program).

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// The service's `:debug` image (busybox at `/busybox`) with one more layer
/// deleting `/busybox/tar` (a whiteout), as an image without tar.
fn image_without_tar(dir: &Path) -> PathBuf {
    let busybox = toolchain::busybox().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("no-tar-image");
    ocilayout::go_image(
        ocilayout::Flavour::Debug,
        &go_service("atomic"),
        "/ko-app/greeter",
        Some(&busybox),
    )
    .map(|i| i.new_layer().whiteout("/busybox/tar"))
    .and_then(|i| i.write_layout(&out))
    .expect("writing the image without tar");
    out
}

/// The example service on `image`, labelled `app=<name>`.
fn manifest_with_image(dir: &Path, name: &str, image: &str) -> PathBuf {
    let text = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: app
          image: {image}
          ports:
            - containerPort: 8080
          env:
            - name: GOCOVERDIR
              value: /coverage-data
          volumeMounts:
            - name: coverage-data
              mountPath: /coverage-data
      volumes:
        - name: coverage-data
          emptyDir: {{}}
"#
    );
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, text).expect("manifest");
    file
}

fn message(cluster: &Cluster, tool: &'static str, args: &[&str]) -> String {
    let mut all = vec!["--run-id", RUN_ID];
    all.extend(args);
    let (code, json) = cluster.run_json(tool, &all);
    assert_eq!(code, 1, "{tool} {args:?}: {json}");
    results(&json)[0].2.clone()
}

#[test]
fn a_missing_folder_is_told_apart_from_a_missing_program_with_busybox() {
    let files = tempfile::tempdir().expect("tmp");
    let no_tar = image_without_tar(files.path());
    let cluster = start_with(
        &[
            (
                manifest_with_image(files.path(), "busybox-image", IMAGE),
                None,
                vec![],
            ),
            (
                manifest_with_image(files.path(), "no-tar-image", "example/no-tar"),
                None,
                vec![],
            ),
        ],
        |b| b.image("example/no-tar", &no_tar),
    );
    let missing_dir = "/no-such-coverage-folder";

    // busybox tar and ls, a folder that is not there.
    for tool in ["cov-collect", "cov-signal"] {
        let msg = message(
            &cluster,
            tool,
            &["-l", "app=busybox-image", "--remote-dir", missing_dir],
        );
        assert!(
            msg.contains(missing_dir) && msg.contains("does not exist in the container"),
            "{tool}: {msg}"
        );
        assert!(!msg.contains("not in the container image"), "{tool}: {msg}");
    }

    // No tar in the image at all (--via exec: diagnose rather than use a helper).
    let msg = message(
        &cluster,
        "cov-collect",
        &["-l", "app=no-tar-image", "--via", "exec"],
    );
    assert!(msg.contains("`tar` is not in the container image"), "{msg}");
    assert!(!msg.contains("does not exist"), "{msg}");
}

//! Bad manifests and settings: clear errors naming the file and field; nothing starts.

mod common;

use common::*;
use localkube::{Error, LocalKube};

fn start_err(tmp: &std::path::Path, yaml: &str) -> Error {
    let m = manifest(tmp, "bad.yaml", yaml);
    LocalKube::builder(tmp.join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .expect_err("should fail")
}

#[test]
fn unsupported_kind_names_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web}}\ndata: {{}}\n",
        sleep_deployment("web", 1)
    );
    let e = start_err(tmp.path(), &yaml).to_string();
    assert!(
        e.contains("bad.yaml") && e.contains("document 2: kind") && e.contains("ConfigMap"),
        "{e}"
    );
    // Nothing was started: not even the kubeconfig was written.
    assert!(!tmp.path().join("kube/kubeconfig").exists());
}

#[test]
fn unknown_image_names_the_container() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = sleep_deployment("web", 1).replace("example/sleeper:latest", "other/image:v2");
    let e = start_err(tmp.path(), &yaml).to_string();
    assert!(
        e.contains("bad.yaml") && e.contains("containers[0].image") && e.contains("other/image"),
        "{e}"
    );
    assert!(e.contains("--image other/image=PATH"), "{e}");
}

#[test]
fn malformed_fields_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = sleep_deployment("web", 1).replace("replicas: 1", "replicas: many");
    let e = start_err(tmp.path(), &yaml).to_string();
    assert!(e.contains("bad.yaml") && e.contains("replicas"), "{e}");

    let yaml = sleep_deployment("web", 1).replace("emptyDir: {}", "hostPath: {path: /tmp}");
    let e = start_err(tmp.path(), &yaml).to_string();
    assert!(e.contains("volumes[0]") && e.contains("emptyDir"), "{e}");

    let yaml =
        sleep_deployment("web", 1).replace("{name: coverage, mountPath", "{name: nope, mountPath");
    let e = start_err(tmp.path(), &yaml).to_string();
    assert!(
        e.contains("volumeMounts[0].name") && e.contains("nope"),
        "{e}"
    );

    let e = start_err(tmp.path(), "kind: [unclosed").to_string();
    assert!(e.contains("bad.yaml"), "{e}");
}

#[test]
fn missing_executable_is_a_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 1));
    let e = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", "/no/such/binary")
        .start()
        .expect_err("should fail")
        .to_string();
    assert!(e.contains("/no/such/binary"), "{e}");
}

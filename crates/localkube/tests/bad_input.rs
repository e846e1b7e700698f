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

#[test]
fn a_field_of_the_wrong_type_is_named_with_its_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = sleep_deployment("web", 1).replace("replicas: 1", "replicas: many");
    let line = yaml.lines().position(|l| l.contains("many")).unwrap() + 1;
    let e = start_err(tmp.path(), &yaml).to_string();
    assert!(
        e.contains("bad.yaml")
            && e.contains("document 1 (Deployment)")
            && e.contains("spec.replicas: invalid type: string \"many\"")
            && e.contains(&format!("(line {line}, column 13)")),
        "{e}"
    );
    // A syntax error: the parser's position.
    let e = start_err(tmp.path(), "kind: Pod\nmetadata: {name: [unclosed\n").to_string();
    assert!(e.contains("bad.yaml") && e.contains("line 2"), "{e}");
}

/// Anchors, aliases and merge keys resolve (within their document, as YAML
/// scopes them); several documents (and empty ones) in one file all load.
#[test]
fn anchors_and_multiple_documents_load() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = r#"---
apiVersion: v1
kind: Pod
metadata: {name: first, labels: &labels {app: demo}}
spec:
  containers:
    - &sleeper
      name: app
      image: example/sleeper
      args: ["infinity"]
---
---
apiVersion: v1
kind: Pod
metadata: {name: second, labels: &labels {app: demo}, annotations: *labels}
spec:
  containers:
    - &sleeper
      name: app
      image: example/sleeper
      args: ["infinity"]
    - <<: *sleeper
      name: other
---
"#;
    let m = manifest(tmp.path(), "pods.yaml", yaml);
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let pods = kube.pods();
    let names: Vec<_> = pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert!(
        pods.iter()
            .all(|p| p.labels.get("app").map(String::as_str) == Some("demo"))
    );
    assert_eq!(pods[1].containers[1].name, "other");
    assert_eq!(pods[1].containers[1].image, "example/sleeper");
}

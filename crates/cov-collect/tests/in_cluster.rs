//! The tools run where CI jobs on Kubernetes run them: inside a pod, with no
//! kubeconfig, only what the kubelet gives every pod (`KUBERNETES_SERVICE_*`
//! naming the `kubernetes` Service's ClusterIP, and the service-account
//! token, `ca.crt` and `namespace` under
//! `/var/run/secrets/kubernetes.io/serviceaccount`). The pod's service
//! account is bound by hooks/rbac/namespace.yaml; the tools find the run's
//! pods in the namespace named by the `namespace` file (listing all
//! namespaces is forbidden to it), signal and collect them.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const NS: &str = "team-a";

/// The tools as a distroless-`base`-like image: busybox (for `sleep` and the
/// exec), the binaries at /usr/local/bin and the glibc they link against.
fn tools_image(dir: &Path) -> PathBuf {
    let busybox = toolchain::busybox().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("tools-image");
    ocilayout::Image::busybox(&busybox)
        .map(|i| i.new_layer())
        .and_then(|i| i.host_program("/usr/local/bin/cov-signal", &tool("cov-signal")))
        .and_then(|i| i.host_program("/usr/local/bin/cov-collect", &tool("cov-collect")))
        .map(|i| i.entrypoint(["/busybox/sleep", "3600"]))
        .and_then(|i| i.write_layout(&out))
        .expect("writing the tools image");
    out
}

fn files(dir: &Path) -> (PathBuf, PathBuf) {
    let role = dir.join("role.yaml");
    let text =
        std::fs::read_to_string(toolchain::workspace_root().join("hooks/rbac/namespace.yaml"))
            .expect("hooks/rbac/namespace.yaml");
    std::fs::write(&role, text.replace("NAMESPACE", NS)).expect("role");
    let tools = dir.join("tools.yaml");
    std::fs::write(
        &tools,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ci-job\n  labels:\n    app: ci-job\nspec:\n  serviceAccountName: coverage-tools\n  containers:\n    - name: job\n      image: example/tools\n",
    )
    .expect("tools manifest");
    (role, tools)
}

#[test]
fn tools_run_inside_a_pod_with_its_service_account() {
    let tmp = tempfile::tempdir().expect("tmp");
    let image = tools_image(tmp.path());
    let (role, tools) = files(tmp.path());
    let cluster = start_with(
        &[
            (manifest("greeter.yaml"), Some(NS), vec![]),
            (tools, Some(NS), vec![]),
        ],
        |b| b.image("example/tools", &image).rbac(&role),
    );
    let greeter = cluster
        .run_pods()
        .into_iter()
        .find(|p| p.name.starts_with("greeter-solo"))
        .expect("the service's pod");
    get(greeter.address.expect("published"), "/greet?name=Ada").expect("traffic");
    let kubectl = toolchain::require_kubectl();
    let in_pod = |argv: &[&str]| {
        let out = std::process::Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(cluster.kube.kubeconfig())
            .arg("--cache-dir")
            .arg(cluster.dir.path().join("kubectl-cache"))
            .args(["exec", "-n", NS, "ci-job", "--"])
            .args(argv)
            .output()
            .expect("kubectl exec");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("$ {argv:?}\n{stdout}{stderr}");
        (out.status.code(), stdout, stderr)
    };
    // What the kubelet mounted and set.
    let (code, stdout, _) = in_pod(&[
        "sh",
        "-c",
        "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(stdout, format!("{NS}\n10.96.0.1:443\n"));

    let (code, stdout, stderr) = in_pod(&[
        "cov-signal",
        "--run-id",
        RUN_ID,
        "-l",
        "app=greeter-solo",
        "--output",
        "json",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["results"][0]["namespace"], NS, "{report}");
    assert_eq!(
        report["results"][0]["details"]["confirmed"], true,
        "{report}"
    );

    let (code, stdout, stderr) = in_pod(&[
        "cov-collect",
        "--run-id",
        RUN_ID,
        "-l",
        "app=greeter-solo",
        "--out",
        "/tmp/coverage",
        "--output",
        "json",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let (_, listing, _) = in_pod(&["sh", "-c", "ls -R /tmp/coverage"]);
    assert!(
        listing.contains("covmeta.") && listing.contains("covcounters."),
        "{listing}"
    );

    // Its service account may not look into other namespaces.
    let (code, _, stderr) = in_pod(&["cov-signal", "--run-id", RUN_ID, "-n", "default"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            r#"User "system:serviceaccount:team-a:coverage-tools" cannot list resource "pods""#
        ),
        "{stderr}"
    );
}

//! RBAC denials and stalled servers, against localkube loaded with the roles
//! shipped in `hooks/rbac/`: the tools name the missing verb and resource and
//! the `kubectl auth can-i` command; a stall ends within the deadline with an
//! error naming the server. Real kubectl checks the 403 is the API server's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use localkube::{LocalKube, Stall, UserInfo};
use runpods::Error;
use runpods::cluster::{Cluster, ClusterChoice, Environment};
use runpods::exec::{ExecError, ExecSpec, exec_capture};
use runpods::select::{PodQuery, select_pods};
use serde_json::json;

const SA: &str = "system:serviceaccount:team-a:coverage-tools";

fn hooks_role(dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(toolchain::workspace_root().join("hooks/rbac/namespace.yaml"))
            .unwrap();
    let path = dir.join("role.yaml");
    std::fs::write(&path, text.replace("NAMESPACE", "team-a")).unwrap();
    path
}

fn kubeconfig(kube: &LocalKube, dir: &Path, token: &str) -> PathBuf {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(kube.ca_pem());
    let cfg = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "ci",
        "clusters": [{"name": "c", "cluster": {"server": kube.server_url(), "certificate-authority-data": ca}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "ci", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}}],
    });
    let path = dir.join(format!("{token}.kubeconfig"));
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

async fn connect(path: &Path, timeout: Duration) -> Cluster {
    let choice = ClusterChoice {
        kubeconfig: Some(path.into()),
        context: None,
        timeout: Some(timeout),
    };
    let env = Environment {
        service_account_dir: "/nonexistent".into(),
        ..Default::default()
    };
    Cluster::connect_with(&choice, &env).await.expect("connect")
}

fn query(namespaces: &[&str]) -> PodQuery {
    PodQuery {
        run_id: Some("r".into()),
        namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_roles_are_enough_and_denials_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let kube = LocalKube::builder(dir.path().join("kube"))
        .rbac(hooks_role(dir.path()))
        .start()
        .expect("localkube");
    kube.add_token("sa-token", UserInfo::new(SA, &["system:serviceaccounts"]));
    kube.add_token("nobody-token", UserInfo::new("nobody", &[]));
    let cluster = connect(
        &kubeconfig(&kube, dir.path(), "sa-token"),
        Duration::from_secs(10),
    )
    .await;

    // All namespaces are forbidden to a namespaced Role: the search falls back to the context's namespace.
    let sel = select_pods(&cluster, &query(&[]))
        .await
        .expect("falls back to team-a");
    assert_eq!(sel.scope, "namespace team-a");

    let err = select_pods(&cluster, &query(&["other"]))
        .await
        .expect_err("other namespace denied");
    let text = err.to_string();
    assert!(matches!(err, Error::Forbidden { .. }), "{text}");
    assert!(text.contains(&format!(r#"pods is forbidden: User "{SA}" cannot list resource "pods" in API group "" in the namespace "other""#)), "{text}");
    assert!(
        text.contains("kubectl auth can-i list pods -n other --context ci"),
        "{text}"
    );

    // Exec: allowed in team-a (the pod does not exist: 404, not 403), denied elsewhere.
    let spec = |ns: &str| ExecSpec::new(ns, "no-such-pod", "app", &["true"]);
    let err = exec_capture(&cluster.client, &spec("team-a"), 1024)
        .await
        .expect_err("no pod");
    assert_eq!(err.http_code(), Some(404), "{err}");
    let err = exec_capture(&cluster.client, &spec("other"), 1024)
        .await
        .expect_err("denied");
    assert!(matches!(err, ExecError::Forbidden { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(
            r#"cannot get resource "pods/exec" in API group "" in the namespace "other""#
        ),
        "{text}"
    );
    assert!(
        text.contains("kubectl auth can-i create pods/exec -n other"),
        "{text}"
    );

    // A user with no role at all.
    let nobody = connect(
        &kubeconfig(&kube, dir.path(), "nobody-token"),
        Duration::from_secs(10),
    )
    .await;
    let err = exec_capture(&nobody.client, &spec("team-a"), 1024)
        .await
        .expect_err("denied");
    assert_eq!(err.http_code(), Some(403), "{err}");

    // Real kubectl prints the same API server message.
    let kubectl = toolchain::require_kubectl();
    let out = std::process::Command::new(kubectl)
        .args(["--kubeconfig"])
        .arg(kubeconfig(&kube, dir.path(), "sa-token"))
        .args(["--cache-dir"])
        .arg(dir.path().join("cache"))
        .args(["get", "pods", "-n", "other"])
        .output()
        .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!(r#"Error from server (Forbidden): pods is forbidden: User "{SA}" cannot list resource "pods" in API group "" in the namespace "other""#)), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_servers_end_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let kube = LocalKube::builder(dir.path().join("kube"))
        .start()
        .expect("localkube");
    for stall in [Stall::Accept, Stall::Headers] {
        let cluster = connect(kube.kubeconfig(), Duration::from_secs(1)).await;
        kube.set_stall(Some(stall));
        let started = Instant::now();
        let err = select_pods(&cluster, &query(&["default"]))
            .await
            .expect_err("stalled");
        let took = started.elapsed();
        kube.set_stall(None);
        assert!(took < Duration::from_secs(3), "{stall:?}: {took:?}");
        let text = err.to_string();
        assert!(matches!(err, Error::Stalled { .. }), "{stall:?}: {text}");
        assert!(
            text.contains(&kube.server_url()) && text.contains("--timeout"),
            "{text}"
        );
    }
}

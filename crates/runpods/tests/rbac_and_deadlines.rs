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
        text.contains("kubectl auth can-i create pods --subresource=exec -n other"),
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

/// The `kubectl auth can-i` lines of hooks/README.md, as written there, with
/// `NAMESPACE` replaced.
fn readme_can_i_lines() -> Vec<String> {
    let readme =
        std::fs::read_to_string(toolchain::workspace_root().join("hooks/README.md")).unwrap();
    let lines: Vec<String> = readme
        .lines()
        .filter(|l| l.starts_with("kubectl auth can-i "))
        .map(|l| l.replace("NAMESPACE", "team-a"))
        .collect();
    assert!(lines.len() >= 6, "{lines:?}");
    lines
}

/// Real kubectl 1.35 runs the README's `kubectl auth can-i` lines against
/// localkube loaded with both files of hooks/rbac/: as the admin, asking for
/// the bound service accounts (`--as`, impersonation) it prints "yes"; for an
/// identity no binding names it prints "no" and exits 1. A service account
/// asking for itself (its own token, no `--as`) gets the same answers.
#[test]
fn readme_can_i_lines_answer_as_the_roles_say() {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.yaml");
    std::fs::copy(
        toolchain::workspace_root().join("hooks/rbac/all-namespaces.yaml"),
        &all,
    )
    .unwrap();
    let kube = LocalKube::builder(dir.path().join("kube"))
        .rbac(hooks_role(dir.path()))
        .rbac(&all)
        .start()
        .expect("localkube");
    kube.add_token("sa-token", UserInfo::new(SA, &["system:serviceaccounts"]));
    let kubectl = toolchain::require_kubectl();
    let run = |kubeconfig: &Path, line: &str| {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let out = std::process::Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(&args)
            .output()
            .expect("run kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };
    for line in readme_can_i_lines() {
        let (code, stdout, stderr) = run(kube.kubeconfig(), &line);
        assert_eq!(
            (code, stdout.as_str()),
            (Some(0), "yes"),
            "{line}: {stderr}"
        );
        let nobody = line
            .replace(
                "system:serviceaccount:team-a:coverage-tools",
                "system:serviceaccount:team-a:unbound",
            )
            .replace(
                "system:serviceaccount:ci:coverage-tools",
                "system:serviceaccount:ci:unbound",
            );
        let (code, stdout, stderr) = run(kube.kubeconfig(), &nobody);
        assert_eq!(
            (code, stdout.as_str()),
            (Some(1), "no"),
            "{nobody}: {stderr}"
        );
    }
    // The service account itself, by its token.
    let own = kubeconfig(&kube, dir.path(), "sa-token");
    let (code, stdout, stderr) = run(
        &own,
        "kubectl auth can-i create pods --subresource=exec -n team-a",
    );
    assert_eq!((code, stdout.as_str()), (Some(0), "yes"), "{stderr}");
    // `pods/exec` is kubectl's TYPE/NAME: the pod named "exec", which the role does not let it create.
    let (code, stdout, stderr) = run(&own, "kubectl auth can-i create pods/exec -n team-a");
    assert_eq!((code, stdout.as_str()), (Some(1), "no"), "{stderr}");
    let (code, stdout, stderr) = run(&own, "kubectl auth can-i list pods -n other");
    assert_eq!((code, stdout.as_str()), (Some(1), "no"), "{stderr}");
    // And it may not impersonate anyone.
    let (code, _, stderr) = run(
        &own,
        "kubectl auth can-i list pods -n team-a --as system:serviceaccount:ci:coverage-tools",
    );
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains(r#"cannot impersonate resource "serviceaccounts""#),
        "{stderr}"
    );
}

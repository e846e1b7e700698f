//! Cluster access by kubectl's rules, against localkube: every credential kind,
//! kubeconfig merging, the in-cluster fallback, token rotation, proxies (through
//! a real HTTP CONNECT proxy written here that counts what it tunnels), and no
//! secret in any error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use localkube::{LocalKube, UserInfo, Validity};
use runpods::cluster::proxy::ProxyEnv;
use runpods::cluster::{Cluster, ClusterChoice, Environment};
use serde_json::json;

const SECRET: &str = "s3cr3t-Hunter2-value";

fn start(dir: &Path) -> LocalKube {
    LocalKube::builder(dir.join("kube"))
        .context("lk")
        .start()
        .expect("localkube starts (needs root or user namespaces)")
}

/// A kubeconfig for `kube` whose user is `user` (a YAML/JSON object) and cluster extras `cluster`.
fn kubeconfig(
    kube: &LocalKube,
    dir: &Path,
    name: &str,
    user: serde_json::Value,
    cluster: serde_json::Value,
) -> PathBuf {
    let mut c =
        json!({"server": kube.server_url(), "certificate-authority-data": b64(kube.ca_pem())});
    for (k, v) in cluster.as_object().into_iter().flatten() {
        c[k] = v.clone();
    }
    let cfg = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": c}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": "u", "namespace": "team-a"}}],
        "current-context": name,
    });
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    path
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn choice(path: &Path) -> ClusterChoice {
    ClusterChoice {
        kubeconfig: Some(path.to_path_buf()),
        context: None,
        timeout: Some(Duration::from_secs(10)),
    }
}

fn empty_env() -> Environment {
    Environment {
        service_account_dir: PathBuf::from("/nonexistent/serviceaccount"),
        ..Default::default()
    }
}

async fn list(cluster: &Cluster) -> Result<usize, kube::Error> {
    let api: Api<Pod> = Api::all(cluster.client.clone());
    Ok(api.list(&ListParams::default()).await?.items.len())
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn token_and_token_file_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let kube = start(dir.path());
    kube.add_token("inline-token-1", UserInfo::new("alice", &[]));
    let path = kubeconfig(
        &kube,
        dir.path(),
        "inline",
        json!({"token": "inline-token-1"}),
        json!({}),
    );
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    assert_eq!(
        cluster.default_namespace, "team-a",
        "the context's namespace"
    );
    list(&cluster).await.expect("inline token works");

    // tokenFile, rotated while the client lives: the old token is revoked.
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "file-token-1\n").unwrap();
    kube.add_token("file-token-1", UserInfo::new("bob", &[]));
    let path = kubeconfig(
        &kube,
        dir.path(),
        "file",
        json!({"tokenFile": token_file}),
        json!({}),
    );
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    list(&cluster).await.expect("token file works");
    kube.add_token("file-token-2", UserInfo::new("bob", &[]));
    let tmp = dir.path().join("token.new");
    std::fs::write(&tmp, "file-token-2\n").unwrap();
    std::fs::rename(&tmp, &token_file).unwrap();
    kube.remove_token("file-token-1");
    list(&cluster)
        .await
        .expect("the rotated token is read at once");

    // A wrong token: 401, and the token is in no message.
    let path = kubeconfig(
        &kube,
        dir.path(),
        "wrong",
        json!({"token": SECRET}),
        json!({}),
    );
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    let err = list(&cluster).await.expect_err("wrong token refused");
    assert_eq!(status_code(&err), Some(401), "{err}");
    assert!(!format!("{err} {err:?} {cluster:?}").contains(SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_files_data_and_expired() {
    let dir = tempfile::tempdir().unwrap();
    let kube = start(dir.path());
    let (cert, key) = kube
        .client_certificate("carol", &["dev"], Validity::Current)
        .unwrap();
    let user = json!({"client-certificate-data": b64(&cert), "client-key-data": b64(&key)});
    let path = kubeconfig(&kube, dir.path(), "data", user, json!({}));
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    list(&cluster).await.expect("client certificate data works");

    std::fs::write(dir.path().join("carol.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("carol.key"), &key).unwrap();
    // Relative paths are relative to the kubeconfig's folder, as in kubectl.
    let user = json!({"client-certificate": "carol.crt", "client-key": "carol.key"});
    let path = kubeconfig(&kube, dir.path(), "files", user, json!({}));
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    list(&cluster).await.expect("client certificate files work");

    let (cert, key) = kube
        .client_certificate("carol", &[], Validity::Expired)
        .unwrap();
    let user = json!({"client-certificate-data": b64(&cert), "client-key-data": b64(&key)});
    let path = kubeconfig(&kube, dir.path(), "expired", user, json!({}));
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    let err = list(&cluster)
        .await
        .expect_err("expired certificate refused");
    assert_eq!(
        status_code(&err),
        Some(401),
        "as the API server answers: {err}"
    );
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!format!("{err:?}").contains(&key_body[..20]));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_options() {
    let dir = tempfile::tempdir().unwrap();
    let kube = start(dir.path());
    kube.add_token("t-tls", UserInfo::new("dave", &[]));
    // The CA as a file, and insecure-skip-tls-verify without any CA.
    std::fs::write(dir.path().join("ca.pem"), kube.ca_pem()).unwrap();
    let mut cfg: serde_json::Value = json!({"certificate-authority": dir.path().join("ca.pem")});
    let path = kubeconfig(
        &kube,
        dir.path(),
        "cafile",
        json!({"token": "t-tls"}),
        cfg.clone(),
    );
    let raw = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    v["clusters"][0]["cluster"]
        .as_object_mut()
        .unwrap()
        .remove("certificate-authority-data");
    std::fs::write(&path, v.to_string()).unwrap();
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    list(&cluster).await.expect("CA file works");

    v["clusters"][0]["cluster"] =
        json!({"server": kube.server_url(), "insecure-skip-tls-verify": true});
    std::fs::write(&path, v.to_string()).unwrap();
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    list(&cluster)
        .await
        .expect("insecure-skip-tls-verify works");

    // Without a CA the server's certificate is not trusted.
    v["clusters"][0]["cluster"] = json!({"server": kube.server_url()});
    std::fs::write(&path, v.to_string()).unwrap();
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    list(&cluster).await.expect_err("an unknown CA is refused");

    // kubectl refuses a CA together with insecure-skip-tls-verify.
    cfg["insecure-skip-tls-verify"] = json!(true);
    let path = kubeconfig(&kube, dir.path(), "both", json!({"token": "t-tls"}), cfg);
    let err = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("insecure-skip-tls-verify"),
        "{err}"
    );
}

fn plugin_user(
    script: &Path,
    version: &str,
    args: &[&str],
    env: serde_json::Value,
) -> serde_json::Value {
    json!({"exec": {
        "apiVersion": version, "command": script, "args": args, "env": env,
        "interactiveMode": "Never",
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_plugins_v1_and_v1beta1() {
    let dir = tempfile::tempdir().unwrap();
    let kube = start(dir.path());
    kube.add_token("plugin-token-1", UserInfo::new("erin", &[]));
    // The token comes from the plugin's env and the second argument; the
    // apiVersion from KUBERNETES_EXEC_INFO (so the plugin echoes what it was asked).
    let script = dir.path().join("plugin.sh");
    write_script(
        &script,
        r#"version=$(printf '%s' "$KUBERNETES_EXEC_INFO" | sed 's/.*"apiVersion":"\([^"]*\)".*/\1/')
case "$KUBERNETES_EXEC_INFO" in *'"interactive":false'*) ;; *) exit 9;; esac
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s-%s"}}' "$version" "$PLUGIN_PREFIX" "$2""#,
    );
    for version in [
        "client.authentication.k8s.io/v1",
        "client.authentication.k8s.io/v1beta1",
    ] {
        let user = plugin_user(
            &script,
            version,
            &["--id", "1"],
            json!([{"name": "PLUGIN_PREFIX", "value": "plugin-token"}]),
        );
        let path = kubeconfig(&kube, dir.path(), "plugin", user, json!({}));
        let cluster = Cluster::connect_with(&choice(&path), &empty_env())
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        list(&cluster)
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"));
    }

    // A plugin may return a client certificate instead.
    let (cert, key) = kube
        .client_certificate("frank", &[], Validity::Current)
        .unwrap();
    let cred = json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
        "status": {"clientCertificateData": cert, "clientKeyData": key}});
    std::fs::write(dir.path().join("cred.json"), cred.to_string()).unwrap();
    let script = dir.path().join("cert-plugin.sh");
    write_script(
        &script,
        &format!("cat {}", dir.path().join("cred.json").display()),
    );
    let user = plugin_user(&script, "client.authentication.k8s.io/v1", &[], json!([]));
    let path = kubeconfig(&kube, dir.path(), "certplugin", user, json!({}));
    let cluster = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect("connect");
    list(&cluster).await.expect("plugin certificate works");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_and_stalled_plugins_name_the_command_only() {
    let dir = tempfile::tempdir().unwrap();
    let kube = start(dir.path());
    let script = dir.path().join("failing-plugin.sh");
    write_script(
        &script,
        &format!("echo \"token: $PLUGIN_SECRET {SECRET}\"; echo \"$PLUGIN_SECRET\" >&2; exit 3"),
    );
    let user = plugin_user(
        &script,
        "client.authentication.k8s.io/v1",
        &[],
        json!([{"name": "PLUGIN_SECRET", "value": "env-secret-42"}]),
    );
    let path = kubeconfig(&kube, dir.path(), "failing", user, json!({}));
    let err = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect_err("plugin fails");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("failing-plugin.sh") && text.contains("exit status: 3"),
        "{text}"
    );
    assert!(
        !text.contains(SECRET) && !text.contains("env-secret-42"),
        "{text}"
    );

    // Output that is not an ExecCredential: the secret it holds is not quoted.
    write_script(
        &script,
        &format!("echo '{{\"kind\": 5, \"token\": \"{SECRET}\"}}'"),
    );
    let err = Cluster::connect_with(&choice(&path), &empty_env())
        .await
        .expect_err("bad output");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("failing-plugin.sh") && !text.contains(SECRET),
        "{text}"
    );

    let stalled = dir.path().join("stalled-plugin.sh");
    write_script(&stalled, "sleep 30");
    let user = plugin_user(&stalled, "client.authentication.k8s.io/v1", &[], json!([]));
    let path = kubeconfig(&kube, dir.path(), "stalled", user, json!({}));
    let mut c = choice(&path);
    c.timeout = Some(Duration::from_secs(1));
    let started = Instant::now();
    let err = Cluster::connect_with(&c, &empty_env())
        .await
        .expect_err("stalled plugin stopped");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.to_string().contains("stalled-plugin.sh") && err.to_string().contains("did not finish"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubeconfig_list_merges_as_kubectl_and_falls_back_in_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let kube = start(dir.path());
    kube.add_token("merge-token", UserInfo::new("gina", &[]));
    // File a sets the current context (to one defined in b) and user u; b also
    // defines a user u with a wrong token, which must lose to a's.
    let a = json!({"apiVersion": "v1", "kind": "Config", "current-context": "from-b",
        "users": [{"name": "u", "user": {"token": "merge-token"}}]});
    let b = json!({"apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "c", "cluster": {"server": kube.server_url(), "certificate-authority-data": b64(kube.ca_pem())}}],
        "users": [{"name": "u", "user": {"token": "wrong"}}],
        "contexts": [{"name": "from-b", "context": {"cluster": "c", "user": "u"}}]});
    std::fs::write(dir.path().join("a"), a.to_string()).unwrap();
    std::fs::write(dir.path().join("b"), b.to_string()).unwrap();
    let list_var = std::env::join_paths([
        dir.path().join("missing"),
        dir.path().join("a"),
        dir.path().join("b"),
    ])
    .unwrap();
    let env = Environment {
        kubeconfig: Some(list_var),
        ..empty_env()
    };
    let plain = ClusterChoice {
        timeout: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let cluster = Cluster::connect_with(&plain, &env)
        .await
        .expect("merged config");
    assert_eq!(cluster.context, "from-b");
    assert_eq!(cluster.default_namespace, "default");
    list(&cluster).await.expect("the first file's user wins");

    // ~/.kube/config when KUBECONFIG is unset.
    std::fs::create_dir_all(dir.path().join("home/.kube")).unwrap();
    std::fs::copy(dir.path().join("b"), dir.path().join("home/.kube/config")).unwrap();
    let env = Environment {
        home: Some(dir.path().join("home")),
        ..empty_env()
    };
    let named = ClusterChoice {
        context: Some("from-b".into()),
        ..plain.clone()
    };
    let cluster = Cluster::connect_with(&named, &env)
        .await
        .expect("home config");
    assert_eq!(
        status_code(&list(&cluster).await.expect_err("b's token is wrong")),
        Some(401)
    );

    // Nothing found and not in a cluster: a clear error.
    let env = Environment {
        home: Some(dir.path().join("nohome")),
        ..empty_env()
    };
    let err = Cluster::connect_with(&plain, &env)
        .await
        .expect_err("no config");
    assert!(err.to_string().contains("no kubeconfig found"), "{err}");

    // In-cluster: token, CA and namespace files, KUBERNETES_SERVICE_*.
    let sa = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), "sa-token-1").unwrap();
    std::fs::write(sa.join("ca.crt"), kube.ca_pem()).unwrap();
    std::fs::write(sa.join("namespace"), "ci-jobs\n").unwrap();
    kube.add_token(
        "sa-token-1",
        UserInfo::new(
            "system:serviceaccount:ci-jobs:runner",
            &["system:serviceaccounts"],
        ),
    );
    let port = kube.server_url().rsplit(':').next().unwrap().to_string();
    let env = Environment {
        home: Some(dir.path().join("nohome")),
        service_host: Some("127.0.0.1".into()),
        service_port: Some(port),
        service_account_dir: sa.clone(),
        ..Default::default()
    };
    let cluster = Cluster::connect_with(&plain, &env)
        .await
        .expect("in-cluster");
    assert_eq!(
        (cluster.context.as_str(), cluster.default_namespace.as_str()),
        ("in-cluster", "ci-jobs")
    );
    list(&cluster).await.expect("service-account token works");
    std::fs::write(sa.join("token.new"), "sa-token-2").unwrap();
    std::fs::rename(sa.join("token.new"), sa.join("token")).unwrap();
    kube.add_token(
        "sa-token-2",
        UserInfo::new("system:serviceaccount:ci-jobs:runner", &[]),
    );
    kube.remove_token("sa-token-1");
    list(&cluster)
        .await
        .expect("the rotated service-account token is used");
    let env = Environment {
        pod_namespace: Some("from-downward-api".into()),
        ..env
    };
    let cluster = Cluster::connect_with(&plain, &env)
        .await
        .expect("in-cluster");
    assert_eq!(cluster.default_namespace, "from-downward-api");
}

/// An HTTP CONNECT proxy on loopback: it tunnels every CONNECT to 127.0.0.1
/// (whatever host was asked for, as a proxy resolves names itself) and counts them.
struct ConnectProxy {
    url: String,
    tunnels: Arc<AtomicUsize>,
    hosts: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    async fn start() -> ConnectProxy {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let tunnels = Arc::new(AtomicUsize::new(0));
        let hosts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (t, h) = (Arc::clone(&tunnels), Arc::clone(&hosts));
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (t, h) = (Arc::clone(&t), Arc::clone(&h));
                tokio::spawn(async move {
                    let mut reader = BufReader::new(conn);
                    let mut line = String::new();
                    reader.read_line(&mut line).await.ok()?;
                    let target = line
                        .strip_prefix("CONNECT ")?
                        .split(' ')
                        .next()?
                        .to_string();
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).await.ok()?;
                        if header == "\r\n" || header.is_empty() {
                            break;
                        }
                    }
                    let (host, port) = target.rsplit_once(':')?;
                    h.lock().unwrap().push(host.to_string());
                    let mut upstream =
                        tokio::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().ok()?))
                            .await
                            .ok()?;
                    t.fetch_add(1, Ordering::SeqCst);
                    let mut conn = reader.into_inner();
                    conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .ok()?;
                    tokio::io::copy_bidirectional(&mut conn, &mut upstream)
                        .await
                        .ok()?;
                    Some(())
                });
            }
        });
        ConnectProxy {
            url,
            tunnels,
            hosts,
        }
    }

    fn count(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proxies_follow_go_rules() {
    let dir = tempfile::tempdir().unwrap();
    let kube = start(dir.path());
    kube.add_token("proxy-token", UserInfo::new("hal", &[]));
    let proxy = ConnectProxy::start().await;
    let port = kube.server_url().rsplit(':').next().unwrap().to_string();
    // A name only the proxy resolves; the server's certificate is for localhost.
    let remote = json!({"server": format!("https://api.cluster.example:{port}"), "tls-server-name": "localhost"});
    let path = kubeconfig(
        &kube,
        dir.path(),
        "remote",
        json!({"token": "proxy-token"}),
        remote.clone(),
    );
    let env = |no_proxy: Option<&str>| Environment {
        proxy: ProxyEnv {
            https_proxy: Some(proxy.url.clone()),
            http_proxy: None,
            no_proxy: no_proxy.map(String::from),
        },
        ..empty_env()
    };

    let cluster = Cluster::connect_with(&choice(&path), &env(None))
        .await
        .expect("connect");
    list(&cluster).await.expect("through HTTPS_PROXY");
    assert_eq!(proxy.count(), 1);
    assert_eq!(
        proxy.hosts.lock().unwrap().last().map(String::as_str),
        Some("api.cluster.example")
    );

    // NO_PROXY forms that match the API server's host (not the proxy's): a
    // direct connection (not attempted: the name resolves only at the proxy).
    for no_proxy in [
        "cluster.example",
        ".example",
        "*.cluster.example",
        &format!("api.cluster.example:{port}"),
        "*",
        "other.test,,example",
    ] {
        let cluster = Cluster::connect_with(&choice(&path), &env(Some(no_proxy)))
            .await
            .expect("connect");
        assert_eq!(
            cluster.proxy, None,
            "NO_PROXY={no_proxy} must bypass the proxy"
        );
    }
    // Forms that do not match: tunnelled.
    for no_proxy in [
        "api.cluster.example:1",
        "xcluster.example",
        "127.0.0.1",
        "10.0.0.0/8",
    ] {
        let before = proxy.count();
        let cluster = Cluster::connect_with(&choice(&path), &env(Some(no_proxy)))
            .await
            .expect("connect");
        assert!(
            cluster.proxy.is_some(),
            "NO_PROXY={no_proxy} must not bypass the proxy"
        );
        list(&cluster)
            .await
            .unwrap_or_else(|e| panic!("NO_PROXY={no_proxy}: {e}"));
        assert_eq!(proxy.count(), before + 1, "NO_PROXY={no_proxy}: one tunnel");
    }

    // Loopback is never proxied.
    let local = kubeconfig(
        &kube,
        dir.path(),
        "local",
        json!({"token": "proxy-token"}),
        json!({}),
    );
    let before = proxy.count();
    let cluster = Cluster::connect_with(&choice(&local), &env(None))
        .await
        .expect("connect");
    assert_eq!(cluster.proxy, None);
    list(&cluster).await.expect("direct to loopback");
    assert_eq!(proxy.count(), before);

    // The kubeconfig's proxy-url is used even when NO_PROXY matches.
    let mut with_url = remote.clone();
    with_url["proxy-url"] = json!(proxy.url);
    let path = kubeconfig(
        &kube,
        dir.path(),
        "proxyurl",
        json!({"token": "proxy-token"}),
        with_url,
    );
    let before = proxy.count();
    let cluster = Cluster::connect_with(
        &choice(&path),
        &Environment {
            proxy: ProxyEnv {
                no_proxy: Some("*".into()),
                ..Default::default()
            },
            ..empty_env()
        },
    )
    .await
    .expect("connect");
    list(&cluster).await.expect("through proxy-url");
    assert_eq!(proxy.count(), before + 1);
}

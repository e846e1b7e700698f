//! `kubectl port-forward` (1.35: SPDY/3.1 tunnelled in a WebSocket, and the
//! plain SPDY/3.1 upgrade it falls back to) and kube-rs `Api::portforward`
//! (WebSocket `v4.channel.k8s.io`) against the real Go service, to a pod and
//! through a Service.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use localkube::LocalKube;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The Go service as a bare Pod (so deleting it does not bring a new one).
fn go_pod(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: greet}}
spec:
  containers:
    - name: app
      image: example/goapp
      ports:
        - {{name: http, containerPort: 8080}}
"#
    )
}

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: greet
spec:
  selector: {app: greet}
  ports:
    - {name: web, port: 80, targetPort: http}
"#;

/// localkube running the Go service as pod `web`.
fn start(tmp: &Path) -> LocalKube {
    let kube = LocalKube::builder(tmp.join("kube"))
        .image("example/goapp", go_image())
        .manifest(manifest(tmp, "web.yaml", &go_pod("web")))
        .start()
        .unwrap();
    wait_listening(&kube, &tmp.join("cache"), "web");
    kube
}

/// busybox `wget` in the pod: the service answers.
const PROBE: [&str; 5] = ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"];

/// Wait until the pod's service answers (asked from inside the pod).
fn wait_listening(kube: &LocalKube, cache: &Path, pod: &str) {
    let mut probe = vec!["exec", pod, "-c", "app", "--"];
    probe.extend(PROBE);
    assert!(
        eventually(Duration::from_secs(20), || kubectl(kube, cache, &probe)
            .status
            .success()),
        "pod {pod} never answered on 8080"
    );
}

/// A running `kubectl port-forward`; killed on drop.
struct Forward {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Forward {
    /// Start kubectl; `websockets: false` makes it use plain SPDY
    /// (`KUBECTL_PORT_FORWARD_WEBSOCKETS=false`, kubectl's switch).
    fn start(kube: &LocalKube, cache: &Path, target: &str, ports: &str, websockets: bool) -> Self {
        Self::start_with(kube.kubeconfig(), cache, target, ports, websockets)
    }

    /// The same with a kubeconfig file and its current context.
    fn start_with(
        kubeconfig: &Path,
        cache: &Path,
        target: &str,
        ports: &str,
        websockets: bool,
    ) -> Self {
        let mut child = Command::new(toolchain::require_kubectl())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(cache)
            .args(["-v=6", "port-forward", target, ports])
            .env(
                "KUBECTL_PORT_FORWARD_WEBSOCKETS",
                if websockets { "true" } else { "false" },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // client-go portforward.go getListener: "Forwarding from 127.0.0.1:N -> R".
                if !sent
                    && let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                    && let Some((port, _)) = rest.split_once(' ')
                {
                    let _ = tx.send(port.parse::<u16>().unwrap());
                    sent = true;
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "kubectl port-forward {target} {ports}: no port; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Forward {
            child,
            port,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// kubectl's exit status once it has ended by itself, waiting up to `limit`.
    fn exited(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 GET through a local port; the whole answer.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

fn assert_hello(answer: &str, pod: &str) {
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.contains(&format!("hello from {pod} ")),
        "unexpected answer: {answer:?}"
    );
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn kubectl_forwards_to_a_pod_over_websocket_and_spdy() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path());
    let cache = tmp.path().join("cache");
    for websockets in [true, false] {
        // A chosen local port, then a random one (":8080").
        let local = free_port();
        let fixed = Forward::start(
            &kube,
            &cache,
            "pod/web",
            &format!("{local}:8080"),
            websockets,
        );
        assert_eq!(fixed.port, local);
        assert_hello(&http_get(local, "/").unwrap(), "web");
        drop(fixed);

        let fwd = Forward::start(&kube, &cache, "pod/web", ":8080", websockets);
        // Several connections at once, each its own pair of streams.
        let answers: Vec<_> = (0..8)
            .map(|i| {
                let port = fwd.port;
                std::thread::spawn(move || http_get(port, &format!("/n{i}")))
            })
            .collect();
        for a in answers {
            assert_hello(&a.join().unwrap().unwrap(), "web");
        }
        // kubectl keeps serving afterwards.
        assert_hello(&http_get(fwd.port, "/again").unwrap(), "web");
        // Which upgrade kubectl used (-v=6 logs each request): the WebSocket
        // tunnel is a GET, the SPDY upgrade a POST (client-go
        // tools/portforward: tunneling_dialer.go, spdy dialer).
        let log = fwd.stderr();
        let method = if websockets { "GET" } else { "POST" };
        assert!(
            log.lines().any(|l| l.contains(method)
                && l.contains("/pods/web/portforward")
                && l.contains("101")),
            "kubectl did not {method} the upgrade:\n{log}"
        );
    }
}

#[test]
fn nothing_listening_is_reported_as_the_kubelet_does_and_kubectl_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path());
    let cache = tmp.path().join("cache");
    for websockets in [true, false] {
        let mut fwd = Forward::start(&kube, &cache, "pod/web", ":9999", websockets);
        // The local connection is accepted, then closed without an answer.
        let answer = http_get(fwd.port, "/").unwrap_or_default();
        assert_eq!(answer, "");
        // client-go handleConnection: a message on the error stream ends the
        // whole forward ("lost connection to pod").
        let status = fwd
            .exited(Duration::from_secs(10))
            .expect("kubectl stops after the error");
        assert!(!status.success());
        let log = fwd.stderr();
        // client-go: "an error occurred forwarding LOCAL -> REMOTE: MESSAGE".
        assert!(
            log.contains(&format!(
                "an error occurred forwarding {} -> 9999: error forwarding port 9999 to pod ",
                fwd.port
            )),
            "{log}"
        );
        assert!(
            log.contains("IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused")
                && log.contains("IPv6: dial tcp6 [::1]:9999: connect: connection refused"),
            "{log}"
        );
        assert!(log.contains("lost connection to pod"), "{log}");
    }
}

#[test]
fn the_pod_going_away_mid_stream_ends_the_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = start(tmp.path());
    let cache = tmp.path().join("cache");
    let mut fwd = Forward::start(&kube, &cache, "pod/web", ":8080", true);
    // A connection held open in the middle of a request.
    let mut held = TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    held.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    kubectl_ok(
        &kube,
        &cache,
        &["delete", "pod", "web", "--grace-period=1", "--wait=false"],
    );
    // The pod's end of the connection closes; so does ours, in time.
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = held.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(15));
    // A new connection finds no pod: kubectl reports it and stops.
    assert!(eventually(Duration::from_secs(15), || !kube
        .pods()
        .iter()
        .any(|p| p.name == "web")));
    let _ = http_get(fwd.port, "/");
    let status = fwd
        .exited(Duration::from_secs(10))
        .expect("kubectl stops once the pod is gone");
    assert!(!status.success());
    let log = fwd.stderr();
    assert!(log.contains("lost connection to pod"), "{log}");
    // localkube itself is fine.
    kubectl_ok(&kube, &cache, &["get", "pods"]);
}

/// A pod with the Service's label that runs but is not ready: one of its
/// two containers has ended (restartPolicy Never).
const HALF_DONE: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: half
  labels: {app: greet}
spec:
  restartPolicy: Never
  containers:
    - name: app
      image: example/goapp
      ports:
        - {name: http, containerPort: 8080}
    - name: once
      image: example/sleeper
      args: ["0"]
"#;

#[test]
fn kubectl_forwards_to_a_service_through_its_selector_and_target_port() {
    let tmp = tempfile::tempdir().unwrap();
    let half = manifest(tmp.path(), "half.yaml", HALF_DONE);
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .image("example/goapp", go_image())
        .image("example/sleeper", sleeper_image())
        .manifest(manifest(tmp.path(), "web.yaml", &go_pod("web")))
        .manifest(&half)
        .manifest(manifest(tmp.path(), "svc.yaml", SERVICE))
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    wait_listening(&kube, &cache, "web");
    let ip = |name: &str| {
        kube.pods()
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.ip.to_string())
            .unwrap()
    };
    // Endpoints: the ready pod's address, the other one's as not ready, the
    // named targetPort resolved to the container port.
    let query = "jsonpath={.subsets[*].addresses[*].ip}/{.subsets[*].notReadyAddresses[*].ip}/{.subsets[*].ports[*].port}";
    let want = format!("{}/{}/8080", ip("web"), ip("half"));
    assert!(
        eventually(Duration::from_secs(20), || {
            let out = kubectl(&kube, &cache, &["get", "endpoints", "greet", "-o", query]);
            String::from_utf8_lossy(&out.stdout) == want
        }),
        "endpoints never became {want}"
    );
    // The table and the API server's deprecation warning.
    let out = kubectl(&kube, &cache, &["get", "endpoints"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains(&format!("greet   {}:8080 ", ip("web"))),
        "{stdout}"
    );
    assert!(
        stderr.contains("v1 Endpoints is deprecated in v1.33+"),
        "{stderr}"
    );

    // EndpointSlices: both pods, with their readiness, under the Service's label.
    let mut ips = [(ip("web"), "true"), (ip("half"), "false")];
    ips.sort();
    let want: String = ips
        .iter()
        .map(|(ip, ready)| format!("{ip}={ready} "))
        .collect();
    let slices = kubectl_ok(
        &kube,
        &cache,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=greet",
            "-o",
            "jsonpath={range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready} {end}",
        ],
    );
    assert_eq!(slices, want);
    let table = kubectl_ok(&kube, &cache, &["get", "endpointslices"]);
    assert!(
        table.contains(&format!("IPv4          8080    {},{}", ips[0].0, ips[1].0)),
        "{table}"
    );

    // kubectl resolves the Service (GET services/greet), picks a pod by its
    // selector (ready ones first) and maps port 80 to the named targetPort
    // "http" (8080).
    for websockets in [true, false] {
        let fwd = Forward::start(&kube, &cache, "svc/greet", ":80", websockets);
        assert_hello(&http_get(fwd.port, "/").unwrap(), "web");
        let log = fwd.stderr();
        assert!(log.contains("/services/greet"), "{log}");
        assert!(log.contains("/pods/web/portforward"), "{log}");
    }
}

/// One GET over a kube-rs port-forward to `port` of `pod`.
async fn kube_rs_get(pods: &Api<Pod>, pod: &str, port: u16) -> Result<String, String> {
    let mut pf = pods
        .portforward(pod, &[port])
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = pf.take_stream(port).unwrap();
    let error = pf.take_error(port).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    let _ = read
        .await
        .map_err(|_| "no end of the answer in 10 s".to_string())?;
    if answer.is_empty()
        && let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), error).await
    {
        return Err(msg);
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_forwards_over_v4_channels() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = tokio::task::block_in_place(|| start(tmp.path()));
    let pods: Api<Pod> = Api::namespaced(client(&kube).await, "default");
    // Several forwards at once.
    let gets: Vec<_> = (0..6)
        .map(|_| {
            let pods = pods.clone();
            tokio::spawn(async move { kube_rs_get(&pods, "web", 8080).await })
        })
        .collect();
    for g in gets {
        assert_hello(&g.await.unwrap().unwrap(), "web");
    }
    // Nothing listening: the error channel carries the kubelet's message.
    // Nothing is sent: the server closes the WebSocket after the message,
    // as the kubelet does, and kube-rs drops an error it has not yet handed
    // over when a write to the closed socket fails first.
    let mut pf = pods.portforward("web", &[9999]).await.unwrap();
    let error = pf.take_error(9999).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), error)
        .await
        .expect("the error message within 10 s")
        .expect("an error message");
    assert!(
        err.starts_with("error forwarding port 9999 to pod ") && err.contains("connection refused"),
        "{err}"
    );
    // The pod going away mid-stream ends the forward.
    let mut pf = pods.portforward("web", &[8080]).await.unwrap();
    let mut stream = pf.take_stream(8080).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let cache = tmp.path().join("cache");
    tokio::task::block_in_place(|| {
        kubectl_ok(
            &kube,
            &cache,
            &["delete", "pod", "web", "--grace-period=1", "--wait=false"],
        )
    });
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut rest))
        .await
        .expect("the forward ends when the pod goes away")
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), pf.join()).await;
}

/// Without root (user namespaces, loopback-only pod networks) port-forward
/// works the same: the socket is made inside the pod's network by its holder.
#[test]
fn port_forward_works_unprivileged() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let m = manifest(tmp.path(), "web.yaml", &go_pod("web"));
    let dir = tmp.path().join("kube");
    // Run as `nobody` (the tests run as root here; setpriv drops the privileges).
    let mut up = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_localkube"))
        .args(["up", "--dir"])
        .arg(&dir)
        .arg("-f")
        .arg(&m)
        .arg("--image")
        .arg(format!("example/goapp={}", go_image().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("setpriv (util-linux) runs");
    // Stop localkube however the test ends.
    struct Up(Child);
    impl Drop for Up {
        fn drop(&mut self) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
    let stdout = up.stdout.take().unwrap();
    let up = Up(up);
    let mut out = BufReader::new(stdout);
    let mut line = String::new();
    // `up` prints the kubeconfig, the context, then one line per pod.
    for _ in 0..3 {
        line.clear();
        out.read_line(&mut line).unwrap();
    }
    assert!(line.contains("default/web"), "{line}");
    let kubeconfig = dir.join("kubeconfig");
    let cache = tmp.path().join("cache");
    let probe = |args: &[&str]| {
        Command::new(toolchain::require_kubectl())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    };
    let mut args = vec!["exec", "web", "--"];
    args.extend(PROBE);
    assert!(eventually(Duration::from_secs(20), || probe(&args)));
    for websockets in [true, false] {
        let fwd = Forward::start_with(&kubeconfig, &cache, "pod/web", ":8080", websockets);
        assert_hello(&http_get(fwd.port, "/").unwrap(), "web");
    }
    drop(up);
}

const PORTFORWARD_RBAC: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-pods, namespace: default}
rules:
  - {apiGroups: [""], resources: [pods], verbs: [get, list]}
  - {apiGroups: [""], resources: [pods/portforward], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: forward, namespace: default}
rules:
  - {apiGroups: [""], resources: [pods], verbs: [get, list]}
  - {apiGroups: [""], resources: [pods/portforward], verbs: [get, create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-reads, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-pods}
subjects: [{kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-forwards, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: forward}
subjects: [{kind: User, name: bob}]
"#;

/// `pods/portforward` needs `create`, for kubectl's WebSocket (GET) upgrade
/// too since 1.35 (`AuthorizePodWebsocketUpgradeCreatePermission`); `get`
/// alone is refused on both of kubectl's ways in.
#[test]
fn port_forward_needs_create_on_pods_portforward() {
    let tmp = tempfile::tempdir().unwrap();
    let rbac = manifest(tmp.path(), "rbac.yaml", PORTFORWARD_RBAC);
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .image("example/goapp", go_image())
        .manifest(manifest(tmp.path(), "web.yaml", &go_pod("web")))
        .rbac(&rbac)
        .start()
        .unwrap();
    let cache = tmp.path().join("cache");
    wait_listening(&kube, &cache, "web");
    kube.add_token("alice-token", localkube::UserInfo::new("alice", &[]));
    kube.add_token("bob-token", localkube::UserInfo::new("bob", &[]));
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, kube.ca_pem()).unwrap();
    let config = |user: &str| {
        let cfg = serde_json::json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": kube.server_url(), "certificate-authority": ca}}],
            "users": [{"name": "u", "user": {"token": format!("{user}-token")}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
        });
        let path = tmp.path().join(format!("{user}.kubeconfig"));
        std::fs::write(&path, cfg.to_string()).unwrap();
        path
    };
    let alice = config("alice");
    for websockets in ["true", "false"] {
        let out = Command::new(toolchain::require_kubectl())
            .arg("--kubeconfig")
            .arg(&alice)
            .arg("--cache-dir")
            .arg(&cache)
            .args(["port-forward", "pod/web", ":8080"])
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains(
                "pods \"web\" is forbidden: User \"alice\" cannot create resource \"pods/portforward\" in API group \"\" in the namespace \"default\""
            ),
            "{err}"
        );
    }
    for websockets in [true, false] {
        let fwd = Forward::start_with(&config("bob"), &cache, "pod/web", ":8080", websockets);
        assert_hello(&http_get(fwd.port, "/").unwrap(), "web");
    }
}

/// A raw WebSocket to the pod's portforward endpoint offering `protocol`.
async fn raw_ws(
    kube: &LocalKube,
    query: &str,
    protocol: &'static str,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(kube.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let url = kube.server_url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let uri =
        format!("wss://127.0.0.1:{port}/api/v1/namespaces/default/pods/web/portforward?{query}");
    let mut request = uri.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {}", kube.token())).unwrap(),
    );
    let (ws, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    assert_eq!(response.headers()["Sec-WebSocket-Protocol"], protocol);
    ws
}

/// Hostile bytes in the SPDY tunnel end that session with GOAWAY (protocol
/// error), as spdystream does; nothing hangs and the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_spdy_ends_the_session_with_goaway() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let tmp = tempfile::tempdir().unwrap();
    let kube = tokio::task::block_in_place(|| start(tmp.path()));
    for garbage in [
        // A SPDY/2 PING.
        vec![0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1],
        // A SYN_STREAM whose header block is not zlib.
        vec![
            0x80, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4,
        ],
        // A frame announcing 16 MiB.
        vec![0, 0, 0, 1, 0, 0xff, 0xff, 0xff],
    ] {
        let mut ws = raw_ws(&kube, "", "SPDY/3.1+portforward.k8s.io").await;
        ws.send(Message::Binary(garbage.into())).await.unwrap();
        let mut got = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Binary(b) = msg {
                    got.extend_from_slice(&b);
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the session did not end");
        // GOAWAY, last good stream 0, status 1 (PROTOCOL_ERROR).
        assert_eq!(got, [0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
    }
    // localkube still serves.
    let pods: Api<Pod> = Api::namespaced(client(&kube).await, "default");
    assert_hello(&kube_rs_get(&pods, "web", 8080).await.unwrap(), "web");
}

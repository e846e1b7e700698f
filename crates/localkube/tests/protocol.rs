//! The exec wire protocol at frame level, with a raw WebSocket client: the v4
//! subprotocol (kube-rs and kubectl both pick v5 when offered), pings, the status
//! frame and the close.

mod common;

use std::sync::Arc;

use common::*;
use futures::{SinkExt, StreamExt};
use localkube::LocalKube;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Open an exec WebSocket offering only `protocol`, with the query `query`.
async fn open(kube: &LocalKube, pod: &str, query: &str, protocol: &'static str) -> Ws {
    let mut roots = rustls::RootCertStore::empty();
    let ca_path = kube.kubeconfig().with_file_name("ca.crt");
    roots
        .add(CertificateDer::from_pem_file(ca_path).unwrap())
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
    let uri = format!("wss://127.0.0.1:{port}/api/v1/namespaces/default/pods/{pod}/exec?{query}");
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

#[tokio::test]
async fn v4_exec_frames_status_and_close() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 1));
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let pod = kube.pods().remove(0).name;

    let mut ws = open(
        &kube,
        &pod,
        "command=sh&command=-c&command=sleep+0.5%3B+printf+hi%3B+exit+2&container=app&stdout=true&stderr=true",
        "v4.channel.k8s.io",
    )
    .await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();

    let mut stdout = Vec::new();
    let mut status = None;
    let mut pong = false;
    let mut close = None;
    while let Some(msg) = ws.next().await {
        match msg.unwrap() {
            Message::Binary(b) => match b[0] {
                1 => stdout.extend_from_slice(&b[1..]),
                3 => status = Some(serde_json::from_slice::<serde_json::Value>(&b[1..]).unwrap()),
                c => panic!("unexpected channel {c}"),
            },
            Message::Pong(p) => pong = p.as_ref() == b"are you there",
            Message::Close(frame) => {
                close = frame.map(|f| u16::from(f.code));
                break;
            }
            other => panic!("unexpected message {other:?}"),
        }
    }
    assert_eq!(stdout, b"hi");
    assert!(pong, "the server answers pings");
    let status = status.expect("a status frame");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "2");
    assert_eq!(close, Some(1000));
}

#[tokio::test]
async fn v5_output_frames_are_at_most_32_kib() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 1));
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleeper_image())
        .start()
        .unwrap();
    let pod = kube.pods().remove(0).name;
    let mut ws = open(
        &kube,
        &pod,
        "command=head&command=-c&command=1000000&command=/dev/zero&container=app&stdout=true",
        "v5.channel.k8s.io",
    )
    .await;
    let (mut total, mut largest, mut status) = (0usize, 0usize, None);
    while let Some(msg) = ws.next().await {
        match msg.unwrap() {
            Message::Binary(b) if b[0] == 1 => {
                total += b.len() - 1;
                largest = largest.max(b.len() - 1);
            }
            Message::Binary(b) if b[0] == 3 => {
                status = Some(serde_json::from_slice::<serde_json::Value>(&b[1..]).unwrap());
            }
            Message::Close(_) => break,
            other => panic!("unexpected message {other:?}"),
        }
    }
    assert_eq!(total, 1_000_000);
    assert!(largest <= 32 * 1024, "frame of {largest} bytes");
    assert_eq!(status.unwrap()["status"], "Success");
}

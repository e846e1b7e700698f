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

#[tokio::test]
async fn v4_exec_frames_status_and_close() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), "web.yaml", &sleep_deployment("web", 1));
    let kube = LocalKube::builder(tmp.path().join("kube"))
        .manifest(&m)
        .image("example/sleeper", sleep_binary())
        .start()
        .unwrap();
    let pod = kube.pods().remove(0).name;

    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(tmp.path().join("kube/ca.crt")).unwrap();
    roots.add(ca).unwrap();
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

    let uri = format!(
        "wss://127.0.0.1:{port}/api/v1/namespaces/default/pods/{pod}/exec?command=sh&command=-c&command=printf+hi%3B+exit+2&container=app&stdout=true&stderr=true"
    );
    let mut request = uri.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("v4.channel.k8s.io"),
    );
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {}", kube.token())).unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    assert_eq!(
        response.headers()["Sec-WebSocket-Protocol"],
        "v4.channel.k8s.io"
    );
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

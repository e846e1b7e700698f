//! `pods/{name}/portforward`: connections from the client to `localhost:PORT`
//! inside the pod's network namespace (see [`crate::sys::netns`]), as the
//! kubelet serves them through the CRI runtime (containerd
//! `internal/cri/server/sandbox_portforward_linux.go`).
//!
//! Three ways in, chosen at the upgrade, as a 1.35 API server and kubelet offer
//! them:
//! * WebSocket `v4.channel.k8s.io` (kube-rs `Api::portforward`): the ports come
//!   from the `ports` query; see [`websocket`].
//! * WebSocket `SPDY/3.1+portforward.k8s.io` (kubectl since 1.31): SPDY/3.1
//!   frames tunnelled in binary messages (the API server's
//!   `apiserver/pkg/util/proxy/streamtunnel.go`); see [`spdy`].
//! * `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io`
//!   (kubectl's fallback, and older clients); see [`spdy`].
//!
//! The API server accepts `ports` repeated or comma-separated
//! (kubernetes `pkg/apis/core/v1/conversion.go`,
//! `Convert_Slice_string_To_Slice_int32`).

mod spdy;
mod websocket;

use std::sync::{Arc, Weak};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::Cluster;
use crate::status::{error, pod_not_found};
use crate::sys::netns::PodNetwork;

/// The WebSocket subprotocol of kubectl's SPDY tunnel
/// (client-go `tools/portforward/tunneling_dialer.go`: the prefix
/// `SPDY/3.1+` before the port-forward protocol name).
const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// `X-Stream-Protocol-Version` of port-forward over plain SPDY
/// (kubelet `pkg/cri/streaming/portforward/constants.go` `ProtocolV1Name`).
const PORTFORWARD_V1: &str = "portforward.k8s.io";
const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// What a session forwards to: one pod's network, while it lasts. A weak
/// reference, so an open session never keeps a deleted pod's network alive.
#[derive(Clone)]
pub(crate) struct Target {
    network: Weak<PodNetwork>,
    /// Stands in for the CRI sandbox id in messages.
    sandbox: String,
    netns: String,
}

impl Target {
    /// Forward `port` of the pod over `stream`, as containerd's `portForward`
    /// does; `Err` carries the message the kubelet writes on the error
    /// stream (kubelet `cri/streaming/portforward/httpstream.go`: "error
    /// forwarding port %d to pod %s, uid %v: %v", with the sandbox id as the
    /// pod and an empty uid, as the CRI streaming server calls it).
    async fn connect(&self, port: u16) -> Result<tokio::net::TcpStream, String> {
        let wrap = |e: String| {
            format!(
                "error forwarding port {port} to pod {}, uid : {e}",
                self.sandbox
            )
        };
        let Some(network) = self.network.upgrade() else {
            return Err(wrap(format!(
                "network namespace for sandbox \"{}\" is closed",
                self.sandbox
            )));
        };
        network.connect(port).await.map_err(|e| {
            wrap(format!(
                "failed to execute portforward in network namespace \"{}\": {e}",
                self.netns
            ))
        })
    }

    /// The kubelet's message for a forward that failed after connecting.
    fn copy_error(&self, port: u16, e: &std::io::Error) -> String {
        format!(
            "error forwarding port {port} to pod {}, uid : failed to execute portforward for \"{}\" port {port}: {e}",
            self.sandbox, self.sandbox
        )
    }
}

/// The ports of a WebSocket port-forward request.
fn ports(q: &[(String, String)]) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for (_, v) in q.iter().filter(|(k, _)| k == "ports") {
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            // kubelet cri/streaming/portforward/websocket.go parsePortsFromURL.
            match p.parse::<u16>() {
                Ok(0) => return Err(format!("port \"{p}\" must be > 0")),
                Ok(n) => out.push(n),
                Err(e) => return Err(format!("unable to parse \"{p}\" as a port: {e}")),
            }
        }
    }
    Ok(out)
}

fn header_has(headers: &HeaderMap, name: impl header::AsHeaderName, want: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(want))
}

/// The upgrade: find the pod, choose the protocol, hand the connection over.
pub(crate) async fn handler(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    let target = {
        let inner = c.lock();
        let Some(pod) = inner.pod(&ns, &name) else {
            return pod_not_found(&name);
        };
        let phase = pod.phase();
        if pod.faults.phase.as_deref() == Some("Pending") {
            // Unscheduled: the API server finds no node to send it to
            // (pkg/registry/core/pod/strategy.go PortForwardLocation).
            return error(
                400,
                format!("pod {name} does not have a host assigned"),
                None,
            );
        }
        let Some(network) = pod.network.as_ref().filter(|_| phase == "Running") else {
            // kubectl checks this itself first ("unable to forward port because
            // pod is not running"); for a bare client the CRI runtime fails to
            // find a running sandbox.
            return error(
                400,
                format!(
                    "unable to forward port because pod is not running. Current status={phase}"
                ),
                Some(json!({"name": name, "kind": "pods"})),
            );
        };
        Target {
            network: Arc::downgrade(network),
            sandbox: pod.uid.clone(),
            netns: network.path(),
        }
    };
    let (mut parts, body) = req.into_parts();
    if header_has(&parts.headers, header::UPGRADE, "websocket") {
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(u) => u.protocols([websocket::V4, SPDY_TUNNEL]),
            Err(e) => return e.into_response(),
        };
        return match upgrade.selected_protocol().and_then(|p| p.to_str().ok()) {
            Some(websocket::V4) => {
                let ports = match ports(&q) {
                    Ok(p) if !p.is_empty() => p,
                    Ok(_) => return error(400, "query parameter \"ports\" is required", None),
                    Err(e) => return error(400, e, None),
                };
                upgrade
                    .max_frame_size(1 << 20)
                    .on_upgrade(move |socket| websocket::session(socket, target, ports))
            }
            Some(SPDY_TUNNEL) => upgrade
                .max_frame_size(1 << 20)
                .on_upgrade(move |socket| spdy::tunnelled(socket, target)),
            _ => error(
                400,
                format!(
                    "unable to upgrade: none of the requested WebSocket subprotocols is served; localkube serves {} and {SPDY_TUNNEL} for port-forward",
                    websocket::V4
                ),
                None,
            ),
        };
    }
    if header_has(&parts.headers, header::UPGRADE, "SPDY/3.1") {
        // apimachinery httpstream.Handshake: a client that names protocols
        // must name one the server speaks.
        let offered: Vec<String> = parts
            .headers
            .get_all(STREAM_PROTOCOL_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if !offered.is_empty() && !offered.iter().any(|p| p == PORTFORWARD_V1) {
            return error(
                403,
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts [\"{PORTFORWARD_V1}\"]"
                ),
                None,
            );
        }
        let req = Request::from_parts(parts, body);
        tokio::spawn(async move {
            match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    spdy::serve(hyper_util::rt::TokioIo::new(upgraded), target).await;
                }
                Err(e) => tracing::debug!("port-forward: SPDY upgrade failed: {e}"),
            }
        });
        return (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, "Upgrade"),
                (header::UPGRADE, "SPDY/3.1"),
                (
                    header::HeaderName::from_static(STREAM_PROTOCOL_HEADER),
                    PORTFORWARD_V1,
                ),
            ],
        )
            .into_response();
    }
    error(400, "Upgrade request required", None)
}

//! The "stall" fault: an API server that stops answering, to test that
//! clients give up within their deadline.
//!
//! A real API server stalls this way behind a dead load balancer (connections
//! accepted, nothing comes back) or when etcd hangs mid-request (the status
//! line and headers are written, the body never is).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::Cluster;

/// How the whole API server stalls; see [`crate::LocalKube::set_stall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// TCP connections are accepted and then never read from or answered (no TLS handshake).
    Accept,
    /// Every request gets `200 OK` and its headers, then never a byte of body.
    Headers,
}

/// Whether new connections should be held without a handshake.
pub(crate) fn holds_connections(cluster: &Cluster) -> bool {
    *cluster.stall.lock().unwrap_or_else(|p| p.into_inner()) == Some(Stall::Accept)
}

/// Middleware: under [`Stall::Headers`], answer headers and a body that never comes.
pub(crate) async fn headers_only(
    State(cluster): State<Arc<Cluster>>,
    req: Request,
    next: Next,
) -> Response {
    let stalled = *cluster.stall.lock().unwrap_or_else(|p| p.into_inner()) == Some(Stall::Headers);
    if !stalled {
        return next.run(req).await;
    }
    let never = futures::stream::pending::<Result<Vec<u8>, std::io::Error>>();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(never))
        .unwrap_or_default()
}

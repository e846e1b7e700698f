//! Counting the API requests clients make, so benchmarks can say what a tool
//! costs a control plane: every HTTP request that reached routing, and among
//! them the exec upgrades (each one an API server → kubelet → runtime round
//! trip on a real cluster).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::Cluster;

/// Requests served since start; see [`crate::LocalKube::request_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every API request (discovery, lists, gets, execs, patches, …).
    pub requests: u64,
    /// Requests for `pods/{name}/exec`.
    pub execs: u64,
}

/// The counters behind [`RequestCounts`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    execs: AtomicU64,
}

impl Counters {
    pub(crate) fn get(&self) -> RequestCounts {
        RequestCounts {
            requests: self.requests.load(Ordering::Relaxed),
            execs: self.execs.load(Ordering::Relaxed),
        }
    }
}

/// Middleware: count the request, then serve it.
pub(crate) async fn count(
    State(cluster): State<Arc<Cluster>>,
    req: Request,
    next: Next,
) -> Response {
    cluster.requests.requests.fetch_add(1, Ordering::Relaxed);
    if req.uri().path().ends_with("/exec") {
        cluster.requests.execs.fetch_add(1, Ordering::Relaxed);
    }
    next.run(req).await
}

//! HTTPS on 127.0.0.1: TLS handshake, bearer-token check, routing.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api;
use crate::auth::UserInfo;
use crate::deployments;
use crate::ephemeral;
use crate::state::Cluster;
use crate::status;

fn router(cluster: Arc<Cluster>) -> Router {
    Router::new()
        .route("/version", get(api::version))
        .route("/api", get(api::api_versions))
        .route("/api/v1", get(api::api_v1))
        .route("/apis", get(api::api_groups))
        .route("/api/v1/pods", any(api::list_all_pods))
        .route("/api/v1/namespaces", get(api::list_namespaces))
        .route("/api/v1/namespaces/{ns}", get(api::get_namespace))
        .route("/api/v1/namespaces/{ns}/pods", any(api::list_pods))
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            get(api::get_pod)
                .delete(crate::lifecycle::delete_pod)
                .fallback(api::get_pod),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(api::pod_log))
        .route("/api/v1/namespaces/{ns}/pods/{name}/exec", any(api::exec))
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/portforward",
            any(crate::portforward::handler),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/attach",
            any(ephemeral::attach),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/ephemeralcontainers",
            any(ephemeral::handle),
        )
        .route("/api/v1/services", any(api::list_all_services))
        .route(
            "/api/v1/namespaces/{ns}/services",
            any(api::list_ns_services),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{name}",
            any(api::get_service),
        )
        .route("/api/v1/endpoints", any(crate::endpoints::list_all))
        .route(
            "/api/v1/namespaces/{ns}/endpoints",
            any(crate::endpoints::list_ns),
        )
        .route(
            "/api/v1/namespaces/{ns}/endpoints/{name}",
            any(crate::endpoints::get),
        )
        .route(
            "/apis/discovery.k8s.io",
            get(|| async { api::group("discovery.k8s.io") }),
        )
        .route("/apis/discovery.k8s.io/v1", get(crate::endpointslices::v1))
        .route(
            "/apis/discovery.k8s.io/v1/endpointslices",
            any(crate::endpointslices::list_all),
        )
        .route(
            "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
            any(crate::endpointslices::list_ns),
        )
        .route(
            "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}",
            any(crate::endpointslices::get),
        )
        .route("/apis/apps", get(|| async { api::group("apps") }))
        .route("/apis/apps/v1", get(deployments::apps_v1))
        .route("/apis/apps/v1/deployments", any(deployments::list_all))
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments",
            any(deployments::list_ns),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            any(deployments::one),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            any(crate::access_review::create),
        )
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&cluster),
            crate::rbac::authorize,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&cluster),
            authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&cluster),
            crate::stall::headers_only,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&cluster),
            crate::requests::count,
        ))
        .with_state(cluster)
}

/// The identity of a connection's valid client certificate, if any.
#[derive(Clone)]
struct PeerIdentity(Option<UserInfo>);

/// The API server's union authenticator: the client certificate first, then
/// the bearer token; neither gives 401. The user rides along as an extension.
async fn authenticate(
    State(cluster): State<Arc<Cluster>>,
    mut req: Request,
    next: Next,
) -> Response {
    let from_cert = req
        .extensions()
        .get::<PeerIdentity>()
        .and_then(|p| p.0.clone());
    let user = from_cert.or_else(|| {
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| cluster.auth.by_token(t.trim()))
    });
    let Some(user) = user else {
        return status::error(401, "Unauthorized", None);
    };
    let user = match crate::access_review::acting_user(&cluster, user, req.headers()) {
        Ok(u) => u,
        Err(refused) => return *refused,
    };
    req.extensions_mut().insert(user);
    next.run(req).await
}

/// Accept connections until `shutdown` fires.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    cluster: Arc<Cluster>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(listener))
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot serve: {e}");
            return;
        }
    };
    let acceptor = TlsAcceptor::from(tls);
    let app = router(Arc::clone(&cluster));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let app = app.clone();
                let cluster = Arc::clone(&cluster);
                connections.spawn(async move {
                    if crate::stall::holds_connections(&cluster) {
                        // Keep the socket open and silent until shutdown aborts this task.
                        let _held = &tcp;
                        std::future::pending::<()>().await;
                    }
                    let tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                    };
                    let peer_user = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| cluster.auth.by_certificate(chain));
                    let app = app.layer(axum::Extension(PeerIdentity(peer_user)));
                    let service = TowerToHyperService::new(app);
                    let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .http1_only()
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .await;
                    if let Err(e) = conn {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

//! What a pod needs to talk to the API server the way a kubelet sets it up,
//! so a client inside a pod (kubectl, client-go, kube-rs `Config::incluster`)
//! works as it would on a cluster:
//!
//! - `KUBERNETES_SERVICE_HOST`/`_PORT` (and `_PORT_HTTPS`) name the
//!   `kubernetes` Service's ClusterIP and port (`pkg/kubelet/kubelet_pods.go`
//!   `getServiceEnvVarMap`); inside the pod's network that address is on
//!   `lo` and localkube forwards its connections to the API server;
//! - the service-account token volume (Kubernetes docs, "Configure Service
//!   Accounts for Pods" and "Projected volumes": the `kube-api-access-*`
//!   projected volume of `token`, `ca.crt` and `namespace`, read-only at
//!   `/var/run/secrets/kubernetes.io/serviceaccount`, mode 0644), unless the
//!   pod sets `automountServiceAccountToken: false`; the token authenticates
//!   as `system:serviceaccount:<ns>:<serviceAccountName or default>` in the
//!   groups `system:serviceaccounts` and `system:serviceaccounts:<ns>`, so
//!   RBAC bindings for that service account apply.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::PodSpec;

use crate::auth::UserInfo;
use crate::state::Cluster;
use crate::sys::netns::{KUBERNETES_SERVICE_IP, PodNetwork};

/// Where the kubelet mounts the service-account volume.
pub(crate) const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The `kubernetes` Service's port.
pub(crate) const SERVICE_PORT: u16 = 443;

/// The kubelet's service variables for the `kubernetes` Service.
pub(crate) fn service_env() -> Vec<(String, String)> {
    let ip = KUBERNETES_SERVICE_IP.to_string();
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), ip.clone()),
        ("KUBERNETES_SERVICE_PORT".into(), SERVICE_PORT.to_string()),
        (
            "KUBERNETES_SERVICE_PORT_HTTPS".into(),
            SERVICE_PORT.to_string(),
        ),
        (
            "KUBERNETES_PORT".into(),
            format!("tcp://{ip}:{SERVICE_PORT}"),
        ),
    ]
}

/// The pod's service account, when its token is mounted.
pub(crate) fn mounted_account(spec: &PodSpec) -> Option<String> {
    if spec.automount_service_account_token == Some(false) {
        return None;
    }
    Some(
        spec.service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into()),
    )
}

/// The folder behind the pod's service-account volume.
pub(crate) fn volume_dir(pod_dir: &Path) -> PathBuf {
    pod_dir.join("kube-api-access")
}

/// Write the pod's service-account volume and accept its token.
pub(crate) fn write_volume(
    cluster: &Cluster,
    pod_dir: &Path,
    namespace: &str,
    account: &str,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = volume_dir(pod_dir);
    std::fs::create_dir_all(&dir)?;
    let token = crate::tls::random_token();
    for (name, data) in [
        ("token", token.as_str()),
        ("ca.crt", cluster.ca_pem.as_str()),
        ("namespace", namespace),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, data)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let groups = [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
    ];
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    cluster.auth.add_token(
        &token,
        UserInfo::new(
            format!("system:serviceaccount:{namespace}:{account}"),
            &groups,
        ),
    );
    Ok(())
}

/// Listen on the `kubernetes` Service's address inside the pod's network
/// and forward each connection to the API server at `127.0.0.1:api_port`.
/// It ends when the pod (or its network) is gone.
pub(crate) fn serve_service(
    cluster: &Arc<Cluster>,
    network: &Arc<PodNetwork>,
    namespace: &str,
    pod: &str,
    api_port: u16,
) -> std::io::Result<()> {
    let listener = network.listen(SocketAddrV4::new(KUBERNETES_SERVICE_IP, SERVICE_PORT))?;
    listener.set_nonblocking(true)?;
    let _guard = cluster.runtime.enter();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (cluster, namespace, pod) = (Arc::clone(cluster), namespace.to_string(), pod.to_string());
    let network = Arc::downgrade(network);
    cluster.runtime.clone().spawn(async move {
        loop {
            let accepted = tokio::time::timeout(Duration::from_secs(1), listener.accept()).await;
            let ours = network.upgrade().is_some_and(|n| {
                cluster
                    .lock()
                    .pod(&namespace, &pod)
                    .and_then(|p| p.network.as_ref())
                    .is_some_and(|current| Arc::ptr_eq(current, &n))
            });
            if !ours {
                return;
            }
            let mut client = match accepted {
                Err(_) => continue,
                Ok(Ok((client, _))) => client,
                Ok(Err(e)) => {
                    tracing::debug!("kubernetes Service: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                match tokio::net::TcpStream::connect(("127.0.0.1", api_port)).await {
                    Ok(mut upstream) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    Err(e) => tracing::debug!("kubernetes Service: API server: {e}"),
                }
            });
        }
    });
    Ok(())
}

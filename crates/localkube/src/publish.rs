//! Publishing a pod's port on the host, on request only
//! ([`crate::LocalKubeBuilder::publish_ports`]): a listener on `127.0.0.1`
//! whose connections are forwarded into the pod's network, like
//! `docker run -p`. A cluster publishes nothing by itself; users reach pods
//! through `kubectl port-forward`, which works whether or not this is on.

use std::sync::Arc;
use std::time::Duration;

use crate::state::Cluster;

/// Serve every published port of a newly prepared pod.
pub(crate) fn spawn_all(cluster: &Arc<Cluster>, published: Vec<crate::pods::Published>) {
    for p in published {
        cluster.runtime.spawn(serve(
            p.listener,
            Arc::clone(cluster),
            p.namespace,
            p.pod,
            p.container_port,
        ));
    }
}

/// Accept connections on `listener` and forward each to `localhost:port` in the pod's network.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    cluster: Arc<Cluster>,
    namespace: String,
    pod: String,
    port: u16,
) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(listener))
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%namespace, %pod, port, "cannot publish the port: {e}");
            return;
        }
    };
    loop {
        let mut client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of descriptors, most likely: wait instead of spinning.
                tracing::debug!(%namespace, %pod, port, "accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let network = match cluster.lock().pod(&namespace, &pod) {
            Some(p) => p.network.clone(),
            // The pod was deleted: its published port goes with it.
            None => return,
        };
        let Some(network) = network else { continue };
        tokio::spawn(async move {
            match network.connect(port).await {
                Ok(mut upstream) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                Err(e) => tracing::debug!(port, "published port: cannot reach the pod: {e}"),
            }
        });
    }
}

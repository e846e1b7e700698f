//! Which cluster: the kubeconfig and context, chosen the way kubectl chooses them.
//!
//! Kubeconfig: `--kubeconfig`, else `KUBECONFIG` (a path list, merged), else
//! `~/.kube/config`. Context: `--context`, else `SKAFFOLD_KUBE_CONTEXT` (the
//! binaries pass whichever is set, flag first), else the file's current context.
//! The kubeconfig is parsed by kube-rs, never by hand.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::Error;

/// What the user asked for; `None` means "as kubectl would choose".
#[derive(Debug, Clone, Default)]
pub struct ClusterChoice {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// A connected client and the names needed to explain what was searched.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The context actually used.
    pub context: String,
    /// The API server URL (never credentials).
    pub server: String,
}

impl std::fmt::Debug for Cluster {
    // Deliberately prints names only: a client's config holds tokens and keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("context", &self.context)
            .field("server", &self.server)
            .finish()
    }
}

impl Cluster {
    /// Read the kubeconfig, pick the context, build a client.
    pub async fn connect(choice: &ClusterChoice) -> Result<Cluster, Error> {
        let kubeconfig = match &choice.kubeconfig {
            Some(path) => Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                path: path.clone(),
                source,
            })?,
            None => Kubeconfig::read().map_err(|source| Error::NoKubeconfig { source })?,
        };
        let context = match &choice.context {
            Some(c) => c.clone(),
            None => kubeconfig.current_context.clone().ok_or(Error::NoContext)?,
        };
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let available: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(Error::UnknownContext {
                context,
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            });
        }
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| Error::Config {
                context: context.clone(),
                source,
            })?;
        // Our own retry (crate::retry) is bounded and logged; kube's default
        // layer would retry up to 15 times with long waits.
        config.default_retry = false;
        config.connect_timeout = Some(Duration::from_secs(10));
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|source| Error::Client {
            context: context.clone(),
            source,
        })?;
        // The context and server only: credentials never reach the logs.
        tracing::info!("context {context} at {server}");
        Ok(Cluster {
            client,
            context,
            server,
        })
    }
}

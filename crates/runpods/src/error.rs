//! The library's error type: every variant says what failed and what to do next.

use std::path::PathBuf;

/// Errors that stop a whole tool run (per-container trouble is an
/// [`crate::outcome::Outcome`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read kubeconfig {}: {source}; pass --kubeconfig or set KUBECONFIG", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "kubeconfig has no context {context:?} (available: {available}); pass --context or set SKAFFOLD_KUBE_CONTEXT"
    )]
    UnknownContext { context: String, available: String },
    #[error("kubeconfig names no current context; pass --context or set SKAFFOLD_KUBE_CONTEXT")]
    NoContext,
    #[error(
        "no kubeconfig found (searched {searched}) and not running in a cluster (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset or no service-account token); pass --kubeconfig or set KUBECONFIG"
    )]
    NoConfig { searched: String },
    #[error("context {context:?}: {message}")]
    Context { context: String, message: String },
    #[error("in-cluster config: {message}")]
    InCluster { message: String },
    #[error("context {context:?}: {source}")]
    Proxy {
        context: String,
        #[source]
        source: crate::cluster::proxy::ProxyError,
    },
    #[error(
        "{what}: no answer from the API server {server}{via} within {timeout:?} (context {context:?}); check that it is reachable, or allow more time with --timeout"
    )]
    Stalled {
        what: String,
        server: String,
        via: String,
        context: String,
        timeout: std::time::Duration,
    },
    #[error(
        "{message}: the tools need {verb:?} on {resource:?} (see hooks/rbac/); check with: {can_i}"
    )]
    Forbidden {
        verb: String,
        resource: String,
        message: String,
        can_i: String,
    },
    #[error(transparent)]
    Plugin(#[from] crate::cluster::plugin::PluginError),
    #[error("cannot create a Kubernetes client for context {context:?}: {source}")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("invalid --selector {selector:?}: {message}")]
    Selector { selector: String, message: String },
    #[error(
        "cannot list pods in {scope} of context {context:?}: {}",
        crate::exec::describe_kube_error(source)
    )]
    List {
        scope: String,
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the pods in {scope} belong to several Skaffold runs ({}); choose one with --run-id or SKAFFOLD_RUN_ID",
        ids.join(", ")
    )]
    SeveralRuns { scope: String, ids: Vec<String> },
    #[error(
        "no pods carry a skaffold.dev/run-id label in {scope} of context {context:?}; pass --run-id or --selector"
    )]
    NoRun { scope: String, context: String },
    #[error("invalid --container glob {glob:?}: {message}")]
    Glob { glob: String, message: String },
    #[error(
        "invalid snapshot name {0:?}: use letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    SnapshotName(String),
    #[error("snapshot record {}: {message}", path.display())]
    Record { path: PathBuf, message: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether this is the user's input at fault (exit 2) rather than the work (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            Error::List { .. }
                | Error::Client { .. }
                | Error::Io { .. }
                | Error::Plugin(_)
                | Error::Stalled { .. }
                | Error::Forbidden { .. }
        )
    }
}

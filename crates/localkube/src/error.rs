//! The library's error type.

use std::path::PathBuf;

/// Why localkube could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest could not be read or does not describe pods localkube can run.
    #[error("{}: {field}: {message}", file.display())]
    Manifest {
        file: PathBuf,
        /// Where in the document, e.g. `spec.template.spec.containers[0].image`.
        field: String,
        message: String,
    },
    /// The builder was given contradictory or missing settings.
    #[error("invalid localkube setup: {0}")]
    Config(String),
    /// Neither root nor unprivileged user namespaces are available.
    #[error(
        "localkube needs Linux namespaces: run as root, or enable unprivileged user namespaces \
         (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1, \
         kernel.apparmor_restrict_unprivileged_userns=0): {0}"
    )]
    NoNamespaces(String),
    /// A container could not be started.
    #[error("pod {namespace}/{pod} container {container}: {message}")]
    Container {
        namespace: String,
        pod: String,
        container: String,
        message: String,
    },
    /// No such pod (or container).
    #[error("pod {namespace}/{pod} not found{}", container.as_ref().map(|c| format!(" (container {c})")).unwrap_or_default())]
    NotFound {
        namespace: String,
        pod: String,
        container: Option<String>,
    },
    /// A fault that cannot be applied as asked.
    #[error("fault for pod {namespace}/{pod}: {message}")]
    Fault {
        namespace: String,
        pod: String,
        message: String,
    },
    /// TLS material could not be generated or loaded.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// Filesystem or socket trouble, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

//! Which cluster, as whom, through which proxy: kubectl's rules (client-go
//! `tools/clientcmd`, `loader.go` and `client_config.go`), applied here and
//! handed to kube as a finished [`kube::Config`].
//!
//! - **Kubeconfig**: `--kubeconfig FILE` alone (it must exist); else every file
//!   of the `KUBECONFIG` path list that exists, merged (the first file to set a
//!   value or a named entry wins; missing files are skipped, as kubectl skips
//!   them); else `~/.kube/config` if it exists.
//! - **In-cluster fallback**: when that finds no contexts, clusters or users and
//!   `KUBERNETES_SERVICE_HOST`/`_PORT` are set and the service-account token
//!   exists, the server is `https://HOST:PORT`, the CA `ca.crt` and the token
//!   `token` under [`SERVICE_ACCOUNT_DIR`]; the default namespace is
//!   `POD_NAMESPACE`, else the `namespace` file there, else `default`.
//! - **Context**: `--context` (or `SKAFFOLD_KUBE_CONTEXT`), else the merged
//!   `current-context`; its `namespace` is the default namespace.
//! - **Credentials**: `token`, `tokenFile` (re-read when it changes, see
//!   [`token`]), client certificate and key (files or `-data`), and `exec`
//!   plugins (run under the deadline, see [`plugin`]); `certificate-authority`
//!   (`-data`), `insecure-skip-tls-verify`, `tls-server-name`.
//! - **Proxy**: see [`proxy`].
//!
//! Nothing here ever prints a credential: errors name files, contexts, users
//! and commands only.

pub mod plugin;
pub mod proxy;
pub mod token;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use kube::config::{AuthInfo, Kubeconfig, NamedAuthInfo};

use crate::Error;

/// Where Kubernetes mounts a pod's service-account token, CA and namespace.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The deadline for each API call, connect and credential plugin when the user gave none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a TCP connect may take (within the call's own deadline).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the user asked for; `None` means "as kubectl would choose".
#[derive(Debug, Clone, Default)]
pub struct ClusterChoice {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Deadline for each API call and credential plugin; [`DEFAULT_TIMEOUT`] when unset.
    pub timeout: Option<Duration>,
}

/// A connected client and the names needed to explain what was searched.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The context actually used (`in-cluster` for the service-account fallback).
    pub context: String,
    /// The API server URL (never credentials).
    pub server: String,
    /// Where kubectl would work without `-n`: the context's namespace, or the pod's own in-cluster.
    pub default_namespace: String,
    /// The deadline for each API call.
    pub timeout: Duration,
    /// The proxy's `host:port` when requests go through one (never its credentials).
    pub proxy: Option<String>,
}

impl std::fmt::Debug for Cluster {
    // Deliberately prints names only: a client's config holds tokens and keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("default_namespace", &self.default_namespace)
            .finish()
    }
}

impl Cluster {
    /// The error for a call that got no answer within the deadline, naming the server.
    pub fn stalled(&self, what: &str) -> Error {
        Error::Stalled {
            what: what.to_string(),
            server: self.server.clone(),
            via: self
                .proxy
                .as_ref()
                .map(|p| format!(" through the proxy {p}"))
                .unwrap_or_default(),
            context: self.context.clone(),
            timeout: self.timeout,
        }
    }

    /// The error for a 403 on `verb` `resource` in `namespace` (`None`: all
    /// namespaces), with the `kubectl auth can-i` command that checks it.
    pub fn denied(
        &self,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
        message: &str,
    ) -> Error {
        Error::Forbidden {
            verb: verb.to_string(),
            resource: resource.to_string(),
            message: one_line(message),
            can_i: can_i(&self.context, verb, resource, namespace),
        }
    }
}

/// `kubectl auth can-i VERB RESOURCE -n NS|--all-namespaces [--context C]`.
/// A subresource goes in `--subresource`: kubectl reads `pods/exec` as the
/// pod *named* `exec` (`TYPE/NAME`), which asks something else.
pub fn can_i(context: &str, verb: &str, resource: &str, namespace: Option<&str>) -> String {
    let resource = match resource.split_once('/') {
        Some((r, sub)) => format!("{r} --subresource={sub}"),
        None => resource.to_string(),
    };
    let scope = match namespace {
        Some(ns) => format!("-n {ns}"),
        None => "--all-namespaces".into(),
    };
    let context = if context == "in-cluster" {
        String::new()
    } else {
        format!(" --context {context}")
    };
    format!("kubectl auth can-i {verb} {resource} {scope}{context}")
}

/// The checks for an exec into a pod of `namespace` (both verbs are needed).
pub(crate) fn can_i_all(namespace: &str) -> String {
    format!(
        "kubectl auth can-i create pods --subresource=exec -n {namespace} && kubectl auth can-i get pods --subresource=exec -n {namespace}"
    )
}

/// The environment kubectl reads, captured once (and built by hand in tests).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `KUBECONFIG`.
    pub kubeconfig: Option<std::ffi::OsString>,
    /// `HOME`, for `~/.kube/config`.
    pub home: Option<PathBuf>,
    pub proxy: proxy::ProxyEnv,
    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`.
    pub service_host: Option<String>,
    pub service_port: Option<String>,
    /// `POD_NAMESPACE`, which kubectl prefers to the service account's namespace file.
    pub pod_namespace: Option<String>,
    /// Where the service-account files are: [`SERVICE_ACCOUNT_DIR`].
    pub service_account_dir: PathBuf,
}

impl Environment {
    pub fn from_env() -> Environment {
        let nonempty = |n| std::env::var(n).ok().filter(|v| !v.is_empty());
        Environment {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME").map(PathBuf::from),
            proxy: proxy::ProxyEnv::from_env(),
            service_host: nonempty("KUBERNETES_SERVICE_HOST"),
            service_port: nonempty("KUBERNETES_SERVICE_PORT"),
            pod_namespace: nonempty("POD_NAMESPACE"),
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
        }
    }

    /// Whether kubectl would use the in-cluster config (client-go `inClusterClientConfig.Possible`).
    fn in_cluster_possible(&self) -> bool {
        self.service_host.is_some()
            && self.service_port.is_some()
            && self.service_account_dir.join("token").is_file()
    }
}

/// A value from a kubeconfig or plugin, made safe for one line of a message.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The kubeconfig files kubectl would read, merged; and what was searched, for messages.
fn load_kubeconfig(
    choice: &ClusterChoice,
    env: &Environment,
) -> Result<(Kubeconfig, String), Error> {
    if let Some(path) = &choice.kubeconfig {
        let config = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
            path: path.clone(),
            source,
        })?;
        return Ok((config, format!("--kubeconfig {}", path.display())));
    }
    let paths: Vec<PathBuf> = match &env.kubeconfig {
        Some(v) => std::env::split_paths(v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => Vec::new(),
    };
    let (paths, searched) = if paths.is_empty() {
        let home = env.home.as_ref().map(|h| h.join(".kube/config"));
        let searched = match &home {
            Some(h) => h.display().to_string(),
            None => "~/.kube/config (HOME is not set)".into(),
        };
        (home.into_iter().collect::<Vec<_>>(), searched)
    } else {
        let list = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        (paths, format!("KUBECONFIG ({list})"))
    };
    let mut merged = Kubeconfig::default();
    for path in paths {
        if !path.exists() {
            tracing::debug!("kubeconfig {} does not exist; skipped", path.display());
            continue;
        }
        let next = Kubeconfig::read_from(&path).map_err(|source| Error::Kubeconfig {
            path: path.clone(),
            source,
        })?;
        merged = merged
            .merge(next)
            .map_err(|source| Error::Kubeconfig { path, source })?;
    }
    Ok((merged, searched))
}

fn is_empty(k: &Kubeconfig) -> bool {
    k.contexts.is_empty() && k.clusters.is_empty() && k.auth_infos.is_empty()
}

/// DER certificates from PEM text.
fn pem_certs(pem_text: &[u8], what: &str) -> Result<Vec<Vec<u8>>, String> {
    let blocks = pem::parse_many(pem_text).map_err(|e| format!("{what}: not PEM ({e})"))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
        .collect();
    if certs.is_empty() {
        return Err(format!("{what}: holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// A kube config plus what kube cannot do the way kubectl does.
struct Prepared {
    config: kube::Config,
    context: String,
    token_file: Option<PathBuf>,
    /// Kubeconfig `proxy-url` (used as is); `None` means the environment decides.
    proxy_url: Option<String>,
}

impl Cluster {
    /// Find the kubeconfig (or the in-cluster config), pick the context, get
    /// credentials, choose the proxy, build a client.
    pub async fn connect(choice: &ClusterChoice) -> Result<Cluster, Error> {
        Cluster::connect_with(choice, &Environment::from_env()).await
    }

    /// [`connect`](Self::connect) with the environment given rather than read.
    pub async fn connect_with(choice: &ClusterChoice, env: &Environment) -> Result<Cluster, Error> {
        let timeout = choice.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let (kubeconfig, searched) = load_kubeconfig(choice, env)?;
        let prepared = if is_empty(&kubeconfig) && choice.kubeconfig.is_none() {
            if !env.in_cluster_possible() {
                return Err(Error::NoConfig { searched });
            }
            if let Some(c) = &choice.context {
                tracing::info!("no kubeconfig found: context {c:?} is ignored in-cluster");
            }
            in_cluster(env)?
        } else {
            from_kubeconfig(kubeconfig, choice, timeout).await?
        };
        let Prepared {
            mut config,
            context,
            token_file,
            proxy_url,
        } = prepared;
        let proxy = proxy::choose(&config.cluster_url, proxy_url.as_deref(), &env.proxy).map_err(
            |source| Error::Proxy {
                context: context.clone(),
                source,
            },
        )?;
        let server = config.cluster_url.to_string();
        match &proxy {
            // Host and port only: a proxy URL may carry a password.
            Some((url, from)) => tracing::info!(
                "context {context} at {server} through the proxy {} (from {from})",
                url.authority().map(|a| a.host()).unwrap_or_default()
            ),
            None => tracing::info!("context {context} at {server}"),
        }
        let proxy_name = proxy
            .as_ref()
            .and_then(|(u, _)| u.authority())
            .map(|a| match a.port() {
                Some(p) => format!("{}:{p}", a.host()),
                None => a.host().to_string(),
            });
        config.proxy_url = proxy.map(|(u, _)| u);
        // Our own retry (crate::retry) is bounded and logged; kube's default
        // layer would retry up to 15 times with long waits.
        config.default_retry = false;
        config.connect_timeout = Some(CONNECT_TIMEOUT.min(timeout));
        let default_namespace = config.default_namespace.clone();
        let client_err = |source| Error::Client {
            context: context.clone(),
            source,
        };
        let builder = kube::client::ClientBuilder::try_from(config).map_err(client_err)?;
        let client = match token_file {
            Some(path) => {
                let layer = token::TokenFile::new(&path).layer();
                builder.with_layer(&layer).build()
            }
            None => builder.build(),
        };
        Ok(Cluster {
            client,
            context,
            server,
            default_namespace,
            timeout,
            proxy: proxy_name,
        })
    }
}

fn in_cluster(env: &Environment) -> Result<Prepared, Error> {
    let dir = env.service_account_dir.as_path();
    let host = env.service_host.clone().unwrap_or_default();
    let port = env.service_port.clone().unwrap_or_default();
    // net.JoinHostPort: an IPv6 address gets brackets.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let url = format!("https://{host}:{port}");
    let cluster_url: http::Uri = url.parse().map_err(|_| Error::InCluster {
        message: format!(
            "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT make no URL ({})",
            one_line(&url)
        ),
    })?;
    let mut config = kube::Config::new(cluster_url);
    let ca = dir.join("ca.crt");
    // client-go's InClusterConfig logs an unreadable CA and goes on without it.
    match std::fs::read(&ca)
        .map_err(|e| e.to_string())
        .and_then(|pem| pem_certs(&pem, &ca.display().to_string()))
    {
        Ok(certs) => config.root_cert = Some(certs),
        Err(e) => tracing::warn!("in-cluster CA {}: {e}", ca.display()),
    }
    config.default_namespace = env
        .pod_namespace
        .clone()
        .or_else(|| {
            std::fs::read_to_string(dir.join("namespace"))
                .ok()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "default".into());
    Ok(Prepared {
        config,
        context: "in-cluster".into(),
        token_file: Some(dir.join("token")),
        proxy_url: None,
    })
}

async fn from_kubeconfig(
    kubeconfig: Kubeconfig,
    choice: &ClusterChoice,
    timeout: Duration,
) -> Result<Prepared, Error> {
    let context = match &choice.context {
        Some(c) => c.clone(),
        None => kubeconfig
            .current_context
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or(Error::NoContext)?,
    };
    let Some(ctx) = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.clone())
    else {
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
    };
    let bad = |message: String| Error::Context {
        context: context.clone(),
        message,
    };
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| {
            bad(format!(
                "it names cluster {:?}, which the kubeconfig does not define",
                ctx.cluster
            ))
        })?;
    // client-go does not fail on a missing user: it connects without credentials.
    let user_name = ctx.user.clone().unwrap_or_default();
    let mut user: AuthInfo = kubeconfig
        .auth_infos
        .iter()
        .find(|u: &&NamedAuthInfo| u.name == user_name)
        .and_then(|u| u.auth_info.clone())
        .unwrap_or_default();
    let server = cluster
        .server
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(format!("cluster {:?} has no server", ctx.cluster)))?;
    let cluster_url: http::Uri = server.parse().map_err(|_| {
        bad(format!(
            "cluster {:?} has a server that is not a URL ({})",
            ctx.cluster,
            one_line(&server)
        ))
    })?;
    let insecure = cluster.insecure_skip_tls_verify.unwrap_or(false);
    let ca_pem = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) if !data.is_empty() => Some(
            base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| bad("certificate-authority-data is not base64".into()))?,
        ),
        (_, Some(file)) if !file.is_empty() => Some(
            std::fs::read(file)
                .map_err(|e| bad(format!("cannot read certificate-authority {file}: {e}")))?,
        ),
        _ => None,
    };
    // client-go: "specifying a root certificates file with the insecure flag is not allowed".
    if insecure && ca_pem.is_some() {
        return Err(bad(format!(
            "cluster {:?} sets both insecure-skip-tls-verify and a certificate authority; kubectl refuses that too: remove one",
            ctx.cluster
        )));
    }
    let mut config = kube::Config::new(cluster_url.clone());
    if let Some(pem) = ca_pem {
        config.root_cert = Some(pem_certs(&pem, "certificate-authority").map_err(bad)?);
    }
    config.accept_invalid_certs = insecure;
    config.tls_server_name = cluster.tls_server_name.clone().filter(|s| !s.is_empty());
    config.disable_compression = cluster.disable_compression.unwrap_or(false);
    config.default_namespace = ctx
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());

    // An inline token wins over tokenFile and exec, as in kube and client-go.
    let has_token = user.token.is_some();
    let token_file = match user.token_file.take() {
        Some(f) if !has_token && !f.is_empty() => Some(PathBuf::from(f)),
        _ => None,
    };
    if let Some(exec) = user.exec.take()
        && !has_token
        && token_file.is_none()
    {
        let mut info = serde_json::json!({
            "server": server,
            "insecure-skip-tls-verify": insecure,
        });
        if let Some(n) = &config.tls_server_name {
            info["tls-server-name"] = n.clone().into();
        }
        if let Some(certs) = &config.root_cert {
            let pem: String = certs
                .iter()
                .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())))
                .collect();
            info["certificate-authority-data"] =
                base64::engine::general_purpose::STANDARD.encode(pem).into();
        }
        if let Some(p) = &cluster.proxy_url {
            info["proxy-url"] = p.clone().into();
        }
        match plugin::run(&user_name, &exec, info, timeout).await? {
            plugin::Credential::Token(t) => user.token = Some(t.into()),
            plugin::Credential::Certificate { cert_pem, key_pem } => {
                let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
                user.client_certificate = None;
                user.client_key = None;
                user.client_certificate_data = Some(b64(cert_pem));
                user.client_key_data = Some(b64(key_pem).into());
            }
        }
    }
    config.auth_info = user;
    Ok(Prepared {
        config,
        context,
        token_file,
        proxy_url: cluster.proxy_url.clone(),
    })
}

//! localkube: a local stand-in for a Kubernetes API server whose pods are real
//! processes, for testing tools that talk to Kubernetes end to end (kube-rs,
//! kubectl) on a machine without a cluster or a container engine.
//!
//! * **API**: HTTPS on `127.0.0.1` with a freshly generated CA and server
//!   certificate and a bearer token; a kubeconfig with a named context. Serves
//!   `/version`, discovery (`/api`, `/api/v1`, `/apis`), pods (list with label and
//!   field selectors, get, log, watch with resourceVersion, bookmarks and 410
//!   Gone (see `watch.rs`), graceful delete (see `lifecycle.rs`); `Table` output for
//!   `kubectl get` and `kubectl get -w`), services (list
//!   with label selectors, get), `pods/exec` and `pods/attach` over WebSocket
//!   (`v5.channel.k8s.io`, `v4.channel.k8s.io`), and ephemeral containers
//!   (`pods/{name}/ephemeralcontainers`, see `ephemeral.rs`). Errors carry Kubernetes
//!   `Status` bodies; requests without the token get 401.
//! * **Pods**: from `Deployment`/`Pod` manifests. Each container is PID 1 of its
//!   own PID namespace (with `shareProcessNamespace: true`, the pod's containers
//!   share one whose PID 1 is a pause process), with its own mount namespace
//!   whose root is its image (an OCI layout, an image archive or a single
//!   executable: see [`LocalKubeBuilder::image`]) plus `/proc`, `/dev`, the
//!   pod's `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, and every
//!   `emptyDir`, a folder under `DIR/pods/<ns>_<pod>/volumes/<name>`
//!   bind-mounted at its `mountPath`. Containers run as the image's user or
//!   the `securityContext`'s. Output goes to
//!   `DIR/pods/<ns>_<pod>/containers/<name>/output.log`.
//! * **Network**: each pod has its own network namespace, shared by its
//!   containers, with `lo` up and the pod's own address (`10.244.x.y`, its
//!   `podIP`) on it; the host's interfaces and routes are never touched, so pods
//!   are not reachable from the host or from each other, only through
//!   port-forwarding (`pods/portforward`: kubectl's SPDY/3.1, tunnelled in a
//!   WebSocket or over a plain upgrade, and kube-rs's `v4.channel.k8s.io`;
//!   each connection is dialled to `localhost:PORT` inside the pod's network,
//!   as containerd does). On request ([`LocalKubeBuilder::publish_ports`]) the first
//!   declared `containerPort` of each container is also published on a free
//!   host port: reported as that port's `hostPort`, in the annotation
//!   [`PORTS_ANNOTATION`], and as [`PodInfo::address`].
//! * **Services** in the manifests are served as objects (get, list), with
//!   their v1 Endpoints and `discovery.k8s.io/v1` EndpointSlices computed
//!   from the selector over the pods (ready ones in `addresses`), so `kubectl
//!   port-forward svc/NAME` reaches a pod; no cluster IP routes traffic.
//! * **Faults** on demand, per pod: see [`Fault`].
//! * **Deletion**: `DELETE` on a pod sets `deletionTimestamp`, runs each
//!   container's `preStop` hook (`exec` or `sleep`), sends SIGTERM, then SIGKILL
//!   at the end of the grace period; the object and its `emptyDir`s go when the
//!   containers are gone.
//! * **Deployments** are API objects (`apis/apps/v1`: get, list, PATCH with a
//!   strategic merge or merge patch, as `kubectl apply` and `kubectl rollout
//!   restart` send): a deleted pod is replaced at once, a changed template rolls
//!   the pods (RollingUpdate or Recreate); see `deployments.rs`. No OpenAPI
//!   document is served, so `kubectl apply` needs `--validate=false`.
//! * **Restarts**: a container whose program ends is restarted per
//!   `restartPolicy` with the kubelet's back-off (`CrashLoopBackOff`,
//!   `lastState`, `restartCount`, `kubectl logs --previous`); the phase is the
//!   kubelet's. See `restart.rs` and [`LocalKubeBuilder::crash_loop_backoff`].
//! * **Not modelled**: probes, postStart and httpGet hooks, resources, init containers,
//!   service networking.
//!
//! Needs root, or unprivileged user namespaces (then each container also gets a
//! user namespace in which it is root, and shared process namespaces are refused).
//!
//! ```no_run
//! let dir = tempfile::tempdir()?;
//! let kube = localkube::LocalKube::builder(dir.path())
//!     .manifest("k8s/deployment.yaml")
//!     .image("example/app", "/path/to/app")
//!     .label("skaffold.dev/run-id", "abc")
//!     .start()?;
//! println!("KUBECONFIG={} context {}", kube.kubeconfig().display(), kube.context());
//! for pod in kube.pods() {
//!     println!("{}/{} {} {:?}", pod.namespace, pod.name, pod.phase, pod.address);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod access_review;
mod api;
mod auth;
mod deployments;
mod endpoints;
mod endpointslices;
mod ephemeral;
mod error;
mod exec;
mod fault;
mod image;
mod in_cluster;
mod lifecycle;
mod manifest;
mod patch;
mod pods;
mod portforward;
mod publish;
mod rbac;
mod requests;
mod restart;
mod server;
mod stall;
mod state;
mod status;
mod sys;
mod tls;
mod watch;
mod yaml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use auth::{ADMIN_USER, MASTERS_GROUP, UserInfo};
pub use error::Error;
pub use fault::Fault;
pub use requests::RequestCounts;
pub use stall::Stall;
pub use state::PORTS_ANNOTATION;
pub use tls::Validity;

use manifest::ManifestSource;
use state::{Cluster, Inner, Run};
use sys::{Mode, Spawner};

/// One container as [`LocalKube::pods`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub name: String,
    pub image: String,
    pub running: bool,
    pub restart_count: i32,
    /// Exit code of the current run, if it has ended.
    pub exit_code: Option<i32>,
    /// Host PID of the container's PID 1 while it runs.
    pub pid: Option<i32>,
    /// Host port its first declared port is published on ([`LocalKubeBuilder::publish_ports`]).
    pub host_port: Option<u16>,
    /// Where its stdout and stderr go.
    pub log_file: PathBuf,
}

/// One pod as [`LocalKube::pods`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    /// As the API reports it (`Running`, or what a `Phase` fault says).
    pub phase: String,
    pub labels: BTreeMap<String, String>,
    pub containers: Vec<ContainerInfo>,
    /// Where the pod's (first declared) port is published on the host, if it is.
    pub address: Option<SocketAddr>,
    /// The pod's own address (`status.podIP`), inside its network namespace.
    pub ip: std::net::Ipv4Addr,
    /// Host folder of each `emptyDir` volume, by volume name.
    pub volumes: BTreeMap<String, PathBuf>,
    /// Host PID of the pause process when the pod shares its process namespace.
    pub pause_pid: Option<i32>,
    /// Ephemeral containers that have been started (in the order they were added).
    pub ephemeral_containers: Vec<ContainerInfo>,
}

/// Settings for [`LocalKube`]; see [`LocalKube::builder`].
#[derive(Debug, Clone)]
pub struct LocalKubeBuilder {
    dir: PathBuf,
    manifests: Vec<ManifestSource>,
    images: BTreeMap<String, PathBuf>,
    labels: BTreeMap<String, String>,
    context: String,
    port: u16,
    grace: Duration,
    bookmark_interval: Duration,
    ephemeral_containers: bool,
    restricted_namespaces: Vec<String>,
    token_file: Option<PathBuf>,
    rbac: Vec<PathBuf>,
    publish_ports: bool,
    backoff: restart::BackOffPolicy,
}

impl LocalKubeBuilder {
    /// Also accept the tokens of this file, in kube-apiserver's `--token-auth-file`
    /// format: `token,user,uid[,"group1,group2"]` per line.
    pub fn token_file(mut self, path: impl AsRef<Path>) -> Self {
        self.token_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// Load `Role`, `ClusterRole`, `RoleBinding` and `ClusterRoleBinding` objects
    /// from this YAML file (repeatable). Once any binding is loaded, every request
    /// is authorized by RBAC as the API server does (`system:masters`, the admin
    /// kubeconfig's group, may do everything); without, every authenticated user may.
    pub fn rbac(mut self, path: impl AsRef<Path>) -> Self {
        self.rbac.push(path.as_ref().to_path_buf());
        self
    }

    /// Add a manifest (Deployment or Pod YAML; several documents allowed). The
    /// namespace comes from its metadata, else `default`.
    pub fn manifest(mut self, path: impl AsRef<Path>) -> Self {
        self.manifests.push(ManifestSource {
            path: path.as_ref().to_path_buf(),
            namespace: None,
            labels: BTreeMap::new(),
        });
        self
    }

    /// Add a manifest, overriding its namespace and adding labels to its pods
    /// (these win over [`label`](Self::label)).
    pub fn manifest_with<K, V>(
        mut self,
        path: impl AsRef<Path>,
        namespace: Option<&str>,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.manifests.push(ManifestSource {
            path: path.as_ref().to_path_buf(),
            namespace: namespace.map(str::to_string),
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        });
        self
    }

    /// The image containers with image `name` (with any tag or digest) run:
    /// an OCI image layout folder, an OCI or `docker save` tar archive, or a
    /// single executable (then the image holds only it, at `/<file name>`,
    /// plus `/etc/passwd`, `/etc/group`, `/tmp` and CA certificates, like
    /// distroless `static`).
    pub fn image(mut self, name: impl Into<String>, path: impl AsRef<Path>) -> Self {
        self.images.insert(name.into(), path.as_ref().to_path_buf());
        self
    }

    /// Stamp this label on every pod.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The kubeconfig context (and cluster/user) name; default `localkube`.
    pub fn context(mut self, name: impl Into<String>) -> Self {
        self.context = name.into();
        self
    }

    /// Listen on this port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Publish the first declared `containerPort` of every container on a free
    /// host port (see [`PodInfo::address`]). Off by default: like a cluster,
    /// localkube then exposes pods only through port-forwarding.
    pub fn publish_ports(mut self, on: bool) -> Self {
        self.publish_ports = on;
        self
    }

    /// The restart back-off of crashed containers: the first wait and its cap
    /// (default the kubelet's, 10 s doubling up to 300 s). Tests shorten it.
    pub fn crash_loop_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = restart::BackOffPolicy {
            initial,
            max: max.max(initial),
        };
        self
    }

    /// How long containers get between SIGTERM and SIGKILL at shutdown (default 500 ms).
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How often watches that allow bookmarks get one (default 60 s, about what the
    /// API server's watch cache does).
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }

    /// Serve `pods/{name}/ephemeralcontainers` (default true). Off, the API
    /// answers 404 there, as an API server with the feature disabled (before
    /// Kubernetes 1.23, or with the `EphemeralContainers` gate off) does.
    pub fn ephemeral_containers(mut self, enabled: bool) -> Self {
        self.ephemeral_containers = enabled;
        self
    }

    /// Enforce Pod Security `restricted` in `namespace` on ephemeral
    /// containers added there (as the label
    /// `pod-security.kubernetes.io/enforce: restricted` does on a cluster).
    pub fn pod_security_restricted(mut self, namespace: impl Into<String>) -> Self {
        self.restricted_namespaces.push(namespace.into());
        self
    }

    /// Check everything, start the API server and every pod. On error nothing is left running.
    pub fn start(self) -> Result<LocalKube, Error> {
        LocalKube::start(self)
    }
}

/// A running localkube: the API server and its pods. Dropping it stops everything.
pub struct LocalKube {
    cluster: Arc<Cluster>,
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    kubeconfig: PathBuf,
    context: String,
    server_url: String,
    grace: Duration,
    shutdown: Mutex<Option<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for LocalKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKube")
            .field("server_url", &self.server_url)
            .field("context", &self.context)
            .field("kubeconfig", &self.kubeconfig)
            .finish()
    }
}

impl LocalKube {
    /// Start configuring an instance that keeps its files (kubeconfig, CA, pod
    /// folders and logs) in `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> LocalKubeBuilder {
        LocalKubeBuilder {
            dir: dir.as_ref().to_path_buf(),
            manifests: Vec::new(),
            images: BTreeMap::new(),
            labels: BTreeMap::new(),
            context: "localkube".into(),
            port: 0,
            grace: Duration::from_millis(500),
            bookmark_interval: watch::DEFAULT_BOOKMARK_INTERVAL,
            ephemeral_containers: true,
            restricted_namespaces: Vec::new(),
            token_file: None,
            rbac: Vec::new(),
            publish_ports: false,
            backoff: restart::BackOffPolicy::default(),
        }
    }

    fn start(b: LocalKubeBuilder) -> Result<LocalKube, Error> {
        if b.context.is_empty() {
            return Err(Error::Config("the context name must not be empty".into()));
        }
        for (name, path) in &b.images {
            if !path.exists() {
                return Err(Error::Config(format!(
                    "image {name}: {} does not exist (give an OCI image layout folder, an image tar archive or an executable)",
                    path.display()
                )));
            }
        }
        // Check every manifest before anything starts.
        let mut drafts = Vec::new();
        let mut services = Vec::new();
        let mut deployments = Vec::new();
        for m in &b.manifests {
            let loaded = manifest::load(m, &b.labels)?;
            drafts.extend(loaded.pods);
            services.extend(loaded.services);
            deployments.extend(loaded.deployments);
        }
        let mut seen_deployments = std::collections::HashSet::new();
        for (file, d) in &deployments {
            let key = (d.metadata.namespace.clone(), d.metadata.name.clone());
            if !seen_deployments.insert(key) {
                return Err(Error::Manifest {
                    file: file.clone(),
                    field: "metadata.name".into(),
                    message: format!(
                        "deployment {}/{} is defined twice",
                        d.metadata.namespace.as_deref().unwrap_or_default(),
                        d.metadata.name.as_deref().unwrap_or_default()
                    ),
                });
            }
        }
        let mut seen_services = std::collections::HashSet::new();
        for (file, svc) in &services {
            let key = (svc.metadata.namespace.clone(), svc.metadata.name.clone());
            if !seen_services.insert(key) {
                return Err(Error::Manifest {
                    file: file.clone(),
                    field: "metadata.name".into(),
                    message: format!(
                        "service {}/{} is defined twice",
                        svc.metadata.namespace.as_deref().unwrap_or_default(),
                        svc.metadata.name.as_deref().unwrap_or_default()
                    ),
                });
            }
        }
        for d in &drafts {
            for (i, c) in d.spec.containers.iter().enumerate() {
                let image = c.image.as_deref().unwrap_or_default();
                if manifest::resolve_image(&b.images, image).is_none() {
                    return Err(Error::Manifest {
                        file: d.file.clone(),
                        field: format!("containers[{i}].image (container {})", c.name),
                        message: format!(
                            "image {image:?} is not mapped to a local image; map it with --image {}=PATH",
                            manifest::image_repository(image)
                        ),
                    });
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for d in &drafts {
            if !seen.insert((d.namespace.clone(), d.name.clone())) {
                return Err(Error::Manifest {
                    file: d.file.clone(),
                    field: "metadata.name".into(),
                    message: format!("pod {}/{} is defined twice", d.namespace, d.name),
                });
            }
        }
        let mode = Mode::detect().map_err(Error::NoNamespaces)?;
        if mode != Mode::Root
            && let Some(d) = drafts
                .iter()
                .find(|d| d.spec.share_process_namespace == Some(true))
        {
            // Each container then has its own user namespace, which could not
            // mount /proc for a PID namespace owned by another.
            return Err(Error::Manifest {
                file: d.file.clone(),
                field: "spec.shareProcessNamespace".into(),
                message: "a shared process namespace needs localkube to run as root".into(),
            });
        }
        std::fs::create_dir_all(&b.dir)
            .map_err(|e| Error::io(format!("creating {}", b.dir.display()), e))?;
        let dir = b
            .dir
            .canonicalize()
            .map_err(|e| Error::io(format!("resolving {}", b.dir.display()), e))?;

        // Unpack every mapped image once (pods, later replicas and ephemeral
        // containers all start from them).
        let mut images = BTreeMap::new();
        for (name, path) in &b.images {
            let img = image::load(path, &dir.join("images"), mode == Mode::Root)
                .map_err(|e| Error::Config(format!("image {name} ({}): {e}", path.display())))?;
            images.insert(name.clone(), img);
        }
        let identity = tls::generate()?;
        let auth = auth::Authenticator::new(&identity.ca_der)?;
        auth.add_token(&identity.token, UserInfo::new(ADMIN_USER, &[MASTERS_GROUP]));
        if let Some(path) = &b.token_file {
            auth.load_token_file(path)?;
        }
        let tls_config = identity.server_config(auth.handshake_verifier())?;
        let mut policy = rbac::Policy::default();
        for path in &b.rbac {
            policy.load(path)?;
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", b.port))
            .map_err(|e| Error::io(format!("listening on 127.0.0.1:{}", b.port), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listen address", e))?;
        let server_url = format!("https://127.0.0.1:{}", addr.port());
        let kubeconfig = tls::write_kubeconfig(&dir, &identity, &server_url, &b.context)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("localkube")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the async runtime", e))?;
        let spawner = Spawner::new().map_err(|e| Error::io("starting the spawner thread", e))?;
        let cluster = Arc::new(Cluster {
            inner: Mutex::new(Inner::default()),
            ended: Condvar::new(),
            mode,
            spawner,
            token: identity.token.clone(),
            ca_pem: identity.ca_pem.clone(),
            auth,
            stall: Mutex::new(None),
            requests: Default::default(),
            rbac: policy,
            runtime: runtime.handle().clone(),
            images: images.clone(),
            ephemeral_enabled: b.ephemeral_containers,
            restricted_namespaces: b.restricted_namespaces.clone(),
            backoff: b.backoff,
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server_cluster = Arc::clone(&cluster);
        let thread = std::thread::Builder::new()
            .name("localkube-server".into())
            .spawn(move || {
                runtime.block_on(server::serve(listener, tls_config, server_cluster, rx));
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|e| Error::io("starting the server thread", e))?;
        let kube = LocalKube {
            cluster,
            ca_pem: identity.ca_pem.clone(),
            issuer: identity.issuer,
            kubeconfig,
            context: b.context.clone(),
            server_url,
            grace: b.grace,
            shutdown: Mutex::new(Some((tx, thread))),
        };

        // Create every pod's folders first, then start the containers; any failure
        // tears down what already runs (by dropping `kube`).
        kube.cluster.lock().watch.bookmark_interval = b.bookmark_interval;
        kube.cluster.lock().apps = deployments::Apps {
            deployments: deployments
                .into_iter()
                .map(|(file, object)| deployments::Managed { file, object })
                .collect(),
            context: Some(deployments::Context {
                dir: dir.clone(),
                images: images.clone(),
                api_port: addr.port(),
                publish_ports: b.publish_ports,
            }),
            stopped: false,
        };
        kube.cluster.lock().services = services
            .into_iter()
            .map(|(_, svc)| state::stamp_service(svc))
            .collect();
        let mut published = Vec::new();
        for d in &drafts {
            let publish = b.publish_ports.then_some(&mut published);
            let mut inner = kube.cluster.lock();
            let ip = state::free_pod_ip(&inner)?;
            let pod = pods::prepare(d, &dir, &images, ip, publish)?;
            inner.pods.push(pod);
            inner.bump();
        }
        let names: Vec<(String, String, bool, Vec<String>)> = kube
            .cluster
            .lock()
            .pods
            .iter()
            .map(|p| {
                (
                    p.namespace.clone(),
                    p.name.clone(),
                    p.spec.share_process_namespace == Some(true),
                    p.containers.iter().map(|c| c.name.clone()).collect(),
                )
            })
            .collect();
        for (ns, pod, shared, containers) in names {
            pods::start_network(&kube.cluster, &ns, &pod)?;
            if shared {
                pods::start_pause(&kube.cluster, &ns, &pod)?;
            }
            for c in containers {
                pods::start_container(&kube.cluster, &ns, &pod, &c)?;
            }
        }
        deployments::spawn_controller(&kube.cluster);
        publish::spawn_all(&kube.cluster, published);
        tracing::info!(url = %kube.server_url, context = %kube.context, "localkube is up");
        Ok(kube)
    }

    /// The kubeconfig written into the instance's folder.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The context name in that kubeconfig.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server_url(&self) -> String {
        self.server_url.clone()
    }

    /// The bearer token the API server accepts.
    pub fn token(&self) -> &str {
        &self.cluster.token
    }

    /// The cluster CA (PEM): it signed the server's certificate and signs client certificates.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Accept `token` as `user` from now on (e.g. a new service-account token).
    pub fn add_token(&self, token: &str, user: UserInfo) {
        self.cluster.auth.add_token(token, user);
    }

    /// Stop accepting `token` (a rotated-out or revoked token); requests with it get 401.
    pub fn remove_token(&self, token: &str) {
        self.cluster.auth.remove_token(token);
    }

    /// A client certificate and key (PEM) for `user` in `groups`, signed by the
    /// cluster CA; the API server reads the user from the common name and the
    /// groups from the organizations.
    pub fn client_certificate(
        &self,
        user: &str,
        groups: &[&str],
        validity: Validity,
    ) -> Result<(String, String), Error> {
        tls::client_certificate(&self.issuer, user, groups, validity)
    }

    /// Make the whole API server stall (`Some`) or answer again (`None`).
    /// Connections held by [`Stall::Accept`] stay silent until shutdown.
    pub fn set_stall(&self, stall: Option<Stall>) {
        *self.cluster.stall.lock().unwrap_or_else(|p| p.into_inner()) = stall;
    }

    /// The API requests served so far (all, and execs among them).
    pub fn request_counts(&self) -> RequestCounts {
        self.cluster.requests.get()
    }

    /// Every pod, as the API currently reports it.
    pub fn pods(&self) -> Vec<PodInfo> {
        let inner = self.cluster.lock();
        inner
            .pods
            .iter()
            .map(|p| PodInfo {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                phase: p.phase(),
                labels: p.labels.clone(),
                address: p.address(),
                ip: p.ip,
                volumes: p.volumes.clone(),
                pause_pid: p.pause.as_ref().map(|p| p.pid),
                ephemeral_containers: p
                    .ephemeral
                    .iter()
                    .filter_map(|e| e.run())
                    .map(container_info)
                    .collect(),
                containers: p.containers.iter().map(container_info).collect(),
            })
            .collect()
    }

    /// Whether every `containerPort` the pod declares accepts a TCP connection
    /// at the pod's IP, checked from inside the pod's network: what a
    /// kubelet `tcpSocket` probe checks (localkube runs no probes itself, so
    /// callers wait with this where a cluster would wait for readiness). A pod
    /// without declared ports, or not running, is not listening. Blocks; call
    /// it outside async code.
    pub fn listening(&self, namespace: &str, pod: &str) -> Result<bool, Error> {
        let (network, ip, ports) = {
            let inner = self.cluster.lock();
            let p = inner.pod(namespace, pod).ok_or_else(|| Error::NotFound {
                namespace: namespace.into(),
                pod: pod.into(),
                container: None,
            })?;
            let ports: Vec<u16> = p
                .spec
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .filter(|port| port.protocol.as_deref().unwrap_or("TCP") == "TCP")
                .filter_map(|port| u16::try_from(port.container_port).ok())
                .collect();
            (p.network.clone(), p.ip, ports)
        };
        let Some(network) = network.filter(|_| !ports.is_empty()) else {
            return Ok(false);
        };
        Ok(self.cluster.runtime.block_on(async {
            for port in ports {
                let addr = std::net::SocketAddr::from((ip, port));
                if network.connect_to(addr).await.is_err() {
                    return false;
                }
            }
            true
        }))
    }

    /// Every Service, as (namespace, name). No cluster IP routes traffic
    /// through them; clients reach them with `kubectl port-forward svc/NAME`.
    pub fn services(&self) -> Vec<(String, String)> {
        self.cluster
            .lock()
            .services
            .iter()
            .map(|s| {
                (
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Switch on a fault for one pod. Faults add up; [`clear_faults`](Self::clear_faults) undoes them.
    pub fn set_fault(&self, namespace: &str, pod: &str, fault: Fault) -> Result<(), Error> {
        pods::set_fault(&self.cluster, namespace, pod, fault)
    }

    /// End every open watch stream, as a restarted API server or an idle proxy
    /// does; clients resume from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.cluster.lock().watch.drop_watches(false);
    }

    /// Forget the history and end every open watch with a `410 Gone` ERROR
    /// event, as the API server does to a watcher that fell out of its watch
    /// cache's window: clients must re-list.
    pub fn expire_watches(&self) {
        let mut inner = self.cluster.lock();
        let rv = inner.resource_version;
        inner.watch.compact(rv);
        inner.watch.drop_watches(true);
    }

    /// Forget the pods' change history up to now, as etcd compaction does: a
    /// watch from an older resourceVersion then gets `410 Gone`.
    pub fn compact_history(&self) {
        let mut inner = self.cluster.lock();
        let rv = inner.resource_version;
        inner.watch.compact(rv);
    }

    /// The latest resourceVersion (what a list reports).
    pub fn resource_version(&self) -> u64 {
        self.cluster.lock().resource_version
    }

    /// Undo every fault of a pod: exited containers are started again (restartCount + 1),
    /// replaced programs restored. Problems are logged; see
    /// [`try_clear_faults`](Self::try_clear_faults) to get them.
    pub fn clear_faults(&self, namespace: &str, pod: &str) {
        if let Err(e) = self.try_clear_faults(namespace, pod) {
            tracing::warn!("clearing faults: {e}");
        }
    }

    /// [`clear_faults`](Self::clear_faults) that reports problems.
    pub fn try_clear_faults(&self, namespace: &str, pod: &str) -> Result<(), Error> {
        pods::clear_faults(&self.cluster, namespace, pod)
    }

    /// Stop every container (SIGTERM, then SIGKILL after the grace period) and the
    /// API server. Also done on drop; calling it twice is harmless.
    pub fn shutdown(&self) {
        let Some((tx, thread)) = self.shutdown.lock().ok().and_then(|mut s| s.take()) else {
            return;
        };
        // No controller may replace what is being stopped.
        self.cluster.lock().apps.stopped = true;
        let running = |inner: &Inner| {
            inner
                .pods
                .iter()
                .flat_map(|p| p.all_runs())
                .filter_map(|c| match &c.run {
                    Run::Running { process, .. } => Some(Arc::clone(process)),
                    Run::Ended(_) | Run::Waiting { .. } | Run::BackOff { .. } => None,
                })
                .collect::<Vec<_>>()
        };
        let procs = running(&self.cluster.lock());
        for p in &procs {
            let _ = p.signal(libc::SIGTERM);
        }
        let none_left = |inner: &Inner| running(inner).is_empty();
        if !self.cluster.wait_until(self.grace, none_left) {
            for p in running(&self.cluster.lock()) {
                let _ = p.signal(libc::SIGKILL);
            }
            if !self.cluster.wait_until(Duration::from_secs(5), none_left) {
                // The reapers did not report: reap here so nothing is left behind.
                for p in running(&self.cluster.lock()) {
                    let _ = p.signal(libc::SIGKILL);
                    let _ = p.wait();
                }
            }
        }
        // Pause processes last: killing one kills whatever is left in its namespace.
        let pauses: Vec<_> = self
            .cluster
            .lock()
            .pods
            .iter()
            .filter_map(|p| p.pause.clone())
            .collect();
        for p in pauses {
            let _ = p.signal(libc::SIGKILL);
            let _ = p.wait();
        }
        // Network holders go when the last forwarded connection lets go of them.
        for p in self.cluster.lock().pods.iter_mut() {
            p.network = None;
        }
        let _ = tx.send(());
        let _ = thread.join();
        self.cluster.spawner.stop();
    }
}

fn container_info(c: &state::ContainerRun) -> ContainerInfo {
    ContainerInfo {
        name: c.name.clone(),
        image: c.image.clone(),
        running: matches!(c.run, Run::Running { .. }),
        restart_count: c.restart_count,
        exit_code: match &c.run {
            Run::Ended(e) => Some(e.exit_code),
            // Waiting to restart: the run that ended is the last one.
            Run::BackOff { .. } => c.last.as_ref().map(|e| e.exit_code),
            Run::Running { .. } | Run::Waiting { .. } => None,
        },
        pid: match &c.run {
            Run::Running { process, .. } => Some(process.pid),
            Run::Ended(_) | Run::Waiting { .. } | Run::BackOff { .. } => None,
        },
        host_port: c.host_port,
        log_file: c.spec.log_file.clone(),
    }
}

impl Drop for LocalKube {
    fn drop(&mut self) {
        self.shutdown();
    }
}

//! The cluster's pods: their containers' processes, faults, and how they look as
//! Kubernetes `Pod` objects.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition, PodIP, PodSpec, PodStatus, Service, ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

use crate::sys::container::ContainerSpec;
use crate::sys::netns::PodNetwork;
use crate::sys::{ChildProcess, Mode, Spawner};

/// The node name pods report.
pub(crate) const NODE_NAME: &str = "localkube";
/// Annotation listing each container's host port, e.g. `app=41234`.
pub const PORTS_ANNOTATION: &str = "localkube.dev/host-ports";

/// How a container's last run ended.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub exit_code: i32,
    pub reason: String,
    pub started: Timestamp,
    pub finished: Timestamp,
}

#[derive(Debug, Clone)]
pub(crate) enum Run {
    Running {
        process: Arc<ChildProcess>,
        started: Timestamp,
    },
    Ended(Ended),
    /// Not started: the kubelet would not create it (reason, message).
    Waiting {
        reason: String,
        message: String,
    },
    /// Ended (see [`ContainerRun::last`]); the kubelet waits out its restart
    /// back-off before starting it again: `waiting.reason: CrashLoopBackOff`.
    BackOff {
        message: String,
    },
}

impl Run {
    /// A container created but not started yet.
    pub(crate) fn not_started() -> Self {
        Run::Ended(Ended {
            exit_code: 0,
            reason: "NotStarted".into(),
            started: Timestamp::now(),
            finished: Timestamp::now(),
        })
    }
}

#[derive(Debug)]
pub(crate) struct ContainerRun {
    pub name: String,
    pub image: String,
    /// `sha256:…` of the image config.
    pub image_id: String,
    pub spec: ContainerSpec,
    pub host_port: Option<u16>,
    pub run: Run,
    pub restart_count: i32,
    /// A restart was booked: `restart_count` goes up when the new instance
    /// is recorded (running, or failed to start), not before. The kubelet
    /// never shows the new count with the old instance's back-off: its
    /// status is made from the last relist before `SyncPod` creates the new
    /// container (`pkg/kubelet/kubelet.go`), whose labels carry the new
    /// count (`kuberuntime_container.go` `startContainer`).
    pub restart_pending: bool,
    pub last: Option<Ended>,
    /// Bumped on every start, so a late exit report of an old process is ignored.
    pub generation: u64,
    /// A fault stopped it: report this exit code when the process is gone.
    pub planned_exit: Option<i32>,
    /// The kubelet's restart back-off for this container (see [`crate::restart`]).
    pub backoff: Option<crate::restart::BackOffEntry>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Faults {
    pub exec_refused: Option<u16>,
    pub cut_after: Option<usize>,
    pub bytes_per_sec: Option<u64>,
    pub phase: Option<String>,
    pub deletion: Option<Timestamp>,
    /// (container, path inside it, the symbolic link it was) replaced by a mount.
    pub replaced: Vec<(String, PathBuf, Option<PathBuf>)>,
    /// Containers stopped by `ContainerExited`, restarted by `clear_faults`.
    pub exited: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct PodState {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner: Option<(String, String)>,
    pub spec: PodSpec,
    pub created: Timestamp,
    /// `DIR/pods/<ns>_<pod>`: volumes, container roots and logs.
    pub dir: PathBuf,
    pub volumes: BTreeMap<String, PathBuf>,
    pub containers: Vec<ContainerRun>,
    /// PID 1 of the pod's shared PID namespace (`shareProcessNamespace: true`).
    pub pause: Option<Arc<ChildProcess>>,
    /// The pod's address inside its own network namespace.
    pub ip: std::net::Ipv4Addr,
    /// The pod's network namespace, once created.
    pub network: Option<Arc<PodNetwork>>,
    pub faults: Faults,
    /// Set by a DELETE: the pod is terminating (see [`crate::lifecycle`]).
    pub deletion: Option<crate::lifecycle::Deletion>,
    /// Ephemeral containers (their specs are in `spec.ephemeralContainers`).
    pub ephemeral: Vec<crate::ephemeral::EphemeralRun>,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub pods: Vec<PodState>,
    /// Their Endpoints are computed from these ([`crate::endpoints`]); no
    /// cluster IP routes traffic: clients use `kubectl port-forward svc/…`.
    pub services: Vec<Service>,
    pub resource_version: u64,
    /// Pod change events for watches (see [`crate::watch`]).
    pub watch: crate::watch::History,
    /// Deployments and their controllers' context (see [`crate::deployments`]).
    pub apps: crate::deployments::Apps,
}

impl Inner {
    pub(crate) fn pod(&self, namespace: &str, name: &str) -> Option<&PodState> {
        self.pods
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
    }

    pub(crate) fn pod_mut(&mut self, namespace: &str, name: &str) -> Option<&mut PodState> {
        self.pods
            .iter_mut()
            .find(|p| p.namespace == namespace && p.name == name)
    }

    /// One container of one pod, or `NotFound` naming what is missing.
    pub(crate) fn container_mut(
        &mut self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<&mut ContainerRun, crate::Error> {
        let not_found = |container: Option<&str>| crate::Error::NotFound {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.map(Into::into),
        };
        self.pod_mut(namespace, pod)
            .ok_or_else(|| not_found(None))?
            .containers
            .iter_mut()
            .find(|c| c.name == container)
            .ok_or_else(|| not_found(Some(container)))
    }

    /// Record a change: every pod that differs from its last recorded state
    /// gets a new resourceVersion and a watch event.
    pub(crate) fn bump(&mut self) {
        self.resource_version = self
            .watch
            .record(self.resource_version, &self.pods)
            .max(self.resource_version + 1);
    }
}

/// The lowest free pod address in `10.244.0.0/16` (flannel's default pod
/// network), skipping `.0`, `.1` and `.255` of each /24; a deleted pod's
/// address is free again, as with a CNI plugin's IPAM.
pub(crate) fn free_pod_ip(inner: &Inner) -> Result<std::net::Ipv4Addr, crate::Error> {
    let used: std::collections::HashSet<_> = inner.pods.iter().map(|p| p.ip).collect();
    (0u8..=255)
        .flat_map(|block| {
            (2u8..=254).map(move |host| std::net::Ipv4Addr::new(10, 244, block, host))
        })
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| crate::Error::Config("no free pod address left in 10.244.0.0/16".into()))
}

/// What the API server adds to a Service when it is created.
pub(crate) fn stamp_service(mut svc: Service) -> Service {
    svc.metadata.uid = Some(crate::manifest::random_uid());
    svc.metadata.creation_timestamp = Some(Time(Timestamp::now()));
    svc.status = Some(ServiceStatus::default());
    svc
}

/// Shared by the API server, the reapers and the [`crate::LocalKube`] handle.
pub(crate) struct Cluster {
    pub inner: Mutex<Inner>,
    /// Signalled whenever a container process ends.
    pub ended: Condvar,
    pub mode: Mode,
    pub spawner: Spawner,
    pub token: String,
    /// The cluster CA (for pods' service-account volumes).
    pub ca_pem: String,
    /// Tokens and client certificates accepted, and whose they are.
    pub auth: crate::auth::Authenticator,
    /// Set by [`crate::LocalKube::set_stall`].
    pub stall: Mutex<Option<crate::stall::Stall>>,
    /// Requests served, for [`crate::LocalKube::request_counts`].
    pub requests: crate::requests::Counters,
    /// RBAC objects; empty means every authenticated user may do everything.
    pub rbac: crate::rbac::Policy,
    pub runtime: tokio::runtime::Handle,
    /// The image map, for ephemeral containers added at run time.
    pub images: BTreeMap<String, crate::image::Image>,
    /// Whether `pods/{name}/ephemeralcontainers` is served.
    pub ephemeral_enabled: bool,
    /// Namespaces where Pod Security admission enforces `restricted`.
    pub restricted_namespaces: Vec<String>,
    /// How long crashed containers wait before a restart (see [`crate::restart`]).
    pub backoff: crate::restart::BackOffPolicy,
}

impl Cluster {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait (up to `timeout`) until `done` holds.
    pub(crate) fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&Inner) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock();
        loop {
            if done(&guard) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = match self.ended.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Watch a freshly started process and record its end.
    pub(crate) fn reap(
        self: &Arc<Self>,
        namespace: String,
        pod: String,
        container: String,
        generation: u64,
        process: Arc<ChildProcess>,
    ) {
        let cluster = Arc::clone(self);
        self.runtime.spawn(async move {
            let status = crate::exec::wait_exit(&process).await;
            let mut inner = cluster.lock();
            if let Some(c) = inner
                .pod_mut(&namespace, &pod)
                .and_then(|p| p.container_run_mut(&container))
                && c.generation == generation
                && let Run::Running { started, .. } = &c.run
            {
                let planned = c.planned_exit.take();
                let code = planned.unwrap_or(status.unwrap_or(255));
                tracing::debug!(%namespace, %pod, %container, code, "container process ended");
                c.run = Run::Ended(Ended {
                    exit_code: code,
                    reason: if code == 0 { "Completed" } else { "Error" }.into(),
                    started: *started,
                    finished: Timestamp::now(),
                });
                // A fault's stop is the fault's business (kept stopped, or restarted by it).
                if planned.is_none() {
                    crate::restart::after_exit(&cluster, &mut inner, &namespace, &pod, &container);
                }
                inner.bump();
            }
            drop(inner);
            cluster.ended.notify_all();
        });
    }
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

impl ContainerRun {
    /// Which instance's log `kubectl logs` (`previous`: `--previous`) reads, as
    /// the kubelet picks it (`pkg/kubelet/kubelet_pods.go`
    /// `validateContainerLogStatus`): `--previous` the last terminated one;
    /// else the running one, the one that ended, or the last terminated one
    /// while it waits to restart. Errors are the kubelet's (a 400 on the API).
    pub(crate) fn log_for(&self, pod: &str, previous: bool) -> Result<PathBuf, String> {
        let current = self.spec.log_file.clone();
        if previous {
            return match (&self.last, &self.run) {
                (None, _) => Err(format!(
                    "previous terminated container {:?} in pod {pod:?} not found",
                    self.name
                )),
                // Not restarted yet: the last terminated instance is still the current file.
                (Some(_), Run::BackOff { .. }) => Ok(current),
                (Some(_), _) => Ok(crate::restart::previous_log(&current)),
            };
        }
        match &self.run {
            Run::Running { .. } | Run::BackOff { .. } => Ok(current),
            Run::Ended(e) if e.reason != "NotStarted" => Ok(current),
            Run::Ended(_) => Err(format!(
                "container {:?} in pod {pod:?} is waiting to start: ContainerCreating",
                self.name
            )),
            Run::Waiting { .. } if self.last.is_some() => Ok(current),
            Run::Waiting { reason, .. } => Err(format!(
                "container {:?} in pod {pod:?} is waiting to start: {reason}",
                self.name
            )),
        }
    }
}

impl PodState {
    /// A container or a started ephemeral container, by name.
    pub(crate) fn container_run(&self, name: &str) -> Option<&ContainerRun> {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .or_else(|| self.ephemeral.iter().find(|e| e.name == name)?.run())
    }

    /// [`container_run`](Self::container_run), mutable.
    pub(crate) fn container_run_mut(&mut self, name: &str) -> Option<&mut ContainerRun> {
        if let Some(i) = self.containers.iter().position(|c| c.name == name) {
            return Some(&mut self.containers[i]);
        }
        self.ephemeral
            .iter_mut()
            .find(|e| e.name == name)?
            .run_mut()
    }

    /// Every container run, ephemeral ones included.
    pub(crate) fn all_runs(&self) -> impl Iterator<Item = &ContainerRun> {
        self.containers
            .iter()
            .chain(self.ephemeral.iter().filter_map(|e| e.run()))
    }

    /// The pod as a draft again (for the environment rules containers share).
    pub(crate) fn draft(&self) -> crate::manifest::PodDraft {
        crate::manifest::PodDraft {
            file: self.dir.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            owner: self.owner.as_ref().map(|(d, _)| d.clone()),
            spec: self.spec.clone(),
        }
    }

    /// The phase the pod reports (a `Phase` fault wins), as the kubelet
    /// computes it (`pkg/kubelet/kubelet_pods.go` `getPhase`; no init containers).
    pub(crate) fn phase(&self) -> String {
        if let Some(p) = &self.faults.phase {
            return p.clone();
        }
        let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
        for c in &self.containers {
            match &c.run {
                Run::Running { .. } => running += 1,
                // Created, not started yet: waiting in ContainerCreating.
                Run::Ended(e) if e.reason == "NotStarted" => waiting += 1,
                Run::Ended(e) => {
                    stopped += 1;
                    if e.exit_code == 0 {
                        succeeded += 1;
                    }
                }
                // Waiting with a last termination counts as stopped, not succeeded.
                Run::BackOff { .. } => stopped += 1,
                Run::Waiting { .. } if c.last.is_some() => stopped += 1,
                Run::Waiting { .. } => waiting += 1,
            }
        }
        let phase = if waiting > 0 {
            "Pending"
        } else if running > 0 {
            "Running"
        } else if stopped == 0 {
            "Pending"
        } else if self.deletion.is_some() {
            // A deleted pod whose containers have stopped is terminal whatever
            // its restartPolicy (getPhase's podIsTerminal, since Kubernetes 1.27).
            if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            }
        } else {
            match self.spec.restart_policy.as_deref().unwrap_or("Always") {
                // Every container is restarting.
                "Always" => "Running",
                _ if stopped == succeeded => "Succeeded",
                "Never" => "Failed",
                // OnFailure, at least one failed and restarting.
                _ => "Running",
            }
        };
        phase.into()
    }

    pub(crate) fn address(&self) -> Option<SocketAddr> {
        self.containers
            .iter()
            .find_map(|c| c.host_port)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
    }

    /// The pod as the API server shows it.
    pub(crate) fn to_pod(&self, resource_version: u64) -> Pod {
        let phase = self.phase();
        // Not yet scheduled (a `Phase` fault); a refused container is Pending but scheduled.
        let pending = self.faults.phase.as_deref() == Some("Pending");
        let finished = phase == "Succeeded" || phase == "Failed";
        let mut annotations = self.annotations.clone();
        let ports: Vec<String> = self
            .containers
            .iter()
            .filter_map(|c| c.host_port.map(|p| format!("{}={p}", c.name)))
            .collect();
        if !ports.is_empty() {
            annotations.insert(PORTS_ANNOTATION.into(), ports.join(","));
        }
        let metadata = ObjectMeta {
            name: Some(self.name.clone()),
            namespace: Some(self.namespace.clone()),
            uid: Some(self.uid.clone()),
            labels: Some(self.labels.clone()),
            annotations: (!annotations.is_empty()).then_some(annotations),
            creation_timestamp: Some(time(self.created)),
            resource_version: Some(resource_version.to_string()),
            generate_name: self.owner.as_ref().map(|(_, rs)| format!("{rs}-")),
            owner_references: self.owner.as_ref().map(|(_, rs)| {
                vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: rs.clone(),
                    uid: format!("{}-rs", self.uid),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            deletion_timestamp: self
                .deletion
                .as_ref()
                .map(|d| time(d.timestamp))
                .or(self.faults.deletion.map(time)),
            deletion_grace_period_seconds: self
                .deletion
                .as_ref()
                .map(|d| d.grace_seconds)
                .or(self.faults.deletion.map(|_| 30)),
            ..Default::default()
        };
        let mut spec = self.spec.clone();
        if !pending {
            spec.node_name = Some(NODE_NAME.into());
        }
        spec.restart_policy.get_or_insert_with(|| "Always".into());
        spec.scheduler_name
            .get_or_insert_with(|| "default-scheduler".into());
        spec.service_account_name
            .get_or_insert_with(|| "default".into());
        spec.termination_grace_period_seconds.get_or_insert(30);
        spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
        // The API server always serves `securityContext: {}` at least (kubectl
        // debug 1.35 dereferences it without a check).
        spec.security_context.get_or_insert_with(Default::default);
        for (cs, c) in spec.containers.iter_mut().zip(&self.containers) {
            if let (Some(port), Some(first)) =
                (c.host_port, cs.ports.as_mut().and_then(|p| p.first_mut()))
            {
                first.host_port = Some(i32::from(port));
            }
            cs.termination_message_path
                .get_or_insert_with(|| "/dev/termination-log".into());
            cs.image_pull_policy
                .get_or_insert_with(|| "IfNotPresent".into());
        }
        let statuses: Vec<ContainerStatus> = self
            .containers
            .iter()
            .map(|c| container_status(self, c, pending, finished, &phase))
            .collect();
        let all_ready = !pending && statuses.iter().all(|s| s.ready);
        let cond = |type_: &str, ok: bool, reason: Option<&str>| PodCondition {
            type_: type_.into(),
            status: if ok { "True" } else { "False" }.into(),
            reason: reason.map(str::to_string),
            last_transition_time: Some(time(self.created)),
            ..Default::default()
        };
        let conditions = if pending {
            vec![cond("PodScheduled", false, Some("Unschedulable"))]
        } else {
            vec![
                cond("PodReadyToStartContainers", true, None),
                cond("Initialized", true, None),
                cond(
                    "Ready",
                    all_ready,
                    (!all_ready).then_some("ContainersNotReady"),
                ),
                cond(
                    "ContainersReady",
                    all_ready,
                    (!all_ready).then_some("ContainersNotReady"),
                ),
                cond("PodScheduled", true, None),
            ]
        };
        let host_ip = (!pending).then(|| "127.0.0.1".to_string());
        let ip = (!pending).then(|| self.ip.to_string());
        let status = PodStatus {
            phase: Some(phase.clone()),
            conditions: Some(conditions),
            host_ip: host_ip.clone(),
            host_ips: host_ip.map(|ip| vec![k8s_openapi::api::core::v1::HostIP { ip }]),
            pod_ip: ip.clone(),
            pod_ips: ip.map(|ip| vec![PodIP { ip }]),
            start_time: (!pending).then(|| time(self.created)),
            // An unscheduled pod has no container statuses: no kubelet has seen it.
            container_statuses: (!pending).then_some(statuses),
            ephemeral_container_statuses: crate::ephemeral::statuses(self),
            qos_class: Some("BestEffort".into()),
            ..Default::default()
        };
        Pod {
            metadata,
            spec: Some(spec),
            status: Some(status),
        }
    }
}

fn terminated(e: &Ended, container_id: &str) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: e.exit_code,
        reason: Some(e.reason.clone()),
        started_at: Some(time(e.started)),
        finished_at: Some(time(e.finished)),
        container_id: Some(container_id.to_string()),
        ..Default::default()
    }
}

pub(crate) fn container_status(
    pod: &PodState,
    c: &ContainerRun,
    pending: bool,
    finished: bool,
    phase: &str,
) -> ContainerStatus {
    let container_id = format!(
        "localkube://{}/{}/{}/{}",
        pod.namespace, pod.name, c.name, c.generation
    );
    // The last terminated instance: the current one while it waits to restart.
    let last_generation = match c.run {
        Run::BackOff { .. } => c.generation,
        _ => c.generation.saturating_sub(1),
    };
    let last_id = format!(
        "localkube://{}/{}/{}/{last_generation}",
        pod.namespace, pod.name, c.name
    );
    let (state, ready) = if pending {
        (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ContainerCreating".into()),
                    message: None,
                }),
                ..Default::default()
            },
            false,
        )
    } else if finished && pod.faults.phase.is_some() {
        // A phase fault: show the containers as ended the way that phase implies.
        let code = if phase == "Succeeded" { 0 } else { 1 };
        let now = Timestamp::now();
        (
            ContainerState {
                terminated: Some(terminated(
                    &Ended {
                        exit_code: code,
                        reason: if code == 0 { "Completed" } else { "Error" }.into(),
                        started: pod.created,
                        finished: now,
                    },
                    &container_id,
                )),
                ..Default::default()
            },
            false,
        )
    } else {
        match &c.run {
            Run::Running { started, .. } => (
                ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(time(*started)),
                    }),
                    ..Default::default()
                },
                true,
            ),
            Run::Ended(e) => (
                ContainerState {
                    terminated: Some(terminated(e, &container_id)),
                    ..Default::default()
                },
                false,
            ),
            Run::Waiting { reason, message } => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.clone()),
                        message: Some(message.clone()),
                    }),
                    ..Default::default()
                },
                false,
            ),
            Run::BackOff { message } => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("CrashLoopBackOff".into()),
                        message: Some(message.clone()),
                    }),
                    ..Default::default()
                },
                false,
            ),
        }
    };
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id: Some(container_id.clone()),
        ready,
        started: Some(ready),
        restart_count: c.restart_count,
        state: Some(state),
        last_state: c.last.as_ref().map(|e| ContainerState {
            terminated: Some(terminated(e, &last_id)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

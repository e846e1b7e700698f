//! Ephemeral containers, as the API server and the kubelet serve them:
//! `GET/PATCH/PUT pods/{name}/ephemeralcontainers`, their validation, their
//! status, starting them in a running pod, and `pods/{name}/attach` (which
//! `kubectl debug -it` uses to talk to one).
//!
//! Modelled on Kubernetes 1.35:
//! * `pkg/registry/core/pod/strategy.go` (`podEphemeralContainersStrategy`):
//!   an update through this subresource changes `spec.ephemeralContainers` only;
//!   every other change in the request is dropped.
//! * `pkg/apis/core/validation/validation.go`
//!   (`ValidatePodEphemeralContainersUpdate`, `validateEphemeralContainers`):
//!   existing entries may be neither removed nor changed; names are unique
//!   among all of the pod's containers; `image` is required; ports, probes,
//!   lifecycle, resources and `subPath`/`subPathExpr` are forbidden;
//!   `targetContainerName` must name one of the pod's containers; volume
//!   mounts must name a volume of the pod. Failures are 422 `Invalid`.
//! * `pkg/kubelet/kuberuntime` / `pkg/kubelet/images`: an ephemeral container is
//!   started once and never restarted; with `targetContainerName` it joins that
//!   container's PID namespace, else the pod's (shared or its own). An image the
//!   node cannot pull shows `waiting.reason: ErrImagePull` ("Failed to pull image
//!   …"), then `ImagePullBackOff` ("Back-off pulling image …") as the kubelet's
//!   image manager reports; here an image is pullable when it is in the image map.
//! * Pod Security admission (`k8s.io/pod-security-admission`, policy
//!   `restricted`): when enabled for the pod's namespace
//!   ([`crate::LocalKubeBuilder::pod_security_restricted`]), an update whose new
//!   ephemeral container breaks the restricted profile is refused with 403 and
//!   PSA's message.
//!
//! Pods share the host network in localkube, so an ephemeral container has the
//! pod's network as it would on a node.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateWaiting, ContainerStatus, EphemeralContainer, Pod,
};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::exec::{V4, V5, wait_exit};
use crate::manifest;
use crate::state::{Cluster, ContainerRun, Ended, PodState, Run};
use crate::status::{error, json_ok, pod_not_found};
use crate::sys::container::{self, ContainerSpec, MountSpec};

/// How long an unpullable image shows `ErrImagePull` before `ImagePullBackOff`.
const PULL_FAILURE_SHOWN: Duration = Duration::from_secs(1);

/// One ephemeral container of a pod: its spec lives in the pod's
/// `spec.ephemeralContainers`; this is what the "kubelet" knows of it.
#[derive(Debug)]
pub(crate) struct EphemeralRun {
    pub name: String,
    pub state: EphemeralState,
    /// Write end of its standard input (`stdin: true`), for attach.
    pub stdin: Option<Arc<OwnedFd>>,
}

#[derive(Debug)]
pub(crate) enum EphemeralState {
    /// Accepted by the API, not yet seen by the kubelet: no status entry yet.
    Pending,
    /// Its image cannot be pulled (not in the image map).
    PullFailed { since: Instant },
    /// Started (and maybe ended); never restarted.
    Started(Box<ContainerRun>),
}

impl EphemeralRun {
    pub(crate) fn run(&self) -> Option<&ContainerRun> {
        match &self.state {
            EphemeralState::Started(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn run_mut(&mut self) -> Option<&mut ContainerRun> {
        match &mut self.state {
            EphemeralState::Started(c) => Some(c),
            _ => None,
        }
    }
}

/// `status.ephemeralContainerStatuses` of a pod (`None` when there are none).
pub(crate) fn statuses(pod: &PodState) -> Option<Vec<ContainerStatus>> {
    let specs = pod.spec.ephemeral_containers.as_deref().unwrap_or_default();
    let list: Vec<ContainerStatus> = pod
        .ephemeral
        .iter()
        .filter_map(|e| {
            let image = specs
                .iter()
                .find(|s| s.name == e.name)
                .and_then(|s| s.image.clone())
                .unwrap_or_default();
            match &e.state {
                EphemeralState::Pending => None,
                EphemeralState::PullFailed { since } => {
                    let (reason, message) = if since.elapsed() < PULL_FAILURE_SHOWN {
                        (
                            "ErrImagePull",
                            format!(
                                "Failed to pull image {image:?}: rpc error: code = NotFound desc = failed to pull and unpack image {image:?}: not found (localkube has no executable for this image)"
                            ),
                        )
                    } else {
                        ("ImagePullBackOff", format!("Back-off pulling image {image:?}"))
                    };
                    Some(ContainerStatus {
                        name: e.name.clone(),
                        image,
                        image_id: String::new(),
                        ready: false,
                        restart_count: 0,
                        state: Some(ContainerState {
                            waiting: Some(ContainerStateWaiting {
                                reason: Some(reason.into()),
                                message: Some(message),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                }
                EphemeralState::Started(run) => {
                    // Ephemeral containers are never ready (they have no probes
                    // and do not count towards the pod's readiness).
                    let mut s = crate::state::container_status(pod, run, false, false, "");
                    s.ready = false;
                    Some(s)
                }
            }
        })
        .collect();
    (!list.is_empty()).then_some(list)
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn flag(q: &[(String, String)], key: &str) -> bool {
    matches!(param(q, key), Some("true" | "1" | "True"))
}

/// `GET/PATCH/PUT /api/v1/namespaces/{ns}/pods/{name}/ephemeralcontainers`.
pub(crate) async fn handle(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !c.ephemeral_enabled {
        // An API server without the subresource: a 404 whose details name
        // nothing (kubectl debug tells this apart from a missing pod by that).
        return error(
            404,
            "the server could not find the requested resource",
            Some(json!({})),
        );
    }
    let content_type = crate::patch::media_type(&headers);
    let (pod, new_names) = {
        let mut inner = c.lock();
        let rv = inner.resource_version;
        let Some(pod) = inner.pod(&ns, &name) else {
            return pod_not_found(&name);
        };
        let current = pod.to_pod(rv);
        let wanted: Pod = match method {
            Method::GET => return json_ok(&current),
            Method::PATCH => match apply_patch(&current, &content_type, &body) {
                Ok(p) => p,
                Err(r) => return *r,
            },
            Method::PUT => match put_body(&current, &body, &name) {
                Ok(p) => p,
                Err(r) => return *r,
            },
            _ => {
                return error(
                    405,
                    format!(
                        "the server does not allow this method on the requested resource ({method})"
                    ),
                    Some(json!({})),
                );
            }
        };
        let mut wanted_list = wanted
            .spec
            .and_then(|s| s.ephemeral_containers)
            .unwrap_or_default();
        wanted_list.iter_mut().for_each(set_defaults);
        let old_list = pod.spec.ephemeral_containers.clone().unwrap_or_default();
        if let Err(causes) = validate(pod, &old_list, &wanted_list) {
            return invalid(&name, &causes);
        }
        let new: Vec<&EphemeralContainer> = wanted_list
            .iter()
            .filter(|w| !old_list.iter().any(|o| o.name == w.name))
            .collect();
        if let Some(message) = c
            .restricted_namespaces
            .contains(&ns)
            .then(|| pod_security_restricted(pod, &new))
            .flatten()
        {
            return error(
                403,
                format!(
                    "pods {name:?} is forbidden: violates PodSecurity \"restricted:latest\": {message}"
                ),
                Some(json!({"name": name, "kind": "pods"})),
            );
        }
        let new_names: Vec<String> = new.iter().map(|n| n.name.clone()).collect();
        let Some(pod) = inner.pod_mut(&ns, &name) else {
            return pod_not_found(&name);
        };
        for n in &new_names {
            pod.ephemeral.push(EphemeralRun {
                name: n.clone(),
                state: EphemeralState::Pending,
                stdin: None,
            });
        }
        pod.spec.ephemeral_containers = (!wanted_list.is_empty()).then_some(wanted_list);
        if !new_names.is_empty() {
            inner.bump();
        }
        let rv = inner.resource_version;
        let pod = inner.pod(&ns, &name).map(|p| p.to_pod(rv));
        (pod, new_names)
    };
    for n in new_names {
        let cluster = Arc::clone(&c);
        let (ns, name) = (ns.clone(), name.clone());
        // The kubelet starts it after the API has answered.
        tokio::task::spawn_blocking(move || start(&cluster, &ns, &name, &n));
    }
    match pod {
        Some(p) => json_ok(&p),
        None => pod_not_found(&name),
    }
}

fn bad_request(message: impl AsRef<str>) -> Box<Response> {
    Box::new(error(400, message, None))
}

/// The pod after a PATCH, by the kinds of patch the API server takes.
fn apply_patch(current: &Pod, content_type: &str, body: &[u8]) -> Result<Pod, Box<Response>> {
    let mut doc = serde_json::to_value(current).map_err(|e| bad_request(e.to_string()))?;
    let parse = |body: &[u8]| -> Result<Value, Box<Response>> {
        serde_json::from_slice(body).map_err(|e| bad_request(format!("error decoding patch: {e}")))
    };
    match content_type {
        "application/strategic-merge-patch+json" => {
            let patch = parse(body)?;
            crate::patch::strategic_merge(&mut doc, &patch).map_err(bad_request)?;
        }
        "application/json-patch+json" => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| bad_request(format!("error decoding JSON patch: {e}")))?;
            json_patch::patch(&mut doc, &patch).map_err(|e| {
                Box::new(error(
                    422,
                    format!("the server rejected our request due to an error in our request: {e}"),
                    None,
                ))
            })?;
        }
        // A merge patch replaces the whole list: existing entries it leaves out
        // count as removed, and validation refuses that.
        "application/merge-patch+json" => {
            let patch = parse(body)?;
            crate::patch::merge_patch(&mut doc, &patch);
        }
        other => {
            return Err(Box::new(error(
                415,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (localkube serves no server-side apply; got {other:?})"
                ),
                None,
            )));
        }
    }
    serde_json::from_value(doc).map_err(|e| bad_request(format!("the patched pod is invalid: {e}")))
}

fn put_body(current: &Pod, body: &[u8], name: &str) -> Result<Pod, Box<Response>> {
    let pod: Pod = serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("error decoding the Pod: {e}")))?;
    if pod.metadata.name.as_deref().is_some_and(|n| n != name) {
        return Err(bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    if let (Some(sent), Some(now)) = (
        pod.metadata.resource_version.as_deref(),
        current.metadata.resource_version.as_deref(),
    ) && !sent.is_empty()
        && sent != now
    {
        return Err(Box::new(error(
            409,
            format!(
                "Operation cannot be fulfilled on pods {name:?}: the object has been modified; please apply your changes to the latest version and try again"
            ),
            Some(json!({"name": name, "kind": "pods"})),
        )));
    }
    Ok(pod)
}

/// The API server's defaults for a container (`pkg/apis/core/v1/defaults.go`).
fn set_defaults(ec: &mut EphemeralContainer) {
    ec.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    ec.termination_message_policy
        .get_or_insert_with(|| "File".into());
    if ec.image_pull_policy.is_none() {
        let image = ec.image.as_deref().unwrap_or_default();
        let tag = manifest::image_repository(image).len() < image.len()
            && !image.contains('@')
            && !image.ends_with(":latest");
        let pinned = image.contains('@') || tag;
        ec.image_pull_policy = Some(if pinned { "IfNotPresent" } else { "Always" }.into());
    }
}

/// One field error, as `field.Error` renders.
struct Cause {
    field: String,
    reason: &'static str,
    detail: String,
}

fn forbidden(field: String, detail: &str) -> Cause {
    Cause {
        field,
        reason: "FieldValueForbidden",
        detail: format!("Forbidden: {detail}"),
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `ValidatePodEphemeralContainersUpdate` + `validateEphemeralContainers`.
fn validate(
    pod: &PodState,
    old: &[EphemeralContainer],
    wanted: &[EphemeralContainer],
) -> Result<(), Vec<Cause>> {
    let mut causes = Vec::new();
    let list = "spec.ephemeralContainers".to_string();
    for o in old {
        match wanted.iter().find(|w| w.name == o.name) {
            None => causes.push(forbidden(
                list.clone(),
                &format!(
                    "existing ephemeral containers {:?} may not be removed",
                    o.name
                ),
            )),
            Some(w) if serde_json::to_value(w).ok() != serde_json::to_value(o).ok() => {
                causes.push(forbidden(
                    list.clone(),
                    &format!(
                        "existing ephemeral containers {:?} may not be changed",
                        o.name
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let regular: Vec<&str> = pod
        .spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .chain(
            pod.spec
                .init_containers
                .iter()
                .flatten()
                .map(|c| c.name.as_str()),
        )
        .collect();
    let volumes: Vec<&str> = pod
        .spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    let mut seen: Vec<&str> = regular.clone();
    for (i, ec) in wanted.iter().enumerate() {
        let at = format!("{list}[{i}]");
        if !is_dns_label(&ec.name) {
            causes.push(Cause {
                field: format!("{at}.name"),
                reason: "FieldValueInvalid",
                detail: format!(
                    "Invalid value: {:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                    ec.name
                ),
            });
        } else if seen.contains(&ec.name.as_str()) {
            causes.push(Cause {
                field: format!("{at}.name"),
                reason: "FieldValueDuplicate",
                detail: format!("Duplicate value: {:?}", ec.name),
            });
        }
        seen.push(&ec.name);
        if old.iter().any(|o| o.name == ec.name) {
            continue; // checked above, and when it was added
        }
        if ec.image.as_deref().unwrap_or_default().is_empty() {
            causes.push(Cause {
                field: format!("{at}.image"),
                reason: "FieldValueRequired",
                detail: "Required value".into(),
            });
        }
        let set: [(&str, bool); 8] = [
            ("ports", ec.ports.as_ref().is_some_and(|p| !p.is_empty())),
            ("livenessProbe", ec.liveness_probe.is_some()),
            ("readinessProbe", ec.readiness_probe.is_some()),
            ("startupProbe", ec.startup_probe.is_some()),
            ("lifecycle", ec.lifecycle.is_some()),
            (
                "resources",
                ec.resources.as_ref().is_some_and(|r| {
                    r.limits.as_ref().is_some_and(|l| !l.is_empty())
                        || r.requests.as_ref().is_some_and(|l| !l.is_empty())
                }),
            ),
            (
                "resizePolicy",
                ec.resize_policy.as_ref().is_some_and(|r| !r.is_empty()),
            ),
            ("restartPolicy", ec.restart_policy.is_some()),
        ];
        for (field, is_set) in set {
            if is_set {
                causes.push(forbidden(
                    format!("{at}.{field}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, m) in ec.volume_mounts.iter().flatten().enumerate() {
            let mat = format!("{at}.volumeMounts[{j}]");
            if !volumes.contains(&m.name.as_str()) {
                causes.push(Cause {
                    field: format!("{mat}.name"),
                    reason: "FieldValueNotFound",
                    detail: format!("Not found: {:?}", m.name),
                });
            }
            if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
                causes.push(forbidden(
                    format!("{mat}.subPath"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
            if m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty()) {
                causes.push(forbidden(
                    format!("{mat}.subPathExpr"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
            if !m.mount_path.starts_with('/') {
                causes.push(Cause {
                    field: format!("{mat}.mountPath"),
                    reason: "FieldValueInvalid",
                    detail: format!(
                        "Invalid value: {:?}: localkube needs an absolute path",
                        m.mount_path
                    ),
                });
            }
        }
        if let Some(t) = ec.target_container_name.as_deref()
            && !regular.contains(&t)
        {
            causes.push(Cause {
                field: format!("{at}.targetContainerName"),
                reason: "FieldValueNotFound",
                detail: format!("Not found: {t:?}"),
            });
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

/// 422 with the causes, as the API server words an invalid object.
fn invalid(name: &str, causes: &[Cause]) -> Response {
    let text: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.detail))
        .collect();
    let message = if text.len() == 1 {
        format!("Pod {name:?} is invalid: {}", text[0])
    } else {
        format!("Pod {name:?} is invalid: [{}]", text.join(", "))
    };
    error(
        422,
        message,
        Some(json!({
            "name": name,
            "kind": "Pod",
            "causes": causes.iter().map(|c| json!({
                "reason": c.reason,
                "message": c.detail,
                "field": c.field,
            })).collect::<Vec<_>>(),
        })),
    )
}

/// Pod Security "restricted" for the new ephemeral containers (as
/// `pod-security-admission/policy` checks them: allowPrivilegeEscalation,
/// capabilities, runAsNonRoot, runAsUser, seccompProfile). `None` = admitted.
fn pod_security_restricted(pod: &PodState, new: &[&EphemeralContainer]) -> Option<String> {
    let psc = pod.spec.security_context.clone().unwrap_or_default();
    let mut escalation = Vec::new();
    let mut caps = Vec::new();
    let mut non_root = Vec::new();
    let mut root_uid = Vec::new();
    let mut seccomp = Vec::new();
    for ec in new {
        let sc = ec.security_context.clone().unwrap_or_default();
        let n = format!("{:?}", ec.name);
        if sc.allow_privilege_escalation != Some(false) {
            escalation.push(n.clone());
        }
        let c = sc.capabilities.clone().unwrap_or_default();
        let drops_all = c.drop.iter().flatten().any(|d| d == "ALL");
        let adds_more = c.add.iter().flatten().any(|a| a != "NET_BIND_SERVICE");
        if !drops_all || adds_more {
            caps.push(n.clone());
        }
        if sc.run_as_non_root.or(psc.run_as_non_root) != Some(true) {
            non_root.push(n.clone());
        }
        if sc.run_as_user.or(psc.run_as_user) == Some(0) {
            root_uid.push(n.clone());
        }
        let profile = sc
            .seccomp_profile
            .clone()
            .or(psc.seccomp_profile.clone())
            .map(|p| p.type_);
        if !matches!(profile.as_deref(), Some("RuntimeDefault" | "Localhost")) {
            seccomp.push(n);
        }
    }
    let which = |names: &[String]| {
        if names.len() == 1 {
            format!("container {}", names[0])
        } else {
            format!("containers {}", names.join(", "))
        }
    };
    let mut problems = Vec::new();
    if !escalation.is_empty() {
        problems.push(format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            which(&escalation)
        ));
    }
    if !caps.is_empty() {
        problems.push(format!(
            "unrestricted capabilities ({} must set securityContext.capabilities.drop=[\"ALL\"])",
            which(&caps)
        ));
    }
    if !non_root.is_empty() {
        problems.push(format!(
            "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
            which(&non_root)
        ));
    }
    if !root_uid.is_empty() {
        problems.push(format!(
            "runAsUser=0 (pod or {} must not set runAsUser=0)",
            which(&root_uid)
        ));
    }
    if !seccomp.is_empty() {
        problems.push(format!(
            "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            which(&seccomp)
        ));
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// What the kubelet does for a new ephemeral container: pull (resolve the
/// image), then create and start it once.
fn start(cluster: &Arc<Cluster>, ns: &str, pod_name: &str, name: &str) {
    let prepared = {
        let inner = cluster.lock();
        let Some(pod) = inner.pod(ns, pod_name) else {
            return;
        };
        prepare(cluster, pod, name)
    };
    let set_state = |state: EphemeralState, stdin: Option<Arc<OwnedFd>>| {
        let mut inner = cluster.lock();
        if let Some(e) = inner
            .pod_mut(ns, pod_name)
            .and_then(|p| p.ephemeral.iter_mut().find(|e| e.name == name))
        {
            e.state = state;
            e.stdin = stdin;
        }
        inner.bump();
        drop(inner);
        cluster.ended.notify_all();
    };
    let Prepared {
        run,
        target,
        net,
        stdin_pipe,
    } = match prepared {
        Ok(p) => p,
        Err(Failure::Pull) => {
            tracing::debug!(%ns, pod = %pod_name, container = %name, "ephemeral container image not pullable");
            return set_state(
                EphemeralState::PullFailed {
                    since: Instant::now(),
                },
                None,
            );
        }
        Err(Failure::Start(run, message)) => {
            tracing::debug!(%ns, pod = %pod_name, container = %name, %message, "ephemeral container did not start");
            return set_state(EphemeralState::Started(run), None);
        }
    };
    let (stdin_r, stdin_w) = match stdin_pipe {
        Some((r, w)) => (Some(r), Some(Arc::new(w))),
        None => (None, None),
    };
    let started = container::start_with_stdin(
        &cluster.spawner,
        cluster.mode,
        &run.spec,
        target,
        net,
        stdin_r,
    );
    let mut run = run;
    match started {
        Ok(process) => {
            let process = Arc::new(process);
            run.generation = 1;
            run.run = Run::Running {
                process: Arc::clone(&process),
                started: Timestamp::now(),
            };
            set_state(EphemeralState::Started(Box::new(run)), stdin_w);
            cluster.reap(ns.into(), pod_name.into(), name.into(), 1, process);
        }
        Err(message) => {
            tracing::debug!(%ns, pod = %pod_name, container = %name, %message, "ephemeral container did not start");
            run.run = start_error(&message);
            set_state(EphemeralState::Started(Box::new(run)), None);
        }
    }
}

/// How the runtime reports a container that could not be started.
fn start_error(message: &str) -> Run {
    tracing::debug!("start error: {message}");
    let now = Timestamp::now();
    Run::Ended(Ended {
        exit_code: 128,
        reason: "StartError".into(),
        started: now,
        finished: now,
    })
}

struct Prepared {
    run: ContainerRun,
    /// The PID namespace to join: the target's, or the pod's shared one.
    target: Option<OwnedFd>,
    /// The pod's network, which ephemeral containers share like the others.
    net: crate::sys::netns::Join,
    stdin_pipe: Option<(OwnedFd, OwnedFd)>,
}

enum Failure {
    Pull,
    Start(Box<ContainerRun>, String),
}

fn prepare(cluster: &Cluster, pod: &PodState, name: &str) -> Result<Prepared, Failure> {
    let Some(ec) = pod
        .spec
        .ephemeral_containers
        .iter()
        .flatten()
        .find(|e| e.name == name)
    else {
        return Err(Failure::Pull);
    };
    let image = ec.image.clone().unwrap_or_default();
    let Some(img) = manifest::resolve_image(&cluster.images, &image).cloned() else {
        return Err(Failure::Pull);
    };
    // Same fields as a container; reuse the pod's environment rules.
    let as_container: Container = serde_json::to_value(ec)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let mut mounts: Vec<MountSpec> = ec
        .volume_mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            pod.volumes.get(&m.name).map(|source| MountSpec {
                source: source.clone(),
                target: m.mount_path.clone(),
                read_only: m.read_only == Some(true),
            })
        })
        .collect();
    // The kubelet's rules for a container apply (entrypoint, env, user).
    let draft = pod.draft();
    let sc = crate::pods::effective(&pod.spec, &as_container);
    let extra_groups: Vec<i64> = pod
        .spec
        .security_context
        .as_ref()
        .map(|s| {
            let mut g = s.supplemental_groups.clone().unwrap_or_default();
            g.extend(s.fs_group);
            g
        })
        .unwrap_or_default();
    let user = crate::image::user::resolve(
        &img.rootfs,
        img.user.as_deref(),
        sc.run_as_user,
        sc.run_as_group,
        &extra_groups,
    );
    let argv = crate::pods::container_argv(&as_container, &img);
    mounts.extend(
        pod.containers
            .first()
            .map(|c| {
                c.spec
                    .mounts
                    .iter()
                    .filter(|m| m.target.starts_with("/etc/"))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    let cdir = pod.dir.join("containers").join(name);
    let _ = std::fs::create_dir_all(&cdir);
    let home = user
        .as_ref()
        .map(|u| u.home.clone())
        .unwrap_or_else(|_| "/".into());
    let env = crate::pods::container_env(&draft, &pod.uid, &as_container, &img.env, &home, pod.ip);
    let identity = user
        .as_ref()
        .map(|u| container::Identity {
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
            capabilities: container::capability_set(as_container.security_context.as_ref()),
        })
        .unwrap_or_default();
    let run = ContainerRun {
        name: name.to_string(),
        image,
        image_id: img.id.clone(),
        spec: ContainerSpec {
            hostname: pod.name.chars().take(63).collect(),
            root_dir: cdir.join("rootfs"),
            scratch_dir: cdir.join("scratch"),
            image_root: img.rootfs.clone(),
            user: identity,
            log_file: cdir.join("output.log"),
            mounts,
            argv: argv.clone().unwrap_or_default(),
            env,
            working_dir: ec
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .or_else(|| img.working_dir.clone()),
        },
        host_port: None,
        run: Run::not_started(),
        restart_count: 0,
        restart_pending: false,
        last: None,
        generation: 0,
        planned_exit: None,
        backoff: None,
    };
    let fail = |mut run: ContainerRun, message: String| {
        run.run = start_error(&message);
        Failure::Start(Box::new(run), message)
    };
    let run = match (user, argv) {
        (Err(m), _) | (_, Err(m)) => return Err(fail(run, m)),
        _ => run,
    };
    let target = match ec.target_container_name.as_deref() {
        Some(t) => {
            let Some(Run::Running { process, .. }) =
                pod.containers.iter().find(|c| c.name == t).map(|c| &c.run)
            else {
                return Err(fail(run, format!("target container {t:?} is not running")));
            };
            Some(process.pidfd.as_fd().try_clone_to_owned())
        }
        None => pod
            .pause
            .as_ref()
            .map(|p| p.pidfd.as_fd().try_clone_to_owned()),
    };
    let target = match target.transpose() {
        Ok(t) => t,
        Err(e) => return Err(fail(run, format!("duplicating a pidfd: {e}"))),
    };
    if target.is_some() && cluster.mode != crate::sys::Mode::Root {
        // Each container has its own user namespace then; joining another's PID
        // namespace from outside it is not possible (as for shareProcessNamespace).
        return Err(fail(
            run,
            "joining another container's PID namespace needs localkube to run as root".into(),
        ));
    }
    let net = match pod.network.as_ref().map(|n| n.join()) {
        Some(Ok(net)) => net,
        Some(Err(e)) => return Err(fail(run, format!("duplicating a pidfd: {e}"))),
        None => return Err(fail(run, "the pod has no network namespace".into())),
    };
    let stdin_pipe = if ec.stdin == Some(true) {
        match crate::sys::process::pipe() {
            Ok(p) => Some(p),
            Err(e) => return Err(fail(run, format!("pipe: {e}"))),
        }
    } else {
        None
    };
    Ok(Prepared {
        run,
        target,
        net,
        stdin_pipe,
    })
}

/// `pods/{name}/attach` over WebSocket: stdin to the container's stdin (if it
/// has one), its output (as its log file grows) on the stdout channel, a
/// success status when it ends. Output written before the attach is not
/// replayed, as with a container runtime's attach.
pub(crate) async fn attach(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    let wanted = param(&q, "container").unwrap_or("").to_string();
    let (process, log, stdin) = {
        let inner = c.lock();
        let Some(pod) = inner.pod(&ns, &name) else {
            return pod_not_found(&name);
        };
        let phase = pod.phase();
        if phase != "Running" {
            return error(
                400,
                format!(
                    "cannot attach to a container in a completed pod; current phase is {phase}"
                ),
                None,
            );
        }
        let found = if wanted.is_empty() {
            pod.containers.first().map(|r| (r, None))
        } else {
            pod.containers
                .iter()
                .find(|r| r.name == wanted)
                .map(|r| (r, None))
                .or_else(|| {
                    pod.ephemeral
                        .iter()
                        .find(|e| e.name == wanted)
                        .and_then(|e| e.run().map(|r| (r, e.stdin.clone())))
                })
        };
        let Some((run, stdin)) = found else {
            return error(
                400,
                format!("container {wanted} is not valid for pod {name}"),
                None,
            );
        };
        let Run::Running { process, .. } = &run.run else {
            return error(
                400,
                format!("container {} is not running in pod {name}", run.name),
                None,
            );
        };
        (Arc::clone(process), run.spec.log_file.clone(), stdin)
    };
    let stdin = if flag(&q, "stdin") { stdin } else { None };
    let (mut parts, _body) = req.into_parts();
    let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        return error(
            400,
            format!(
                "upgrade request required: localkube serves attach over WebSocket ({V5}, {V4}), not SPDY"
            ),
            None,
        );
    };
    let upgrade = upgrade.protocols([V5, V4]);
    if !matches!(
        upgrade.selected_protocol().and_then(|p| p.to_str().ok()),
        Some(V5 | V4)
    ) {
        return error(
            400,
            format!(
                "none of the requested WebSocket subprotocols is supported; localkube speaks {V5} and {V4}"
            ),
            None,
        );
    }
    let offset = tokio::fs::metadata(&log)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    upgrade.on_upgrade(move |socket| attach_session(socket, process, log, offset, stdin))
}

async fn attach_session(
    socket: WebSocket,
    process: Arc<crate::sys::ChildProcess>,
    log: std::path::PathBuf,
    mut offset: u64,
    stdin: Option<Arc<OwnedFd>>,
) {
    let (mut sink, mut stream) = socket.split();
    let mut stdin = stdin
        .and_then(|fd| fd.as_fd().try_clone_to_owned().ok())
        .and_then(|fd| tokio::net::unix::pipe::Sender::from_owned_fd(fd).ok());
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Binary(data) if data.first() == Some(&0) => {
                    if let Some(w) = stdin.as_mut()
                        && w.write_all(&data[1..]).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Message::Binary(data) if data.first() == Some(&255) => stdin = None,
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    let exit = {
        let process = Arc::clone(&process);
        tokio::spawn(async move { wait_exit(&process).await })
    };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let ended = exit.is_finished();
        // Send whatever the log gained since the last look.
        if let Ok(mut f) = tokio::fs::File::open(&log).await
            && f.seek(std::io::SeekFrom::Start(offset)).await.is_ok()
        {
            loop {
                match f.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        offset += n as u64;
                        let mut frame = Vec::with_capacity(n + 1);
                        frame.push(1u8);
                        frame.extend_from_slice(&buf[..n]);
                        if sink.send(Message::Binary(frame.into())).await.is_err() {
                            reader.abort();
                            return;
                        }
                    }
                }
            }
        }
        if ended {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = &mut reader => return,
        }
    }
    let mut status = vec![3u8];
    status.extend_from_slice(
        json!({"metadata": {}, "status": "Success"})
            .to_string()
            .as_bytes(),
    );
    let _ = sink.send(Message::Binary(status.into())).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    let _ = sink.flush().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults() {
        let policy = |image: &str| {
            let mut ec = EphemeralContainer {
                name: "x".into(),
                image: Some(image.into()),
                ..Default::default()
            };
            set_defaults(&mut ec);
            ec.image_pull_policy.unwrap()
        };
        assert_eq!(policy("busybox"), "Always");
        assert_eq!(policy("busybox:latest"), "Always");
        assert_eq!(policy("busybox:1.37"), "IfNotPresent");
        assert_eq!(policy("reg:5000/busybox"), "Always");
        assert_eq!(policy("busybox@sha256:abc"), "IfNotPresent");
    }
}

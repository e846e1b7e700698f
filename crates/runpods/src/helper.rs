//! Helper containers: for images without `kill`, `ls` or `tar` (distroless,
//! `scratch`, ko), an ephemeral container in the pod does the signal and the
//! copy. Kubernetes 1.25+ adds one to a running pod through `PATCH
//! pods/{name}/ephemeralcontainers`; with `targetContainerName` it shares the
//! coverage container's PID namespace (so `kill -USR1 1` reaches the Go
//! process), and it may mount the pod's volumes (so it reads `GOCOVERDIR` with
//! its own `tar`).
//!
//! One helper per coverage container, named [`HELPER_NAME`] (or
//! `cov-helper-2`, … when that name is taken by something else), added once
//! and reused by every later run of either tool: ephemeral containers can be
//! neither removed nor restarted, so they stay until the pod is replaced.
//!
//! The helper:
//! * runs an idle command (`sleep`), the tools exec into it;
//! * mounts, read-only, the volume behind `GOCOVERDIR` at the same path as the
//!   coverage container does. Ephemeral containers may not use `subPath`, so a
//!   `GOCOVERDIR` mounted with one (or on no volume at all) is read through the
//!   shared PID namespace at `/proc/<pid>/root/<GOCOVERDIR>` instead, which the
//!   kernel allows for a process of the same uid (ptrace "read" access);
//! * copies `runAsUser`/`runAsGroup` (container level over pod level, as the
//!   kubelet resolves them), `runAsNonRoot` and `capabilities` from the
//!   coverage container, forbids privilege escalation and uses the runtime's
//!   default seccomp profile. With the same uid the kernel lets it signal the
//!   service without `CAP_KILL`; with the same capabilities it may read the
//!   service's `/proc/<pid>/environ` and `/proc/<pid>/root`, which the kernel
//!   refuses to a process whose capabilities lack some of the target's
//!   (`security/commoncap.c` `cap_ptrace_access_check`), so a helper that
//!   dropped ALL could not find a root service behind a shared process
//!   namespace. A service under Pod Security `restricted` drops ALL itself, so
//!   its helper does too and is admitted.
//!
//! It is added with a strategic-merge patch (merge key `name`), never a JSON
//! merge patch, which would replace the list.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, EphemeralContainer, Pod, SeccompProfile, SecurityContext, VolumeMount,
};
use kube::api::{Api, Patch, PatchParams};

use crate::retry::{RetryPolicy, is_transient, with_retries};

/// The name a user recognises; numbered variants follow when it is taken.
pub const HELPER_NAME: &str = "cov-helper";

/// The default helper image: the official busybox image, multi-arch (amd64,
/// arm64, arm, …), one static binary with `sh`, `kill`, `ls`, `tar`, `gzip`,
/// `grep` and `sleep`, about 2 MB; pinned to a release so every run gets the
/// same tools. Override with `--helper-image` (e.g. a copy in an air-gapped
/// registry).
pub const DEFAULT_HELPER_IMAGE: &str = "docker.io/library/busybox:1.37.0";

/// The helper's idle command: it only has to stay up for the execs.
const IDLE: [&str; 2] = ["sleep", "2147483647"];

/// How to add and wait for helpers.
#[derive(Debug, Clone)]
pub struct HelperConfig {
    pub image: String,
    /// How long a new helper may take to be running.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// How the helper reaches the coverage folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirAccess {
    /// The volume is mounted in the helper at the same path: use `GOCOVERDIR` as is.
    Mounted,
    /// Through the service's root: `/proc/<pid>/root<GOCOVERDIR>` (see [`proc_root_dir`]).
    ProcRoot,
}

/// A helper that is running and ready for execs.
#[derive(Debug, Clone)]
pub struct Helper {
    pub name: String,
    pub access: DirAccess,
    /// Added by this run (false: an earlier one is reused).
    pub added: bool,
}

/// Why no helper could be used; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error(
        "ephemeral containers are disabled in this cluster (the API has no pods/ephemeralcontainers: {0}); they are on by default since Kubernetes 1.25. Use --via exec with an image that has kill, ls and tar"
    )]
    Disabled(String),
    #[error(
        "not allowed to add a helper container: {0}. Grant `patch` on `pods/ephemeralcontainers` (see hooks/rbac/), or use --via exec with an image that has kill, ls and tar"
    )]
    Forbidden(String),
    #[error(
        "the cluster's admission refused the helper container: {0}. Allow it in the policy, or use --via exec with an image that has kill, ls and tar"
    )]
    Admission(String),
    #[error(
        "the helper image {image} cannot be pulled ({reason}: {message}); pass --helper-image with an image the cluster can pull (a busybox copy in your registry)"
    )]
    ImagePull {
        image: String,
        reason: String,
        message: String,
    },
    #[error(
        "the helper container {name} exited ({how}); ephemeral containers cannot be restarted: replace the pod (e.g. kubectl delete pod) or use --via exec"
    )]
    Exited { name: String, how: String },
    #[error("the helper container {name} was not running after {waited:?} (last state: {state})")]
    NotReady {
        name: String,
        waited: Duration,
        state: String,
    },
    #[error("{0}")]
    Other(String),
}

/// `/proc/<pid>/root<dir>`: the coverage folder as the service sees it.
pub fn proc_root_dir(pid: &str, dir: &str) -> String {
    format!("/proc/{pid}/root/{}", dir.trim_start_matches('/'))
}

/// The effective run-as settings of a container (container level over pod level).
fn run_as(pod: &Pod, c: &Container) -> (Option<i64>, Option<i64>, Option<bool>) {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = c.security_context.as_ref();
    (
        csc.and_then(|s| s.run_as_user)
            .or(psc.and_then(|s| s.run_as_user)),
        csc.and_then(|s| s.run_as_group)
            .or(psc.and_then(|s| s.run_as_group)),
        csc.and_then(|s| s.run_as_non_root)
            .or(psc.and_then(|s| s.run_as_non_root)),
    )
}

/// The mount of `c` that holds `dir` (the longest `mountPath` that is `dir` or a parent).
fn mount_for<'a>(c: &'a Container, dir: &str) -> Option<&'a VolumeMount> {
    let dir = dir.trim_end_matches('/');
    c.volume_mounts
        .iter()
        .flatten()
        .filter(|m| {
            let mp = m.mount_path.trim_end_matches('/');
            dir == mp || dir.starts_with(&format!("{mp}/")) || mp.is_empty()
        })
        .max_by_key(|m| m.mount_path.len())
}

/// The helper this tool wants for `container` of `pod`, reading `dir`.
pub fn desired(
    pod: &Pod,
    container: &str,
    dir: &str,
    name: &str,
    image: &str,
) -> Option<(EphemeralContainer, DirAccess)> {
    let c = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == container)?;
    let (user, group, non_root) = run_as(pod, c);
    // The service's own capabilities, never more (see the module docs); a
    // service that sets none has the runtime's defaults, and so does the helper.
    let capabilities = c
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.clone());
    let (mounts, access) = match mount_for(c, dir) {
        Some(m)
            if m.sub_path.as_deref().unwrap_or("").is_empty()
                && m.sub_path_expr.as_deref().unwrap_or("").is_empty() =>
        {
            (
                Some(vec![VolumeMount {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: Some(true),
                    ..Default::default()
                }]),
                DirAccess::Mounted,
            )
        }
        _ => (None, DirAccess::ProcRoot),
    };
    let ec = EphemeralContainer {
        name: name.to_string(),
        image: Some(image.to_string()),
        command: Some(IDLE.iter().map(|s| s.to_string()).collect()),
        target_container_name: Some(container.to_string()),
        volume_mounts: mounts,
        termination_message_policy: Some("File".into()),
        security_context: Some(SecurityContext {
            run_as_user: user,
            run_as_group: group,
            run_as_non_root: non_root.filter(|n| *n),
            allow_privilege_escalation: Some(false),
            capabilities,
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Some((ec, access))
}

/// Whether an existing ephemeral container can serve as this helper: it was
/// made for the same container and mounts what we need.
fn serves(existing: &EphemeralContainer, wanted: &EphemeralContainer) -> bool {
    let mounts = |e: &EphemeralContainer| {
        e.volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.clone(), m.mount_path.clone()))
            .collect::<Vec<_>>()
    };
    existing.target_container_name == wanted.target_container_name
        && existing.command == wanted.command
        && mounts(wanted).iter().all(|m| mounts(existing).contains(m))
}

fn candidate_names() -> impl Iterator<Item = String> {
    std::iter::once(HELPER_NAME.to_string()).chain((2..100).map(|i| format!("{HELPER_NAME}-{i}")))
}

/// The name to use: a helper that already serves (reuse), else the first free name.
fn choose(pod: &Pod, wanted: &EphemeralContainer) -> (String, bool) {
    let spec = pod.spec.as_ref();
    let taken: Vec<&str> = spec
        .map(|s| {
            s.containers
                .iter()
                .map(|c| c.name.as_str())
                .chain(s.init_containers.iter().flatten().map(|c| c.name.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let ephemeral = spec
        .and_then(|s| s.ephemeral_containers.as_deref())
        .unwrap_or_default();
    for name in candidate_names() {
        match ephemeral.iter().find(|e| e.name == name) {
            Some(e) if serves(e, wanted) => return (name, true),
            Some(_) => continue,
            None if taken.contains(&name.as_str()) => continue,
            None => return (name, false),
        }
    }
    (format!("{HELPER_NAME}-{}", std::process::id()), false)
}

/// Whether `pod` (as listed) already has a running helper serving
/// `container` and reading `dir`: `--via auto` then goes straight to it,
/// without first trying an exec that an earlier run saw fail.
pub fn running(pod: &Pod, container: &str, dir: &str, image: &str) -> bool {
    desired(pod, container, dir, HELPER_NAME, image).is_some_and(|(wanted, _)| {
        let (name, exists) = choose(pod, &wanted);
        exists && matches!(seen(pod, &name), Seen::Running)
    })
}

/// What an ephemeral container's status says.
enum Seen {
    Running,
    Waiting(String, String),
    Terminated(String),
    NoStatus,
}

fn seen(pod: &Pod, name: &str) -> Seen {
    let Some(st) = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|all| all.iter().find(|s| s.name == name))
        .and_then(|s| s.state.as_ref())
    else {
        return Seen::NoStatus;
    };
    if st.running.is_some() {
        return Seen::Running;
    }
    if let Some(t) = &st.terminated {
        return Seen::Terminated(format!(
            "{}, exit code {}{}",
            t.reason.as_deref().unwrap_or("terminated"),
            t.exit_code,
            t.message
                .as_deref()
                .map(|m| format!(": {}", one_line(m)))
                .unwrap_or_default()
        ));
    }
    match &st.waiting {
        Some(w) => Seen::Waiting(
            w.reason.clone().unwrap_or_default(),
            one_line(w.message.as_deref().unwrap_or_default()),
        ),
        None => Seen::NoStatus,
    }
}

/// Text from the cluster, made safe for one log line: control characters
/// replaced, length bounded.
fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

fn patch_error(e: kube::Error) -> HelperError {
    match e {
        kube::Error::Api(s) => {
            let msg = one_line(&s.message);
            match s.code {
                // kubectl debug tells "disabled" from "no such pod" the same way:
                // the disabled subresource's 404 names no object.
                404 if s.details.as_ref().is_none_or(|d| d.name.is_empty()) => {
                    HelperError::Disabled(format!("HTTP 404 {msg}"))
                }
                403 if msg.contains("cannot patch resource \"pods/ephemeralcontainers\"") => {
                    HelperError::Forbidden(msg)
                }
                403 => HelperError::Admission(msg),
                400 if msg.contains("admission webhook") => HelperError::Admission(msg),
                code => HelperError::Other(format!(
                    "adding the helper container failed: HTTP {code} {msg}"
                )),
            }
        }
        other => HelperError::Other(format!("adding the helper container failed: {other}")),
    }
}

/// Make sure a helper serves `container` of the pod and is running; `pod` is
/// the pod as listed (its spec and statuses save a request when a running
/// helper is already there).
pub async fn ensure(
    client: &kube::Client,
    pod: &Pod,
    container: &str,
    dir: &str,
    cfg: &HelperConfig,
) -> Result<Helper, HelperError> {
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let deadline = Instant::now() + cfg.timeout;
    let mut current = pod.clone();
    let mut added = false;
    for _attempt in 0..5 {
        let Some((mut wanted, access)) = desired(&current, container, dir, HELPER_NAME, &cfg.image)
        else {
            return Err(HelperError::Other(format!(
                "pod {namespace}/{pod_name} has no container {container}"
            )));
        };
        let (name, exists) = choose(&current, &wanted);
        wanted.name = name.clone();
        if !exists {
            tracing::info!(
                "{namespace}/{pod_name}: adding helper container {name} (image {})",
                cfg.image
            );
            let patch = serde_json::json!({"spec": {"ephemeralContainers": [wanted]}});
            let what = format!("adding {name} to {namespace}/{pod_name}");
            let (pp, patch) = (PatchParams::default(), Patch::Strategic(&patch));
            let (r, _) = with_retries(cfg.retry, &what, is_transient, || {
                api.patch_ephemeral_containers(&pod_name, &pp, &patch)
            })
            .await;
            match r {
                Ok(p) => {
                    current = p;
                    added = true;
                }
                // Someone else (the other tool, a parallel run) took the name
                // meanwhile: look again.
                Err(kube::Error::Api(s))
                    if s.code == 422 && s.message.contains("Duplicate value") =>
                {
                    current = api.get(&pod_name).await.map_err(|e| {
                        HelperError::Other(format!("reading pod {namespace}/{pod_name}: {e}"))
                    })?;
                    continue;
                }
                Err(e) => return Err(patch_error(e)),
            }
        } else {
            tracing::debug!("{namespace}/{pod_name}: reusing helper container {name}");
        }
        wait_running(&api, &current, &name, &cfg.image, deadline, cfg.timeout).await?;
        return Ok(Helper {
            name,
            access,
            added,
        });
    }
    Err(HelperError::Other(format!(
        "could not add a helper container to {namespace}/{pod_name}: its name kept being taken"
    )))
}

async fn wait_running(
    api: &Api<Pod>,
    first: &Pod,
    name: &str,
    image: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), HelperError> {
    let pod_name = first.metadata.name.clone().unwrap_or_default();
    let mut pod = first.clone();
    let mut pause = Duration::from_millis(50);
    loop {
        let state = match seen(&pod, name) {
            Seen::Running => return Ok(()),
            Seen::Terminated(how) => {
                return Err(HelperError::Exited {
                    name: name.into(),
                    how,
                });
            }
            Seen::Waiting(reason, message)
                if matches!(
                    reason.as_str(),
                    "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull"
                ) =>
            {
                let image = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.ephemeral_containers.as_ref())
                    .and_then(|l| l.iter().find(|e| e.name == name))
                    .and_then(|e| e.image.clone())
                    .unwrap_or_else(|| image.to_string());
                return Err(HelperError::ImagePull {
                    image,
                    reason,
                    message,
                });
            }
            Seen::Waiting(reason, _) => format!("waiting: {reason}"),
            Seen::NoStatus => "not started yet".to_string(),
        };
        if Instant::now() >= deadline {
            return Err(HelperError::NotReady {
                name: name.into(),
                waited: timeout,
                state,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
        pod = api
            .get(&pod_name)
            .await
            .map_err(|e| HelperError::Other(format!("reading pod {pod_name}: {e}")))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod json")
    }

    #[test]
    fn helper_copies_identity_and_mounts_the_coverage_volume() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "runAsNonRoot": true},
                "containers": [{"name": "app",
                    "securityContext": {"runAsUser": 65532, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cov", "mountPath": "/cov"}]}],
                "volumes": [{"name": "cov", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]
            }
        }));
        let (ec, access) =
            desired(&p, "app", "/cov/run", HELPER_NAME, DEFAULT_HELPER_IMAGE).unwrap();
        assert_eq!(access, DirAccess::Mounted);
        let sc = ec.security_context.unwrap();
        assert_eq!(sc.run_as_user, Some(65532));
        assert_eq!(sc.run_as_group, Some(3000));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
        let m = &ec.volume_mounts.unwrap()[0];
        assert_eq!(
            (m.name.as_str(), m.mount_path.as_str(), m.read_only),
            ("cov", "/cov", Some(true))
        );
        assert_eq!(ec.target_container_name.as_deref(), Some("app"));
    }

    #[test]
    fn sub_path_falls_back_to_proc_root() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app",
                "volumeMounts": [{"name": "cov", "mountPath": "/cov", "subPath": "x"}]}]}
        }));
        let (ec, access) = desired(&p, "app", "/cov", HELPER_NAME, "b").unwrap();
        assert_eq!(access, DirAccess::ProcRoot);
        assert!(ec.volume_mounts.is_none());
        // The service keeps the runtime's default capabilities: so does its helper.
        assert!(ec.security_context.unwrap().capabilities.is_none());
        assert_eq!(proc_root_dir("1", "/cov"), "/proc/1/root/cov");
    }

    #[test]
    fn names_reuse_a_serving_helper_and_skip_taken_ones() {
        let base = |ephemeral: serde_json::Value| {
            pod(serde_json::json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "app"}], "ephemeralContainers": ephemeral}
            }))
        };
        let p = base(serde_json::json!([]));
        let (wanted, _) = desired(&p, "app", "/cov", HELPER_NAME, "b").unwrap();
        assert_eq!(choose(&p, &wanted), ("cov-helper".into(), false));
        let p = base(serde_json::json!([wanted]));
        assert_eq!(choose(&p, &wanted), ("cov-helper".into(), true));
        // Taken by someone's debug container with another purpose.
        let p = base(serde_json::json!([{"name": "cov-helper", "image": "x", "command": ["sh"]}]));
        assert_eq!(choose(&p, &wanted), ("cov-helper-2".into(), false));
    }
}

//! Graceful pod deletion, as the API server and the kubelet do it.
//!
//! `DELETE /api/v1/namespaces/{ns}/pods/{name}`:
//!
//! * The grace period is `gracePeriodSeconds` of the request (query or
//!   `DeleteOptions` body), else the pod's `terminationGracePeriodSeconds`
//!   (default 30); a negative one becomes 1 (pkg/registry/core/pod/strategy.go
//!   `CheckGracefulDelete`). The API server sets `deletionTimestamp` to now plus
//!   the grace period and `deletionGracePeriodSeconds`, and answers 200 with the
//!   pod (apiserver pkg/registry/rest/delete.go `BeforeDelete`). A second DELETE
//!   may only shorten it.
//! * Grace period 0 (`kubectl delete --grace-period=0 --force`) removes the object
//!   at once; the containers still get a short grace period on the node
//!   (<https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination-forced>).
//! * The kubelet stops every container in parallel
//!   (pkg/kubelet/kuberuntime/kuberuntime_container.go `killContainer`): it runs
//!   the `preStop` hook (`exec` in the container, or `sleep`), bounded by the grace
//!   period; what the hook used is taken from the grace period, with at least 2 s
//!   left (`minimumGracePeriodInSeconds`); then SIGTERM, and SIGKILL when that
//!   time is up (the container runtime's StopContainer).
//! * When every container has stopped, the pod reports a terminal phase, then the
//!   object goes (the kubelet's final delete), and its `emptyDir` volumes are
//!   deleted with it (<https://kubernetes.io/docs/concepts/storage/volumes/#emptydir>).

use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::state::{Cluster, Run};
use crate::status::{error, json_ok, pod_not_found};
use crate::sys::ChildProcess;
use crate::sys::nsexec::{self, ExecSpec};

/// kuberuntime_container.go `minimumGracePeriodInSeconds`.
const MINIMUM_GRACE: Duration = Duration::from_secs(2);

/// A pod being deleted.
#[derive(Debug, Clone)]
pub(crate) struct Deletion {
    /// `metadata.deletionTimestamp`: when the grace period ends.
    pub timestamp: Timestamp,
    /// `metadata.deletionGracePeriodSeconds`.
    pub grace_seconds: i64,
    /// When the node stops waiting for the containers (shortened by a later DELETE).
    deadline: Arc<Mutex<Instant>>,
}

/// Reject lifecycle hooks localkube cannot run faithfully: `(field, message)`.
pub(crate) fn unsupported_hook(c: &Container) -> Option<(String, String)> {
    let lc = c.lifecycle.as_ref()?;
    if lc.post_start.is_some() {
        return Some((
            "lifecycle.postStart".into(),
            "postStart hooks are not supported by localkube".into(),
        ));
    }
    let pre = lc.pre_stop.as_ref()?;
    if pre.http_get.is_some() || pre.tcp_socket.is_some() {
        return Some((
            "lifecycle.preStop".into(),
            "only exec and sleep preStop hooks are supported by localkube".into(),
        ));
    }
    if pre
        .exec
        .as_ref()
        .is_some_and(|e| e.command.as_ref().is_none_or(Vec::is_empty))
    {
        return Some((
            "lifecycle.preStop.exec.command".into(),
            "must not be empty".into(),
        ));
    }
    if pre.sleep.as_ref().is_some_and(|s| s.seconds < 0) {
        return Some((
            "lifecycle.preStop.sleep.seconds".into(),
            "must be greater than or equal to 0".into(),
        ));
    }
    None
}

type Params = Query<Vec<(String, String)>>;

/// The grace period a request asks for, if it names one.
fn requested_grace(q: &[(String, String)], body: &[u8]) -> Result<Option<i64>, String> {
    if let Some((_, v)) = q.iter().find(|(k, _)| k == "gracePeriodSeconds") {
        return v
            .parse()
            .map(Some)
            .map_err(|_| format!("gracePeriodSeconds: invalid value {v:?}"));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let opts: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("the DeleteOptions body is not valid JSON: {e}"))?;
    match opts.get("gracePeriodSeconds") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("DeleteOptions.gracePeriodSeconds: invalid value {v}")),
    }
}

/// `DELETE /api/v1/namespaces/{ns}/pods/{name}`.
pub(crate) async fn delete_pod(
    State(c): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Params,
    body: Bytes,
) -> Response {
    let requested = match requested_grace(&q, &body) {
        Ok(g) => g,
        Err(message) => return error(400, message, None),
    };
    let dry_run = q.iter().any(|(k, v)| k == "dryRun" && v == "All");
    delete(&c, &ns, &name, requested, dry_run)
}

/// Delete a pod gracefully (or at once for grace period 0), as a DELETE request
/// or a controller does; the answer is what the API returns.
pub(crate) fn delete(
    c: &Arc<Cluster>,
    ns: &str,
    name: &str,
    requested: Option<i64>,
    dry_run: bool,
) -> Response {
    let mut inner = c.lock();
    let Some(index) = inner
        .pods
        .iter()
        .position(|p| p.namespace == ns && p.name == name)
    else {
        return pod_not_found(name);
    };
    let pod = &inner.pods[index];
    let phase = pod.phase();
    let mut grace =
        requested.unwrap_or_else(|| pod.spec.termination_grace_period_seconds.unwrap_or(30));
    // strategy.go CheckGracefulDelete: unscheduled or finished pods go at once.
    if phase == "Pending" || phase == "Succeeded" || phase == "Failed" {
        grace = 0;
    }
    if grace < 0 {
        grace = 1;
    }
    if dry_run {
        let rv = inner.watch.version(pod);
        return json_ok(&pod.to_pod(rv));
    }
    let now = Timestamp::now();
    let until = Instant::now() + Duration::from_secs(grace.unsigned_abs());
    if let Some(d) = &pod.deletion {
        // delete.go BeforeDelete: a later request can only shorten the period.
        let remaining = d.timestamp.duration_since(now).as_secs().max(0);
        if grace < remaining {
            let mut deadline = d.deadline.lock().unwrap_or_else(|p| p.into_inner());
            *deadline = (*deadline).min(until);
            drop(deadline);
            let d = inner.pods[index].deletion.as_mut().expect("checked above");
            d.timestamp = now + SignedDuration::from_secs(grace);
            d.grace_seconds = grace;
            inner.bump();
        }
        let pod = &inner.pods[index];
        return json_ok(&pod.to_pod(inner.watch.version(pod)));
    }
    let deletion = Deletion {
        timestamp: now + SignedDuration::from_secs(grace),
        grace_seconds: grace,
        deadline: Arc::new(Mutex::new(until)),
    };
    let work = Terminate::of(&inner.pods[index], &deletion);
    let answer;
    if grace == 0 {
        // Removed from the API at once; the node still stops the containers.
        let mut gone = inner.pods.remove(index);
        gone.deletion = Some(deletion);
        let mut shown = gone.to_pod(0);
        inner.bump();
        shown.metadata.resource_version = Some(inner.resource_version.to_string());
        answer = json_ok(&shown);
        drop(inner);
        let cluster = Arc::clone(c);
        c.runtime.spawn(async move {
            work.run(&cluster, Duration::from_secs(1)).await;
            if let Err(e) = std::fs::remove_dir_all(gone.dir.join("volumes")) {
                tracing::warn!(pod = %gone.name, "removing the pod's volumes: {e}");
            }
        });
    } else {
        inner.pods[index].deletion = Some(deletion);
        inner.bump();
        let pod = &inner.pods[index];
        answer = json_ok(&pod.to_pod(inner.watch.version(pod)));
        drop(inner);
        let cluster = Arc::clone(c);
        c.runtime.spawn(async move {
            work.run(&cluster, Duration::ZERO).await;
            finish(&cluster, &work.namespace, &work.name, &work.uid).await;
        });
    }
    answer
}

/// What the node needs to stop one pod.
struct Terminate {
    namespace: String,
    name: String,
    uid: String,
    deadline: Arc<Mutex<Instant>>,
    containers: Vec<Stop>,
    pause: Option<Arc<ChildProcess>>,
}

struct Stop {
    container: String,
    process: Arc<ChildProcess>,
    pre_stop: Option<LifecycleHandler>,
    env: Vec<(String, String)>,
    working_dir: String,
    user: crate::sys::container::Identity,
}

impl Terminate {
    fn of(pod: &crate::state::PodState, deletion: &Deletion) -> Terminate {
        // Ephemeral containers are stopped with the rest (they have no preStop).
        let containers = pod
            .all_runs()
            .filter_map(|c| {
                let Run::Running { process, .. } = &c.run else {
                    return None;
                };
                let spec = pod.spec.containers.iter().find(|s| s.name == c.name);
                Some(Stop {
                    container: c.name.clone(),
                    process: Arc::clone(process),
                    pre_stop: spec
                        .and_then(|s| s.lifecycle.as_ref())
                        .and_then(|l| l.pre_stop.clone()),
                    env: c.spec.env.clone(),
                    working_dir: c.spec.working_dir.clone().unwrap_or_else(|| "/".into()),
                    user: c.spec.user.clone(),
                })
            })
            .collect();
        Terminate {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            deadline: Arc::clone(&deletion.deadline),
            containers,
            pause: pod.pause.clone(),
        }
    }

    /// Stop every container in parallel, then the pause process. `forced` is the
    /// grace a force-deleted pod still gets on the node (its deadline is now).
    async fn run(&self, cluster: &Arc<Cluster>, forced: Duration) {
        if !forced.is_zero() {
            *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now() + forced;
        }
        let stops = self
            .containers
            .iter()
            .map(|s| stop_container(cluster, self, s));
        futures::future::join_all(stops).await;
        if let Some(p) = &self.pause {
            let _ = p.signal(libc::SIGKILL);
            let _ = exited_by(p, Instant::now() + Duration::from_secs(5)).await;
        }
    }

    fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether a process has ended (its pidfd turns readable), whoever reaps it.
fn has_exited(p: &ChildProcess) -> bool {
    let mut fds = libc::pollfd {
        fd: p.pidfd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    n > 0 && fds.revents != 0
}

/// Wait until the process ends or `deadline` passes; true if it ended.
async fn exited_by(p: &ChildProcess, deadline: Instant) -> bool {
    loop {
        if has_exited(p) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stop_container(cluster: &Arc<Cluster>, t: &Terminate, s: &Stop) {
    let log = |what: &str| {
        tracing::info!(namespace = %t.namespace, pod = %t.name, container = %s.container, "{what}");
    };
    if let Some(hook) = &s.pre_stop
        && Instant::now() < t.deadline()
    {
        log("running the preStop hook");
        if let Err(e) = run_pre_stop(cluster, t, s, hook).await {
            tracing::warn!(namespace = %t.namespace, pod = %t.name, container = %s.container, "preStop hook failed: {e}");
        }
    }
    if has_exited(&s.process) {
        return;
    }
    // What is left of the grace period, but never less than the minimum.
    let kill_at = t.deadline().max(Instant::now() + MINIMUM_GRACE);
    log("sending SIGTERM");
    let _ = s.process.signal(libc::SIGTERM);
    loop {
        // A later DELETE may shorten the period, never below the minimum.
        let kill_at = kill_at.min(t.deadline().max(Instant::now()));
        if exited_by(
            &s.process,
            kill_at.min(Instant::now() + Duration::from_millis(100)),
        )
        .await
        {
            return;
        }
        if Instant::now() >= kill_at {
            break;
        }
    }
    log("grace period over: sending SIGKILL");
    let _ = s.process.signal(libc::SIGKILL);
    let _ = exited_by(&s.process, Instant::now() + Duration::from_secs(10)).await;
}

/// Run one preStop hook, bounded by the grace period.
async fn run_pre_stop(
    cluster: &Arc<Cluster>,
    t: &Terminate,
    s: &Stop,
    hook: &LifecycleHandler,
) -> Result<(), String> {
    let budget = t.deadline().saturating_duration_since(Instant::now());
    if let Some(sleep) = &hook.sleep {
        // lifecycle.go runSleepHandler: a plain sleep, cut short by the grace period.
        let wanted = Duration::from_secs(sleep.seconds.unsigned_abs());
        tokio::time::sleep(wanted.min(budget)).await;
        return Ok(());
    }
    let Some(argv) = hook.exec.as_ref().and_then(|e| e.command.clone()) else {
        return Ok(());
    };
    let target = s
        .process
        .pidfd
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("cannot reach the container: {e}"))?;
    let spec = ExecSpec {
        target,
        mode: cluster.mode,
        argv,
        env: s.env.clone(),
        working_dir: s.working_dir.clone(),
        stdin: false,
        user: s.user.clone(),
    };
    let spawner = Arc::clone(cluster);
    let exec = tokio::task::spawn_blocking(move || nsexec::spawn(&spawner.spawner, spec))
        .await
        .map_err(|e| e.to_string())??;
    // The hook's output is not kept (the kubelet only reports it in an event on failure).
    for fd in [exec.stdout, exec.stderr] {
        std::thread::spawn(move || {
            let mut f = std::fs::File::from(fd);
            let _ = std::io::copy(&mut f, &mut std::io::sink());
        });
    }
    let process = exec.process;
    if !exited_by(&process, t.deadline()).await {
        let _ = process.signal(libc::SIGKILL);
        let _ = process.wait();
        return Err("it did not finish within the grace period".into());
    }
    match process.wait() {
        Ok(0) => Ok(()),
        Ok(code) => Err(format!("exit code {code}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The kubelet's last steps: once every container is recorded as stopped (the
/// terminal status), the object goes, and its `emptyDir`s with it.
async fn finish(cluster: &Arc<Cluster>, namespace: &str, name: &str, uid: &str) {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let recorded = {
            let inner = cluster.lock();
            inner
                .pods
                .iter()
                .find(|p| p.namespace == namespace && p.name == name && p.uid == uid)
                .is_none_or(|p| p.all_runs().all(|c| !matches!(c.run, Run::Running { .. })))
        };
        if recorded || Instant::now() >= give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let removed = {
        let mut inner = cluster.lock();
        let index = inner
            .pods
            .iter()
            .position(|p| p.namespace == namespace && p.name == name && p.uid == uid);
        let removed = index.map(|i| inner.pods.remove(i));
        if removed.is_some() {
            inner.bump();
        }
        removed
    };
    cluster.ended.notify_all();
    if let Some(pod) = removed {
        tracing::info!(%namespace, pod = %name, "pod deleted");
        let volumes = pod.dir.join("volumes");
        if let Err(e) = std::fs::remove_dir_all(&volumes)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("removing {}: {e}", volumes.display());
        }
    }
}

//! Restarting containers whose program ended, as the kubelet does.
//!
//! * **Whether** (`pkg/kubelet/container/helpers.go` `ShouldContainerBeRestarted`):
//!   never once the pod is being deleted; `restartPolicy: Never` never;
//!   `OnFailure` only after a non-zero exit; `Always` (the default) after any exit.
//!   Ephemeral containers are never restarted.
//! * **When** (`pkg/kubelet/kuberuntime/kuberuntime_manager.go` `doBackOff`, with
//!   client-go's `util/flowcontrol/backoff.go` keyed per container): the first
//!   exit is restarted at once and starts the back-off at 10 s (`backOffPeriod`,
//!   `pkg/kubelet/kubelet.go`); a later exit waits the current back-off counted
//!   from the exit (`IsInBackOffSince(key, FinishedAt)`), then the back-off
//!   doubles (`Next`), capped at 300 s (`MaxContainerBackOff`). An exit more than
//!   twice the cap (10 minutes) after the last restart starts over (`hasExpired`).
//! * **Meanwhile** the container is `waiting.reason: CrashLoopBackOff` with the
//!   kubelet's message `back-off 10s restarting failed container=NAME
//!   pod=POD_NAMESPACE(UID)`, and `lastState.terminated` is the run that ended.
//! * **The new instance** has `restartCount` + 1 (`kuberuntime_container.go`
//!   `startContainer`), keeps the pod's `emptyDir` volumes, and the previous
//!   instance's log stays readable with `kubectl logs --previous` (the kubelet's
//!   container GC keeps one dead container per container: `MaxPerPodContainer` 1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;

use crate::state::{Cluster, ContainerRun, Ended, Inner, Run};

/// The kubelet's `backOffPeriod`.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
/// The kubelet's `MaxContainerBackOff`.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The back-off settings (the kubelet's by default; tests may shorten them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackOffPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackOffPolicy {
    fn default() -> Self {
        BackOffPolicy {
            initial: INITIAL_BACKOFF,
            max: MAX_BACKOFF,
        }
    }
}

/// flowcontrol's `backoffEntry` for one container.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackOffEntry {
    pub backoff: Duration,
    pub last_update: Instant,
}

impl BackOffPolicy {
    /// flowcontrol `hasExpired`: stable for twice the cap, start over.
    fn expired(&self, entry: &BackOffEntry, event: Instant) -> bool {
        event.saturating_duration_since(entry.last_update) > self.max * 2
    }

    /// flowcontrol `Next`.
    fn next(&self, entry: &mut Option<BackOffEntry>, event: Instant) {
        let backoff = match entry {
            Some(e) if !self.expired(e, event) => (e.backoff * 2).min(self.max),
            _ => self.initial,
        };
        *entry = Some(BackOffEntry {
            backoff,
            last_update: Instant::now(),
        });
    }
}

/// `ShouldContainerBeRestarted` for a container that has exited.
fn policy_restarts(policy: Option<&str>, exit_code: i32) -> bool {
    match policy.unwrap_or("Always") {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// Go's `time.Duration.String` (what the kubelet's message prints): `10s`,
/// `1m20s`, `5m0s`, `500ms`, `1.5s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (unit, div) = if nanos < 1_000 {
            ("ns", 1)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(nanos, div));
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let s = fraction(
        u128::from(s) * 1_000_000_000 + u128::from(d.subsec_nanos()),
        1_000_000_000,
    );
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// `n / div` with the fraction's trailing zeros dropped.
fn fraction(n: u128, div: u128) -> String {
    let (whole, rest) = (n / div, n % div);
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The file the previous instance's output is kept in.
pub(crate) fn previous_log(log_file: &std::path::Path) -> std::path::PathBuf {
    log_file.with_file_name("previous.log")
}

/// Book a container's restart: its ended run becomes `lastState`, its log
/// becomes the previous instance's, and `restartCount` + 1 once the new
/// instance is recorded (see [`ContainerRun::restart_pending`]).
pub(crate) fn begin_restart(c: &mut ContainerRun) {
    if let Run::Ended(e) = &c.run {
        c.last = Some(e.clone());
    }
    c.restart_pending = true;
    let log = &c.spec.log_file;
    if log.exists()
        && let Err(e) = std::fs::rename(log, previous_log(log))
    {
        tracing::warn!(container = %c.name, "keeping the previous instance's log: {e}");
    }
}

/// Called with the lock held right after a container's run was recorded as
/// ended (not by a fault): restart it as the kubelet would, at once or after
/// its back-off.
pub(crate) fn after_exit(
    cluster: &Arc<Cluster>,
    inner: &mut Inner,
    namespace: &str,
    pod: &str,
    container: &str,
) {
    if inner.apps.stopped {
        return;
    }
    let Some(p) = inner.pod_mut(namespace, pod) else {
        return;
    };
    if p.deletion.is_some() || p.faults.exited.iter().any(|c| c == container) {
        return;
    }
    let pod_ref = format!("{}_{}({})", p.name, p.namespace, p.uid);
    let uid = p.uid.clone();
    let policy = p.spec.restart_policy.clone();
    let Some(c) = p.containers.iter_mut().find(|c| c.name == container) else {
        return;
    };
    let Run::Ended(ended) = &c.run else {
        return;
    };
    if !policy_restarts(policy.as_deref(), ended.exit_code) {
        return;
    }
    let now = Instant::now();
    let config = cluster.backoff;
    let wait = c
        .backoff
        .filter(|e| !config.expired(e, now))
        .map(|e| e.backoff);
    let delay = match wait {
        None => {
            config.next(&mut c.backoff, now);
            Duration::ZERO
        }
        Some(wait) => {
            c.last = Some(ended.clone());
            c.run = Run::BackOff {
                message: format!(
                    "back-off {} restarting failed container={container} pod={pod_ref}",
                    go_duration(wait)
                ),
            };
            wait
        }
    };
    let job = Restart {
        namespace: namespace.into(),
        pod: pod.into(),
        uid,
        container: container.into(),
        generation: c.generation,
        delay,
    };
    let cluster = Arc::clone(cluster);
    cluster.runtime.clone().spawn(job.run(cluster));
}

/// One pending restart.
struct Restart {
    namespace: String,
    pod: String,
    uid: String,
    container: String,
    /// The run it restarts: anything that started the container since wins.
    generation: u64,
    delay: Duration,
}

impl Restart {
    async fn run(self, cluster: Arc<Cluster>) {
        tokio::time::sleep(self.delay).await;
        {
            let mut inner = cluster.lock();
            if inner.apps.stopped {
                return;
            }
            let Some(p) = inner.pod_mut(&self.namespace, &self.pod) else {
                return;
            };
            if p.uid != self.uid || p.deletion.is_some() {
                return;
            }
            let Some(c) = p.containers.iter_mut().find(|c| c.name == self.container) else {
                return;
            };
            if c.generation != self.generation
                || !matches!(c.run, Run::Ended(_) | Run::BackOff { .. })
            {
                return;
            }
            if !self.delay.is_zero() {
                // doBackOff once the wait is over: Next, then start.
                cluster.backoff.next(&mut c.backoff, Instant::now());
            }
            begin_restart(c);
            inner.bump();
        }
        let (ns, pod, container) = (
            self.namespace.clone(),
            self.pod.clone(),
            self.container.clone(),
        );
        let starter = Arc::clone(&cluster);
        let started = tokio::task::spawn_blocking(move || {
            crate::pods::start_container(&starter, &ns, &pod, &container)
        })
        .await;
        let message = match started {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        // The runtime could not start it: a terminated `StartError` run, then
        // the same back-off as any other exit (containerd reports exit code 128).
        tracing::warn!(pod = %self.pod, container = %self.container, "restarting: {message}");
        let mut inner = cluster.lock();
        if let Some(c) = inner
            .pod_mut(&self.namespace, &self.pod)
            .and_then(|p| p.containers.iter_mut().find(|c| c.name == self.container))
            && !matches!(c.run, Run::Running { .. })
        {
            let now = Timestamp::now();
            c.run = Run::Ended(Ended {
                exit_code: 128,
                reason: "StartError".into(),
                started: now,
                finished: now,
            });
            after_exit(
                &cluster,
                &mut inner,
                &self.namespace,
                &self.pod,
                &self.container,
            );
        }
        inner.bump();
        drop(inner);
        cluster.ended.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_does() {
        for (d, go) in [
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(80), "1m20s"),
            (Duration::from_secs(160), "2m40s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_millis(200), "200ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(3600), "1h0m0s"),
        ] {
            assert_eq!(go_duration(d), go);
        }
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_starts_over_when_stable() {
        let policy = BackOffPolicy::default();
        let mut entry = None;
        let now = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..7 {
            policy.next(&mut entry, now);
            seen.push(entry.unwrap().backoff.as_secs());
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300]);
        let mut old = entry.unwrap();
        old.last_update = now - Duration::from_secs(601);
        let mut entry = Some(old);
        policy.next(&mut entry, now);
        assert_eq!(entry.unwrap().backoff.as_secs(), 10);
    }

    #[test]
    fn restart_policy_decides() {
        assert!(policy_restarts(None, 0));
        assert!(policy_restarts(Some("Always"), 0));
        assert!(policy_restarts(Some("OnFailure"), 1));
        assert!(!policy_restarts(Some("OnFailure"), 0));
        assert!(!policy_restarts(Some("Never"), 1));
    }
}

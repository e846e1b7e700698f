//! Which containers: by default every container whose spec sets `GOCOVERDIR`
//! in `env`; `--container` globs override. Pods that are not `Running` (or are
//! terminating) and containers that are not running are skipped with a reason.

use globset::{Glob, GlobSet, GlobSetBuilder};
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::Error;

/// The environment variable Go's coverage runtime writes into.
pub const GOCOVERDIR: &str = "GOCOVERDIR";

/// How to choose containers.
#[derive(Debug, Clone, Default)]
pub struct ContainerChoice {
    globs: Option<GlobSet>,
}

impl ContainerChoice {
    /// `patterns` empty = containers with `GOCOVERDIR`; else names matching any glob.
    pub fn new(patterns: &[String]) -> Result<Self, Error> {
        if patterns.is_empty() {
            return Ok(ContainerChoice { globs: None });
        }
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            let glob = Glob::new(p).map_err(|e| Error::Glob {
                glob: p.clone(),
                message: e.to_string(),
            })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| Error::Glob {
            glob: patterns.join(","),
            message: e.to_string(),
        })?;
        Ok(ContainerChoice { globs: Some(set) })
    }

    pub fn by_glob(&self) -> bool {
        self.globs.is_some()
    }
}

/// Where the coverage folder of a container is, as far as the spec tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoverDir {
    /// `GOCOVERDIR` with a literal value.
    Path(String),
    /// `GOCOVERDIR` from `valueFrom` (its value is not in the spec).
    Indirect,
    /// No `GOCOVERDIR` in `env`.
    Unset,
}

/// One container to work on.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub cover_dir: CoverDir,
    /// `spec.shareProcessNamespace`: PID 1 is then the pause process.
    pub share_process_namespace: bool,
    /// Restarts of this container so far (counters of earlier instances are only
    /// on the volume if they were flushed before the restart).
    pub restart_count: i32,
    /// Set when the work goes through a helper container (see [`crate::helper`]).
    pub helper: Option<HelperRoute>,
}

/// Where execs go when a helper container does the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperRoute {
    /// The helper's name: execs go there.
    pub container: String,
    /// The coverage folder is read through `/proc/<pid>/root` (see
    /// [`crate::helper::DirAccess::ProcRoot`]).
    pub proc_root: bool,
}

impl Target {
    /// The container execs go to: the helper when there is one.
    pub fn exec_container(&self) -> &str {
        self.helper
            .as_ref()
            .map_or(self.container.as_str(), |h| h.container.as_str())
    }

    pub fn label(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.pod, self.container)
    }
}

/// A pod or container that was not worked on, and why.
#[derive(Debug, Clone)]
pub struct Skip {
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    pub reason: String,
}

/// The containers to work on, and what was skipped.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub skipped: Vec<Skip>,
}

fn cover_dir(c: &Container) -> CoverDir {
    match c.env.iter().flatten().find(|e| e.name == GOCOVERDIR) {
        Some(e) => match &e.value {
            Some(v) if !v.is_empty() => CoverDir::Path(v.clone()),
            _ if e.value_from.is_some() => CoverDir::Indirect,
            _ => CoverDir::Unset,
        },
        None => CoverDir::Unset,
    }
}

/// Decide, for every pod, which containers to work on.
pub fn plan(pods: &[Pod], choice: &ContainerChoice) -> Plan {
    let mut plan = Plan::default();
    for pod in pods {
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let skip = |container: Option<&str>, reason: String| Skip {
            namespace: namespace.clone(),
            pod: name.clone(),
            container: container.map(str::to_string),
            reason,
        };
        let Some(spec) = &pod.spec else {
            plan.skipped.push(skip(None, "pod has no spec".into()));
            continue;
        };
        let status = pod.status.as_ref();
        let phase = status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into());
        let wanted: Vec<&Container> = spec
            .containers
            .iter()
            .filter(|c| match &choice.globs {
                Some(set) => set.is_match(&c.name),
                None => true,
            })
            .collect();
        if pod.metadata.deletion_timestamp.is_some() {
            plan.skipped.push(skip(None, "pod is terminating".into()));
            continue;
        }
        if phase != "Running" {
            plan.skipped
                .push(skip(None, format!("pod phase is {phase}, not Running")));
            continue;
        }
        if wanted.is_empty() {
            let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
            plan.skipped.push(skip(
                None,
                format!(
                    "no container matches --container (has {})",
                    names.join(", ")
                ),
            ));
            continue;
        }
        for c in wanted {
            let dir = cover_dir(c);
            if !choice.by_glob() && dir == CoverDir::Unset {
                plan.skipped.push(skip(
                    Some(&c.name),
                    "no GOCOVERDIR in the container's env".into(),
                ));
                continue;
            }
            let cstatus = status
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|all| all.iter().find(|s| s.name == c.name));
            let state = cstatus.and_then(|s| s.state.as_ref());
            let running = state.is_some_and(|s| s.running.is_some());
            if !running {
                let why = match state {
                    Some(s) if s.terminated.is_some() => {
                        let t = s
                            .terminated
                            .as_ref()
                            .map(|t| (t.exit_code, t.reason.clone()));
                        match t {
                            Some((code, Some(reason))) => {
                                format!("container exited ({reason}, exit code {code})")
                            }
                            Some((code, None)) => format!("container exited (exit code {code})"),
                            None => "container exited".into(),
                        }
                    }
                    Some(s) if s.waiting.is_some() => {
                        let reason = s.waiting.as_ref().and_then(|w| w.reason.clone());
                        format!(
                            "container is waiting ({})",
                            reason.unwrap_or_else(|| "no reason given".into())
                        )
                    }
                    _ => "container is not running".into(),
                };
                plan.skipped.push(skip(Some(&c.name), why));
                continue;
            }
            plan.targets.push(Target {
                namespace: namespace.clone(),
                pod: name.clone(),
                container: c.name.clone(),
                cover_dir: dir,
                share_process_namespace: spec.share_process_namespace.unwrap_or(false),
                restart_count: cstatus.map(|s| s.restart_count).unwrap_or(0),
                helper: None,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("valid pod json")
    }

    fn running_pod(containers: serde_json::Value, statuses: serde_json::Value) -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": containers},
            "status": {"phase": "Running", "containerStatuses": statuses}
        }))
    }

    fn running(name: &str) -> serde_json::Value {
        serde_json::json!({"name": name, "image": "i", "ready": true, "restartCount": 0, "state": {"running": {}}})
    }

    #[test]
    fn default_picks_gocoverdir_containers() {
        let p = running_pod(
            serde_json::json!([
                {"name": "app", "env": [{"name": "GOCOVERDIR", "value": "/cov"}]},
                {"name": "sidecar"}
            ]),
            serde_json::json!([running("app"), running("sidecar")]),
        );
        let plan = plan(&[p], &ContainerChoice::default());
        assert_eq!(plan.targets.len(), 1);
        assert_eq!(plan.targets[0].container, "app");
        assert_eq!(plan.targets[0].cover_dir, CoverDir::Path("/cov".into()));
        assert_eq!(plan.skipped.len(), 1);
        assert!(plan.skipped[0].reason.contains("GOCOVERDIR"));
    }

    #[test]
    fn globs_override() {
        let p = running_pod(
            serde_json::json!([{"name": "app-1"}, {"name": "app-2"}, {"name": "db"}]),
            serde_json::json!([running("app-1"), running("app-2"), running("db")]),
        );
        let choice = ContainerChoice::new(&["app-*".into()]).expect("glob");
        let plan = plan(&[p], &choice);
        let names: Vec<_> = plan.targets.iter().map(|t| t.container.as_str()).collect();
        assert_eq!(names, ["app-1", "app-2"]);
        assert_eq!(plan.targets[0].cover_dir, CoverDir::Unset);
    }

    #[test]
    fn not_running_is_skipped() {
        let pending = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "app", "env": [{"name": "GOCOVERDIR", "value": "/cov"}]}]},
            "status": {"phase": "Pending"}
        }));
        let exited = running_pod(
            serde_json::json!([{"name": "app", "env": [{"name": "GOCOVERDIR", "value": "/cov"}]}]),
            serde_json::json!([{"name": "app", "image": "i", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 3}}}]),
        );
        let plan = plan(&[pending, exited], &ContainerChoice::default());
        assert!(plan.targets.is_empty());
        assert!(plan.skipped[0].reason.contains("Pending"));
        assert!(plan.skipped[1].reason.contains("exit code 3"));
    }

    #[test]
    fn bad_glob_is_usage_error() {
        assert!(ContainerChoice::new(&["a[".into()]).is_err());
    }
}

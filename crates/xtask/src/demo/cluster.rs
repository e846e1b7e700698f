//! The demo's cluster: localkube started in-process from the rendered
//! manifests, with the coverage-built service's OCI image layout as its image.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the pods get to start listening (Skaffold waits for readiness
/// before it runs `after` deploy hooks).
const READY_WITHIN: Duration = Duration::from_secs(20);

/// The repository of the tools' default `--helper-image` (busybox runs it here).
const HELPER_IMAGE: &str = "docker.io/library/busybox";

pub struct Pod {
    pub namespace: String,
    pub name: String,
    /// `status.podIP` (inside the pod's own network).
    pub ip: std::net::Ipv4Addr,
}

pub struct Cluster {
    kube: localkube::LocalKube,
    pods: Vec<Pod>,
    pids: Vec<i32>,
}

impl Cluster {
    /// Starts localkube in `dir` with `manifest`, running the image layout
    /// `image_dir` for `image` and the busybox layout `helper_dir` for the
    /// tools' helper image, every pod labelled `skaffold.dev/run-id=<run_id>`, and waits
    /// until every pod accepts connections on its declared ports (Skaffold waits
    /// for readiness, which the example's readinessProbe ties to listening;
    /// localkube runs no probes).
    pub fn start(
        dir: &Path,
        manifest: &Path,
        image: &str,
        image_dir: &Path,
        helper_dir: &Path,
        run_id: &str,
    ) -> Result<Cluster> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("removing the previous run's {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let kube = localkube::LocalKube::builder(dir)
            .manifest(manifest)
            .image(image, image_dir)
            // The tools' default --helper-image, for images without kill/ls/tar.
            .image(HELPER_IMAGE, helper_dir)
            .label("skaffold.dev/run-id", run_id)
            .start()
            .context("starting localkube")?;
        let infos = kube.pods();
        let mut pods = Vec::new();
        let mut pids = Vec::new();
        for info in &infos {
            pids.extend(info.containers.iter().filter_map(|c| c.pid));
            pods.push(Pod {
                namespace: info.namespace.clone(),
                name: info.name.clone(),
                ip: info.ip,
            });
        }
        for pod in &pods {
            wait_listening(&kube, pod, &infos)?;
        }
        Ok(Cluster { kube, pods, pids })
    }

    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// Waits until a rollout has replaced every pod named in `old`: those are
    /// gone (their preStop hold and grace period over), the new ones run and
    /// accept connections. The new pods become [`pods`](Self::pods).
    pub fn wait_replaced(&mut self, old: &[String], within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let infos = loop {
            let infos = self.kube.pods();
            let replaced = !infos.is_empty()
                && infos.iter().all(|p| {
                    !old.contains(&p.name)
                        && p.phase == "Running"
                        && p.containers.iter().all(|c| c.running)
                });
            if replaced {
                break infos;
            }
            if Instant::now() > deadline {
                let now: Vec<String> = infos
                    .iter()
                    .map(|p| format!("{} ({})", p.name, p.phase))
                    .collect();
                bail!(
                    "the rollout did not replace {old:?} within {}s; pods now: {now:?}",
                    within.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut pods = Vec::new();
        for info in &infos {
            self.pids
                .extend(info.containers.iter().filter_map(|c| c.pid));
            pods.push(Pod {
                namespace: info.namespace.clone(),
                name: info.name.clone(),
                ip: info.ip,
            });
        }
        for pod in &pods {
            wait_listening(&self.kube, pod, &infos)?;
        }
        self.pods = pods;
        Ok(())
    }

    /// (namespace, name) of each Service deployed.
    pub fn services(&self) -> Vec<(String, String)> {
        self.kube.services()
    }

    /// `ns/pod: name` of every ephemeral (helper) container in the pods.
    pub fn helpers(&self) -> Vec<String> {
        self.kube
            .pods()
            .iter()
            .flat_map(|p| {
                p.ephemeral_containers
                    .iter()
                    .map(move |c| format!("{}/{}: {}", p.namespace, p.name, c.name))
            })
            .collect()
    }

    pub fn kubeconfig(&self) -> &Path {
        self.kube.kubeconfig()
    }

    pub fn context(&self) -> &str {
        self.kube.context()
    }

    /// Stops every pod and the API server, then checks that no container
    /// process outlived it. Returns how many processes were stopped.
    pub fn stop(mut self) -> Result<usize> {
        // Helper containers the tools added are pod processes too.
        let helpers: Vec<i32> = self
            .kube
            .pods()
            .iter()
            .flat_map(|p| p.ephemeral_containers.iter().filter_map(|c| c.pid))
            .collect();
        self.pids.extend(helpers);
        self.kube.shutdown();
        let left: Vec<i32> = self
            .pids
            .iter()
            .copied()
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .collect();
        if !left.is_empty() {
            bail!("container processes still running after localkube stopped: {left:?}");
        }
        Ok(self.pids.len())
    }
}

fn wait_listening(
    kube: &localkube::LocalKube,
    pod: &Pod,
    infos: &[localkube::PodInfo],
) -> Result<()> {
    let deadline = Instant::now() + READY_WITHIN;
    while !kube
        .listening(&pod.namespace, &pod.name)
        .with_context(|| format!("probing pod {}/{}", pod.namespace, pod.name))?
    {
        if Instant::now() > deadline {
            let logs = infos
                .iter()
                .find(|p| p.name == pod.name)
                .map(|p| {
                    p.containers
                        .iter()
                        .map(|c| c.log_file.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            bail!(
                "pod {}/{} does not accept connections on its declared containerPorts at {} after {}s; its log: {logs}",
                pod.namespace,
                pod.name,
                pod.ip,
                READY_WITHIN.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(())
}

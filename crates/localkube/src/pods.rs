//! Turning validated manifests into running pods: folders, ports, environment,
//! the container processes; and the per-pod operations faults need.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;

use crate::manifest::{self, PodDraft};
use crate::state::{Cluster, ContainerRun, Faults, PodState, Run};
use crate::sys::container::{self, ContainerSpec, DEFAULT_PATH, MountSpec};
use crate::sys::netns::PodNetwork;
use crate::sys::nsexec;
use crate::{Error, Fault};

/// A listener on a free 127.0.0.1 port for a published container port.
fn publish_listener() -> Result<std::net::TcpListener, Error> {
    std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| Error::io("finding a free port", e))
}

/// A container port published on the host (see `LocalKubeBuilder::publish_ports`).
pub(crate) struct Published {
    pub namespace: String,
    pub pod: String,
    pub container_port: u16,
    pub listener: std::net::TcpListener,
}

fn cerr(pod: &PodState, container: &str, message: impl Into<String>) -> Error {
    Error::Container {
        namespace: pod.namespace.clone(),
        pod: pod.name.clone(),
        container: container.to_string(),
        message: message.into(),
    }
}

/// The environment a container sees: defaults, then its spec.
pub(crate) fn container_env(
    pod: &PodDraft,
    uid: &str,
    c: &Container,
    ip: Ipv4Addr,
    api_port: u16,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOSTNAME".to_string(), pod.name.clone()),
        ("HOME".to_string(), "/root".to_string()),
        (
            "KUBERNETES_SERVICE_HOST".to_string(),
            "127.0.0.1".to_string(),
        ),
        ("KUBERNETES_SERVICE_PORT".to_string(), api_port.to_string()),
    ];
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            Some(from) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                Some("metadata.name") => pod.name.clone(),
                Some("metadata.namespace") => pod.namespace.clone(),
                Some("metadata.uid") => uid.to_string(),
                Some("spec.nodeName") => crate::state::NODE_NAME.to_string(),
                Some("spec.serviceAccountName") => "default".to_string(),
                Some("status.podIP") => ip.to_string(),
                Some("status.hostIP") => "127.0.0.1".to_string(),
                _ => String::new(),
            },
            None => e.value.clone().unwrap_or_default(),
        };
        env.push((e.name.clone(), value));
    }
    env
}

/// Safe folder name for a pod.
fn pod_dir_name(ns: &str, name: &str) -> String {
    format!("{ns}_{name}")
}

/// Prepare a pod's folders and container specs; nothing runs yet.
pub(crate) fn prepare(
    draft: &PodDraft,
    dir: &Path,
    images: &BTreeMap<String, PathBuf>,
    api_port: u16,
    ip: Ipv4Addr,
    published: Option<&mut Vec<Published>>,
) -> Result<PodState, Error> {
    let mut published = published;
    let uid = manifest::random_uid();
    let pod_dir = dir
        .join("pods")
        .join(pod_dir_name(&draft.namespace, &draft.name));
    let mut volumes = BTreeMap::new();
    for v in draft.spec.volumes.iter().flatten() {
        let path = pod_dir.join("volumes").join(&v.name);
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::io(format!("creating volume folder {}", path.display()), e))?;
        volumes.insert(v.name.clone(), path);
    }
    let mut containers = Vec::new();
    for (i, c) in draft.spec.containers.iter().enumerate() {
        let image = c.image.clone().unwrap_or_default();
        let field = || format!("containers[{i}].image");
        let executable = manifest::resolve_image(images, &image).ok_or_else(|| Error::Manifest {
            file: draft.file.clone(),
            field: field(),
            message: format!(
                "image {image:?} has no local executable; map it with --image {}=PATH (or LocalKubeBuilder::image)",
                manifest::image_repository(&image)
            ),
        })?;
        // Only on request, and only the first declared port: a host-side proxy
        // into the pod's network (a cluster publishes nothing on its own).
        let mut port = None;
        if let (Some(list), Some(first)) = (
            published.as_deref_mut(),
            c.ports.as_ref().and_then(|p| p.first()),
        ) {
            let container_port =
                u16::try_from(first.container_port).map_err(|_| Error::Manifest {
                    file: draft.file.clone(),
                    field: format!("containers[{i}].ports[0].containerPort"),
                    message: format!("{} is not a TCP port", first.container_port),
                })?;
            let listener = publish_listener()?;
            port = Some(
                listener
                    .local_addr()
                    .map_err(|e| Error::io("finding a free port", e))?
                    .port(),
            );
            list.push(Published {
                namespace: draft.namespace.clone(),
                pod: draft.name.clone(),
                container_port,
                listener,
            });
        }
        let mut mounts = Vec::new();
        for m in c.volume_mounts.iter().flatten() {
            let mut source = volumes[&m.name].clone();
            if let Some(sub) = m.sub_path.as_ref().filter(|s| !s.is_empty()) {
                source = source.join(sub);
                std::fs::create_dir_all(&source)
                    .map_err(|e| Error::io(format!("creating subPath {}", source.display()), e))?;
            }
            mounts.push(MountSpec {
                source,
                target: m.mount_path.clone(),
                read_only: m.read_only == Some(true),
            });
        }
        // The image's program: run it directly, or, when `command` names an absolute
        // path the host lacks, provide it at that path as the image would.
        let command = c.command.clone().unwrap_or_default();
        let mut argv = if command.is_empty() {
            vec![executable.display().to_string()]
        } else {
            let first = &command[0];
            if first.starts_with('/') && !Path::new(first).exists() {
                mounts.push(MountSpec {
                    source: executable.clone(),
                    target: first.clone(),
                    read_only: true,
                });
            }
            command
        };
        argv.extend(c.args.iter().flatten().cloned());
        let cdir = pod_dir.join("containers").join(&c.name);
        containers.push(ContainerRun {
            name: c.name.clone(),
            image,
            executable: executable.clone(),
            spec: ContainerSpec {
                hostname: draft.name.chars().take(63).collect(),
                root_dir: cdir.join("rootfs"),
                log_file: cdir.join("output.log"),
                mounts,
                argv,
                env: container_env(draft, &uid, c, ip, api_port),
                working_dir: c.working_dir.clone(),
            },
            host_port: port,
            run: Run::not_started(),
            restart_count: 0,
            last: None,
            generation: 0,
            planned_exit: None,
        });
        std::fs::create_dir_all(&cdir)
            .map_err(|e| Error::io(format!("creating {}", cdir.display()), e))?;
    }
    let owner = draft.owner.as_ref().map(|d| {
        let hash = draft
            .labels
            .get("pod-template-hash")
            .cloned()
            .unwrap_or_default();
        (d.clone(), format!("{d}-{hash}"))
    });
    Ok(PodState {
        namespace: draft.namespace.clone(),
        name: draft.name.clone(),
        uid,
        labels: draft.labels.clone(),
        annotations: draft.annotations.clone(),
        owner,
        spec: draft.spec.clone(),
        created: Timestamp::now(),
        dir: pod_dir,
        volumes,
        containers,
        pause: None,
        ip,
        network: None,
        faults: Faults::default(),
        deletion: None,
        ephemeral: Vec::new(),
    })
}

/// Create a pod's network namespace (before any of its containers starts).
pub(crate) fn start_network(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
) -> Result<(), Error> {
    let ip = match cluster.lock().pod(namespace, pod) {
        Some(p) => p.ip,
        None => return Ok(()),
    };
    let network = PodNetwork::create(&cluster.spawner, cluster.mode, ip).map_err(|message| {
        Error::Container {
            namespace: namespace.into(),
            pod: pod.into(),
            container: "(network)".into(),
            message,
        }
    })?;
    let mut inner = cluster.lock();
    if let Some(p) = inner.pod_mut(namespace, pod) {
        p.network = Some(Arc::new(network));
    }
    Ok(())
}

/// Give a pod that shares its process namespace its pause process (PID 1 there).
pub(crate) fn start_pause(cluster: &Arc<Cluster>, namespace: &str, pod: &str) -> Result<(), Error> {
    let pause = container::start_pause(&cluster.spawner).map_err(|message| Error::Container {
        namespace: namespace.into(),
        pod: pod.into(),
        container: "(pause)".into(),
        message,
    })?;
    let mut inner = cluster.lock();
    if let Some(p) = inner.pod_mut(namespace, pod) {
        p.pause = Some(Arc::new(pause));
    }
    Ok(())
}

/// Start (or restart) one container of a pod that is already in the cluster.
pub(crate) fn start_container(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<(), Error> {
    let (spec, generation, shared_pid, net) = {
        let mut inner = cluster.lock();
        let net = inner
            .pod(namespace, pod)
            .and_then(|p| p.network.as_ref())
            .map(|n| n.join())
            .transpose()
            .map_err(|e| Error::io("duplicating the pod network's pidfd", e))?
            .ok_or_else(|| Error::Container {
                namespace: namespace.into(),
                pod: pod.into(),
                container: container.into(),
                message: "the pod has no network namespace".into(),
            })?;
        let shared_pid = match inner.pod(namespace, pod).and_then(|p| p.pause.as_ref()) {
            Some(pause) => Some(
                pause
                    .pidfd
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| Error::io("duplicating the pause process's pidfd", e))?,
            ),
            None => None,
        };
        let c = inner.container_mut(namespace, pod, container)?;
        c.generation += 1;
        (c.spec.clone(), c.generation, shared_pid, net)
    };
    let started = container::start(&cluster.spawner, &spec, shared_pid, net);
    let mut inner = cluster.lock();
    let Some(p) = inner.pod_mut(namespace, pod) else {
        return Ok(());
    };
    let pod_ref = &*p;
    let process = match started {
        Ok(process) => Arc::new(process),
        Err(message) => {
            let e = cerr(pod_ref, container, message);
            return Err(e);
        }
    };
    if let Some(c) = p.containers.iter_mut().find(|c| c.name == container) {
        c.run = Run::Running {
            process: Arc::clone(&process),
            started: Timestamp::now(),
        };
    }
    inner.bump();
    drop(inner);
    cluster.reap(
        namespace.into(),
        pod.into(),
        container.into(),
        generation,
        process,
    );
    Ok(())
}

/// Stop a container's process; its end is reported with `exit_code` if given.
/// Returns once the reaper has recorded the end (or after `timeout`).
pub(crate) fn stop_container(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
    container: &str,
    signal: i32,
    exit_code: Option<i32>,
    timeout: Duration,
) -> Result<bool, Error> {
    let process = {
        let mut inner = cluster.lock();
        let c = inner.container_mut(namespace, pod, container)?;
        let Run::Running { process, .. } = &c.run else {
            return Ok(true);
        };
        if exit_code.is_some() {
            c.planned_exit = exit_code;
        }
        Arc::clone(process)
    };
    process.signal(signal).map_err(|e| {
        Error::io(
            format!("signalling {namespace}/{pod} container {container}"),
            e,
        )
    })?;
    Ok(cluster.wait_until(timeout, |inner| {
        inner
            .pod(namespace, pod)
            .and_then(|p| p.containers.iter().find(|c| c.name == container))
            .is_none_or(|c| !matches!(c.run, Run::Running { .. }))
    }))
}

fn fault_err(namespace: &str, pod: &str, message: impl Into<String>) -> Error {
    Error::Fault {
        namespace: namespace.into(),
        pod: pod.into(),
        message: message.into(),
    }
}

/// Apply one fault.
pub(crate) fn set_fault(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
    fault: Fault,
) -> Result<(), Error> {
    let not_found = || Error::NotFound {
        namespace: namespace.into(),
        pod: pod.into(),
        container: None,
    };
    let has_container = |name: &str| -> Result<(), Error> {
        let inner = cluster.lock();
        let p = inner.pod(namespace, pod).ok_or_else(not_found)?;
        if p.containers.iter().any(|c| c.name == name) {
            Ok(())
        } else {
            Err(Error::NotFound {
                namespace: namespace.into(),
                pod: pod.into(),
                container: Some(name.into()),
            })
        }
    };
    let simple = |f: &dyn Fn(&mut Faults)| -> Result<(), Error> {
        let mut inner = cluster.lock();
        let p = inner.pod_mut(namespace, pod).ok_or_else(not_found)?;
        f(&mut p.faults);
        inner.bump();
        Ok(())
    };
    match fault {
        Fault::ExecRefused(code) => {
            if !(400..=599).contains(&code) {
                return Err(fault_err(
                    namespace,
                    pod,
                    format!("ExecRefused needs an HTTP error status (400-599), got {code}"),
                ));
            }
            simple(&|f| f.exec_refused = Some(code))
        }
        Fault::CutStreamAfter(n) => simple(&|f| f.cut_after = Some(n)),
        Fault::SlowStream { bytes_per_sec } => {
            if bytes_per_sec == 0 {
                return Err(fault_err(
                    namespace,
                    pod,
                    "SlowStream needs bytes_per_sec > 0",
                ));
            }
            simple(&|f| f.bytes_per_sec = Some(bytes_per_sec))
        }
        Fault::Phase(phase) => {
            const PHASES: &[&str] = &["Pending", "Running", "Succeeded", "Failed", "Unknown"];
            if !PHASES.contains(&phase.as_str()) {
                return Err(fault_err(
                    namespace,
                    pod,
                    format!("unknown phase {phase:?}; use one of {}", PHASES.join(", ")),
                ));
            }
            simple(&|f| f.phase = Some(phase.clone()))
        }
        Fault::Terminating => simple(&|f| f.deletion = Some(Timestamp::now())),
        Fault::ContainerExited {
            container,
            exit_code,
        } => {
            has_container(&container)?;
            kill_container(cluster, namespace, pod, &container, exit_code)?;
            let mut inner = cluster.lock();
            if let Some(p) = inner.pod_mut(namespace, pod) {
                if let Some(c) = p.containers.iter_mut().find(|c| c.name == container)
                    && let Run::Ended(e) = &mut c.run
                {
                    // The kill may have been recorded before the planned code was set.
                    e.exit_code = exit_code;
                    e.reason = if exit_code == 0 { "Completed" } else { "Error" }.into();
                }
                if !p.faults.exited.contains(&container) {
                    p.faults.exited.push(container);
                }
            }
            inner.bump();
            Ok(())
        }
        Fault::ContainerRestarted { container } => restart(cluster, namespace, pod, &container),
        Fault::ReplaceProgram { name, with } => {
            replace_program(cluster, namespace, pod, &name, &with)
        }
    }
}

/// SIGKILL a container for a fault, reporting `exit_code`; an error if it lingers.
fn kill_container(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
    container: &str,
    exit_code: i32,
) -> Result<(), Error> {
    let stopped = stop_container(
        cluster,
        namespace,
        pod,
        container,
        libc::SIGKILL,
        Some(exit_code),
        Duration::from_secs(10),
    )?;
    if stopped {
        Ok(())
    } else {
        Err(fault_err(
            namespace,
            pod,
            format!("container {container} did not stop within 10s"),
        ))
    }
}

/// Kill (if running) and start again, keeping the volumes; restartCount + 1.
fn restart(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<(), Error> {
    kill_container(cluster, namespace, pod, container, 137)?;
    {
        let mut inner = cluster.lock();
        if let Some(p) = inner.pod_mut(namespace, pod) {
            p.faults.exited.retain(|c| c != container);
            p.faults.replaced.retain(|(c, _)| c != container);
            if let Some(c) = p.containers.iter_mut().find(|c| c.name == container) {
                if let Run::Ended(e) = &c.run {
                    c.last = Some(e.clone());
                }
                c.restart_count += 1;
            }
        }
    }
    start_container(cluster, namespace, pod, container)
}

/// Bind `with` over `name` (found through each container's PATH) in every container.
fn replace_program(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
    name: &str,
    with: &Path,
) -> Result<(), Error> {
    if !with.is_file() {
        return Err(fault_err(
            namespace,
            pod,
            format!("ReplaceProgram: {} is not a file", with.display()),
        ));
    }
    let with = with
        .canonicalize()
        .map_err(|e| Error::io(format!("resolving {}", with.display()), e))?;
    let targets: Vec<(String, PathBuf, std::os::fd::OwnedFd)> = {
        let inner = cluster.lock();
        let p = inner.pod(namespace, pod).ok_or_else(|| Error::NotFound {
            namespace: namespace.into(),
            pod: pod.into(),
            container: None,
        })?;
        let mut out = Vec::new();
        for c in &p.containers {
            let Run::Running { process, .. } = &c.run else {
                continue;
            };
            let candidates = container::exec_candidates(name, &c.spec.env);
            let Some(path) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) else {
                return Err(fault_err(
                    namespace,
                    pod,
                    format!(
                        "ReplaceProgram: {name:?} is not on the PATH of container {}",
                        c.name
                    ),
                ));
            };
            // Bind over the real file, not a symlink to it.
            let path = path.canonicalize().unwrap_or(path);
            let fd = process
                .pidfd
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::io("duplicating pidfd", e))?;
            out.push((c.name.clone(), path, fd));
        }
        out
    };
    for (container, path, fd) in targets {
        let spawner_cluster = Arc::clone(cluster);
        nsexec::mount_in(
            &spawner_cluster.spawner,
            fd,
            cluster.mode,
            Some(&with),
            &path,
        )
        .map_err(|m| {
            fault_err(
                namespace,
                pod,
                format!("ReplaceProgram in {container}: {m}"),
            )
        })?;
        let mut inner = cluster.lock();
        if let Some(p) = inner.pod_mut(namespace, pod) {
            p.faults.replaced.push((container, path));
        }
    }
    Ok(())
}

/// Undo every fault of a pod: restart exited containers, restore replaced programs.
pub(crate) fn clear_faults(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
) -> Result<(), Error> {
    let (exited, replaced) = {
        let mut inner = cluster.lock();
        let Some(p) = inner.pod_mut(namespace, pod) else {
            return Err(Error::NotFound {
                namespace: namespace.into(),
                pod: pod.into(),
                container: None,
            });
        };
        let faults = std::mem::take(&mut p.faults);
        let mut replaced = Vec::new();
        for (container, path) in faults.replaced {
            if let Some(Run::Running { process, .. }) = p
                .containers
                .iter()
                .find(|c| c.name == container)
                .map(|c| &c.run)
                && let Ok(fd) = process.pidfd.as_fd().try_clone_to_owned()
            {
                replaced.push((container, path, fd));
            }
        }
        inner.bump();
        (faults.exited, replaced)
    };
    let mut first_err = None;
    for (container, path, fd) in replaced {
        if let Err(m) = nsexec::mount_in(&cluster.spawner, fd, cluster.mode, None, &path) {
            first_err.get_or_insert(fault_err(
                namespace,
                pod,
                format!("restoring {} in {container}: {m}", path.display()),
            ));
        }
    }
    for container in exited {
        if let Err(e) = restart(cluster, namespace, pod, &container) {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

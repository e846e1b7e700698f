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

use crate::image::Image;
use crate::image::user as image_user;
use crate::manifest::{self, PodDraft};
use crate::state::{Cluster, ContainerRun, Faults, PodState, Run};
use crate::sys::container::{self, ContainerSpec, DEFAULT_PATH, Identity, MountSpec};
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

/// The environment a container sees, in containerd's order (CRI
/// `container_create_linux.go`): the default `PATH`, the image's `Env`, the
/// hostname, then the kubelet's (service variables, the spec's `env`); runc
/// adds `HOME` from `/etc/passwd` when none is set.
pub(crate) fn container_env(
    pod: &PodDraft,
    uid: &str,
    c: &Container,
    image_env: &[String],
    home: &str,
    ip: Ipv4Addr,
) -> Vec<(String, String)> {
    let mut env = vec![("PATH".to_string(), DEFAULT_PATH.to_string())];
    for e in image_env {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        env.push((k.to_string(), v.to_string()));
    }
    env.push(("HOSTNAME".to_string(), pod.name.clone()));
    env.extend(crate::in_cluster::service_env());
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
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".to_string(), home.to_string()));
    }
    env
}

/// The program and its arguments, as containerd's CRI builds them
/// (`internal/cri/opts/spec_opts.go` `WithProcessArgs`): the spec's `command`
/// replaces the image's `Entrypoint` and then its `Cmd` is dropped too; `args`
/// replace `Cmd`.
pub(crate) fn container_argv(c: &Container, image: &Image) -> Result<Vec<String>, String> {
    let mut command = c.command.clone().unwrap_or_default();
    let mut args = c.args.clone().unwrap_or_default();
    if command.is_empty() {
        if args.is_empty() {
            args = image.cmd.clone();
        }
        if !(image.entrypoint.len() == 1 && image.entrypoint[0].is_empty()) {
            command = image.entrypoint.clone();
        }
    }
    command.extend(args);
    if command.is_empty() {
        return Err("no command specified".into());
    }
    Ok(command)
}

/// The kubelet's runAsNonRoot check (`pkg/kubelet/kuberuntime/security_context_others.go`
/// `verifyRunAsNonRoot`), with its messages; `pod` as the kubelet formats it.
fn verify_run_as_non_root(
    sc: &Effective,
    image: &Image,
    pod: &str,
    container: &str,
) -> Result<(), String> {
    if sc.run_as_non_root != Some(true) {
        return Ok(());
    }
    if let Some(uid) = sc.run_as_user {
        if uid == 0 {
            return Err(format!(
                "container's runAsUser breaks non-root policy (pod: {pod:?}, container: {container})"
            ));
        }
        return Ok(());
    }
    match image_user::image_uid(image.user.as_deref()) {
        None => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({}), cannot verify user is non-root (pod: {pod:?}, container: {container})",
            image.user.as_deref().unwrap_or_default()
        )),
        Some(0) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})"
        )),
        Some(_) => Ok(()),
    }
}

/// The security settings that apply to one container: its own, else the pod's.
#[derive(Debug, Default)]
pub(crate) struct Effective {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
}

pub(crate) fn effective(pod: &k8s_openapi::api::core::v1::PodSpec, c: &Container) -> Effective {
    let p = pod.security_context.as_ref();
    let s = c.security_context.as_ref();
    Effective {
        run_as_user: s
            .and_then(|s| s.run_as_user)
            .or(p.and_then(|p| p.run_as_user)),
        run_as_group: s
            .and_then(|s| s.run_as_group)
            .or(p.and_then(|p| p.run_as_group)),
        run_as_non_root: s
            .and_then(|s| s.run_as_non_root)
            .or(p.and_then(|p| p.run_as_non_root)),
    }
}

/// The pod's `/etc/hosts` (the kubelet writes it: `pkg/kubelet/kubelet_pods.go`
/// `managedHostsFileContent`), `/etc/hostname` and `/etc/resolv.conf` (the
/// runtime's, from the sandbox), as files in the pod folder to bind-mount.
fn etc_files(pod_dir: &Path, draft: &PodDraft) -> Result<Vec<MountSpec>, Error> {
    let dir = pod_dir.join("etc");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let hostname: String = draft.name.chars().take(63).collect();
    let hosts = format!(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
    );
    // No cluster DNS here: the host's name servers, with the search path and
    // ndots a ClusterFirst pod gets (pkg/kubelet/network/dns/dns.go).
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut resolv = format!(
        "search {ns}.svc.cluster.local svc.cluster.local cluster.local\n",
        ns = draft.namespace
    );
    for l in host_resolv.lines().filter(|l| l.starts_with("nameserver")) {
        resolv.push_str(l);
        resolv.push('\n');
    }
    resolv.push_str("options ndots:5\n");
    let mut mounts = Vec::new();
    for (name, text, target) in [
        ("hosts", hosts, "/etc/hosts"),
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("resolv.conf", resolv, "/etc/resolv.conf"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        mounts.push(MountSpec {
            source: path,
            target: target.into(),
            read_only: false,
        });
    }
    Ok(mounts)
}

/// Safe folder name for a pod.
fn pod_dir_name(ns: &str, name: &str) -> String {
    format!("{ns}_{name}")
}

/// Prepare a pod's folders and container specs; nothing runs yet.
pub(crate) fn prepare(
    draft: &PodDraft,
    dir: &Path,
    images: &BTreeMap<String, Image>,
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
        // The kubelet makes emptyDir folders 0777 (pkg/volume/emptydir/empty_dir.go).
        std::fs::create_dir_all(&path)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
            })
            .map_err(|e| Error::io(format!("creating volume folder {}", path.display()), e))?;
        volumes.insert(v.name.clone(), path);
    }
    // fsGroup: the kubelet makes emptyDir volumes group-owned by it, group
    // writable and setgid (pkg/volume/volume_linux.go `SetVolumeOwnership`),
    // and adds it to every container's supplementary groups.
    let pod_sc = draft.spec.security_context.as_ref();
    let fs_group = pod_sc.and_then(|s| s.fs_group);
    if let Some(g) = fs_group {
        let gid = u32::try_from(g).map_err(|_| Error::Manifest {
            file: draft.file.clone(),
            field: "spec.securityContext.fsGroup".into(),
            message: format!("{g} is out of range"),
        })?;
        for path in volumes.values() {
            use std::os::unix::fs::PermissionsExt;
            std::os::unix::fs::chown(path, None, Some(gid))
                .and_then(|()| {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o2777))
                })
                .map_err(|e| Error::io(format!("applying fsGroup to {}", path.display()), e))?;
        }
    }
    let mut extra_groups: Vec<i64> = pod_sc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default();
    extra_groups.extend(fs_group);
    let etc = etc_files(&pod_dir, draft)?;
    let mut containers = Vec::new();
    for (i, c) in draft.spec.containers.iter().enumerate() {
        let image_name = c.image.clone().unwrap_or_default();
        let image = manifest::resolve_image(images, &image_name).ok_or_else(|| Error::Manifest {
            file: draft.file.clone(),
            field: format!("containers[{i}].image"),
            message: format!(
                "image {image_name:?} is not mapped to a local image; map it with --image {}=PATH (or LocalKubeBuilder::image)",
                manifest::image_repository(&image_name)
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
        let mut mounts = etc.clone();
        if crate::in_cluster::mounted_account(&draft.spec).is_some() {
            mounts.push(MountSpec {
                source: crate::in_cluster::volume_dir(&pod_dir),
                target: crate::in_cluster::MOUNT_PATH.into(),
                read_only: true,
            });
        }
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
        let cdir = pod_dir.join("containers").join(&c.name);
        let sc = effective(&draft.spec, c);
        let pod_ref = format!("{}_{}({uid})", draft.name, draft.namespace);
        // What a kubelet reports as CreateContainerConfigError / CreateContainerError.
        let mut refused = verify_run_as_non_root(&sc, image, &pod_ref, &c.name)
            .err()
            .map(|m| ("CreateContainerConfigError", m));
        let user = image_user::resolve(
            &image.rootfs,
            image.user.as_deref(),
            sc.run_as_user,
            sc.run_as_group,
            &extra_groups,
        )
        .unwrap_or_else(|m| {
            refused.get_or_insert(("CreateContainerError", m));
            image_user::User {
                uid: 0,
                gid: 0,
                groups: Vec::new(),
                home: "/".into(),
            }
        });
        let argv = container_argv(c, image).unwrap_or_else(|m| {
            refused.get_or_insert(("CreateContainerError", m));
            Vec::new()
        });
        let env = container_env(draft, &uid, c, &image.env, &user.home, ip);
        containers.push(ContainerRun {
            name: c.name.clone(),
            image: image_name,
            image_id: image.id.clone(),
            spec: ContainerSpec {
                hostname: draft.name.chars().take(63).collect(),
                root_dir: cdir.join("rootfs"),
                scratch_dir: cdir.join("scratch"),
                image_root: image.rootfs.clone(),
                user: Identity {
                    uid: user.uid,
                    gid: user.gid,
                    groups: user.groups.clone(),
                    capabilities: container::capability_set(c.security_context.as_ref()),
                },
                log_file: cdir.join("output.log"),
                mounts,
                argv,
                env,
                working_dir: c
                    .working_dir
                    .clone()
                    .filter(|w| !w.is_empty())
                    .or_else(|| image.working_dir.clone()),
            },
            host_port: port,
            run: match refused {
                Some((reason, message)) => Run::Waiting {
                    reason: reason.into(),
                    message,
                },
                None => Run::not_started(),
            },
            restart_count: 0,
            restart_pending: false,
            last: None,
            generation: 0,
            planned_exit: None,
            backoff: None,
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
    let (ip, dir, account, api_port) = {
        let inner = cluster.lock();
        match inner.pod(namespace, pod) {
            Some(p) => (
                p.ip,
                p.dir.clone(),
                crate::in_cluster::mounted_account(&p.spec),
                inner.apps.context.as_ref().map(|c| c.api_port),
            ),
            None => return Ok(()),
        }
    };
    let failed = |message: String| Error::Container {
        namespace: namespace.into(),
        pod: pod.into(),
        container: "(network)".into(),
        message,
    };
    let network = Arc::new(PodNetwork::create(&cluster.spawner, cluster.mode, ip).map_err(failed)?);
    if let Some(account) = account {
        crate::in_cluster::write_volume(cluster, &dir, namespace, &account)
            .map_err(|e| failed(format!("writing the service-account volume: {e}")))?;
    }
    {
        let mut inner = cluster.lock();
        if let Some(p) = inner.pod_mut(namespace, pod) {
            p.network = Some(Arc::clone(&network));
        }
    }
    if let Some(port) = api_port {
        crate::in_cluster::serve_service(cluster, &network, namespace, pod, port)
            .map_err(|e| failed(format!("serving the kubernetes Service address: {e}")))?;
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
        if matches!(c.run, Run::Waiting { .. }) {
            // Refused at creation (CreateContainerConfigError and the like):
            // the kubelet keeps it waiting with its message, it never runs.
            return Ok(());
        }
        c.generation += 1;
        (c.spec.clone(), c.generation, shared_pid, net)
    };
    let started = container::start(&cluster.spawner, cluster.mode, &spec, shared_pid, net);
    let mut inner = cluster.lock();
    let Some(p) = inner.pod_mut(namespace, pod) else {
        return Ok(());
    };
    // The new instance exists now, started or not: a booked restart counts.
    if let Some(c) = p.containers.iter_mut().find(|c| c.name == container)
        && std::mem::take(&mut c.restart_pending)
    {
        c.restart_count += 1;
    }
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
            p.faults.replaced.retain(|(c, _, _)| c != container);
            if let Some(c) = p.containers.iter_mut().find(|c| c.name == container) {
                crate::restart::begin_restart(c);
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
    type Target = (String, PathBuf, Option<PathBuf>, std::os::fd::OwnedFd);
    let targets: Vec<Target> = {
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
            // Look in the image (the container's writable layer starts as it).
            let root = &c.spec.image_root;
            let in_image = |p: &str| {
                crate::image::layer::resolve_in_root(
                    root,
                    Path::new(p.trim_start_matches('/')),
                    true,
                )
                .is_ok_and(|h| h.is_file())
            };
            let candidates = container::exec_candidates(name, &c.spec.env);
            let Some(path) = candidates.iter().find(|p| in_image(p)).map(PathBuf::from) else {
                return Err(fault_err(
                    namespace,
                    pod,
                    format!(
                        "ReplaceProgram: {name:?} is not on the PATH of container {}",
                        c.name
                    ),
                ));
            };
            // A symbolic link (a busybox applet) is replaced itself, not what it points to.
            let link = crate::image::layer::resolve_in_root(
                root,
                Path::new(path.to_string_lossy().trim_start_matches('/')),
                false,
            )
            .ok()
            .and_then(|h| std::fs::read_link(h).ok());
            let fd = process
                .pidfd
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::io("duplicating pidfd", e))?;
            out.push((c.name.clone(), path, link, fd));
        }
        out
    };
    for (container, path, link, fd) in targets {
        nsexec::mount_in(
            &cluster.spawner,
            fd,
            cluster.mode,
            Some(&with),
            &path,
            link.as_deref(),
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
            p.faults.replaced.push((container, path, link));
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
        for (container, path, link) in faults.replaced {
            if let Some(Run::Running { process, .. }) = p
                .containers
                .iter()
                .find(|c| c.name == container)
                .map(|c| &c.run)
                && let Ok(fd) = process.pidfd.as_fd().try_clone_to_owned()
            {
                replaced.push((container, path, link, fd));
            }
        }
        inner.bump();
        (faults.exited, replaced)
    };
    let mut first_err = None;
    for (container, path, link, fd) in replaced {
        if let Err(m) = nsexec::mount_in(
            &cluster.spawner,
            fd,
            cluster.mode,
            None,
            &path,
            link.as_deref(),
        ) {
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

//! Starting a container: a process that is PID 1 of a new PID namespace, with its
//! own mount namespace whose root is its image (see [`super::rootfs`]), and its
//! own hostname, running as the container's user.
//!
//! The parent works out every step (paths, flags) in advance; the child just
//! performs them in order and reports the first failure through a pipe.
//!
//! A pod with `shareProcessNamespace: true` first gets a pause process as PID 1
//! of a new PID namespace; its containers are then created inside that one
//! (each still with its own mount and UTS namespaces), as a kubelet does.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use super::netns::{Join, clone_joined};
use super::process::{
    CStringArray, ChildProcess, Mode, child_fail, child_write, clone3, cstring, errno, pipe,
};
use super::rootfs::{self, Plan};
use super::spawner::Spawner;

/// A directory or file from the host mounted into the container.
#[derive(Debug, Clone)]
pub(crate) struct MountSpec {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// Everything needed to start (and restart) one container.
#[derive(Debug, Clone)]
pub(crate) struct ContainerSpec {
    pub hostname: String,
    /// Empty host folder that becomes the container's root mount point.
    pub root_dir: PathBuf,
    /// Empty host folder for the tmpfs holding the overlay's upper layer.
    pub scratch_dir: PathBuf,
    /// The unpacked image: the overlay's read-only lower layer.
    pub image_root: PathBuf,
    /// Who the program runs as.
    pub user: Identity,
    pub log_file: PathBuf,
    pub mounts: Vec<MountSpec>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
}

/// The user, group and supplementary groups a container's processes run as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    /// The capabilities its processes may have (bit `n` = capability `n`),
    /// from [`capability_set`]: a root process has them all after `execve`,
    /// any other uid none, as under runc.
    pub capabilities: u64,
}

/// Capability names by number (`include/uapi/linux/capability.h`), as the
/// pod spec writes them (without `CAP_`).
const CAPABILITY_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// containerd's default capabilities for a container (`pkg/oci/spec.go`
/// `populateDefaultUnixSpec`): what a container without `capabilities` gets.
const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

fn capability_bits<'a>(names: impl IntoIterator<Item = &'a str>) -> u64 {
    names
        .into_iter()
        .filter_map(|n| {
            let n = n.strip_prefix("CAP_").unwrap_or(n);
            CAPABILITY_NAMES
                .iter()
                .position(|c| c.eq_ignore_ascii_case(n))
        })
        .fold(0, |bits, i| bits | 1 << i)
}

/// The capabilities of a container as containerd's CRI plugin sets them
/// (`internal/cri/opts/spec_linux_opts.go` `WithCapabilities`): the default
/// set, or all when privileged; `add: [ALL]` gives all and `drop: [ALL]`
/// none, then the named ones are added, then the named ones dropped.
pub(crate) fn capability_set(sc: Option<&k8s_openapi::api::core::v1::SecurityContext>) -> u64 {
    let all = (1u64 << CAPABILITY_NAMES.len()) - 1;
    if sc.and_then(|s| s.privileged) == Some(true) {
        return all;
    }
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let add: Vec<&str> = caps
        .and_then(|c| c.add.as_ref())
        .map(|a| a.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let drop: Vec<&str> = caps
        .and_then(|c| c.drop.as_ref())
        .map(|d| d.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let is_all = |n: &&str| n.eq_ignore_ascii_case("ALL");
    let mut set = capability_bits(DEFAULT_CAPABILITIES);
    if add.iter().any(is_all) {
        set = all;
    }
    if drop.iter().any(is_all) {
        set = 0;
    }
    (set | capability_bits(add.iter().copied().filter(|n| !is_all(n))))
        & !capability_bits(drop.iter().copied().filter(|n| !is_all(n)))
}

/// The `PATH` a container gets unless its spec sets one.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The paths `execve` tries for `argv0`, as `execvp` would with the container's PATH.
pub(crate) fn exec_candidates(argv0: &str, env: &[(String, String)]) -> Vec<String> {
    if argv0.contains('/') {
        return vec![argv0.to_string()];
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{argv0}", d.trim_end_matches('/')))
        .collect()
}

/// argv, envp (last value of a name wins) and the exec candidates as C data.
pub(crate) struct ExecData {
    pub argv: CStringArray,
    pub envp: CStringArray,
    pub candidates: Vec<CString>,
    /// `exec: "x": executable file not found in $PATH\n`
    pub not_found: Vec<u8>,
}

pub(crate) fn exec_data(argv: &[String], env: &[(String, String)]) -> Result<ExecData, String> {
    let argv0 = argv.first().ok_or("the command is empty")?;
    let mut seen = HashSet::new();
    let mut envp = Vec::new();
    for (k, v) in env.iter().rev() {
        if seen.insert(k.as_str()) {
            envp.push(cstring("environment", format!("{k}={v}"))?);
        }
    }
    envp.reverse();
    Ok(ExecData {
        argv: CStringArray::new(
            argv.iter()
                .map(|a| cstring("argument", a.as_str()))
                .collect::<Result<_, _>>()?,
        ),
        envp: CStringArray::new(envp),
        candidates: exec_candidates(argv0, env)
            .into_iter()
            .map(|p| cstring("command", p))
            .collect::<Result<_, _>>()?,
        not_found: format!("exec: {argv0:?}: executable file not found in $PATH\n").into_bytes(),
    })
}

/// Try each candidate; returns the most telling errno if none could be executed.
///
/// # Safety
/// Child-side only; async-signal-safe.
pub(crate) unsafe fn child_exec(data: &ExecData) -> i32 {
    let mut err = libc::ENOENT;
    for cand in &data.candidates {
        // SAFETY: null-terminated arrays prepared by the parent.
        unsafe { libc::execve(cand.as_ptr(), data.argv.as_ptr(), data.envp.as_ptr()) };
        let e = errno();
        if e != libc::ENOENT && e != libc::ENOTDIR {
            err = e;
        }
    }
    err
}

/// Mark every descriptor from 3 up close-on-exec.
pub(crate) fn child_cloexec_from_3() {
    // SAFETY: plain syscall; CLOSE_RANGE_CLOEXEC = 4.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32) };
}

struct Prepared {
    plan: Plan,
    exec: ExecData,
    log: File,
    /// The container's standard input: `/dev/null`, or a pipe (`stdin: true`).
    stdin: OwnedFd,
    err_w: OwnedFd,
}

/// Start the container; returns once its program has been executed (or failed to).
/// With `shared_pid`, the pidfd of a pod's pause process, the container joins
/// that PID namespace instead of getting its own. It always joins its pod's
/// network (and, without root, the user namespace that owns it): `net`.
/// Without root (`mode`), it gets a user namespace of its own inside that one.
pub(crate) fn start(
    spawner: &Spawner,
    mode: Mode,
    spec: &ContainerSpec,
    shared_pid: Option<OwnedFd>,
    net: Join,
) -> Result<ChildProcess, String> {
    start_with_stdin(spawner, mode, spec, shared_pid, net, None)
}

/// [`start`] with `stdin` (the read end of a pipe) as the container's standard
/// input instead of `/dev/null`, for containers with `stdin: true`.
pub(crate) fn start_with_stdin(
    spawner: &Spawner,
    mode: Mode,
    spec: &ContainerSpec,
    shared_pid: Option<OwnedFd>,
    net: Join,
    stdin: Option<OwnedFd>,
) -> Result<ChildProcess, String> {
    std::fs::create_dir_all(&spec.root_dir)
        .map_err(|e| format!("creating {}: {e}", spec.root_dir.display()))?;
    std::fs::create_dir_all(&spec.scratch_dir)
        .map_err(|e| format!("creating {}: {e}", spec.scratch_dir.display()))?;
    let plan = rootfs::plan(spec, mode)?;
    let exec = exec_data(&spec.argv, &spec.env)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_file)
        .map_err(|e| format!("opening log {}: {e}", spec.log_file.display()))?;
    let stdin = match stdin {
        Some(fd) => fd,
        None => File::open("/dev/null")
            .map_err(|e| format!("opening /dev/null: {e}"))?
            .into(),
    };
    let (err_r, err_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let what = plan.what.clone();
    let prep = Prepared {
        plan,
        exec,
        log,
        stdin,
        err_w,
    };
    // Without root, a user namespace of its own inside the pod's (see rootfs::plan).
    let mut flags = mode.clone_flags();
    if shared_pid.is_some() {
        flags &= !(libc::CLONE_NEWPID as u64);
    }
    let child = spawner.call(move || {
        // SAFETY: the child only runs `container_child`, which ends in execve/_exit.
        clone_joined(&net, shared_pid.as_ref(), flags, || unsafe {
            container_child(&prep)
        })
    })?;
    let child = child.map_err(|e| format!("cannot create the container's namespaces: {e}"))?;
    let mut buf = Vec::new();
    let _ = File::from(err_r).read_to_end(&mut buf);
    if buf.len() >= 8 {
        let step = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let err =
            std::io::Error::from_raw_os_error(i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]));
        let _ = child.wait();
        let doing = if step == u32::MAX {
            format!("executing {:?}", spec.argv[0])
        } else {
            what.get(step as usize).cloned().unwrap_or_default()
        };
        return Err(format!("{doing}: {err}"));
    }
    Ok(child)
}

/// Start a pod's pause process: PID 1 of a new PID namespace that only reaps
/// orphans (and, as a namespace's init, ignores signals it has no handler for).
pub(crate) fn start_pause(spawner: &Spawner) -> Result<ChildProcess, String> {
    let child = spawner.call(|| {
        // SAFETY: the child branch only runs `pause_child`, which never returns.
        match unsafe { clone3(libc::CLONE_NEWPID as u64) } {
            Ok(None) => unsafe { pause_child() },
            Ok(Some(child)) => Ok(child),
            Err(e) => Err(e),
        }
    })?;
    child.map_err(|e| format!("cannot create the pod's PID namespace: {e}"))
}

/// The pause process. No exec (there is no pause image), so it drops every
/// inherited descriptor: holding pipe ends would keep other readers from EOF.
///
/// # Safety
/// Runs right after clone3 in a copy of a multi-threaded process: syscalls only.
unsafe fn pause_child() -> ! {
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        libc::prctl(
            libc::PR_SET_NAME,
            c"pause".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        let second = libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        loop {
            if libc::waitpid(-1, std::ptr::null_mut(), 0) < 0 {
                libc::nanosleep(&second, std::ptr::null_mut());
            }
        }
    }
}

/// The child: PID 1 of the new namespaces (or a member of the pod's shared
/// PID namespace). Never returns.
///
/// # Safety
/// Runs between clone3 and execve: system calls on prepared data only.
unsafe fn container_child(p: &Prepared) -> ! {
    let err_fd = p.err_w.as_raw_fd();
    // SAFETY (whole function): libc calls with pointers to NUL-terminated strings
    // prepared by the parent.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        for (i, op) in p.plan.ops.iter().enumerate() {
            if !rootfs::run_op(op) {
                child_fail(err_fd, i as u32, errno());
            }
        }
        libc::dup2(p.stdin.as_raw_fd(), 0);
        libc::dup2(p.log.as_raw_fd(), 1);
        libc::dup2(p.log.as_raw_fd(), 2);
        child_cloexec_from_3();
        let e = child_exec(&p.exec);
        if e == libc::ENOENT {
            child_write(2, &p.exec.not_found);
        }
        child_fail(err_fd, u32::MAX, e)
    }
}

//! Starting a container: a process that is PID 1 of a new PID namespace, with its
//! own mount namespace whose root is a tmpfs mirroring the host's top-level
//! entries (bind mounts), so mount points for `emptyDir` volumes can be created
//! without touching the host, plus a fresh `/proc` and its own hostname.
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
use std::path::{Component, Path, PathBuf};

use super::netns::{Join, clone_joined};
use super::process::{
    CStringArray, ChildProcess, child_fail, child_write, clone3, cstring, errno, pipe,
};
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
    pub log_file: PathBuf,
    pub mounts: Vec<MountSpec>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
}

/// The `PATH` a container gets unless its spec sets one.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

enum Op {
    MakePrivate,
    Tmpfs(CString),
    Bind {
        src: CString,
        dst: CString,
        recursive: bool,
    },
    ReadOnly(CString),
    Mkdir(CString),
    Touch(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    Proc(CString),
    PivotInto(CString),
    Chdir(CString),
    Hostname(CString),
}

/// The ops and a description of each, for error messages.
#[derive(Default)]
struct Plan {
    ops: Vec<Op>,
    what: Vec<String>,
}

impl Plan {
    fn push(&mut self, op: Op, what: String) {
        self.ops.push(op);
        self.what.push(what);
    }
}

fn c(p: &Path) -> Result<CString, String> {
    cstring(&p.display().to_string(), p.as_os_str().as_encoded_bytes())
}

/// Tracks which container paths we control (tmpfs or created by us) while planning mounts.
struct Layout<'a> {
    root: &'a Path,
    /// Directories whose entries we decide (the root, shadowed and created dirs).
    writable: HashSet<PathBuf>,
    /// Paths that exist in the container but not on the host (created by us).
    created: HashSet<PathBuf>,
    /// Volume targets mounted so far, with their host sources.
    mounted: Vec<(PathBuf, PathBuf)>,
}

impl Layout<'_> {
    fn inside(&self, p: &Path) -> PathBuf {
        self.root.join(p.strip_prefix("/").unwrap_or(p))
    }

    /// Where a container path lives on the host (through earlier volume mounts).
    fn host_view(&self, p: &Path) -> PathBuf {
        for (target, source) in self.mounted.iter().rev() {
            if let Ok(rel) = p.strip_prefix(target) {
                return source.join(rel);
            }
        }
        p.to_path_buf()
    }

    fn under_volume(&self, p: &Path) -> bool {
        self.mounted.iter().any(|(t, _)| p.starts_with(t))
    }

    /// Mirror one host entry at `dst` (a path under the new root).
    fn mirror(&self, plan: &mut Plan, src: &Path, dst: &Path) -> Result<(), String> {
        let Ok(meta) = std::fs::symlink_metadata(src) else {
            return Ok(()); // vanished meanwhile
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(src).map_err(|e| format!("{}: {e}", src.display()))?;
            plan.push(
                Op::Symlink {
                    target: c(&target)?,
                    link: c(dst)?,
                },
                format!("symlink {}", dst.display()),
            );
        } else if meta.is_dir() {
            plan.push(Op::Mkdir(c(dst)?), format!("mkdir {}", dst.display()));
            plan.push(
                Op::Bind {
                    src: c(src)?,
                    dst: c(dst)?,
                    recursive: true,
                },
                format!("bind {} on {}", src.display(), dst.display()),
            );
        } else {
            plan.push(Op::Touch(c(dst)?), format!("create {}", dst.display()));
            plan.push(
                Op::Bind {
                    src: c(src)?,
                    dst: c(dst)?,
                    recursive: false,
                },
                format!("bind {} on {}", src.display(), dst.display()),
            );
        }
        Ok(())
    }

    /// Cover host directory `dir` with a tmpfs holding binds of all its entries,
    /// so new entries can be added in the container only.
    fn shadow(&mut self, plan: &mut Plan, dir: &Path) -> Result<(), String> {
        let inside = self.inside(dir);
        plan.push(
            Op::Tmpfs(c(&inside)?),
            format!("tmpfs on {}", inside.display()),
        );
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        entries.sort();
        for name in entries {
            self.mirror(plan, &dir.join(&name), &inside.join(&name))?;
        }
        self.writable.insert(dir.to_path_buf());
        Ok(())
    }

    /// Make sure `target` exists in the container as a directory (or file).
    fn ensure(&mut self, plan: &mut Plan, target: &Path, file: bool) -> Result<(), String> {
        let comps: Vec<_> = target.components().collect();
        let mut cur = PathBuf::from("/");
        for (i, comp) in comps.iter().enumerate() {
            let Component::Normal(name) = comp else {
                continue;
            };
            let next = cur.join(name);
            let last = i + 1 == comps.len();
            if self.created.contains(&next) {
                cur = next;
                continue;
            }
            let host = self.host_view(&next);
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() && !self.under_volume(&next) => {
                    return Err(format!(
                        "{} goes through the symbolic link {}; use the real path",
                        target.display(),
                        next.display()
                    ));
                }
                Ok(m) => {
                    if last && file == m.is_dir() {
                        return Err(format!(
                            "{} exists and is {}",
                            target.display(),
                            if m.is_dir() {
                                "a directory"
                            } else {
                                "not a directory"
                            }
                        ));
                    }
                    if !last && !m.is_dir() {
                        return Err(format!(
                            "{} is not a directory (in {})",
                            next.display(),
                            target.display()
                        ));
                    }
                }
                Err(_) => {
                    if !self.writable.contains(&cur) && !self.under_volume(&cur) {
                        self.shadow(plan, &cur)?;
                    }
                    let inside = self.inside(&next);
                    if last && file {
                        plan.push(
                            Op::Touch(c(&inside)?),
                            format!("create {}", inside.display()),
                        );
                    } else {
                        plan.push(
                            Op::Mkdir(c(&inside)?),
                            format!("mkdir {}", inside.display()),
                        );
                        self.writable.insert(next.clone());
                    }
                    self.created.insert(next.clone());
                }
            }
            cur = next;
        }
        Ok(())
    }
}

/// Work out every mount of the container's filesystem.
fn plan_filesystem(spec: &ContainerSpec) -> Result<Plan, String> {
    let mut plan = Plan::default();
    plan.push(Op::MakePrivate, "make all mounts private".into());
    plan.push(
        Op::Hostname(cstring("hostname", spec.hostname.as_str())?),
        "set hostname".into(),
    );
    let root = spec.root_dir.as_path();
    plan.push(Op::Tmpfs(c(root)?), format!("tmpfs on {}", root.display()));
    let mut layout = Layout {
        root,
        writable: HashSet::from([PathBuf::from("/")]),
        created: HashSet::new(),
        mounted: Vec::new(),
    };
    let mut top: Vec<_> = std::fs::read_dir("/")
        .map_err(|e| format!("reading /: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    top.sort();
    for name in top {
        if name == "proc" {
            continue;
        }
        layout.mirror(&mut plan, &Path::new("/").join(&name), &root.join(&name))?;
    }
    let mut mounts = spec.mounts.clone();
    // Parents before children, so nested mount paths land inside their parent volume.
    mounts.sort_by_key(|m| Path::new(&m.target).components().count());
    for m in &mounts {
        let target = Path::new(&m.target);
        let is_file = !m.source.is_dir();
        layout.ensure(&mut plan, target, is_file)?;
        let inside = layout.inside(target);
        plan.push(
            Op::Bind {
                src: c(&m.source)?,
                dst: c(&inside)?,
                recursive: false,
            },
            format!("bind {} on {}", m.source.display(), m.target),
        );
        if m.read_only {
            plan.push(
                Op::ReadOnly(c(&inside)?),
                format!("make {} read-only", m.target),
            );
        }
        layout
            .mounted
            .push((target.to_path_buf(), m.source.clone()));
    }
    let proc_dir = root.join("proc");
    plan.push(
        Op::Mkdir(c(&proc_dir)?),
        format!("mkdir {}", proc_dir.display()),
    );
    plan.push(Op::Proc(c(&proc_dir)?), "mount /proc".into());
    plan.push(Op::PivotInto(c(root)?), "pivot_root".into());
    let wd = spec.working_dir.as_deref().unwrap_or("/");
    plan.push(
        Op::Chdir(cstring("workingDir", wd)?),
        format!("change to workingDir {wd}"),
    );
    Ok(plan)
}

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
pub(crate) fn start(
    spawner: &Spawner,
    spec: &ContainerSpec,
    shared_pid: Option<OwnedFd>,
    net: Join,
) -> Result<ChildProcess, String> {
    start_with_stdin(spawner, spec, shared_pid, net, None)
}

/// [`start`] with `stdin` (the read end of a pipe) as the container's standard
/// input instead of `/dev/null`, for containers with `stdin: true`.
pub(crate) fn start_with_stdin(
    spawner: &Spawner,
    spec: &ContainerSpec,
    shared_pid: Option<OwnedFd>,
    net: Join,
    stdin: Option<OwnedFd>,
) -> Result<ChildProcess, String> {
    std::fs::create_dir_all(&spec.root_dir)
        .map_err(|e| format!("creating {}: {e}", spec.root_dir.display()))?;
    let plan = plan_filesystem(spec)?;
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
    let mut flags = (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS) as u64;
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
            if !run_op(op) {
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

/// One mount-namespace step; false on failure (errno set).
unsafe fn run_op(op: &Op) -> bool {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: as in container_child.
    unsafe {
        match op {
            Op::MakePrivate => {
                libc::mount(
                    null,
                    c"/".as_ptr(),
                    null,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) == 0
            }
            Op::Tmpfs(t) => {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    t.as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    c"mode=755".as_ptr().cast(),
                ) == 0
            }
            Op::Bind {
                src,
                dst,
                recursive,
            } => {
                let flags = libc::MS_BIND | if *recursive { libc::MS_REC } else { 0 };
                libc::mount(src.as_ptr(), dst.as_ptr(), null, flags, std::ptr::null()) == 0
            }
            Op::ReadOnly(t) => {
                libc::mount(
                    null,
                    t.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                ) == 0
            }
            Op::Mkdir(d) => libc::mkdir(d.as_ptr(), 0o755) == 0 || errno() == libc::EEXIST,
            Op::Touch(f) => {
                let fd = libc::open(
                    f.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                );
                fd >= 0 && libc::close(fd) == 0
            }
            Op::Symlink { target, link } => libc::symlink(target.as_ptr(), link.as_ptr()) == 0,
            Op::Proc(t) => {
                libc::mount(
                    c"proc".as_ptr(),
                    t.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) == 0
            }
            Op::PivotInto(root) => {
                libc::chdir(root.as_ptr()) == 0
                    && libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) == 0
                    && libc::umount2(c".".as_ptr(), libc::MNT_DETACH) == 0
                    && libc::chdir(c"/".as_ptr()) == 0
            }
            Op::Chdir(d) => libc::chdir(d.as_ptr()) == 0,
            Op::Hostname(h) => libc::sethostname(h.as_ptr(), h.as_bytes().len()) == 0,
        }
    }
}

//! Running a command inside a running container, like `kubectl exec`.
//!
//! An intermediate process joins the container's namespaces through its pidfd
//! (`setns`, which needs a single-threaded caller), then forks the command so it
//! lands in the container's PID namespace, and relays its exit status. If the
//! intermediate dies, the command is killed with it (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::container::{ExecData, Identity, child_cloexec_from_3, child_exec, exec_data};
use super::process::{ChildProcess, Mode, child_write, clone3, errno, pipe};
use super::spawner::Spawner;

/// What to run and where.
pub(crate) struct ExecSpec {
    /// Duplicate of the container PID 1's pidfd.
    pub target: OwnedFd,
    pub mode: Mode,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    pub stdin: bool,
    /// The container's user: execs run as it, as runc exec does.
    pub user: Identity,
}

/// The running command: the relay process and the parent ends of its pipes.
pub(crate) struct ExecProcess {
    pub process: ChildProcess,
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Reads EOF once the command's program runs, or its errno if it could not
    /// be executed (a runtime's exec fails then, rather than the command).
    pub exec_failed: OwnedFd,
}

struct Prepared {
    target: OwnedFd,
    ns_flags: i32,
    exec: ExecData,
    working_dir: std::ffi::CString,
    stdin_r: OwnedFd,
    out_w: OwnedFd,
    err_w: OwnedFd,
    exec_failed_w: OwnedFd,
    user: Identity,
    root_mode: bool,
    parent_pid: i32,
}

const SETNS_FAILED: &[u8] = b"localkube: cannot enter the container's namespaces (errno ";

pub(crate) fn spawn(spawner: &Spawner, spec: ExecSpec) -> Result<ExecProcess, String> {
    let exec = exec_data(&spec.argv, &spec.env)?;
    let (stdin_r, stdin_w) = if spec.stdin {
        let (r, w) = pipe().map_err(|e| format!("pipe: {e}"))?;
        (r, Some(w))
    } else {
        (
            OwnedFd::from(File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?),
            None,
        )
    };
    let (out_r, out_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let (err_r, err_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let (exec_failed, exec_failed_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // The pod's network too, so an exec'd command sees the pod's localhost.
    let mut ns_flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWNET;
    if let Mode::UserNamespace { .. } = spec.mode {
        ns_flags |= libc::CLONE_NEWUSER;
    }
    let prep = Prepared {
        target: spec.target,
        ns_flags,
        exec,
        working_dir: super::process::cstring("workingDir", spec.working_dir)?,
        stdin_r,
        out_w,
        err_w,
        exec_failed_w,
        user: spec.user,
        root_mode: spec.mode == Mode::Root,
        parent_pid: std::process::id() as i32,
    };
    let child = spawner.call(move || {
        // SAFETY: the child branch ends in _exit.
        match unsafe { clone3(0) } {
            Ok(None) => unsafe { relay_child(&prep) },
            Ok(Some(child)) => {
                drop(prep);
                Ok(child)
            }
            Err(e) => Err(e),
        }
    })?;
    let process = child.map_err(|e| format!("cannot start exec process: {e}"))?;
    Ok(ExecProcess {
        process,
        stdin: stdin_w,
        stdout: out_r,
        stderr: err_r,
        exec_failed,
    })
}

fn write_errno(fd: RawFd, prefix: &[u8], err: i32) {
    let mut buf = [0u8; 12];
    let mut n = err.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    child_write(fd, prefix);
    child_write(fd, &buf[i..]);
    child_write(fd, b")\n");
}

/// The relay: join the namespaces, fork the command, wait, exit with its status.
unsafe fn relay_child(p: &Prepared) -> ! {
    // SAFETY (whole function): system calls on prepared data; ends in _exit.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != p.parent_pid {
            libc::_exit(1);
        }
        if libc::setns(p.target.as_raw_fd(), p.ns_flags) != 0 {
            write_errno(p.err_w.as_raw_fd(), SETNS_FAILED, errno());
            libc::_exit(126);
        }

        let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0);
        if pid == -1 {
            write_errno(
                p.err_w.as_raw_fd(),
                b"localkube: fork failed (errno ",
                errno(),
            );
            libc::_exit(126);
        }
        if pid == 0 {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            libc::dup2(p.stdin_r.as_raw_fd(), 0);
            libc::dup2(p.out_w.as_raw_fd(), 1);
            libc::dup2(p.err_w.as_raw_fd(), 2);
            child_cloexec_from_3();
            // runc exec gives the process the container's capabilities.
            if !super::rootfs::limit_capabilities(p.user.capabilities) {
                child_write(p.exec_failed_w.as_raw_fd(), &errno().to_ne_bytes());
                libc::_exit(126);
            }
            if p.root_mode {
                let u = &p.user;
                if !super::rootfs::set_identity(u.uid, u.gid, &u.groups) {
                    child_write(p.exec_failed_w.as_raw_fd(), &errno().to_ne_bytes());
                    libc::_exit(126);
                }
            }
            libc::chdir(p.working_dir.as_ptr());
            let e = child_exec(&p.exec);
            // The close-on-exec pipe is still open: tell why nothing runs.
            child_write(p.exec_failed_w.as_raw_fd(), &e.to_ne_bytes());
            libc::_exit(if e == libc::ENOENT { 127 } else { 126 });
        }
        // Hold nothing open that belongs to the command's streams.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid as i32, &mut status, 0);
            if r == -1 && errno() == libc::EINTR {
                continue;
            }
            break;
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        libc::_exit(128 + libc::WTERMSIG(status))
    }
}

struct MountJob {
    target: OwnedFd,
    ns_flags: i32,
    src: Option<std::ffi::CString>,
    dst: std::ffi::CString,
    /// `dst` is a symbolic link to this target in the image: replace the link
    /// itself (binding onto it would replace what it points to, e.g. all of busybox).
    link: Option<std::ffi::CString>,
    parent_pid: i32,
}

/// In the container's mount namespace, put host file `src` at `dst` (binding
/// over a file, or replacing a symbolic link by it), or (with `src` `None`)
/// undo that (and put the link `link` back). The host file is cloned as a
/// detached mount (`open_tree`) before entering the container, where host
/// paths no longer resolve, then attached there (`move_mount`). Needs root.
pub(crate) fn mount_in(
    spawner: &Spawner,
    target: OwnedFd,
    mode: Mode,
    src: Option<&std::path::Path>,
    dst: &std::path::Path,
    link: Option<&std::path::Path>,
) -> Result<(), String> {
    let c = |p: &std::path::Path| {
        super::process::cstring(&p.display().to_string(), p.as_os_str().as_encoded_bytes())
    };
    if mode != Mode::Root {
        return Err("replacing a program in a container needs localkube to run as root".into());
    }
    let job = MountJob {
        target,
        ns_flags: libc::CLONE_NEWNS,
        src: src.map(c).transpose()?,
        dst: c(dst)?,
        link: link.map(c).transpose()?,
        parent_pid: std::process::id() as i32,
    };
    let child = spawner
        .call(move || match unsafe { clone3(0) } {
            // SAFETY: the child only makes system calls and exits.
            Ok(None) => unsafe { mount_child(&job) },
            Ok(Some(child)) => {
                drop(job);
                Ok(child)
            }
            Err(e) => Err(e),
        })?
        .map_err(|e| format!("cannot start mount helper: {e}"))?;
    let status = child.wait().map_err(|e| e.to_string())?;
    match status {
        0 => Ok(()),
        1 => Err("cannot enter the container's mount namespace".into()),
        n if (2..128).contains(&n) => Err(format!(
            "mount on {} failed: {}",
            dst.display(),
            std::io::Error::from_raw_os_error(n - 2 + 1)
        )),
        n => Err(format!("mount helper ended with status {n}")),
    }
}

/// Exit 0 on success, 1 if setns failed, 2 + errno - 1 if a step failed.
unsafe fn mount_child(j: &MountJob) -> ! {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    // SAFETY: system calls on prepared data; ends in _exit.
    unsafe {
        let fail = || libc::_exit((2 + errno() - 1).clamp(2, 127));
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != j.parent_pid {
            libc::_exit(1);
        }
        let tree = match &j.src {
            Some(src) => {
                let fd = libc::syscall(
                    libc::SYS_open_tree,
                    libc::AT_FDCWD,
                    src.as_ptr(),
                    OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
                );
                if fd < 0 {
                    fail();
                }
                fd as i32
            }
            None => -1,
        };
        if libc::setns(j.target.as_raw_fd(), j.ns_flags) != 0 {
            libc::_exit(1);
        }
        match (&j.src, &j.link) {
            (Some(_), link) => {
                if link.is_some() {
                    // The overlay records the removal; the new file takes the link's place.
                    libc::unlink(j.dst.as_ptr());
                    let fd = libc::open(
                        j.dst.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o755,
                    );
                    if fd < 0 {
                        fail();
                    }
                    libc::close(fd);
                }
                if libc::syscall(
                    libc::SYS_move_mount,
                    tree,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    j.dst.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH,
                ) != 0
                {
                    fail();
                }
            }
            (None, link) => {
                if libc::umount2(j.dst.as_ptr(), libc::MNT_DETACH) != 0 {
                    fail();
                }
                if let Some(link) = link {
                    libc::unlink(j.dst.as_ptr());
                    if libc::symlink(link.as_ptr(), j.dst.as_ptr()) != 0 {
                        fail();
                    }
                }
            }
        }
        libc::_exit(0)
    }
}

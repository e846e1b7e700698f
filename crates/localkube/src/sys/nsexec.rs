//! Running a command inside a running container, like `kubectl exec`.
//!
//! An intermediate process joins the container's namespaces through its pidfd
//! (`setns`, which needs a single-threaded caller), then forks the command so it
//! lands in the container's PID namespace, and relays its exit status. If the
//! intermediate dies, the command is killed with it (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::container::{ExecData, child_cloexec_from_3, child_exec, exec_data};
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
}

/// The running command: the relay process and the parent ends of its pipes.
pub(crate) struct ExecProcess {
    pub process: ChildProcess,
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

struct Prepared {
    target: OwnedFd,
    ns_flags: i32,
    exec: ExecData,
    working_dir: std::ffi::CString,
    stdin_r: OwnedFd,
    out_w: OwnedFd,
    err_w: OwnedFd,
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
            libc::chdir(p.working_dir.as_ptr());
            let e = child_exec(&p.exec);
            if e == libc::ENOENT {
                child_write(2, &p.exec.not_found);
                libc::_exit(127);
            }
            write_errno(2, b"localkube: exec failed (errno ", e);
            libc::_exit(126);
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
    parent_pid: i32,
}

/// In the container's mount namespace, bind `src` over `dst`, or (with `src`
/// `None`) detach whatever is mounted on `dst`.
pub(crate) fn mount_in(
    spawner: &Spawner,
    target: OwnedFd,
    mode: Mode,
    src: Option<&std::path::Path>,
    dst: &std::path::Path,
) -> Result<(), String> {
    let c = |p: &std::path::Path| {
        super::process::cstring(&p.display().to_string(), p.as_os_str().as_encoded_bytes())
    };
    let mut ns_flags = libc::CLONE_NEWNS;
    if let Mode::UserNamespace { .. } = mode {
        ns_flags |= libc::CLONE_NEWUSER;
    }
    let job = MountJob {
        target,
        ns_flags,
        src: src.map(c).transpose()?,
        dst: c(dst)?,
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

/// Exit 0 on success, 1 if setns failed, 2 + errno - 1 if the mount failed.
unsafe fn mount_child(j: &MountJob) -> ! {
    // SAFETY: system calls on prepared data; ends in _exit.
    unsafe {
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
        if libc::setns(j.target.as_raw_fd(), j.ns_flags) != 0 {
            libc::_exit(1);
        }
        let ok = match &j.src {
            Some(src) => {
                libc::mount(
                    src.as_ptr(),
                    j.dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) == 0
            }
            None => libc::umount2(j.dst.as_ptr(), libc::MNT_DETACH) == 0,
        };
        if ok {
            libc::_exit(0);
        }
        libc::_exit((2 + errno() - 1).clamp(2, 127))
    }
}

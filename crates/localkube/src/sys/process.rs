//! `clone3` with a pidfd, waiting and signalling through the pidfd, and the
//! few async-signal-safe helpers the children use before `execve`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// How namespaces can be made here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Running as root: new namespaces directly.
    Root,
    /// Not root: every container also gets its own user namespace, in which it is root.
    UserNamespace { uid: u32, gid: u32 },
}

impl Mode {
    /// Decide from the effective user and check that namespaces can actually be created.
    pub(crate) fn detect() -> Result<Mode, String> {
        // SAFETY: geteuid/getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let mode = if uid == 0 {
            Mode::Root
        } else {
            Mode::UserNamespace { uid, gid }
        };
        mode.probe()?;
        Ok(mode)
    }

    pub(crate) fn clone_flags(self) -> u64 {
        let base = (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS) as u64;
        match self {
            Mode::Root => base,
            Mode::UserNamespace { .. } => base | libc::CLONE_NEWUSER as u64,
        }
    }

    /// Start a child in new namespaces that exits at once; report why it failed.
    fn probe(self) -> Result<(), String> {
        // SAFETY: the child only calls _exit.
        match unsafe { clone3(self.clone_flags()) } {
            Ok(Some(child)) => {
                let status = child.wait().map_err(|e| e.to_string())?;
                if status == 0 {
                    Ok(())
                } else {
                    Err(format!("probe child exited with {status}"))
                }
            }
            Ok(None) => unsafe { libc::_exit(0) },
            Err(e) => Err(format!(
                "cannot create PID/mount namespaces{}: {e}",
                if self == Mode::Root {
                    ""
                } else {
                    " inside a user namespace"
                }
            )),
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A child process we created, owned through its pidfd.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Fork-like `clone3` returning a pidfd. `Ok(None)` in the child.
///
/// # Safety
/// In the child only async-signal-safe work may follow (the parent has threads),
/// and the child must end in `execve` or `_exit`.
pub(crate) unsafe fn clone3(flags: u64) -> io::Result<Option<ChildProcess>> {
    // SAFETY: as for this function.
    unsafe { clone3_raw(flags, libc::SIGCHLD as u64) }
}

/// [`clone3`] with an explicit exit signal (which must be 0 with `CLONE_PARENT`:
/// the child then reports to its new parent as the caller does).
///
/// # Safety
/// As [`clone3`].
pub(crate) unsafe fn clone3_raw(flags: u64, exit_signal: u64) -> io::Result<Option<ChildProcess>> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal,
        ..Default::default()
    };
    // SAFETY: args is a valid clone_args; without CLONE_VM and a stack the child
    // continues on a copy of this stack, like fork().
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(ChildProcess {
            pid: pid as i32,
            // SAFETY: the kernel just gave us this descriptor.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        })),
    }
}

impl ChildProcess {
    /// Send a signal through the pidfd (no risk of hitting a recycled PID).
    pub(crate) fn signal(&self, sig: i32) -> io::Result<()> {
        signal_pidfd(self.pidfd.as_raw_fd(), sig)
    }

    /// Block until the child exits; returns the shell-style status (128+n for signal n).
    pub(crate) fn wait(&self) -> io::Result<i32> {
        wait_pidfd(self.pidfd.as_raw_fd(), 0)?.ok_or_else(|| io::Error::other("no status"))
    }

    /// The exit status if the child has ended (reaping it), without blocking.
    pub(crate) fn try_wait(&self) -> io::Result<Option<i32>> {
        wait_pidfd(self.pidfd.as_raw_fd(), libc::WNOHANG)
    }
}

pub(crate) fn signal_pidfd(fd: RawFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == -1 {
        let e = io::Error::last_os_error();
        // Already gone: nothing to signal.
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

fn wait_pidfd(fd: RawFd, extra: i32) -> io::Result<Option<i32>> {
    loop {
        // SAFETY: zeroed siginfo is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: P_PIDFD (3) with our own pidfd.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                fd as libc::id_t,
                &mut info,
                libc::WEXITED | extra,
            )
        };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid filled info (or left it zeroed with WNOHANG and no child).
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(if code == libc::CLD_EXITED {
            status
        } else {
            128 + status
        }));
    }
}

// ---- helpers for children between clone and execve (async-signal-safe only) ----

/// Write the whole buffer, ignoring errors (there is nobody to tell).
pub(crate) fn child_write(fd: RawFd, bytes: &[u8]) {
    let mut off = 0;
    while off < bytes.len() {
        // SAFETY: valid buffer slice.
        let n = unsafe { libc::write(fd, bytes[off..].as_ptr().cast(), bytes.len() - off) };
        if n <= 0 {
            return;
        }
        off += n as usize;
    }
}

/// The calling thread's errno.
pub(crate) fn errno() -> i32 {
    // SAFETY: __errno_location always returns the thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Report a failed step to the parent: `[step: u32][errno: i32]`, then exit 127.
pub(crate) fn child_fail(err_fd: RawFd, step: u32, err: i32) -> ! {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&step.to_ne_bytes());
    buf[4..].copy_from_slice(&err.to_ne_bytes());
    child_write(err_fd, &buf);
    // SAFETY: ends the child.
    unsafe { libc::_exit(127) }
}

/// Null-terminated pointer array for execve, built in the parent.
pub(crate) struct CStringArray {
    _strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into the owned CStrings, which never move or change.
unsafe impl Send for CStringArray {}
unsafe impl Sync for CStringArray {}

impl CStringArray {
    pub(crate) fn new(strings: Vec<CString>) -> Self {
        let mut ptrs: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStringArray {
            _strings: strings,
            ptrs,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

/// A C string from Rust text; interior NULs become an error naming `what`.
pub(crate) fn cstring(what: &str, s: impl Into<Vec<u8>>) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} contains a NUL byte"))
}

/// A pipe whose both ends are close-on-exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just created.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

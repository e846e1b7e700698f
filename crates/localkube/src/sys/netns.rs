//! A pod's network namespace, shared by its containers: what the CRI calls the
//! pod sandbox (containerd creates the namespace in `RunPodSandbox` and every
//! container of the pod joins it; the kubelet's "pause" container holds it).
//!
//! Here a small holder process owns the namespace (and, without root, the user
//! namespace that owns it). It brings `lo` up, gives the pod its own address
//! (an alias on `lo`, so the host's interfaces and routes are never touched),
//! and then serves one request: "a new TCP socket, made inside the pod's
//! network", passed back over a Unix socket (`SCM_RIGHTS`). localkube connects
//! such sockets to `localhost:PORT` to forward ports, as containerd's
//! `PortForward` dials localhost inside the sandbox's namespace
//! (containerd `internal/cri/server/sandbox_portforward_linux.go`).
//!
//! Containers join through [`clone_joined`]: a short-lived intermediate process
//! enters the holder's namespaces (a multi-threaded process cannot join a user
//! namespace, and without root it cannot join a network namespace either), then
//! creates the container with `CLONE_PARENT`, so localkube stays its parent.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use super::process::{
    ChildProcess, Mode, child_fail, child_write, clone3, clone3_raw, errno, pipe,
};
use super::spawner::Spawner;

/// The running holder of one pod's network namespace.
#[derive(Debug)]
pub(crate) struct PodNetwork {
    holder: ChildProcess,
    /// Our end of the socket-request channel; one request at a time.
    control: Mutex<OwnedFd>,
    mode: Mode,
}

/// What a container needs to join a pod's network: the holder's pidfd and
/// which of its namespaces to enter.
pub(crate) struct Join {
    holder: OwnedFd,
    ns_flags: i32,
}

/// `struct ifreq` with the flags member (40 bytes on Linux).
#[repr(C)]
struct IfReqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `struct ifreq` with an address member.
#[repr(C)]
struct IfReqAddr {
    name: [u8; 16],
    addr: libc::sockaddr_in,
    _pad: [u8; 8],
}

struct HolderPrep {
    /// `(path, contents)` of the id maps to write first (user-namespace mode).
    maps: Vec<(CString, Vec<u8>)>,
    ip: Ipv4Addr,
    control: OwnedFd,
    err_w: OwnedFd,
}

const STEPS: &[&str] = &[
    "write /proc/self/uid_map",
    "write /proc/self/setgroups",
    "write /proc/self/gid_map",
    "open a configuration socket",
    "read the flags of lo",
    "bring lo up",
    "add the pod address to lo",
    "set the pod address's netmask",
    "add the kubernetes Service address to lo",
    "set the kubernetes Service address's netmask",
];

/// The `kubernetes` Service's ClusterIP (the first address of kube-apiserver's
/// default `--service-cluster-ip-range` 10.96.0.0/12): the API server as pods
/// reach it. Each pod's network has it on `lo`, where localkube listens for
/// the pod and forwards to its API server, as kube-proxy's rules forward a
/// ClusterIP to the API server's endpoints.
pub(crate) const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

fn ifname(name: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..name.len()].copy_from_slice(name);
    out
}

fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    }
}

impl PodNetwork {
    /// Create the namespace and its holder; returns once `lo` is up with `ip`.
    pub(crate) fn create(spawner: &Spawner, mode: Mode, ip: Ipv4Addr) -> Result<Self, String> {
        let (err_r, err_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let (ours, theirs) = seqpacket_pair().map_err(|e| format!("socketpair: {e}"))?;
        let mut flags = libc::CLONE_NEWNET as u64;
        let mut maps = Vec::new();
        if let Mode::UserNamespace { uid, gid } = mode {
            flags |= libc::CLONE_NEWUSER as u64;
            for (path, data) in [
                (c"/proc/self/uid_map", format!("0 {uid} 1\n")),
                (c"/proc/self/setgroups", "deny".to_string()),
                (c"/proc/self/gid_map", format!("0 {gid} 1\n")),
            ] {
                maps.push((path.to_owned(), data.into_bytes()));
            }
        }
        let prep = HolderPrep {
            maps,
            ip,
            control: theirs,
            err_w,
        };
        let child = spawner.call(move || {
            // SAFETY: the child branch only runs `holder_child`, which never returns.
            match unsafe { clone3(flags) } {
                Ok(None) => unsafe { holder_child(&prep) },
                Ok(Some(child)) => Ok(child),
                Err(e) => Err(e),
            }
        })?;
        let holder =
            child.map_err(|e| format!("cannot create the pod's network namespace: {e}"))?;
        let mut buf = Vec::new();
        let _ = File::from(err_r).read_to_end(&mut buf);
        if buf.len() >= 8 {
            let step = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            let err =
                io::Error::from_raw_os_error(i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]));
            let _ = holder.signal(libc::SIGKILL);
            let _ = holder.wait();
            return Err(format!(
                "setting up the pod's network: {}: {err}",
                STEPS.get(step).copied().unwrap_or("?")
            ));
        }
        Ok(PodNetwork {
            holder,
            control: Mutex::new(ours),
            mode,
        })
    }

    /// What [`clone_joined`] needs to put a new process into this network.
    pub(crate) fn join(&self) -> io::Result<Join> {
        let mut ns_flags = libc::CLONE_NEWNET;
        if let Mode::UserNamespace { .. } = self.mode {
            ns_flags |= libc::CLONE_NEWUSER;
        }
        Ok(Join {
            holder: self.holder.pidfd.as_fd().try_clone_to_owned()?,
            ns_flags,
        })
    }

    /// A new non-blocking TCP socket that lives in the pod's network namespace.
    fn socket(&self, v6: bool) -> io::Result<OwnedFd> {
        let control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        let fd = control.as_raw_fd();
        let request = [if v6 { 6u8 } else { 4 }];
        // SAFETY: plain syscalls on our own descriptor and buffers.
        unsafe {
            if libc::send(fd, request.as_ptr().cast(), 1, libc::MSG_NOSIGNAL) != 1 {
                return Err(io::Error::last_os_error());
            }
            let mut data = [0u8; 4];
            let mut iov = libc::iovec {
                iov_base: data.as_mut_ptr().cast(),
                iov_len: data.len(),
            };
            let mut cbuf = [0u64; 8];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&cbuf);
            let n = libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                return Err(io::Error::other("the pod's network holder is gone"));
            }
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if !cmsg.is_null()
                && (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
            {
                let passed = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                return Ok(OwnedFd::from_raw_fd(passed));
            }
            Err(io::Error::from_raw_os_error(i32::from_ne_bytes(data)))
        }
    }

    /// Connect to `addr` from inside the pod's network.
    pub(crate) async fn connect_to(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let fd = self.socket(addr.is_ipv6())?;
        // SAFETY: a fresh non-blocking TCP socket we now own.
        let socket = unsafe { tokio::net::TcpSocket::from_raw_fd(fd.into_raw_fd()) };
        socket.connect(addr).await
    }

    /// Where the pod's network namespace is, for messages (containerd names
    /// the namespace's path the same way).
    pub(crate) fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.pid)
    }

    /// A listener on `addr` inside the pod's network (the socket is made
    /// there; binding and listening work on it from outside).
    pub(crate) fn listen(&self, addr: std::net::SocketAddrV4) -> io::Result<std::net::TcpListener> {
        let fd = self.socket(false)?;
        let sa = sockaddr(*addr.ip());
        let sa = libc::sockaddr_in {
            sin_port: addr.port().to_be(),
            ..sa
        };
        // SAFETY: plain syscalls on a socket we own, with a valid address.
        unsafe {
            if libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ) != 0
                || libc::listen(fd.as_raw_fd(), 128) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(std::net::TcpListener::from(fd))
    }

    /// Connect to `localhost:port` inside the pod's network: IPv4 first, then
    /// IPv6, serially, as containerd's `dialLocalhost` does. When both fail the
    /// error reads as containerd's: `IPv4: dial tcp4 127.0.0.1:P: connect:
    /// connection refused IPv6: dial tcp6 [::1]:P: connect: connection refused`.
    pub(crate) async fn connect(&self, port: u16) -> io::Result<tokio::net::TcpStream> {
        let mut errors = Vec::new();
        for (v6, addr) in [
            (false, SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            (true, SocketAddr::from((Ipv6Addr::LOCALHOST, port))),
        ] {
            match self.connect_to(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => errors.push((if v6 { "tcp6" } else { "tcp4" }, addr, e)),
            }
        }
        let kind = errors.first().map_or(io::ErrorKind::Other, |e| e.2.kind());
        let text: Vec<String> = errors
            .iter()
            .map(|(net, addr, e)| {
                let family = if *net == "tcp6" { "IPv6" } else { "IPv4" };
                format!("{family}: dial {net} {addr}: connect: {}", go_errno(e))
            })
            .collect();
        Err(io::Error::new(kind, text.join(" ")))
    }
}

/// An error as Go prints a syscall errno: strerror's text, lowercase first.
fn go_errno(e: &io::Error) -> String {
    let Some(code) = e.raw_os_error() else {
        return e.to_string();
    };
    // SAFETY: strerror returns a static, NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) }
        .to_string_lossy()
        .into_owned();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        let _ = self.holder.signal(libc::SIGKILL);
        let _ = self.holder.wait();
    }
}

fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } == -1
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just created.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The holder: set up the namespace, report, then hand out sockets until our
/// end of the channel closes.
///
/// # Safety
/// Runs right after clone3 in a copy of a multi-threaded process: syscalls only.
unsafe fn holder_child(p: &HolderPrep) -> ! {
    let err_fd = p.err_w.as_raw_fd();
    // SAFETY (whole function): syscalls on prepared data and stack buffers.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        for (i, (path, data)) in p.maps.iter().enumerate() {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, data.as_ptr().cast(), data.len()) != data.len() as isize {
                child_fail(err_fd, i as u32, errno());
            }
            libc::close(fd);
        }
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            child_fail(err_fd, 3, errno());
        }
        let mut flags = IfReqFlags {
            name: ifname(b"lo"),
            flags: 0,
            _pad: [0; 22],
        };
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut flags) != 0 {
            child_fail(err_fd, 4, errno());
        }
        flags.flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(s, libc::SIOCSIFFLAGS, &flags) != 0 {
            child_fail(err_fd, 5, errno());
        }
        let mut addr = IfReqAddr {
            name: ifname(b"lo:0"),
            addr: sockaddr(p.ip),
            _pad: [0; 8],
        };
        if libc::ioctl(s, libc::SIOCSIFADDR, &addr) != 0 {
            child_fail(err_fd, 6, errno());
        }
        addr.addr = sockaddr(Ipv4Addr::BROADCAST);
        if libc::ioctl(s, libc::SIOCSIFNETMASK, &addr) != 0 {
            child_fail(err_fd, 7, errno());
        }
        let mut service = IfReqAddr {
            name: ifname(b"lo:1"),
            addr: sockaddr(KUBERNETES_SERVICE_IP),
            _pad: [0; 8],
        };
        if libc::ioctl(s, libc::SIOCSIFADDR, &service) != 0 {
            child_fail(err_fd, 8, errno());
        }
        service.addr = sockaddr(Ipv4Addr::BROADCAST);
        if libc::ioctl(s, libc::SIOCSIFNETMASK, &service) != 0 {
            child_fail(err_fd, 9, errno());
        }
        libc::close(s);
        libc::prctl(
            libc::PR_SET_NAME,
            c"pod-network".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        // Keep only the request channel (closing the error pipe tells the parent
        // that setup worked; other inherited descriptors would hold pipes open).
        let control = p.control.as_raw_fd();
        if control > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (control - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (control + 1) as u32, u32::MAX, 0u32);
        let mut request = [0u8; 1];
        loop {
            let n = libc::recv(control, request.as_mut_ptr().cast(), 1, 0);
            if n == 0 {
                libc::_exit(0);
            }
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                libc::_exit(1);
            }
            let family = if request[0] == 6 {
                libc::AF_INET6
            } else {
                libc::AF_INET
            };
            let fd = libc::socket(
                family,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            );
            if fd < 0 {
                child_write(control, &errno().to_ne_bytes());
                continue;
            }
            send_fd(control, fd);
            libc::close(fd);
        }
    }
}

/// Send `fd` over `channel` with four zero bytes of data.
///
/// # Safety
/// Async-signal-safe; valid descriptors.
unsafe fn send_fd(channel: RawFd, fd: RawFd) {
    // SAFETY: stack buffers sized for one descriptor; CMSG_* only compute pointers.
    unsafe {
        let data = [0u8; 4];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let mut cbuf = [0u64; 8];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        libc::sendmsg(channel, &msg, libc::MSG_NOSIGNAL);
    }
}

/// Create a process with `flags` (without `CLONE_NEWUSER`: it lands in the
/// pod's user namespace when there is one) inside the pod's network, running
/// `child` there (which must end in execve or _exit). Call on the spawner thread: the new process's parent is
/// that thread, exactly as with a direct `clone3`.
/// With `pid_ns` (a pidfd), the new process is created in that process's PID
/// namespace instead (a pod's shared one).
pub(crate) fn clone_joined(
    join: &Join,
    pid_ns: Option<&OwnedFd>,
    flags: u64,
    child: impl FnOnce(),
) -> io::Result<ChildProcess> {
    let (r, w) = pipe()?;
    // The intermediate shares our descriptor table (CLONE_FILES), so the pidfd
    // it gets for the container is ours too; a PID number would not do, as the
    // intermediate may sit in another PID namespace (a shared one).
    // SAFETY: the intermediate only makes syscalls, then runs `child` (which
    // ends in execve/_exit) in the grandchild, or _exits.
    let mid = match unsafe { clone3(libc::CLONE_FILES as u64) }? {
        Some(mid) => mid,
        None => unsafe {
            let report = |v: i32| child_write(w.as_raw_fd(), &v.to_ne_bytes());
            if libc::setns(join.holder.as_raw_fd(), join.ns_flags) != 0
                || pid_ns.is_some_and(|p| libc::setns(p.as_raw_fd(), libc::CLONE_NEWPID) != 0)
            {
                report(-errno());
                libc::_exit(1);
            }
            match clone3_raw(flags | libc::CLONE_PARENT as u64, 0) {
                Ok(None) => {
                    child();
                    libc::_exit(127)
                }
                Ok(Some(c)) => {
                    report(c.pidfd.into_raw_fd());
                    libc::_exit(0)
                }
                Err(e) => {
                    report(-e.raw_os_error().unwrap_or(libc::EIO));
                    libc::_exit(1)
                }
            }
        },
    };
    // Wait first: closing our ends would close the intermediate's too.
    let _ = mid.wait();
    drop(w);
    let mut buf = [0u8; 4];
    File::from(r)
        .read_exact(&mut buf)
        .map_err(|e| io::Error::other(format!("the namespace-joining helper died: {e}")))?;
    let fd = i32::from_ne_bytes(buf);
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: the intermediate created this descriptor in our shared table.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let pid = pidfd_pid(&pidfd)?;
    Ok(ChildProcess { pid, pidfd })
}

/// The PID (in our namespace) behind a pidfd, from `/proc/self/fdinfo`.
fn pidfd_pid(pidfd: &OwnedFd) -> io::Result<i32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|p| p.trim().parse().ok())
        .filter(|p: &i32| *p > 0)
        .ok_or_else(|| io::Error::other("the container process ended before it was set up"))
}

//! A container's root filesystem, planned in the parent and performed by the
//! child between `clone3` and `execve`: an overlay whose read-only lower layer
//! is the unpacked image and whose upper layer lives on a tmpfs (so a
//! restarted container starts from the image again, as a new container does),
//! then `/proc`, a minimal `/dev`, the pod's `/etc/hosts`, `/etc/hostname`,
//! `/etc/resolv.conf` and its volumes, then `pivot_root` into it. Nothing of
//! the host stays visible.
//!
//! Mount targets are resolved inside the image (symbolic links followed as if
//! the image were `/`, as runc does with securejoin), so a hostile image cannot
//! point a mount at a host path.
//!
//! Modelled on runc/containerd defaults (containerd `oci/spec.go`
//! `populateDefaultUnixSpec`, runc `libcontainer/rootfs_linux.go`): `/dev` is a
//! tmpfs holding `null`, `zero`, `full`, `random`, `urandom`, `tty`, the
//! `fd`/`stdin`/`stdout`/`stderr` links and a `/dev/shm` tmpfs.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::container::{ContainerSpec, Identity};
use super::process::{Mode, cstring, errno};
use crate::image::layer::resolve_in_root;

pub(crate) enum Op {
    MakePrivate,
    Tmpfs {
        target: CString,
        data: CString,
    },
    Overlay {
        target: CString,
        data: CString,
    },
    Bind {
        src: CString,
        dst: CString,
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
    Hostname(CString),
    WriteFile {
        path: CString,
        data: Vec<u8>,
    },
    /// Keep only these capabilities (see [`limit_capabilities`]).
    Capabilities(u64),
    /// setgroups, setgid, setuid (as root only; in a user namespace the maps do it).
    Identity {
        uid: u32,
        gid: u32,
        groups: Vec<libc::gid_t>,
    },
    Chdir(CString),
}

/// The ops and a description of each, for error messages.
#[derive(Default)]
pub(crate) struct Plan {
    pub ops: Vec<Op>,
    pub what: Vec<String>,
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

/// Devices every container gets, bound from the host's (runc's default set).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

struct Root<'a> {
    image: &'a Path,
    mount_point: &'a Path,
}

impl Root<'_> {
    /// Where container path `p` lands under the mount point, with every
    /// symbolic link in the image resolved inside it; the missing folders on
    /// the way are created (mkdir), and the last one too if `dir`.
    fn ensure(&self, plan: &mut Plan, p: &str, dir: bool) -> Result<PathBuf, String> {
        let rel = Path::new(p.trim_start_matches('/'));
        // Resolve the path and its last component too (a link to a file or folder).
        let resolved = resolve_in_root(self.image, rel, true).map_err(|e| format!("{p}: {e}"))?;
        let rel = resolved
            .strip_prefix(self.image)
            .map_err(|_| format!("{p} resolves outside the image"))?
            .to_path_buf();
        let mut cur = self.mount_point.to_path_buf();
        let n = rel.components().count();
        for (i, comp) in rel.components().enumerate() {
            cur.push(comp);
            let last = i + 1 == n;
            let exists = std::fs::symlink_metadata(
                self.image
                    .join(cur.strip_prefix(self.mount_point).unwrap_or(&cur)),
            )
            .is_ok();
            if exists {
                continue;
            }
            if last && !dir {
                plan.push(Op::Touch(c(&cur)?), format!("create {p}"));
            } else {
                plan.push(Op::Mkdir(c(&cur)?), format!("mkdir {}", cur.display()));
            }
        }
        Ok(cur)
    }
}

/// Work out every step of the container's filesystem and identity.
pub(crate) fn plan(spec: &ContainerSpec, mode: Mode) -> Result<Plan, String> {
    let mut plan = Plan::default();
    if let Mode::UserNamespace { .. } = mode {
        // The container's own user namespace, inside its pod's (where we are
        // root, mapped to the user running localkube): map the container's
        // user and group to that root, so the process is that uid/gid inside,
        // keeps the capabilities to mount until it executes its program, and
        // owns what we own (setgroups must be denied first).
        for (path, data) in [
            ("/proc/self/uid_map", format!("{} 0 1\n", spec.user.uid)),
            ("/proc/self/setgroups", "deny".to_string()),
            ("/proc/self/gid_map", format!("{} 0 1\n", spec.user.gid)),
        ] {
            plan.push(
                Op::WriteFile {
                    path: cstring(path, path)?,
                    data: data.into_bytes(),
                },
                format!("write {path}"),
            );
        }
    }
    plan.push(Op::MakePrivate, "make all mounts private".into());
    plan.push(
        Op::Hostname(cstring("hostname", spec.hostname.as_str())?),
        "set hostname".into(),
    );
    let scratch = spec.scratch_dir.as_path();
    plan.push(
        Op::Tmpfs {
            target: c(scratch)?,
            data: cstring("tmpfs", "mode=755")?,
        },
        format!("tmpfs on {}", scratch.display()),
    );
    let upper = scratch.join("upper");
    let work = scratch.join("work");
    for d in [&upper, &work] {
        plan.push(Op::Mkdir(c(d)?), format!("mkdir {}", d.display()));
    }
    for p in [&spec.image_root, &upper, &work] {
        let s = p.to_string_lossy();
        if s.contains([',', ':', '\\']) {
            return Err(format!(
                "{} contains ',', ':' or '\\', which overlayfs options cannot carry; use another localkube folder",
                p.display()
            ));
        }
    }
    let root = spec.root_dir.as_path();
    plan.push(
        Op::Overlay {
            target: c(root)?,
            data: cstring(
                "overlay options",
                format!(
                    "lowerdir={},upperdir={},workdir={}",
                    spec.image_root.display(),
                    upper.display(),
                    work.display()
                ),
            )?,
        },
        format!("overlay of the image on {}", root.display()),
    );
    let r = Root {
        image: &spec.image_root,
        mount_point: root,
    };
    let proc_dir = r.ensure(&mut plan, "/proc", true)?;
    plan.push(Op::Proc(c(&proc_dir)?), "mount /proc".into());
    let dev = r.ensure(&mut plan, "/dev", true)?;
    plan.push(
        Op::Tmpfs {
            target: c(&dev)?,
            data: cstring("tmpfs", "mode=755,size=65536k")?,
        },
        "tmpfs on /dev".into(),
    );
    for d in DEVICES {
        let target = dev.join(d);
        plan.push(Op::Touch(c(&target)?), format!("create /dev/{d}"));
        plan.push(
            Op::Bind {
                src: c(&Path::new("/dev").join(d))?,
                dst: c(&target)?,
            },
            format!("bind /dev/{d}"),
        );
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        plan.push(
            Op::Symlink {
                target: cstring("link", target)?,
                link: c(&dev.join(link))?,
            },
            format!("link /dev/{link}"),
        );
    }
    let shm = dev.join("shm");
    plan.push(Op::Mkdir(c(&shm)?), "mkdir /dev/shm".into());
    plan.push(
        Op::Tmpfs {
            target: c(&shm)?,
            data: cstring("tmpfs", "mode=1777,size=65536k")?,
        },
        "tmpfs on /dev/shm".into(),
    );
    let mut mounts = spec.mounts.clone();
    // Parents before children, so nested mount paths land inside their parent volume.
    mounts.sort_by_key(|m| Path::new(&m.target).components().count());
    for m in &mounts {
        let is_dir = m.source.is_dir();
        // A later mount inside an earlier volume: the volume's folder on the
        // host decides what exists, so create the path there.
        let inside_volume = mounts
            .iter()
            .filter(|o| o.source.is_dir() && o.target != m.target)
            .find_map(|o| {
                Path::new(&m.target)
                    .strip_prefix(&o.target)
                    .ok()
                    .map(|rest| (o, rest.to_path_buf()))
            });
        let target = match inside_volume {
            Some((outer, rest)) => {
                let host = resolve_in_root(&outer.source, &rest, true)?;
                if is_dir {
                    std::fs::create_dir_all(&host)
                } else {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&host)
                        .map(|_| ())
                }
                .map_err(|e| format!("creating {} in its volume: {e}", m.target))?;
                let rel = host
                    .strip_prefix(&outer.source)
                    .unwrap_or(&rest)
                    .to_path_buf();
                r.ensure(&mut plan, &outer.target, true)?.join(rel)
            }
            None => r.ensure(&mut plan, &m.target, is_dir)?,
        };
        plan.push(
            Op::Bind {
                src: c(&m.source)?,
                dst: c(&target)?,
            },
            format!("bind {} on {}", m.source.display(), m.target),
        );
        if m.read_only {
            plan.push(
                Op::ReadOnly(c(&target)?),
                format!("make {} read-only", m.target),
            );
        }
    }
    // runc creates a missing working directory before it starts the process.
    let wd = spec.working_dir.as_deref().unwrap_or("/");
    r.ensure(&mut plan, wd, true)?;
    plan.push(Op::PivotInto(c(root)?), "pivot_root".into());
    plan.push(
        Op::Capabilities(spec.user.capabilities),
        format!("limit capabilities to {:#x}", spec.user.capabilities),
    );
    if mode == Mode::Root {
        plan.push(
            identity_op(&spec.user),
            format!("switch to uid {} gid {}", spec.user.uid, spec.user.gid),
        );
    }
    plan.push(
        Op::Chdir(cstring("workingDir", wd)?),
        format!("change to workingDir {wd}"),
    );
    Ok(plan)
}

pub(crate) fn identity_op(id: &Identity) -> Op {
    Op::Identity {
        uid: id.uid,
        gid: id.gid,
        groups: id.groups.clone(),
    }
}

/// `struct __user_cap_header_struct` (`linux/capability.h`).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 takes two (64 capabilities).
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Keep only the capabilities in `keep`, as runc applies a container's
/// (`libcontainer/capabilities`): the rest leave the bounding set, and the
/// ambient and inheritable sets are emptied. Called while still privileged,
/// before the switch of user; `execve` then gives a root process exactly the
/// bounding set and any other uid nothing. Raw system calls only (child side).
pub(crate) fn limit_capabilities(keep: u64) -> bool {
    // SAFETY: prctl/capget/capset on our own process with local buffers.
    unsafe {
        for cap in 0..64u64 {
            if keep & (1 << cap) == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                && errno() != libc::EINVAL
            {
                return false;
            }
        }
        // Older kernels have no ambient set (EINVAL): nothing to clear.
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
            && errno() != libc::EINVAL
        {
            return false;
        }
        let mut header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
            return false;
        }
        for d in &mut data {
            d.inheritable = 0;
        }
        libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) == 0
    }
}

/// Become uid/gid with these supplementary groups, through raw system calls:
/// glibc's wrappers would wait for the parent's other threads (its setxid
/// broadcast), which do not exist in a child of `clone3`, and hang.
pub(crate) fn set_identity(uid: u32, gid: u32, groups: &[libc::gid_t]) -> bool {
    // SAFETY: plain system calls; `groups` outlives them.
    unsafe {
        libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) == 0
            && libc::syscall(libc::SYS_setresgid, gid, gid, gid) == 0
            && libc::syscall(libc::SYS_setresuid, uid, uid, uid) == 0
    }
}

/// One step; false on failure (errno set).
///
/// # Safety
/// Child-side: system calls on data prepared by the parent only.
pub(crate) unsafe fn run_op(op: &Op) -> bool {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: libc calls with pointers to NUL-terminated strings prepared by the parent.
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
            Op::Tmpfs { target, data } => {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    target.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    data.as_ptr().cast(),
                ) == 0
            }
            Op::Overlay { target, data } => {
                libc::mount(
                    c"overlay".as_ptr(),
                    target.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    data.as_ptr().cast(),
                ) == 0
            }
            Op::Bind { src, dst } => {
                libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) == 0
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
            Op::Hostname(h) => libc::sethostname(h.as_ptr(), h.as_bytes().len()) == 0,
            Op::WriteFile { path, data } => {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return false;
                }
                let n = libc::write(fd, data.as_ptr().cast(), data.len());
                libc::close(fd);
                n == data.len() as isize
            }
            Op::Capabilities(keep) => limit_capabilities(*keep),
            Op::Identity { uid, gid, groups } => set_identity(*uid, *gid, groups),
            Op::Chdir(d) => libc::chdir(d.as_ptr()) == 0,
        }
    }
}

//! Assembles small OCI image layouts on disk, the way the images Go services
//! ship are made, for localkube's tests and the demo:
//!
//! * [`Image::static_base`]: what `gcr.io/distroless/static` holds (`/etc/passwd`,
//!   `/etc/group`, `/tmp`, CA certificates, `/home/nonroot`) and no shell;
//!   [`Image::nonroot`] runs it as uid/gid 65532 like `:nonroot`.
//! * [`Image::busybox`]: that base plus a static busybox at `/busybox/busybox`
//!   with one symbolic link per applet and `/busybox` on `PATH`, like the
//!   distroless `:debug` images.
//!
//! Add the program with [`Image::file`], set the entrypoint, then
//! [`Image::write_layout`] (an OCI image layout folder: `oci-layout`,
//! `index.json`, `blobs/sha256/…`) or [`Image::write_archive`] (the same as a
//! tar, as `skopeo copy … oci-archive:` makes). Each call to
//! [`Image::new_layer`] starts a layer; layers are gzip-compressed, entries
//! have fixed owners and times, so the same input gives the same digests.
//!
//! ```no_run
//! let dir = tempfile::tempdir()?;
//! let layout = ocilayout::Image::busybox(std::path::Path::new("/usr/bin/busybox"))?
//!     .new_layer()
//!     .file("/ko-app/greeter", std::path::Path::new("target/greeter"), 0o755)?
//!     .entrypoint(["/ko-app/greeter"])
//!     .write_layout(&dir.path().join("greeter"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where Debian's `busybox-static` installs its binary (`cargo xtask tools`).
pub const BUSYBOX: &str = "/usr/bin/busybox";
/// The CA bundle of Debian's `ca-certificates`, copied into every base.
pub const CA_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The `PATH` of the distroless `:debug` images (busybox last).
pub const DEBUG_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox";
/// The `PATH` of distroless `static`.
pub const STATIC_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// distroless `nonroot`'s user and group.
pub const NONROOT: u32 = 65532;

/// Why an image could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

enum Entry {
    Dir {
        path: String,
        mode: u32,
        owner: (u32, u32),
    },
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// An image being assembled: layers of entries and the config.
pub struct Image {
    layers: Vec<Vec<Entry>>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    working_dir: String,
    user: String,
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n";

impl Image {
    /// An image with no layers and an empty config.
    pub fn empty() -> Image {
        Image {
            layers: Vec::new(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: Vec::new(),
            working_dir: String::new(),
            user: String::new(),
        }
    }

    /// distroless `static`: users, groups, `/tmp`, CA certificates; no shell.
    pub fn static_base() -> Result<Image, Error> {
        let certs = std::fs::read(CA_CERTIFICATES).map_err(io(format!(
            "reading {CA_CERTIFICATES} (Debian package ca-certificates)"
        )))?;
        let mut image = Image::empty().new_layer();
        for (dir, mode) in [
            ("/etc", 0o755),
            ("/etc/ssl", 0o755),
            ("/etc/ssl/certs", 0o755),
            ("/home", 0o755),
            ("/root", 0o700),
            ("/tmp", 0o1777),
        ] {
            image = image.dir(dir, mode);
        }
        // As distroless: the nonroot user's home is its own.
        image = image.dir_owned("/home/nonroot", 0o700, (NONROOT, NONROOT));
        image = image
            .data("/etc/passwd", PASSWD.as_bytes().to_vec(), 0o644)
            .data("/etc/group", GROUP.as_bytes().to_vec(), 0o644)
            .data("/etc/ssl/certs/ca-certificates.crt", certs, 0o644);
        image.env = vec![format!("PATH={STATIC_PATH}")];
        image.user = "0".into();
        Ok(image)
    }

    /// distroless `static:nonroot`: the static base run as 65532:65532.
    pub fn nonroot() -> Result<Image, Error> {
        let mut image = Image::static_base()?;
        image.user = format!("{NONROOT}:{NONROOT}");
        image.working_dir = "/home/nonroot".into();
        Ok(image)
    }

    /// distroless `:debug`: the static base plus busybox (from `busybox`, a
    /// static binary) at `/busybox`, one symbolic link per applet, on `PATH`.
    pub fn busybox(busybox: &Path) -> Result<Image, Error> {
        let list = std::process::Command::new(busybox)
            .arg("--list")
            .output()
            .map_err(io(format!(
                "running {} --list (Debian package busybox-static; run `cargo xtask tools`)",
                busybox.display()
            )))?;
        if !list.status.success() {
            return Err(Error::Invalid(format!(
                "{} --list failed: is it busybox?",
                busybox.display()
            )));
        }
        let applets = String::from_utf8_lossy(&list.stdout).into_owned();
        let mut image = Image::static_base()?
            .new_layer()
            .dir("/busybox", 0o755)
            .file("/busybox/busybox", busybox, 0o755)?;
        for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
            if applet.contains('/') || applet == "busybox" {
                continue;
            }
            image = image.symlink(&format!("/busybox/{applet}"), "busybox");
        }
        image.env = vec![format!("PATH={DEBUG_PATH}")];
        image.entrypoint = vec!["/busybox/sh".into()];
        Ok(image)
    }

    /// Start a new layer; later entries go into it.
    pub fn new_layer(mut self) -> Image {
        self.layers.push(Vec::new());
        self
    }

    fn push(mut self, e: Entry) -> Image {
        if self.layers.is_empty() {
            self.layers.push(Vec::new());
        }
        self.layers.last_mut().expect("a layer").push(e);
        self
    }

    /// A directory (parents are added as needed, mode 0755).
    pub fn dir(self, path: &str, mode: u32) -> Image {
        self.dir_owned(path, mode, (0, 0))
    }

    /// A directory owned by `(uid, gid)`.
    pub fn dir_owned(self, path: &str, mode: u32, owner: (u32, u32)) -> Image {
        self.push(Entry::Dir {
            path: path.into(),
            mode,
            owner,
        })
    }

    /// A file with these bytes.
    pub fn data(self, path: &str, data: Vec<u8>, mode: u32) -> Image {
        self.push(Entry::File {
            path: path.into(),
            data,
            mode,
        })
    }

    /// A copy of the host file `source`.
    pub fn file(self, path: &str, source: &Path, mode: u32) -> Result<Image, Error> {
        let data = std::fs::read(source).map_err(io(format!("reading {}", source.display())))?;
        Ok(self.data(path, data, mode))
    }

    /// A copy of the host's dynamically linked `program` at `path`, with every
    /// shared library `ldd` lists for it at the path the host has it (what
    /// distroless `base` adds to `static`: glibc and friends).
    pub fn host_program(self, path: &str, program: &Path) -> Result<Image, Error> {
        let out = std::process::Command::new("ldd")
            .arg(program)
            .output()
            .map_err(io(format!("running ldd {}", program.display())))?;
        if !out.status.success() {
            return Err(Error::Invalid(format!(
                "ldd {} failed: {}",
                program.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let mut image = self.file(path, program, 0o755)?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/…/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)".
            let lib = line.split_once("=>").map_or(line, |(_, p)| p).trim();
            let Some(lib) = lib.split_whitespace().next().filter(|l| l.starts_with('/')) else {
                continue;
            };
            image = image.file(lib, Path::new(lib), 0o755)?;
        }
        Ok(image)
    }

    /// A symbolic link at `path` pointing to `target`.
    pub fn symlink(self, path: &str, target: &str) -> Image {
        self.push(Entry::Symlink {
            path: path.into(),
            target: target.into(),
        })
    }

    /// A whiteout: `path` of a lower layer is deleted (`.wh.NAME`).
    pub fn whiteout(self, path: &str) -> Image {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        self.data(&format!("{dir}/.wh.{name}"), Vec::new(), 0o644)
    }

    /// An opaque directory: what lower layers have in `dir` is hidden.
    pub fn opaque(self, dir: &str) -> Image {
        self.data(
            &format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
            Vec::new(),
            0o644,
        )
    }

    pub fn entrypoint<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Image {
        self.entrypoint = argv.into_iter().map(Into::into).collect();
        self
    }

    pub fn cmd<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Image {
        self.cmd = argv.into_iter().map(Into::into).collect();
        self
    }

    /// Set (or replace) one environment variable of the config.
    pub fn env(mut self, name: &str, value: &str) -> Image {
        self.env.retain(|e| e.split('=').next() != Some(name));
        self.env.push(format!("{name}={value}"));
        self
    }

    pub fn working_dir(mut self, dir: &str) -> Image {
        self.working_dir = dir.into();
        self
    }

    /// The config's `User` (`uid`, `uid:gid` or a name).
    pub fn user(mut self, user: &str) -> Image {
        self.user = user.into();
        self
    }

    /// Write an OCI image layout folder at `dir` (replaced if it exists);
    /// returns the manifest's digest.
    pub fn write_layout(&self, dir: &Path) -> Result<String, Error> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io(format!("removing {}", dir.display())))?;
        }
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(io(format!("creating {}", blobs.display())))?;
        let put = |data: &[u8]| -> Result<(String, usize), Error> {
            let hex = format!("{:x}", Sha256::digest(data));
            let path = blobs.join(&hex);
            std::fs::write(&path, data).map_err(io(format!("writing {}", path.display())))?;
            Ok((format!("sha256:{hex}"), data.len()))
        };
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for entries in &self.layers {
            let tar = layer_tar(entries)?;
            diff_ids.push(format!("sha256:{:x}", Sha256::digest(&tar)));
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).map_err(io("compressing a layer"))?;
            let gz = gz.finish().map_err(io("compressing a layer"))?;
            let (digest, size) = put(&gz)?;
            layers.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest, "size": size,
            }));
        }
        let mut config = serde_json::Map::new();
        let mut set = |k: &str, v: serde_json::Value| {
            config.insert(k.into(), v);
        };
        if !self.entrypoint.is_empty() {
            set("Entrypoint", self.entrypoint.clone().into());
        }
        if !self.cmd.is_empty() {
            set("Cmd", self.cmd.clone().into());
        }
        if !self.env.is_empty() {
            set("Env", self.env.clone().into());
        }
        if !self.working_dir.is_empty() {
            set("WorkingDir", self.working_dir.clone().into());
        }
        if !self.user.is_empty() {
            set("User", self.user.clone().into());
        }
        let config = serde_json::json!({
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let (config_digest, config_size) = put(config.to_string().as_bytes())?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest, "size": config_size,
            },
            "layers": layers,
        });
        let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes())?;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_size,
            }],
        });
        let write = |name: &str, data: String| {
            let path = dir.join(name);
            std::fs::write(&path, data).map_err(io(format!("writing {}", path.display())))
        };
        write("oci-layout", r#"{"imageLayoutVersion":"1.0.0"}"#.into())?;
        write("index.json", index.to_string())?;
        Ok(manifest_digest)
    }

    /// Write the layout as a tar archive at `path` (an OCI archive).
    pub fn write_archive(&self, path: &Path) -> Result<(), Error> {
        let staging = PathBuf::from(format!("{}.layout", path.display()));
        self.write_layout(&staging)?;
        let file =
            std::fs::File::create(path).map_err(io(format!("creating {}", path.display())))?;
        let mut b = tar::Builder::new(file);
        b.append_dir_all(".", &staging)
            .and_then(|()| b.finish())
            .map_err(io(format!("writing {}", path.display())))?;
        std::fs::remove_dir_all(&staging).map_err(io(format!("removing {}", staging.display())))
    }
}

/// The ways the images Go services ship are made, each with `program` (a
/// static binary) as its entrypoint at `path` in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// distroless `static`: no shell, no tools, runs as root.
    Static,
    /// distroless `static:nonroot`: no shell, runs as 65532.
    Nonroot,
    /// distroless `base:debug`: busybox at `/busybox`, on `PATH`.
    Debug,
}

/// `program` at `path` on the base `flavour` names; `busybox` is needed for [`Flavour::Debug`].
pub fn go_image(
    flavour: Flavour,
    program: &Path,
    path: &str,
    busybox: Option<&Path>,
) -> Result<Image, Error> {
    let base = match flavour {
        Flavour::Static => Image::static_base()?,
        Flavour::Nonroot => Image::nonroot()?,
        Flavour::Debug => Image::busybox(busybox.unwrap_or(Path::new(BUSYBOX)))?,
    };
    Ok(base
        .new_layer()
        .file(path, program, 0o755)?
        .entrypoint([path]))
}

/// One layer as an uncompressed tar: parents first, fixed owners and times.
fn layer_tar(entries: &[Entry]) -> Result<Vec<u8>, Error> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for e in entries {
        let (Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. }) = e;
        let rel = path.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(Error::Invalid(format!("bad image path {path:?}")));
        }
        let comps: Vec<_> = rel.split('/').collect();
        for i in 1..comps.len() {
            let parent = comps[..i].join("/");
            if dirs.insert(parent.clone()) {
                append(
                    &mut b,
                    tar::EntryType::Directory,
                    0o755,
                    &format!("{parent}/"),
                    None,
                    &[],
                )?;
            }
        }
        match e {
            Entry::Dir { mode, owner, .. } => {
                if dirs.insert(rel.to_string()) {
                    append_owned(
                        &mut b,
                        tar::EntryType::Directory,
                        *mode,
                        *owner,
                        &format!("{rel}/"),
                        None,
                        &[],
                    )?;
                }
            }
            Entry::File { data, mode, .. } => {
                append(&mut b, tar::EntryType::Regular, *mode, rel, None, data)?;
            }
            Entry::Symlink { target, .. } => {
                append(
                    &mut b,
                    tar::EntryType::Symlink,
                    0o777,
                    rel,
                    Some(target),
                    &[],
                )?;
            }
        }
    }
    b.into_inner().map_err(io("building a layer"))
}

fn append(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    mode: u32,
    path: &str,
    link: Option<&str>,
    data: &[u8],
) -> Result<(), Error> {
    append_owned(b, kind, mode, (0, 0), path, link, data)
}

fn append_owned(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    mode: u32,
    (uid, gid): (u32, u32),
    path: &str,
    link: Option<&str>,
    data: &[u8],
) -> Result<(), Error> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mtime(0);
    let r = match link {
        Some(target) => b.append_link(&mut h, path, target),
        None => b.append_data(&mut h, path, data),
    };
    r.map_err(io(format!("adding {path} to a layer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_input_same_digest() {
        let dir = tempfile::tempdir().unwrap();
        let make = || {
            Image::empty()
                .data("/app/x", b"hello".to_vec(), 0o755)
                .entrypoint(["/app/x"])
        };
        let a = make().write_layout(&dir.path().join("a")).unwrap();
        let b = make().write_layout(&dir.path().join("b")).unwrap();
        assert_eq!(a, b);
        assert!(dir.path().join("a/oci-layout").is_file());
    }

    #[test]
    fn bad_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = Image::empty()
            .data("/a/../b", Vec::new(), 0o644)
            .write_layout(dir.path())
            .unwrap_err();
        assert!(e.to_string().contains("bad image path"), "{e}");
    }
}

//! Images as root filesystems. An image given to localkube is one of:
//!
//! * an OCI image layout folder (`oci-layout`, `index.json`, `blobs/sha256/…`:
//!   what `skopeo copy … oci:DIR`, `crane pull --format=oci` and
//!   `ko build --oci-layout-path` write),
//! * a tar archive of one (an OCI archive), or a `docker save` archive (the
//!   legacy `manifest.json` form, or the OCI form Docker 25+ writes),
//! * a single executable, which becomes an image holding only that program
//!   (at `/<file name>`, its entrypoint), `/etc/passwd`, `/etc/group`, `/tmp`
//!   and CA certificates, like distroless `static`.
//!
//! Layers are unpacked in order into one folder per chain of layer digests
//! under the instance's `images/` folder, and reused by every container (and
//! image name) with the same chain; the container's root is an overlay with
//! that folder as its read-only lower layer (see `sys::rootfs`). The config
//! supplies `Entrypoint`, `Cmd`, `Env`, `WorkingDir` and `User`.

pub(crate) mod layer;
pub(crate) mod user;

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// An unpacked image.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    /// The unpacked root filesystem (never written after unpacking).
    pub rootfs: PathBuf,
    /// `sha256:…` of the config, reported as the container's `imageID`.
    pub id: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` entries of the config.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// Where a layout's blob lives; refuses digests that are not `sha256:<64 hex>`.
fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("unsupported digest {digest:?} (want sha256:<64 hex digits>)"))?;
    Ok(dir.join("blobs/sha256").join(hex))
}

/// A small JSON blob, checked against its digest.
fn read_blob(dir: &Path, digest: &str) -> Result<Vec<u8>, String> {
    let path = blob_path(dir, digest)?;
    let data = std::fs::read(&path).map_err(|e| format!("reading blob {digest}: {e}"))?;
    let got = format!("sha256:{:x}", Sha256::digest(&data));
    if got != digest {
        return Err(format!(
            "blob {digest} has digest {got}: the layout is corrupt"
        ));
    }
    Ok(data)
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The image config fields localkube uses (OCI and Docker agree on them).
fn config_of(data: &[u8]) -> Result<oci_spec::image::ImageConfiguration, String> {
    oci_spec::image::ImageConfiguration::from_reader(data)
        .map_err(|e| format!("the image config is not valid: {e}"))
}

/// A layer to apply: its file and, for layouts, the digest to check.
struct LayerRef {
    path: PathBuf,
    digest: Option<String>,
}

/// Load the image at `source` (see the module docs), unpacking into `cache`.
/// `owners`: keep file owners from the layers (needs root).
pub(crate) fn load(source: &Path, cache: &Path, owners: bool) -> Result<Image, String> {
    let meta = std::fs::metadata(source).map_err(|e| format!("{}: {e}", source.display()))?;
    if meta.is_dir() {
        return load_dir(source, cache, owners);
    }
    let mut head = [0u8; 512];
    let n = std::fs::File::open(source)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("reading {}: {e}", source.display()))?;
    if n == 512 && &head[257..262] == b"ustar" {
        let digest = file_digest(source)?;
        let dir = cache.join("archives").join(&digest[7..]);
        if !dir.join(".complete").exists() {
            let tmp = dir.with_extension("tmp");
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp)
                .map_err(|e| format!("creating {}: {e}", tmp.display()))?;
            let file = std::fs::File::open(source)
                .map_err(|e| format!("reading {}: {e}", source.display()))?;
            // tar's unpack refuses entries that would land outside `tmp`.
            tar::Archive::new(file)
                .unpack(&tmp)
                .map_err(|e| format!("unpacking the archive {}: {e}", source.display()))?;
            std::fs::write(tmp.join(".complete"), b"")
                .and_then(|()| {
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::rename(&tmp, &dir)
                })
                .map_err(|e| format!("storing {}: {e}", dir.display()))?;
        }
        return load_dir(&dir, cache, owners);
    }
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "{} is neither an OCI image layout folder, an image tar archive (OCI or docker save), nor an executable",
            source.display()
        ));
    }
    // A single program: the distroless-static-like image around it.
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .ok_or_else(|| format!("{}: no file name", source.display()))?;
    let digest = file_digest(source)?;
    let dir = cache.join("binaries").join(&digest[7..]);
    if !dir.join("index.json").exists() {
        let tmp = dir.with_extension("tmp");
        ocilayout::Image::static_base()
            .and_then(|i| i.new_layer().file(&format!("/{name}"), source, 0o755))
            .map(|i| i.entrypoint([format!("/{name}")]))
            .and_then(|i| i.write_layout(&tmp))
            .map_err(|e| format!("making an image of {}: {e}", source.display()))?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).map_err(|e| format!("storing {}: {e}", dir.display()))?;
    }
    load_dir(&dir, cache, owners)
}

fn file_digest(path: &Path) -> Result<String, String> {
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut h = Hashing {
        inner: &mut f,
        hash: Sha256::new(),
    };
    std::io::copy(&mut h, &mut std::io::sink())
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(format!("sha256:{:x}", h.hash.finalize()))
}

/// The linux platform's architecture as OCI names it.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn load_dir(dir: &Path, cache: &Path, owners: bool) -> Result<Image, String> {
    let (config, layers, id) = if dir.join("index.json").is_file() {
        oci_manifest(dir)?
    } else if dir.join("manifest.json").is_file() {
        docker_manifest(dir)?
    } else {
        return Err(format!(
            "{} has neither index.json (OCI image layout) nor manifest.json (docker save)",
            dir.display()
        ));
    };
    let rootfs = unpack(cache, &layers, owners)?;
    let c = config.config().clone().unwrap_or_default();
    Ok(Image {
        rootfs,
        id,
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        env: c.env().clone().unwrap_or_default(),
        working_dir: c.working_dir().clone().filter(|w| !w.is_empty()),
        user: c.user().clone().filter(|u| !u.is_empty()),
    })
}

type Parsed = (oci_spec::image::ImageConfiguration, Vec<LayerRef>, String);

/// index.json → (nested index →) the manifest for linux/our arch → config + layers.
fn oci_manifest(dir: &Path) -> Result<Parsed, String> {
    let index =
        std::fs::read(dir.join("index.json")).map_err(|e| format!("reading index.json: {e}"))?;
    let mut index = oci_spec::image::ImageIndex::from_reader(index.as_slice())
        .map_err(|e| format!("index.json is not an OCI image index: {e}"))?;
    for _ in 0..4 {
        let pick = {
            let ms = index.manifests();
            ms.iter()
                .find(|m| {
                    m.platform().as_ref().is_some_and(|p| {
                        p.os().to_string() == "linux" && p.architecture().to_string() == arch()
                    })
                })
                .or_else(|| ms.iter().find(|m| m.platform().is_none()))
                .or_else(|| ms.first())
                .cloned()
                .ok_or("index.json lists no manifest")?
        };
        let digest = pick.digest().to_string();
        let data = read_blob(dir, &digest)?;
        let media = pick.media_type().to_string();
        if media.contains("index") || media.contains("manifest.list") {
            index = oci_spec::image::ImageIndex::from_reader(data.as_slice())
                .map_err(|e| format!("{digest} is not an image index: {e}"))?;
            continue;
        }
        let manifest = oci_spec::image::ImageManifest::from_reader(data.as_slice())
            .map_err(|e| format!("{digest} is not an image manifest: {e}"))?;
        let config_digest = manifest.config().digest().to_string();
        let config = config_of(&read_blob(dir, &config_digest)?)?;
        let layers = manifest
            .layers()
            .iter()
            .map(|l| {
                let d = l.digest().to_string();
                Ok(LayerRef {
                    path: blob_path(dir, &d)?,
                    digest: Some(d),
                })
            })
            .collect::<Result<_, String>>()?;
        return Ok((config, layers, config_digest));
    }
    Err("image indexes nested too deeply".into())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    layers: Vec<String>,
}

/// `docker save`'s legacy `manifest.json`: paths of the config and layer tars.
fn docker_manifest(dir: &Path) -> Result<Parsed, String> {
    let data = std::fs::read(dir.join("manifest.json"))
        .map_err(|e| format!("reading manifest.json: {e}"))?;
    let list: Vec<DockerManifest> = serde_json::from_slice(&data)
        .map_err(|e| format!("manifest.json is not a docker save manifest: {e}"))?;
    let [m] = list.as_slice() else {
        return Err(format!(
            "manifest.json lists {} images; save one image per archive",
            list.len()
        ));
    };
    let inside = |p: &str| -> Result<PathBuf, String> {
        Ok(dir.join(layer::clean(Path::new(p)).map_err(|e| format!("manifest.json: {e}"))?))
    };
    let config_data = std::fs::read(inside(&m.config)?)
        .map_err(|e| format!("reading the config {}: {e}", m.config))?;
    let id = format!("sha256:{:x}", Sha256::digest(&config_data));
    let config = config_of(&config_data)?;
    let layers = m
        .layers
        .iter()
        .map(|l| {
            Ok(LayerRef {
                path: inside(l)?,
                digest: None,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((config, layers, id))
}

/// Unpack the layers (or reuse the folder of the same chain).
fn unpack(cache: &Path, layers: &[LayerRef], owners: bool) -> Result<PathBuf, String> {
    // The chain's key: every layer's digest in order (layers of docker's
    // legacy form are hashed here, as their digests are not recorded).
    let mut chain = Sha256::new();
    let mut digests = Vec::new();
    for l in layers {
        let d = match &l.digest {
            Some(d) => d.clone(),
            None => file_digest(&l.path)?,
        };
        chain.update(d.as_bytes());
        chain.update(b"\n");
        digests.push(d);
    }
    let dir = cache.join("rootfs").join(format!("{:x}", chain.finalize()));
    if dir.exists() {
        return Ok(dir);
    }
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    for (l, digest) in layers.iter().zip(&digests) {
        let file = std::fs::File::open(&l.path)
            .map_err(|e| format!("layer {digest}: reading {}: {e}", l.path.display()))?;
        let mut hashing = Hashing {
            inner: file,
            hash: Sha256::new(),
        };
        let applied = layer::apply(&tmp, &mut hashing, owners);
        // Drain what the tar reader left (padding), so the digest covers the blob.
        let _ = std::io::copy(&mut hashing, &mut std::io::sink());
        let got = format!("sha256:{:x}", hashing.hash.finalize());
        let checked = match (applied, &l.digest) {
            (Err(e), _) => Err(format!("layer {digest}: {e}")),
            (Ok(()), Some(want)) if &got != want => Err(format!(
                "layer {want} has digest {got}: the layout is corrupt"
            )),
            (Ok(()), _) => Ok(()),
        };
        if let Err(e) = checked {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    }
    // The root folder itself is the container's `/`.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755));
    std::fs::rename(&tmp, &dir).map_err(|e| format!("storing {}: {e}", dir.display()))?;
    Ok(dir)
}

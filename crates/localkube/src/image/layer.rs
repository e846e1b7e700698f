//! Applying one layer (a tar, plain or gzip) onto a root folder, as containerd's
//! `archive.Apply` does: entries in order, `.wh.NAME` deletes `NAME` of lower
//! layers, `.wh..wh..opq` hides everything lower layers put in its folder
//! (OCI image spec, layer.md "Whiteouts").
//!
//! Layers are hostile input. An entry is refused, with an error naming it,
//! when its path is absolute or climbs out with `..`, when it is a device node,
//! when it is a hard link to something outside the root, or when it is a
//! symbolic link whose relative target climbs above the root. Symbolic links
//! met on the way to an entry are resolved inside the root (the way
//! containerd's `fs.RootPath` does), never on the host.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// Longest chain of symbolic links followed while resolving one path.
const MAX_LINKS: usize = 40;

/// Normalise a layer entry's path to plain components; refuse absolute paths and `..`.
pub(crate) fn clean(raw: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{raw:?}: absolute path"));
            }
            Component::ParentDir => return Err(format!("{raw:?}: path leaves the image root")),
        }
    }
    Ok(out)
}

/// The host path of `rel` inside `root`, following symbolic links on the way
/// as if `root` were `/` (the last component too if `follow_last`).
pub(crate) fn resolve_in_root(
    root: &Path,
    rel: &Path,
    follow_last: bool,
) -> Result<PathBuf, String> {
    let mut stack: Vec<std::ffi::OsString> = rel
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
        .collect();
    let mut cur = PathBuf::new();
    let mut hops = 0;
    while let Some(name) = stack.pop() {
        if name == ".." {
            cur.pop();
            continue;
        }
        if name == "." {
            continue;
        }
        let next = cur.join(&name);
        let last = stack.is_empty();
        let host = root.join(&next);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !last) => {
                hops += 1;
                if hops > MAX_LINKS {
                    return Err(format!(
                        "{}: too many levels of symbolic links",
                        rel.display()
                    ));
                }
                let target = std::fs::read_link(&host)
                    .map_err(|e| format!("reading link {}: {e}", next.display()))?;
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => stack.push(n.to_os_string()),
                        Component::ParentDir => stack.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => cur = next,
        }
    }
    Ok(root.join(cur))
}

/// Does a relative link target, seen from `at` (the link's folder), climb above the root?
fn climbs_out(at: &Path, target: &Path) -> bool {
    let mut depth = at.components().count() as isize;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Make the parents of `rel` (already resolved inside root) exist as folders.
fn parents(root: &Path, rel: &Path) -> Result<PathBuf, String> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let host_parent = resolve_in_root(root, &parent.join("x"), false)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.to_path_buf());
    std::fs::create_dir_all(&host_parent)
        .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let name = rel.file_name().ok_or("empty path")?;
    Ok(host_parent.join(name))
}

/// Apply one layer read from `blob` onto `root`. `owners`: keep the entries'
/// uid/gid (only root may).
pub(crate) fn apply(root: &Path, blob: impl Read, owners: bool) -> Result<(), String> {
    let mut buf = BufReader::with_capacity(256 * 1024, blob);
    let head = buf.fill_buf().map_err(|e| e.to_string())?;
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(buf))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err("zstd-compressed layers are not supported; use gzip or plain tar".into());
    } else {
        Box::new(buf)
    };
    let mut archive = tar::Archive::new(reader);
    // Entries this layer created: an opaque folder only hides lower layers.
    let mut ours: HashSet<PathBuf> = HashSet::new();
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    for entry in archive
        .entries()
        .map_err(|e| format!("reading the tar: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("reading the tar: {e}"))?;
        let raw = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let rel = clean(&raw)?;
        if rel.as_os_str().is_empty() {
            continue; // "./" itself
        }
        let name = rel
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let dir = resolve_in_root(root, &rel.with_file_name("x"), false)?
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.to_path_buf());
            if hidden == ".wh..opq" {
                let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
                if let Ok(list) = std::fs::read_dir(&dir) {
                    for child in list.flatten() {
                        if !ours.contains(&parent_rel.join(child.file_name())) {
                            remove_any(&child.path())
                                .map_err(|e| format!("{raw:?}: opaque whiteout: {e}"))?;
                        }
                    }
                }
            } else if !hidden.is_empty() && hidden != "." && hidden != ".." {
                remove_any(&dir.join(hidden)).map_err(|e| format!("{raw:?}: whiteout: {e}"))?;
            }
            continue;
        }
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let uid = entry.header().uid().unwrap_or(0) as u32;
        let gid = entry.header().gid().unwrap_or(0) as u32;
        let target = parents(root, &rel)?;
        ours.insert(rel.clone());
        let fail = |e: std::io::Error| format!("{raw:?}: {e}");
        match kind {
            tar::EntryType::Directory => {
                match std::fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_any(&target).map_err(fail)?;
                        std::fs::create_dir(&target).map_err(fail)?;
                    }
                    Err(_) => std::fs::create_dir(&target).map_err(fail)?,
                }
                dir_modes.push((target.clone(), mode));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_any(&target).map_err(fail)?;
                let mut f = std::fs::File::create(&target).map_err(fail)?;
                std::io::copy(&mut entry, &mut f).map_err(fail)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .map_err(fail)?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| format!("{raw:?}: bad link target: {e}"))?
                    .ok_or_else(|| format!("{raw:?}: symbolic link without a target"))?
                    .into_owned();
                if link.is_relative() && climbs_out(rel.parent().unwrap_or(Path::new("")), &link) {
                    return Err(format!(
                        "{raw:?}: symbolic link to {link:?} points outside the image root"
                    ));
                }
                remove_any(&target).map_err(fail)?;
                symlink(&link, &target).map_err(fail)?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(|e| format!("{raw:?}: bad link target: {e}"))?
                    .ok_or_else(|| format!("{raw:?}: hard link without a target"))?
                    .into_owned();
                let link_rel = clean(&link)
                    .map_err(|e| format!("{raw:?}: hard link outside the image root: {e}"))?;
                let source = resolve_in_root(root, &link_rel, false)?;
                if !source.starts_with(root) || source == root {
                    return Err(format!("{raw:?}: hard link outside the image root"));
                }
                remove_any(&target).map_err(fail)?;
                std::fs::hard_link(&source, &target).map_err(fail)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(format!("{raw:?}: device nodes are not allowed in a layer"));
            }
            tar::EntryType::Fifo => {
                remove_any(&target).map_err(fail)?;
                let c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
                    .map_err(|_| format!("{raw:?}: NUL in path"))?;
                // SAFETY: plain syscall with a NUL-terminated path.
                if unsafe { libc::mkfifo(c.as_ptr(), mode) } != 0 {
                    return Err(fail(std::io::Error::last_os_error()));
                }
            }
            // PAX/GNU headers are folded into entries by the tar crate; anything
            // else (sparse files, volume labels) is not part of an image.
            other => return Err(format!("{raw:?}: unsupported tar entry type {other:?}")),
        }
        if owners {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).map_err(fail)?;
            if kind == tar::EntryType::Regular && mode & 0o6000 != 0 {
                // chown clears set-id bits; put them back.
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .map_err(fail)?;
            }
        }
    }
    // Folder modes last, so read-only folders could still be filled.
    for (dir, mode) in dir_modes.into_iter().rev() {
        let mode = if owners { mode } else { mode | 0o700 };
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer from (path, kind, link target or content).
    fn layer(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if *kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            // Written raw: the tar crate's path setters refuse `..` and absolute paths.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    h.set_link_name(data).unwrap();
                    h.set_size(0);
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                _ => {
                    h.set_size(data.len() as u64);
                    h.set_cksum();
                    b.append(&h, data.as_bytes()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    use tar::EntryType::{Block, Char, Directory as D, Link, Regular as F, Symlink};

    fn apply_err(root: &Path, entries: &[(&str, tar::EntryType, &str)]) -> String {
        apply(root, layer(entries).as_slice(), false).unwrap_err()
    }

    #[test]
    fn whiteouts_and_opaque_folders() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        apply(
            r,
            layer(&[
                ("a/", D, ""),
                ("a/keep", F, "1"),
                ("a/gone", F, "2"),
                ("b/", D, ""),
                ("b/old", F, "3"),
            ])
            .as_slice(),
            false,
        )
        .unwrap();
        // gzip, as most registries serve layers.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(
            &mut gz,
            &layer(&[
                ("a/.wh.gone", F, ""),
                ("b/new", F, "4"),
                ("b/.wh..wh..opq", F, ""),
            ]),
        )
        .unwrap();
        apply(r, gz.finish().unwrap().as_slice(), false).unwrap();
        assert!(r.join("a/keep").is_file());
        assert!(!r.join("a/gone").exists());
        assert!(!r.join("a/.wh.gone").exists());
        assert!(!r.join("b/old").exists(), "opaque hides the lower layer");
        assert_eq!(
            std::fs::read_to_string(r.join("b/new")).unwrap(),
            "4",
            "but not its own layer"
        );
    }

    #[test]
    fn hostile_entries_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().join("root");
        std::fs::create_dir(&r).unwrap();
        let e = apply_err(&r, &[("../escape", F, "x")]);
        assert!(e.contains("leaves the image root"), "{e}");
        assert!(!root.path().join("escape").exists());
        let e = apply_err(&r, &[("/etc/evil", F, "x")]);
        assert!(e.contains("absolute path"), "{e}");
        let e = apply_err(&r, &[("dev/sda", Block, "")]);
        assert!(e.contains("device nodes are not allowed"), "{e}");
        let e = apply_err(&r, &[("dev/mem", Char, "")]);
        assert!(e.contains("device nodes are not allowed"), "{e}");
        let e = apply_err(&r, &[("passwd", Link, "../../etc/passwd")]);
        assert!(e.contains("hard link outside the image root"), "{e}");
        let e = apply_err(&r, &[("up", Symlink, "../../../../etc")]);
        assert!(e.contains("points outside the image root"), "{e}");
    }

    /// A link to an absolute path is fine (it means the image's own path), and
    /// writing through it lands inside the root, never on the host.
    #[test]
    fn links_are_resolved_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().join("root");
        std::fs::create_dir(&r).unwrap();
        let outside = root.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let abs = outside.display().to_string();
        apply(
            &r,
            layer(&[("etc", Symlink, &abs), ("etc/passwd", F, "mine")]).as_slice(),
            false,
        )
        .unwrap();
        assert!(
            !outside.join("passwd").exists(),
            "nothing written on the host"
        );
        let inside = r.join(abs.trim_start_matches('/')).join("passwd");
        assert_eq!(std::fs::read_to_string(inside).unwrap(), "mine");
    }
}

//! Who a container runs as: the image's `User` (`uid`, `uid:gid`, `name`,
//! `name:group`, names looked up in the image's `/etc/passwd` and
//! `/etc/group`), overridden by `securityContext.runAsUser`/`runAsGroup`
//! (container over pod), plus supplementary groups: the user's groups in the
//! image's `/etc/group`, the pod's `supplementalGroups` and `fsGroup`.
//! This is containerd's CRI (`internal/cri/server/container_create_linux.go`:
//! `WithUser`, `WithUserID`, `WithAdditionalGIDs`, `WithSupplementalGroups`)
//! and runc's lookup (`libcontainer/user`): a numeric uid that is not in
//! `/etc/passwd` gets gid 0.

use std::path::Path;

use super::layer::resolve_in_root;

/// One line of `/etc/passwd` or `/etc/group` split on `:`.
fn entries(root: &Path, file: &str) -> Vec<Vec<String>> {
    let Ok(path) = resolve_in_root(root, Path::new(file), true) else {
        return Vec::new();
    };
    // Bounded: these files are small; a hostile image gets at most 1 MiB read.
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::Read::take(f, 1 << 20), &mut text);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

/// A passwd entry: (name, uid, gid, home).
fn passwd_by(root: &Path, pred: impl Fn(&str, u32) -> bool) -> Option<(String, u32, u32, String)> {
    entries(root, "etc/passwd").into_iter().find_map(|e| {
        let uid = e.get(2)?.parse().ok()?;
        let name = e.first()?.clone();
        if !pred(&name, uid) {
            return None;
        }
        Some((
            name,
            uid,
            e.get(3)?.parse().ok()?,
            e.get(5).cloned().unwrap_or_default(),
        ))
    })
}

/// The uid, gid, supplementary groups and home folder to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// The image's `User` with no overrides: `None` for the uid when it is a name
/// that cannot be verified numerically (kubelet's runAsNonRoot needs that).
pub(crate) fn image_uid(user: Option<&str>) -> Option<u32> {
    let u = user.unwrap_or("0");
    u.split(':').next().unwrap_or("0").parse().ok()
}

/// Work out the user; an error (as runc words it) when a name is unknown.
pub(crate) fn resolve(
    root: &Path,
    image_user: Option<&str>,
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    extra_groups: &[i64],
) -> Result<User, String> {
    let spec = image_user.unwrap_or("");
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (mut uid, mut gid, mut name, mut home) =
        (0u32, 0u32, String::from("root"), String::from("/"));
    if let Some(id) = run_as_user {
        uid = u32::try_from(id).map_err(|_| format!("runAsUser {id} is out of range"))?;
        if let Some((n, _, g, h)) = passwd_by(root, |_, x| x == uid) {
            (name, gid, home) = (n, g, h);
        } else {
            name = String::new();
        }
    } else if !u.is_empty() {
        if let Ok(id) = u.parse::<u32>() {
            uid = id;
            match passwd_by(root, |_, x| x == uid) {
                Some((n, _, g, h)) => (name, gid, home) = (n, g, h),
                None => name = String::new(),
            }
        } else {
            let (n, id, g, h) = passwd_by(root, |n, _| n == u).ok_or_else(|| {
                format!("unable to find user {u}: no matching entries in passwd file")
            })?;
            (name, uid, gid, home) = (n, id, g, h);
        }
    } else if let Some((n, _, g, h)) = passwd_by(root, |_, x| x == 0) {
        (name, gid, home) = (n, g, h);
    }
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(id) => id,
            Err(_) => entries(root, "etc/group")
                .into_iter()
                .find(|e| e.first().map(String::as_str) == Some(g))
                .and_then(|e| e.get(2)?.parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    if let Some(id) = run_as_group {
        gid = u32::try_from(id).map_err(|_| format!("runAsGroup {id} is out of range"))?;
    }
    let mut groups = vec![gid];
    if !name.is_empty() {
        for e in entries(root, "etc/group") {
            let member = e.get(3).is_some_and(|m| m.split(',').any(|m| m == name));
            if member && let Some(id) = e.get(2).and_then(|g| g.parse().ok()) {
                groups.push(id);
            }
        }
    }
    for g in extra_groups {
        groups.push(u32::try_from(*g).map_err(|_| format!("group {g} is out of range"))?);
    }
    groups.sort_unstable();
    groups.dedup();
    if home.is_empty() {
        home = "/".into();
    }
    Ok(User {
        uid,
        gid,
        groups,
        home,
    })
}

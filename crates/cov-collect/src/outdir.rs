//! Where collected files go.
//!
//! `--out` (default `reports/coverage`) is taken relative to
//! `SKAFFOLD_WORK_DIR` when Skaffold sets it, else to the current folder; an
//! absolute `--out` is used as is. Each container gets
//! `OUT/[SNAPSHOT/]<namespace>/<pod>/<container>/`.

use std::path::{Path, PathBuf};

/// The default `--out`.
pub const DEFAULT_OUT: &str = "reports/coverage";

/// Resolve `--out` against `SKAFFOLD_WORK_DIR` (`work_dir`) when relative.
pub fn resolve(out: &Path, work_dir: Option<&Path>) -> PathBuf {
    match work_dir {
        Some(w) if out.is_relative() && !w.as_os_str().is_empty() => w.join(out),
        _ => out.to_path_buf(),
    }
}

/// Whether a Kubernetes name is safe as one path component (API servers
/// enforce DNS names; we don't rely on that).
fn safe_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// `OUT/[SNAPSHOT/]ns/pod/container`, or an error naming the unsafe part.
pub fn container_dir(
    out: &Path,
    snapshot: Option<&str>,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<PathBuf, String> {
    let mut dir = out.to_path_buf();
    if let Some(s) = snapshot {
        dir.push(s);
    }
    for (what, name) in [
        ("namespace", namespace),
        ("pod", pod),
        ("container", container),
    ] {
        if !safe_component(name) {
            return Err(format!(
                "{what} name {name:?} cannot be used as a folder name"
            ));
        }
        dir.push(name);
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_out_follows_skaffold_work_dir() {
        assert_eq!(
            resolve(Path::new("reports/coverage"), Some(Path::new("/w"))),
            PathBuf::from("/w/reports/coverage")
        );
        assert_eq!(
            resolve(Path::new("/abs"), Some(Path::new("/w"))),
            PathBuf::from("/abs")
        );
        assert_eq!(resolve(Path::new("r"), None), PathBuf::from("r"));
    }

    #[test]
    fn layout_and_unsafe_names() {
        assert_eq!(
            container_dir(Path::new("o"), Some("a"), "ns", "p-1", "app"),
            Ok(PathBuf::from("o/a/ns/p-1/app"))
        );
        assert!(container_dir(Path::new("o"), None, "..", "p", "c").is_err());
        assert!(container_dir(Path::new("o"), None, "ns", "a/b", "c").is_err());
    }
}

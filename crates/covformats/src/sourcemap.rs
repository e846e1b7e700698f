//! From the import-path file names coverage data uses
//! (`example.com/app/internal/store/db.go`) to files on disk.
//!
//! Modules are found by walking a source root for `go.mod` files and reading
//! their `module` line; the longest module path that prefixes a file name
//! wins, as in Go's own module resolution. Standard-library names (first path
//! element without a dot) map into `GOROOT/src`. `command-line-arguments`
//! files already carry an absolute path.
//!
//! The names come from meta-data files, which come from pods: hostile input.
//! A name is read only when it ends in `.go` and, after resolving `..` and
//! symbolic links, is a regular file inside the source root or `GOROOT`.
//! Anything else is [`Resolution::Refused`] (never read), so a meta-data file
//! naming `/proc/self/environ` or `example.com/app/../../.ssh/id_rsa` cannot
//! pull a host file into a report.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Folders never searched for `go.mod`: they hold copies, caches or test
/// fixtures, never the module a binary was built from.
const SKIPPED_DIRS: &[&str] = &["vendor", "testdata", "node_modules", "target"];

/// A module found under the source root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The path on the `module` line of its `go.mod`.
    pub path: String,
    /// The folder holding that `go.mod`.
    pub dir: PathBuf,
}

/// Resolves coverage file names to source files.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// Sorted by module path length, longest first, so the first prefix match
    /// is the most specific module.
    modules: Vec<Module>,
    goroot: Option<PathBuf>,
    /// The folders sources may be read from, canonical (symlinks resolved).
    allowed: Vec<PathBuf>,
}

/// What a coverage file name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A `.go` file inside the source root or GOROOT.
    Found(PathBuf),
    /// No file by that name.
    Missing,
    /// A name that must not be read; the reason says why.
    Refused(&'static str),
}

impl SourceMap {
    /// Walks `source_root` for `go.mod` files; `goroot` (if any) serves
    /// standard-library files. Unreadable folders are skipped: a source map
    /// is best effort, and unmapped files are still counted.
    pub fn discover(source_root: &Path, goroot: Option<PathBuf>) -> SourceMap {
        let mut modules = Vec::new();
        let mut stack = vec![source_root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                tracing::debug!(dir = %dir.display(), "cannot read folder; skipped for go.mod search");
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref()) {
                        stack.push(entry.path());
                    }
                } else if name == "go.mod"
                    && let Some(path) = fs::read_to_string(entry.path())
                        .ok()
                        .as_deref()
                        .and_then(module_path)
                {
                    modules.push(Module {
                        path,
                        dir: dir.clone(),
                    });
                }
            }
        }
        let mut map = Self::new(modules, goroot);
        map.allowed = canonical_roots([source_root].into_iter().chain(map.goroot.as_deref()));
        map
    }

    /// A map from known modules (for tests and callers that know them);
    /// sources are read only from the modules' folders and `goroot`.
    pub fn new(mut modules: Vec<Module>, goroot: Option<PathBuf>) -> SourceMap {
        // Longest path first; ties (the same module twice) by folder, so the
        // choice does not depend on directory listing order.
        modules.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.dir.cmp(&b.dir))
        });
        let allowed = canonical_roots(
            modules
                .iter()
                .map(|m| m.dir.as_path())
                .chain(goroot.as_deref()),
        );
        SourceMap {
            modules,
            goroot,
            allowed,
        }
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    pub fn goroot(&self) -> Option<&Path> {
        self.goroot.as_deref()
    }

    /// The file on disk for a coverage file name, if it exists and may be read.
    pub fn resolve(&self, name: &str) -> Option<PathBuf> {
        match self.lookup(name) {
            Resolution::Found(p) => Some(p),
            Resolution::Missing | Resolution::Refused(_) => None,
        }
    }

    /// Where a coverage file name leads: a readable source, nothing, or a
    /// name that must not be read (see the module doc).
    pub fn lookup(&self, name: &str) -> Resolution {
        let mut folders = Folders::new();
        self.lookup_by(name, |path| real_path(path, &mut folders))
    }

    /// [`SourceMap::lookup`], with `real` giving a candidate's canonical
    /// path (`..` and every symbolic link resolved) and whether it is a
    /// regular file, `None` when nothing is there.
    fn lookup_by(
        &self,
        name: &str,
        mut real: impl FnMut(&Path) -> Option<(PathBuf, bool)>,
    ) -> Resolution {
        if !name.ends_with(".go") {
            return Resolution::Refused("not a .go file");
        }
        let mut outside = false;
        for candidate in self.candidates(name) {
            let Some((real, is_file)) = real(&candidate) else {
                continue;
            };
            if !self.allowed.iter().any(|root| real.starts_with(root)) {
                outside = true;
                continue;
            }
            if is_file {
                return Resolution::Found(candidate);
            }
        }
        if outside {
            Resolution::Refused("outside --source-root and --goroot")
        } else {
            Resolution::Missing
        }
    }

    /// The paths a name could mean, most specific first.
    fn candidates(&self, name: &str) -> Vec<PathBuf> {
        if name.starts_with('/') {
            return vec![PathBuf::from(name)];
        }
        let mut out: Vec<PathBuf> = self
            .modules
            .iter()
            .filter_map(|m| {
                let rest = name.strip_prefix(m.path.as_str())?.strip_prefix('/')?;
                Some(m.dir.join(rest))
            })
            .collect();
        if let Some(goroot) = &self.goroot
            && is_std(name)
        {
            out.push(goroot.join("src").join(name));
        }
        out
    }
}

/// Canonical forms of folders, `None` for those that do not resolve.
type Folders = HashMap<PathBuf, Option<PathBuf>>;

/// The canonical path of `path` and whether it is a regular file, as
/// `fs::canonicalize` and `is_file` tell, or `None` if nothing is there:
/// the canonical folder (remembered in `folders` across calls: resolving a
/// whole path costs a `readlink` per component, and a report's files share
/// few folders) joined with the last component, unless that is a symbolic
/// link (then resolved whole). `path` ends in a normal component (a name
/// ending in `.go`).
fn real_path(path: &Path, folders: &mut Folders) -> Option<(PathBuf, bool)> {
    let kind = fs::symlink_metadata(path).ok()?.file_type();
    let real = match (path.parent(), path.file_name()) {
        (Some(folder), Some(file)) if !kind.is_symlink() => {
            real_folder(folder, folders)?.join(file)
        }
        _ => fs::canonicalize(path).ok()?,
    };
    let is_file = if kind.is_symlink() {
        real.is_file()
    } else {
        kind.is_file()
    };
    Some((real, is_file))
}

/// The canonical form of `folder`, as `fs::canonicalize` gives it, built
/// from its nearest ancestor in `folders`: one `lstat` per new folder
/// rather than a `readlink` per component of each path.
fn real_folder(folder: &Path, folders: &mut Folders) -> Option<PathBuf> {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let mut below = Vec::new();
    let mut at = folder;
    let mut real = loop {
        if let Some(known) = folders.get(at) {
            break known.clone();
        }
        match (at.parent(), at.components().next_back()) {
            (Some(parent), Some(Component::Normal(_))) if !parent.as_os_str().is_empty() => {
                below.push(at);
                at = parent;
            }
            // A root, `.`, `..` or a single relative name: resolved whole.
            _ => {
                let r = fs::canonicalize(at).ok();
                folders.insert(at.to_path_buf(), r.clone());
                break r;
            }
        }
    };
    for dir in below.into_iter().rev() {
        real = real.and_then(|parent| {
            let kind = fs::symlink_metadata(dir).ok()?.file_type();
            if kind.is_symlink() {
                fs::canonicalize(dir).ok()
            } else if kind.is_dir() {
                Some(parent.join(dir.file_name()?))
            } else {
                None
            }
        });
        folders.insert(dir.to_path_buf(), real.clone());
    }
    real
}

/// The folders that exist among `roots`, canonical.
fn canonical_roots<'a>(roots: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    roots.filter_map(|r| fs::canonicalize(r).ok()).collect()
}

/// Standard-library import paths have no dot in their first element.
fn is_std(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or_default();
    !first.contains('.')
}

/// The module path of a `go.mod` file's text: the `module` directive, which
/// may be quoted and followed by a comment.
pub fn module_path(gomod: &str) -> Option<String> {
    for line in gomod.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("module") else {
            continue;
        };
        if !rest.starts_with([' ', '\t', '"', '`']) {
            continue;
        }
        let rest = rest.split("//").next().unwrap_or_default().trim();
        let path = rest.trim_matches(|c| c == '"' || c == '`');
        if !path.is_empty() {
            return Some(path.to_string());
        }
    }
    None
}

/// GOROOT as the user's environment has it: `$GOROOT` if set, else the
/// installation the `go` on `PATH` belongs to. No process is started: the
/// `go` binary sits in `GOROOT/bin`.
pub fn find_goroot() -> Option<PathBuf> {
    if let Some(root) = std::env::var_os("GOROOT").filter(|r| !r.is_empty()) {
        let root = PathBuf::from(root);
        if root.join("src").is_dir() {
            return Some(root);
        }
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let go = dir.join("go");
        if !go.is_file() {
            continue;
        }
        let real = fs::canonicalize(&go).ok()?;
        let root = real.parent()?.parent()?;
        if root.join("src/runtime").is_dir() {
            return Some(root.to_path_buf());
        }
    }
    None
}

/// Resolves many names, each once: several functions share a file.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    cache: HashMap<String, Resolution>,
    folders: Folders,
}

impl Resolved {
    pub(crate) fn get(&mut self, map: &SourceMap, name: &str) -> Resolution {
        self.cache
            .entry(name.to_string())
            .or_insert_with(|| map.lookup_by(name, |path| real_path(path, &mut self.folders)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_module_directive_forms() {
        assert_eq!(
            module_path("// c\nmodule example.com/app\n\ngo 1.22\n").as_deref(),
            Some("example.com/app")
        );
        assert_eq!(
            module_path("module \"example.com/q\" // note\n").as_deref(),
            Some("example.com/q")
        );
        assert_eq!(module_path("modulex foo\n"), None);
        assert_eq!(module_path("go 1.22\n"), None);
    }

    #[test]
    fn longest_module_wins_and_std_maps_to_goroot() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("app/sub/lib")).unwrap();
        fs::write(root.join("app/go.mod"), "module example.com/app\n").unwrap();
        fs::write(root.join("app/main.go"), "package main\n").unwrap();
        fs::write(root.join("app/sub/go.mod"), "module example.com/app/sub\n").unwrap();
        fs::write(root.join("app/sub/lib/x.go"), "package lib\n").unwrap();
        fs::create_dir_all(root.join(".hidden")).unwrap();
        fs::write(root.join(".hidden/go.mod"), "module example.com/app\n").unwrap();
        fs::create_dir_all(root.join("goroot/src/fmt")).unwrap();
        fs::write(root.join("goroot/src/fmt/print.go"), "package fmt\n").unwrap();

        let map = SourceMap::discover(root, Some(root.join("goroot")));
        assert_eq!(map.modules().len(), 2, "{:?}", map.modules());
        assert_eq!(
            map.resolve("example.com/app/main.go"),
            Some(root.join("app/main.go"))
        );
        assert_eq!(
            map.resolve("example.com/app/sub/lib/x.go"),
            Some(root.join("app/sub/lib/x.go"))
        );
        assert_eq!(
            map.resolve("fmt/print.go"),
            Some(root.join("goroot/src/fmt/print.go"))
        );
        assert_eq!(map.resolve("example.com/app/missing.go"), None);
        assert_eq!(map.resolve("example.com/other/x.go"), None);
        let abs = root.join("app/main.go");
        assert_eq!(map.resolve(abs.to_str().unwrap()), Some(abs.clone()));
    }

    #[test]
    fn names_leading_outside_or_not_go_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("src");
        fs::create_dir_all(root.join("app")).unwrap();
        fs::write(root.join("app/go.mod"), "module example.com/app\n").unwrap();
        fs::write(root.join("app/main.go"), "package main\n").unwrap();
        fs::write(root.join("app/notes.txt"), "notes\n").unwrap();
        fs::write(tmp.path().join("secret.go"), "package secret\n").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.go"), root.join("app/link.go")).unwrap();
        let map = SourceMap::discover(&root, None);
        let outside = Resolution::Refused("outside --source-root and --goroot");
        let secret = tmp.path().join("secret.go");
        assert_eq!(map.lookup(secret.to_str().unwrap()), outside);
        assert_eq!(map.lookup("example.com/app/../../secret.go"), outside);
        assert_eq!(map.lookup("example.com/app/link.go"), outside);
        assert_eq!(
            map.lookup("example.com/app/notes.txt"),
            Resolution::Refused("not a .go file")
        );
        assert_eq!(
            map.lookup("/etc/passwd"),
            Resolution::Refused("not a .go file")
        );
        assert_eq!(map.lookup("example.com/app/gone.go"), Resolution::Missing);
        assert!(matches!(
            map.lookup("example.com/app/main.go"),
            Resolution::Found(_)
        ));
    }

    /// Folders resolved once and reused give what resolving each whole
    /// path gives: folder links inside and outside, `..` through a missing
    /// folder, a folder named like a source.
    #[test]
    fn remembered_folders_resolve_as_whole_paths() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join("src");
        fs::create_dir_all(root.join("app/pkg/sub.go"))?;
        fs::create_dir_all(tmp.path().join("outside"))?;
        fs::write(root.join("app/go.mod"), "module example.com/app\n")?;
        fs::write(root.join("app/pkg/a.go"), "package pkg\n")?;
        fs::write(tmp.path().join("outside/b.go"), "package b\n")?;
        std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("app/out"))?;
        std::os::unix::fs::symlink(root.join("app/pkg"), root.join("app/alias"))?;
        let map = SourceMap::discover(&root, None);
        let names = [
            "example.com/app/pkg/a.go",
            "example.com/app/out/b.go",
            "example.com/app/alias/a.go",
            "example.com/app/alias/../pkg/a.go",
            "example.com/app/gone/../pkg/a.go",
            "example.com/app/pkg/sub.go",
            "example.com/app/pkg/sub.go/../a.go",
            "example.com/app/out/../../../outside/b.go",
        ];
        let whole = |name| {
            map.lookup_by(name, |path| {
                let real = fs::canonicalize(path).ok()?;
                let is_file = real.is_file();
                Some((real, is_file))
            })
        };
        let mut resolved = Resolved::default();
        for name in names.iter().chain(&names) {
            assert_eq!(resolved.get(&map, name), whole(name), "{name}");
            assert_eq!(map.lookup(name), whole(name), "{name}");
        }
        let outside = Resolution::Refused("outside --source-root and --goroot");
        assert_eq!(resolved.get(&map, "example.com/app/out/b.go"), outside);
        assert!(matches!(
            resolved.get(&map, "example.com/app/alias/a.go"),
            Resolution::Found(_)
        ));
        assert_eq!(
            resolved.get(&map, "example.com/app/pkg/sub.go"),
            Resolution::Missing
        );
        Ok(())
    }
}

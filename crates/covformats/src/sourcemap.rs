//! From the import-path file names coverage data uses
//! (`example.com/app/internal/store/db.go`) to files on disk.
//!
//! Modules are found by walking a source root for `go.mod` files and reading
//! their `module` line; the longest module path that prefixes a file name
//! wins, as in Go's own module resolution. Standard-library names (first path
//! element without a dot) map into `GOROOT/src`. `command-line-arguments`
//! files already carry an absolute path.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

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
        Self::new(modules, goroot)
    }

    /// A map from known modules (for tests and callers that know them).
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
        SourceMap { modules, goroot }
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    pub fn goroot(&self) -> Option<&Path> {
        self.goroot.as_deref()
    }

    /// The file on disk for a coverage file name, if it exists.
    pub fn resolve(&self, name: &str) -> Option<PathBuf> {
        if name.starts_with('/') {
            let p = PathBuf::from(name);
            return p.is_file().then_some(p);
        }
        for m in &self.modules {
            if let Some(rest) = name.strip_prefix(m.path.as_str())
                && let Some(rest) = rest.strip_prefix('/')
            {
                let p = m.dir.join(rest);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
        if let Some(goroot) = &self.goroot
            && is_std(name)
        {
            let p = goroot.join("src").join(name);
            if p.is_file() {
                return Some(p);
            }
        }
        None
    }
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
    cache: HashMap<String, Option<PathBuf>>,
}

impl Resolved {
    pub(crate) fn get(&mut self, map: &SourceMap, name: &str) -> Option<PathBuf> {
        if let Some(hit) = self.cache.get(name) {
            return hit.clone();
        }
        let found = map.resolve(name);
        self.cache.insert(name.to_string(), found.clone());
        found
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
}

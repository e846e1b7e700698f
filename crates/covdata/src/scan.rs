//! Step 0 of the data flow: find coverage files below the input folders
//! and pair each meta-data file with its counter files ("groups"; Go calls
//! them pods, a word this project keeps for Kubernetes).
//!
//! Go's rules (`internal/coverage/pods`), kept here: `covmeta.<tag>` is a
//! meta file, `covcounters.<tag>.<pid>.<nanotime>` a counter file of the
//! meta file with the same tag; of several meta files with one tag the
//! first found wins; counter files without a meta file are not read; groups
//! are ordered by meta file path, counter files by (input index, path).
//!
//! Deliberate differences: folders are searched recursively (so
//! `reports/coverage/<ns>/<pod>/<container>/` works as is); a file reached
//! twice through overlapping inputs or symlinks is read once; files that
//! are not coverage data produce warnings instead of silence.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::warning::Warning;

/// A meta-data file and the counter files written by runs of its binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub meta: PathBuf,
    pub counters: Vec<PathBuf>,
}

/// Result of [`scan`].
#[derive(Debug, Clone, Default)]
pub struct Scanned {
    pub groups: Vec<Group>,
    pub warnings: Vec<Warning>,
}

/// What a file name says a file is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileKind<'a> {
    Meta {
        tag: &'a [u8],
    },
    Counters {
        tag: &'a [u8],
    },
    /// A counter name whose pid does not fit Go's int: Go skips these.
    BadPid,
    /// `tmp.covmeta…`/`tmp.covcounters…`: the runtime's half-written files.
    Temporary,
    Other,
}

fn is_go_space(b: u8) -> bool {
    // RE2's \s: [\t\n\f\r ].
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn valid_tag(tag: &[u8]) -> bool {
    !tag.is_empty() && !tag.iter().any(|&b| is_go_space(b))
}

fn all_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// Classify a base name as Go's regexps do: `^covmeta\.(\S+)$` and
/// `^covcounters\.(\S+)\.(\d+)\.(\d+)+$`.
pub(crate) fn classify(name: &[u8]) -> FileKind<'_> {
    if let Some(tag) = name.strip_prefix(b"covmeta.")
        && valid_tag(tag)
    {
        return FileKind::Meta { tag };
    }
    if let Some(rest) = name.strip_prefix(b"covcounters.") {
        // The two numeric fields are the last two dot-separated parts; the
        // tag (greedy \S+) is everything before them.
        let mut parts = rest.rsplitn(3, |&b| b == b'.');
        let (time, pid, tag) = (parts.next(), parts.next(), parts.next());
        if let (Some(time), Some(pid), Some(tag)) = (time, pid, tag)
            && all_digits(time)
            && all_digits(pid)
            && valid_tag(tag)
        {
            // Go parses the pid with Atoi and skips the file on overflow.
            let fits = std::str::from_utf8(pid)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .is_some();
            return if fits {
                FileKind::Counters { tag }
            } else {
                FileKind::BadPid
            };
        }
    }
    if name.starts_with(b"tmp.covmeta") || name.starts_with(b"tmp.covcounters") {
        return FileKind::Temporary;
    }
    FileKind::Other
}

/// Lexically clean a path like Go's `filepath.Clean`, so group order
/// (bytewise by path) matches Go for the same arguments.
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

struct Found {
    path: PathBuf,
    input: usize,
}

/// Walk the inputs and build the groups.
pub fn scan(inputs: &[PathBuf]) -> Result<Scanned, Error> {
    let mut warnings = Vec::new();
    let mut seen_dirs: HashSet<(u64, u64)> = HashSet::new();
    let mut seen_files: HashSet<PathBuf> = HashSet::new();
    // tag -> first meta file; counter files per tag, in walk order.
    let mut metas: HashMap<Vec<u8>, PathBuf> = HashMap::new();
    let mut meta_order: Vec<Vec<u8>> = Vec::new();
    let mut counters: HashMap<Vec<u8>, Vec<Found>> = HashMap::new();

    for (input, dir) in inputs.iter().enumerate() {
        let meta = std::fs::metadata(dir).map_err(|e| Error::BadInput {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(Error::BadInput {
                path: dir.clone(),
                reason: "not a folder".into(),
            });
        }
        let mut stack = vec![clean(dir)];
        while let Some(dir) = stack.pop() {
            let md = std::fs::metadata(&dir).map_err(|e| Error::io(&dir, e))?;
            if !seen_dirs.insert(dir_id(&md)) {
                continue;
            }
            let canonical_dir = std::fs::canonicalize(&dir).map_err(|e| Error::io(&dir, e))?;
            let mut entries = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                entries.push(entry);
            }
            entries.sort_by_key(|e| e.file_name());
            let mut subdirs = Vec::new();
            for entry in entries {
                let path = dir.join(entry.file_name());
                let ft = entry.file_type().map_err(|e| Error::io(&path, e))?;
                let (is_dir, canonical) = if ft.is_symlink() {
                    match std::fs::metadata(&path) {
                        Ok(m) if m.is_dir() => (true, None),
                        Ok(_) => (false, std::fs::canonicalize(&path).ok()),
                        Err(_) => {
                            warnings.push(Warning::DanglingLink(path));
                            continue;
                        }
                    }
                } else {
                    (ft.is_dir(), None)
                };
                if is_dir {
                    subdirs.push(path);
                    continue;
                }
                let name = entry.file_name();
                let name_bytes = name.as_encoded_bytes();
                let kind = classify(name_bytes);
                if matches!(kind, FileKind::Meta { .. } | FileKind::Counters { .. }) {
                    let canonical = canonical.unwrap_or_else(|| canonical_dir.join(&name));
                    if !seen_files.insert(canonical) {
                        continue;
                    }
                }
                match kind {
                    FileKind::Meta { tag } => {
                        // Several pods of one deployment each carry the same
                        // meta file: the first is used, quietly, as in Go.
                        if !metas.contains_key(tag) {
                            metas.insert(tag.to_vec(), path);
                            meta_order.push(tag.to_vec());
                        }
                    }
                    FileKind::Counters { tag } => {
                        counters
                            .entry(tag.to_vec())
                            .or_default()
                            .push(Found { path, input });
                    }
                    FileKind::BadPid => warnings.push(Warning::BadCounterName(path)),
                    FileKind::Temporary => warnings.push(Warning::TemporaryFile(path)),
                    FileKind::Other => warnings.push(Warning::ForeignFile(path)),
                }
            }
            // Depth first, in name order.
            stack.extend(subdirs.into_iter().rev());
        }
    }

    for (tag, files) in &counters {
        if !metas.contains_key(tag) {
            for f in files {
                warnings.push(Warning::OrphanCounters(f.path.clone()));
            }
        }
    }
    let mut groups: Vec<Group> = meta_order
        .into_iter()
        .map(|tag| {
            let mut files = counters.remove(&tag).unwrap_or_default();
            files.sort_by(|a, b| {
                a.input.cmp(&b.input).then_with(|| {
                    a.path
                        .as_os_str()
                        .as_encoded_bytes()
                        .cmp(b.path.as_os_str().as_encoded_bytes())
                })
            });
            Group {
                meta: metas.remove(&tag).unwrap_or_default(),
                counters: files.into_iter().map(|f| f.path).collect(),
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        a.meta
            .as_os_str()
            .as_encoded_bytes()
            .cmp(b.meta.as_os_str().as_encoded_bytes())
    });
    warnings.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(Scanned { groups, warnings })
}

#[cfg(unix)]
fn dir_id(md: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (md.dev(), md.ino())
}

#[cfg(not(unix))]
fn dir_id(_md: &std::fs::Metadata) -> (u64, u64) {
    // Without inode numbers every visit counts; symlink loops are rare there.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    (0, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_go() {
        assert_eq!(classify(b"covmeta.abc"), FileKind::Meta { tag: b"abc" });
        assert_eq!(classify(b"covmeta."), FileKind::Other);
        assert_eq!(
            classify(b"covcounters.ab.c.12.34"),
            FileKind::Counters { tag: b"ab.c" }
        );
        assert_eq!(classify(b"covcounters.ab.12"), FileKind::Other);
        assert_eq!(classify(b"covcounters.ab.x.12"), FileKind::Other);
        assert_eq!(classify(b"covcounters.a b.1.2"), FileKind::Other);
        assert_eq!(
            classify(b"covcounters.ab.99999999999999999999.2"),
            FileKind::BadPid
        );
        assert_eq!(classify(b"tmp.covcounters.ab.1.2"), FileKind::Temporary);
        assert_eq!(classify(b"README"), FileKind::Other);
    }

    #[test]
    fn cleans_like_go() {
        assert_eq!(clean(Path::new("./a//b/../c/")), PathBuf::from("a/c"));
        assert_eq!(clean(Path::new(".")), PathBuf::from("."));
        assert_eq!(clean(Path::new("../x")), PathBuf::from("../x"));
    }
}

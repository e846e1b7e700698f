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

use std::collections::HashSet;

use rustc_hash::FxHashMap;
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

const META_PREFIX: &[u8] = b"covmeta.";
const COUNTERS_PREFIX: &[u8] = b"covcounters.";

/// Where the tag starts in the name of a meta-data (else counter) file.
fn tag_start(meta: bool) -> usize {
    if meta {
        META_PREFIX.len()
    } else {
        COUNTERS_PREFIX.len()
    }
}

/// Classify a base name as Go's regexps do: `^covmeta\.(\S+)$` and
/// `^covcounters\.(\S+)\.(\d+)\.(\d+)+$`.
pub(crate) fn classify(name: &[u8]) -> FileKind<'_> {
    if let Some(tag) = name.strip_prefix(META_PREFIX)
        && valid_tag(tag)
    {
        return FileKind::Meta { tag };
    }
    if let Some(rest) = name.strip_prefix(COUNTERS_PREFIX) {
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

/// A coverage file reached through a symbolic link, or the first one
/// below such a file's folder: where duplicates may come from.
struct Linked {
    /// Index in the walk order of coverage files.
    at: usize,
    canonical: PathBuf,
}

/// A coverage file in walk order, before duplicates are dropped.
struct Walked {
    path: PathBuf,
    input: usize,
    /// A meta-data file (else a counter file) and where its tag ends in
    /// the file name (it starts after the prefix).
    meta: bool,
    tag_end: usize,
    /// The canonical folder (an index into `canonical_dirs`) of a plain
    /// file; `None` for a symbolic link (its own canonical path is in
    /// `linked`).
    dir: Option<usize>,
}

/// Walk the inputs and build the groups.
pub fn scan(inputs: &[PathBuf]) -> Result<Scanned, Error> {
    let mut warnings = Vec::new();
    let mut seen_dirs: HashSet<(u64, u64)> = HashSet::new();
    let mut canonical_dirs: Vec<PathBuf> = Vec::new();
    // Coverage files in walk order, and those reached through links.
    let mut walked: Vec<Walked> = Vec::new();
    let mut linked: Vec<Linked> = Vec::new();

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
            let dir_index = canonical_dirs.len();
            canonical_dirs.push(canonical_dir);
            let mut entries = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                entries.push((entry.file_name(), entry));
            }
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let mut subdirs = Vec::new();
            for (name, entry) in entries {
                // Sized once: `join` grows the buffer twice.
                let mut path = PathBuf::with_capacity(dir.as_os_str().len() + 1 + name.len());
                path.push(&dir);
                path.push(&name);
                let ft = entry.file_type().map_err(|e| Error::io(&path, e))?;
                let (is_dir, link) = if ft.is_symlink() {
                    match std::fs::metadata(&path) {
                        Ok(m) if m.is_dir() => (true, false),
                        Ok(_) => (false, true),
                        Err(_) => {
                            warnings.push(Warning::DanglingLink(path));
                            continue;
                        }
                    }
                } else {
                    (ft.is_dir(), false)
                };
                if is_dir {
                    subdirs.push(path);
                    continue;
                }
                let (meta, tag) = match classify(name.as_encoded_bytes()) {
                    FileKind::Meta { tag } => (true, tag),
                    FileKind::Counters { tag } => (false, tag),
                    FileKind::BadPid => {
                        warnings.push(Warning::BadCounterName(path));
                        continue;
                    }
                    FileKind::Temporary => {
                        warnings.push(Warning::TemporaryFile(path));
                        continue;
                    }
                    FileKind::Other => {
                        warnings.push(Warning::ForeignFile(path));
                        continue;
                    }
                };
                let tag_end = tag_start(meta) + tag.len();
                if link {
                    // A link whose target cannot be resolved is its own
                    // file.
                    let canonical = std::fs::canonicalize(&path)
                        .unwrap_or_else(|_| canonical_dirs[dir_index].join(&name));
                    linked.push(Linked {
                        at: walked.len(),
                        canonical,
                    });
                }
                walked.push(Walked {
                    path,
                    input,
                    meta,
                    tag_end,
                    dir: (!link).then_some(dir_index),
                });
            }
            // Depth first, in name order.
            stack.extend(subdirs.into_iter().rev());
        }
    }

    // A file reached twice (overlapping inputs, links) is read once, where
    // it was first found. Every folder is walked once, so plain files
    // cannot repeat among themselves: only links can add duplicates, and
    // without links there is nothing to check.
    let mut duplicate = vec![false; walked.len()];
    if !linked.is_empty() {
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut links = linked.into_iter().peekable();
        for (i, w) in walked.iter().enumerate() {
            let canonical = match links.next_if(|l| l.at == i) {
                Some(l) => l.canonical,
                None => match (w.dir, w.path.file_name()) {
                    (Some(d), Some(name)) => canonical_dirs[d].join(name),
                    _ => w.path.clone(),
                },
            };
            duplicate[i] = !seen.insert(canonical);
        }
    }

    // tag -> first meta file; counter files per tag, in walk order.
    let mut metas: FxHashMap<Vec<u8>, PathBuf> = FxHashMap::default();
    let mut meta_order: Vec<Vec<u8>> = Vec::new();
    let mut counters: FxHashMap<Vec<u8>, Vec<Found>> = FxHashMap::default();
    for (w, dup) in walked.into_iter().zip(duplicate) {
        if dup {
            continue;
        }
        let name = w.path.file_name().map_or(&[][..], |n| n.as_encoded_bytes());
        let tag = name.get(tag_start(w.meta)..w.tag_end).unwrap_or_default();
        if w.meta {
            // Several pods of one deployment each carry the same meta
            // file: the first is used, quietly, as in Go.
            if !metas.contains_key(tag) {
                meta_order.push(tag.to_vec());
                metas.insert(tag.to_vec(), w.path);
            }
        } else {
            if !counters.contains_key(tag) {
                counters.insert(tag.to_vec(), Vec::new());
            }
            if let Some(list) = counters.get_mut(tag) {
                list.push(Found {
                    path: w.path,
                    input: w.input,
                });
            }
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

    /// A file reached both directly and through links is read once,
    /// under the path it was first found by, whichever way that was.
    #[cfg(unix)]
    #[test]
    fn linked_files_are_read_once_where_first_found() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&a).expect("a");
        std::fs::create_dir_all(b.join("sub")).expect("b");
        for name in ["covmeta.t", "covcounters.t.1.1", "covcounters.t.2.2"] {
            std::fs::write(a.join(name), b"x").expect("file");
        }
        // Under another name, under the same name, in a linked folder, and
        // dangling.
        symlink(a.join("covcounters.t.1.1"), b.join("covcounters.t.9.9")).expect("link");
        symlink(a.join("covcounters.t.2.2"), b.join("sub/covcounters.t.2.2")).expect("link");
        symlink(&a, b.join("linked-a")).expect("link");
        symlink(a.join("gone"), b.join("covcounters.t.3.3")).expect("link");

        let counters = |inputs: &[&Path]| {
            let inputs: Vec<PathBuf> = inputs.iter().map(|p| p.to_path_buf()).collect();
            let scanned = scan(&inputs).expect("scan");
            assert_eq!(scanned.groups.len(), 1);
            let warnings: Vec<String> = scanned.warnings.iter().map(|w| w.to_string()).collect();
            assert_eq!(
                warnings,
                [format!(
                    "{}: broken symlink, skipped",
                    b.join("covcounters.t.3.3").display()
                )]
            );
            (
                scanned.groups[0].meta.clone(),
                scanned.groups[0].counters.clone(),
            )
        };
        assert_eq!(
            counters(&[&b, &a]),
            (
                b.join("linked-a/covmeta.t"),
                // The linked folder sorts before `sub`.
                vec![
                    b.join("covcounters.t.9.9"),
                    b.join("linked-a/covcounters.t.2.2")
                ]
            )
        );
        assert_eq!(
            counters(&[&a, &b]),
            (
                a.join("covmeta.t"),
                vec![a.join("covcounters.t.1.1"), a.join("covcounters.t.2.2")]
            )
        );
    }

    #[test]
    fn cleans_like_go() {
        assert_eq!(clean(Path::new("./a//b/../c/")), PathBuf::from("a/c"));
        assert_eq!(clean(Path::new(".")), PathBuf::from("."));
        assert_eq!(clean(Path::new("../x")), PathBuf::from("../x"));
    }
}

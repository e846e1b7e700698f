//! Extracting a tar stream of Go coverage files from a container, treating
//! every byte of it as hostile: names, types, sizes and compression.
//!
//! Only regular files named `covmeta.*` or `covcounters.*` at the archive's top
//! level are written, and only into the destination folder. Everything else is
//! refused and reported: absolute paths, `..`, names in subfolders, symlinks,
//! hard links, devices, FIFOs, sparse entries, other names. Go's own
//! in-progress files (`tmp.*`, renamed by the runtime once complete) are
//! ignored quietly.
//!
//! The stream may be gzip (detected by its magic bytes) or plain tar. A cap
//! counts *decompressed* bytes: an entry whose declared size does not fit in
//! what is left is refused before a byte of it is written, and the stream is
//! abandoned, so a 10 GB sparse file neither reaches the disk nor memory.
//!
//! Each file is written to a temporary name in the destination and renamed;
//! a file already present with the same content is left untouched, so a
//! second run changes nothing.
//!
//! ```no_run
//! let stream = std::fs::File::open("coverage.tar.gz")?;
//! let report = safe_untar::extract(stream, "out".as_ref(), &safe_untar::ExtractOptions::default());
//! for r in &report.refused {
//!     eprintln!("refused {:?}: {}", r.name, r.reason);
//! }
//! println!("{} file(s) in place", report.files());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use covdata::names::{counter_meta_hash, is_counter_file, is_meta_file};

/// How to extract.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Cap on decompressed bytes read from the stream.
    pub max_bytes: u64,
    /// Counter files not to write (taken by an earlier snapshot).
    pub taken: BTreeSet<String>,
    /// Write a meta file only if a counter file written now needs it (snapshots).
    pub only_needed_meta: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            max_bytes: DEFAULT_MAX_BYTES,
            taken: BTreeSet::new(),
            only_needed_meta: false,
        }
    }
}

/// Default `--max-bytes`: far above any real coverage folder, far below a disk.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// An archive member that was not written, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    pub name: String,
    pub reason: String,
}

/// What extraction did (also when it stopped early: files written are kept).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Extracted {
    /// Files written (new or changed).
    pub written: Vec<String>,
    /// Files already present with identical content.
    pub unchanged: Vec<String>,
    /// Counter files left out because an earlier snapshot took them.
    pub taken_earlier: Vec<String>,
    /// Members refused as unsafe or not coverage data.
    pub refused: Vec<Refused>,
    /// Go's in-progress `tmp.*` files, ignored.
    pub in_progress: Vec<String>,
    /// Counter files in the destination without their meta file.
    pub counters_without_meta: Vec<String>,
    /// Bytes of the stream as received (compressed when gzip).
    pub bytes_received: u64,
    /// Bytes after decompression.
    pub bytes_decompressed: u64,
    /// Bytes written to disk (new or changed files).
    pub bytes_written: u64,
    pub gzip: bool,
    /// Why extraction stopped early, if it did.
    pub error: Option<String>,
    /// Set when the stop was the `--max-bytes` cap.
    pub cap_exceeded: bool,
}

impl Extracted {
    /// Every coverage file now in place (written or unchanged).
    pub fn files(&self) -> usize {
        self.written.len() + self.unchanged.len()
    }
}

/// A reader that counts bytes and fails once `limit` is passed.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
    limit: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.count.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.limit {
            return Err(io::Error::other(CapExceeded));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct CapExceeded;
impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "size cap exceeded")
    }
}
impl std::error::Error for CapExceeded {}

/// What a member's name and type allow.
enum Verdict {
    Write(String),
    IgnoreQuietly,
    InProgress(String),
    Refuse(String),
}

/// Decide about one archive member from its raw name and type.
fn judge(raw: &[u8], kind: tar::EntryType) -> (String, Verdict) {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let Ok(name) = std::str::from_utf8(raw) else {
        return (shown, Verdict::Refuse("name is not UTF-8".into()));
    };
    if name.starts_with('/') {
        return (shown, Verdict::Refuse("absolute path".into()));
    }
    if name.split('/').any(|c| c == "..") {
        return (shown, Verdict::Refuse("path contains '..'".into()));
    }
    let local = name.strip_prefix("./").unwrap_or(name);
    if kind.is_dir() && (local.is_empty() || local == "." || local == "./") {
        return (shown, Verdict::IgnoreQuietly);
    }
    let kind_problem = match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => None,
        tar::EntryType::Symlink => Some("symbolic link".to_string()),
        tar::EntryType::Link => Some("hard link".to_string()),
        tar::EntryType::Char | tar::EntryType::Block => Some("device node".to_string()),
        tar::EntryType::Fifo => Some("FIFO".to_string()),
        tar::EntryType::Directory => Some("directory".to_string()),
        tar::EntryType::GNUSparse => Some("sparse file entry".to_string()),
        other => Some(format!(
            "unsupported entry type {:?}",
            other.as_byte() as char
        )),
    };
    if let Some(problem) = kind_problem {
        return (shown, Verdict::Refuse(problem));
    }
    if local.contains('/') {
        return (
            shown,
            Verdict::Refuse("not at the archive's top level".into()),
        );
    }
    let safe_chars = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !safe_chars {
        return (
            shown,
            Verdict::Refuse("name has unexpected characters".into()),
        );
    }
    if local.starts_with("tmp.") {
        return (shown, Verdict::InProgress(local.to_string()));
    }
    if is_meta_file(local) || is_counter_file(local) {
        (shown, Verdict::Write(local.to_string()))
    } else {
        (
            shown,
            Verdict::Refuse("not a Go coverage file (covmeta.* / covcounters.*)".into()),
        )
    }
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A file written under a temporary name in the destination, not yet renamed.
struct Staged {
    name: String,
    temp: PathBuf,
    size: u64,
}

fn stage(dest: &Path, name: &str, reader: &mut dyn Read, size: u64) -> io::Result<Staged> {
    let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let temp = dest.join(format!(".{name}.{}.{seq}.partial", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let result = (|| {
        let copied = io::copy(&mut reader.take(size), &mut file)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("archive ended inside {name} ({copied} of {size} bytes)"),
            ));
        }
        file.flush()
    })();
    drop(file);
    match result {
        Ok(()) => Ok(Staged {
            name: name.to_string(),
            temp,
            size,
        }),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Move a staged file into place, unless an identical file is already there.
/// Returns whether anything changed.
fn commit(dest: &Path, staged: &Staged) -> io::Result<bool> {
    let target = dest.join(&staged.name);
    if let Ok(meta) = fs::symlink_metadata(&target)
        && meta.is_file()
        && meta.len() == staged.size
        && fs::read(&target)? == fs::read(&staged.temp)?
    {
        fs::remove_file(&staged.temp)?;
        return Ok(false);
    }
    // rename replaces a symlink itself, never writes through it.
    fs::rename(&staged.temp, &target)?;
    Ok(true)
}

/// Extract `stream` (gzip or plain tar) into `dest`, which is created if needed.
pub fn extract(stream: impl Read, dest: &Path, options: &ExtractOptions) -> Extracted {
    let mut report = Extracted::default();
    let received = Arc::new(AtomicU64::new(0));
    let decompressed = Arc::new(AtomicU64::new(0));
    let result = extract_inner(stream, dest, options, &mut report, &received, &decompressed);
    report.bytes_received = received.load(Ordering::Relaxed);
    report.bytes_decompressed = decompressed.load(Ordering::Relaxed);
    if let Err(e) = result {
        let capped = e.get_ref().is_some_and(|inner| inner.is::<CapExceeded>())
            || report.bytes_decompressed > options.max_bytes;
        if capped {
            report.cap_exceeded = true;
            report.error = Some(format!(
                "stopped: the archive exceeds --max-bytes {} (decompressed)",
                options.max_bytes
            ));
        } else {
            report.error = Some(e.to_string());
        }
    }
    report.counters_without_meta = counters_without_meta(dest);
    report
}

fn extract_inner(
    stream: impl Read,
    dest: &Path,
    options: &ExtractOptions,
    report: &mut Extracted,
    received: &Arc<AtomicU64>,
    decompressed: &Arc<AtomicU64>,
) -> io::Result<()> {
    let wire = Counting {
        inner: stream,
        count: received.clone(),
        // The wire is bounded by the decompressed cap (gzip only shrinks real data).
        limit: u64::MAX,
    };
    let mut buffered = BufReader::with_capacity(64 * 1024, wire);
    let head = buffered.fill_buf()?;
    if head.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "empty archive stream",
        ));
    }
    report.gzip = head.starts_with(&[0x1f, 0x8b]);
    let plain: Box<dyn Read> = if report.gzip {
        Box::new(flate2::read::GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let counted = Counting {
        inner: plain,
        count: decompressed.clone(),
        limit: options.max_bytes,
    };
    fs::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(counted);
    let mut metas: Vec<Staged> = Vec::new();
    let mut needed_hashes: BTreeSet<String> = BTreeSet::new();
    let outcome = (|| -> io::Result<()> {
        for entry in archive.entries()? {
            let mut entry = entry?;
            let kind = entry.header().entry_type();
            let raw = entry.path_bytes().into_owned();
            let (shown, verdict) = judge(&raw, kind);
            let name = match verdict {
                Verdict::Write(name) => name,
                Verdict::IgnoreQuietly => continue,
                Verdict::InProgress(name) => {
                    report.in_progress.push(name);
                    continue;
                }
                Verdict::Refuse(reason) => {
                    let reason = match (kind, entry.link_name_bytes()) {
                        (tar::EntryType::Symlink | tar::EntryType::Link, Some(target)) => {
                            format!("{reason} to {}", String::from_utf8_lossy(&target))
                        }
                        _ => reason,
                    };
                    report.refused.push(Refused {
                        name: shown,
                        reason,
                    });
                    continue;
                }
            };
            if is_counter_file(&name) && options.taken.contains(&name) {
                report.taken_earlier.push(name);
                continue;
            }
            let size = entry.size();
            let used = decompressed.load(Ordering::Relaxed);
            if size > options.max_bytes.saturating_sub(used) {
                report.refused.push(Refused {
                    name: shown,
                    reason: format!("declares {size} bytes, more than --max-bytes allows"),
                });
                return Err(io::Error::other(CapExceeded));
            }
            let staged = stage(dest, &name, &mut entry, size)?;
            if is_meta_file(&name) && options.only_needed_meta {
                metas.push(staged);
                continue;
            }
            if let Some(hash) = counter_meta_hash(&name) {
                needed_hashes.insert(hash.to_string());
            }
            if commit(dest, &staged)? {
                report.bytes_written += staged.size;
                report.written.push(name);
            } else {
                report.unchanged.push(name);
            }
        }
        Ok(())
    })();
    // Read what follows the end-of-archive marker (record padding, the gzip
    // trailer): it checks the gzip CRC and lets the exec end normally.
    let outcome =
        outcome.and_then(|()| io::copy(&mut archive.into_inner(), &mut io::sink()).map(|_| ()));
    // Snapshot meta files: only those a counter file of this snapshot needs.
    for staged in metas {
        let hash = staged.name.strip_prefix("covmeta.").unwrap_or_default();
        if outcome.is_ok() && needed_hashes.contains(hash) {
            if commit(dest, &staged)? {
                report.bytes_written += staged.size;
                report.written.push(staged.name);
            } else {
                report.unchanged.push(staged.name);
            }
        } else {
            let _ = fs::remove_file(&staged.temp);
        }
    }
    outcome
}

/// Counter files in `dir` whose `covmeta.<hash>` is not there.
pub fn counters_without_meta(dir: &Path) -> Vec<String> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let names: BTreeSet<String> = read
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names
        .iter()
        .filter(|n| match counter_meta_hash(n) {
            Some(hash) => !names.contains(&format!("covmeta.{hash}")),
            None => false,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;

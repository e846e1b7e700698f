//! The whole read path in one call: scan the folders, decode each group's
//! meta-data file, merge its counter files (in parallel, on all cores, the
//! meta-data decoding alongside), and merge the groups into a [`Profile`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::decode_counters::{self, RunArgs};
use crate::decode_meta::{self, MetaFile};
use crate::error::Error;
use crate::merge::counters::{LARGEST_MERGED_FAST, Layout, Tally};
use crate::merge::groups::ProfileBuilder;
use crate::model::{CounterMode, Granularity, Profile};
use crate::one_binary::{Coverage, MetaSource, OneBinary};
use crate::pkgpattern::PkgFilter;
use crate::scan::{self, Group};
use crate::warning::Warning;

/// What to do when inputs were recorded with different `-covermode`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModeClash {
    /// Accept and merge (`percent`, `func`, `pkglist`, `merge` in Go).
    #[default]
    Upgrade,
    /// Fail with [`Error::ModeClash`] (`textfmt` in Go).
    Refuse,
}

/// Options of [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Keep only packages matching these patterns (Go's `-pkg`).
    pub packages: Option<PkgFilter>,
    pub mode_clash: ModeClash,
    /// Worker threads for decoding counter files; `None` = all cores.
    pub threads: Option<usize>,
}

/// The result of [`load`] (`P` = [`Profile`]) and [`load_lazily`]
/// (`P` = [`Coverage`]).
#[derive(Debug, Clone)]
pub struct Loaded<P = Profile> {
    /// The merged coverage of all inputs.
    pub profile: P,
    /// Non-fatal findings (foreign files, orphaned counter files, …).
    pub warnings: Vec<Warning>,
    /// The groups that were read, in Go's processing order.
    pub groups: Vec<Group>,
    /// Program arguments all counter files agree on (kept by `merge`).
    pub args: RunArgs,
    /// Where the time went.
    pub timings: Timings,
}

/// Where the time of a [`load`] went, stage by stage (what
/// `cargo xtask bench report` prints). Per-file stages run on several
/// threads: their times are summed over threads, `counters_wall` is the
/// elapsed time of the whole counter stage. Meta-data decoding and laying
/// out the profile usually run on the calling thread during that stage,
/// before it joins the counter files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Walking the folders and pairing files into groups.
    pub listing: Duration,
    /// Reading the meta-data files (for a single binary: its outline and
    /// the block counts the counter files are laid out by).
    pub meta_read: Duration,
    /// Decoding them (for a single binary: checking every package, while
    /// the counter files merge).
    pub meta_decode: Duration,
    /// Reading counter files (summed over threads).
    pub counters_read: Duration,
    /// Decoding and merging counter files (summed over threads).
    pub counters_merge: Duration,
    /// Elapsed time of reading, decoding and merging counter files.
    pub counters_wall: Duration,
    /// Building the merged profile from the groups (none for a single
    /// binary read lazily: its packages are decoded as a report writes
    /// them, which then counts as formatting).
    pub profile: Duration,
}

/// Read every Go coverage file below `inputs` and merge them.
///
/// Errors: [`Error::BadInput`] for a missing folder, [`Error::NoData`] when
/// no meta-data file is found at all, [`Error::Corrupt`] naming the file
/// and byte offset of damaged data, [`Error::ModeClash`] /
/// [`Error::GranularityClash`] for incompatible inputs.
pub fn load(inputs: &[PathBuf], options: &LoadOptions) -> Result<Loaded, Error> {
    let loaded = load_lazily(inputs, options)?;
    let t = Instant::now();
    let profile = loaded.profile.into_profile()?;
    let mut timings = loaded.timings;
    timings.profile += t.elapsed();
    Ok(Loaded {
        profile,
        warnings: loaded.warnings,
        groups: loaded.groups,
        args: loaded.args,
        timings,
    })
}

/// [`load`], except that the data of a single binary (one meta-data file)
/// is kept as a [`OneBinary`], whose packages are decoded one at a time as
/// a report reads them: what the text outputs use, for speed and memory.
pub fn load_lazily(inputs: &[PathBuf], options: &LoadOptions) -> Result<Loaded<Coverage>, Error> {
    let mut timings = Timings::default();
    let started = Instant::now();
    let scanned = scan::scan(inputs)?;
    timings.listing = started.elapsed();
    if scanned.groups.is_empty() {
        return Err(Error::NoData {
            searched: inputs.to_vec(),
        });
    }
    let mut warnings = scanned.warnings;
    let mut builder = ProfileBuilder::new();
    let mut state: Option<(CounterMode, Granularity)> = None;
    let mut args = ArgsMerge::default();
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);

    if let [group] = &scanned.groups[..]
        && let Some((one, overflow, findings)) =
            read_one_binary(group, options, threads, &mut timings)?
    {
        note_group(group, overflow, findings, &mut warnings, &mut args);
        return Ok(Loaded {
            profile: Coverage::OneBinary(one),
            warnings,
            groups: scanned.groups,
            args: args.finish(),
            timings,
        });
    }

    for group in &scanned.groups {
        let t = Instant::now();
        let bytes = std::fs::read(&group.meta).map_err(|e| Error::io(&group.meta, e))?;
        timings.meta_read += t.elapsed();
        let filter = options.packages.as_ref();
        // The common case: the meta-data's shape is all the counter files
        // need, so they are merged while this thread decodes the meta-data
        // and lays out the profile. Anything odd (damage, a mode clash)
        // goes the plain way below, which reports it as Go would.
        let early = decode_meta::shape(&bytes).and_then(|shape| {
            let mode =
                check_modes(state, shape.mode, shape.granularity, options, &group.meta).ok()?;
            Some((shape, mode))
        });
        let mut done = None;
        if let Some((shape, merge_mode)) = early {
            let t = Instant::now();
            let layout = Layout::from_shape(&shape);
            let (counters, (meta, plan)) = merge_counter_files(
                &group.counters,
                &layout,
                merge_mode,
                threads,
                &mut timings,
                || {
                    let t = Instant::now();
                    let meta = decode_meta::decode(&bytes);
                    let decoding = t.elapsed();
                    let t = Instant::now();
                    let plan = match &meta {
                        Ok(m) if layout.fits(m) => Some(builder.add_structure(m, &layout, filter)),
                        _ => None,
                    };
                    ((meta, decoding), (plan, t.elapsed()))
                },
            );
            timings.counters_wall += t.elapsed();
            let ((meta, decoding), (plan, planning)) = (meta, plan);
            timings.meta_decode += decoding;
            timings.profile += planning;
            let meta = meta.map_err(|c| Error::corrupt(&group.meta, c))?;
            if let Some(plan) = plan {
                done = Some((meta, merge_mode, counters?, plan));
            }
        }
        let (meta, merge_mode, (tally, group_args), plan) = match done {
            Some(d) => d,
            None => {
                let t = Instant::now();
                let meta =
                    decode_meta::decode(&bytes).map_err(|c| Error::corrupt(&group.meta, c))?;
                timings.meta_decode += t.elapsed();
                // Go checks mode and granularity when it opens each meta
                // file and merges that group's counters with the (possibly
                // upgraded) mode.
                let merge_mode =
                    check_modes(state, meta.mode, meta.granularity, options, &group.meta)?;
                let t = Instant::now();
                let layout = Layout::new(&meta);
                let (counters, ()) = merge_counter_files(
                    &group.counters,
                    &layout,
                    merge_mode,
                    threads,
                    &mut timings,
                    || (),
                );
                let counters = counters?;
                timings.counters_wall += t.elapsed();
                let t = Instant::now();
                let plan = builder.add_structure(&meta, &layout, filter);
                timings.profile += t.elapsed();
                (meta, merge_mode, counters, plan)
            }
        };
        drop(bytes);
        state = Some((merge_mode, meta.granularity));
        let t = Instant::now();
        let merged = tally.finish();
        timings.counters_wall += t.elapsed();
        note_group(group, merged.overflow, group_args, &mut warnings, &mut args);
        let t = Instant::now();
        builder.apply_counts(&plan, &merged.counts);
        timings.profile += t.elapsed();
    }
    let t = Instant::now();
    let profile = builder.finish().ok_or(Error::NoData {
        searched: inputs.to_vec(),
    })?;
    timings.profile += t.elapsed();
    Ok(Loaded {
        profile: Coverage::Profile(profile),
        warnings,
        groups: scanned.groups,
        args: args.finish(),
        timings,
    })
}

/// The only group, as a [`OneBinary`]: its counter files merged while
/// this thread checks the meta-data and lists its packages. `None` where
/// that view does not apply (damage is then reported by the general
/// path, as Go would).
fn read_one_binary(
    group: &Group,
    options: &LoadOptions,
    threads: usize,
    timings: &mut Timings,
) -> Result<Option<(OneBinary, bool, Vec<FileFindings>)>, Error> {
    let t = Instant::now();
    let Some((mut source, shape)) = MetaSource::open(&group.meta)? else {
        return Ok(None);
    };
    timings.meta_read += t.elapsed();
    let t = Instant::now();
    let meta_layout = &Layout::from_shape(&shape);
    let mode = shape.mode;
    drop(shape);
    // Counts merge in the slot order of the first file's functions.
    let most = meta_layout.function_count();
    let listed = group
        .counters
        .first()
        .and_then(|f| listed_functions(f, most));
    let layout = &meta_layout.in_listed_order(listed.into_iter().flatten());
    let filter = options.packages.as_ref();
    let (counters, (index, decoding)) =
        merge_counter_files(&group.counters, layout, mode, threads, timings, || {
            let t = Instant::now();
            let index = source.index(meta_layout, filter);
            (index, t.elapsed())
        });
    timings.meta_decode += decoding;
    let Some(index) = index? else {
        return Ok(None);
    };
    let (tally, findings) = counters?;
    let merged = tally.finish();
    let counts = layout.counts_in(meta_layout, merged.counts);
    timings.counters_wall += t.elapsed();
    let one = OneBinary::new(source, index, counts);
    Ok(Some((one, merged.overflow, findings)))
}

/// The first `most` functions a counter file lists (package and function
/// indexes), in its order, for [`Layout::in_listed_order`]. `None` for a
/// file that cannot be read whole, or is larger than any run writes
/// ([`LARGEST_MERGED_FAST`]): the merge reads it again and reports what is
/// wrong with it.
fn listed_functions(path: &Path, most: usize) -> Option<Vec<(u32, u32)>> {
    if std::fs::metadata(path).ok()?.len() > LARGEST_MERGED_FAST {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let mut file = decode_counters::open(&bytes).ok()?;
    let mut listed = Vec::new();
    while listed.len() < most
        && let Ok(Some(h)) = file.next_header()
    {
        listed.push((h.package, h.function));
        // The values are skipped, not kept.
        let skip = file.read_counters(
            h.count,
            &mut [],
            decode_counters::Merge::Replace,
            &mut false,
        );
        if skip.is_err() {
            break;
        }
    }
    Some(listed)
}

/// What a group's counter files tell beyond counts: an overflow warning,
/// functions the meta-data lacks, and the program arguments.
fn note_group(
    group: &Group,
    overflow: bool,
    findings: Vec<FileFindings>,
    warnings: &mut Vec<Warning>,
    args: &mut ArgsMerge,
) {
    if overflow {
        warnings.push(Warning::CounterOverflow {
            meta: group.meta.clone(),
        });
    }
    for ((path, unknown), a) in findings {
        args.add(a);
        for (package, function) in unknown {
            warnings.push(Warning::UnknownFunction {
                path: path.clone(),
                package,
                function,
            });
        }
    }
}

/// Go's checks when it opens a group's meta-data file: the granularity
/// must match the previous groups', the counter mode too where `options`
/// refuse a clash. The mode the group's counters merge with (Go upgrades
/// it: set < count < atomic).
fn check_modes(
    state: Option<(CounterMode, Granularity)>,
    mode: CounterMode,
    granularity: Granularity,
    options: &LoadOptions,
    path: &Path,
) -> Result<CounterMode, Error> {
    let Some((previous_mode, previous_gran)) = state else {
        return Ok(mode);
    };
    if previous_gran != granularity {
        return Err(Error::GranularityClash {
            path: path.to_path_buf(),
            previous: previous_gran,
            new: granularity,
        });
    }
    if previous_mode != mode && options.mode_clash == ModeClash::Refuse {
        return Err(Error::ModeClash {
            path: path.to_path_buf(),
            previous: previous_mode,
            new: mode,
        });
    }
    Ok(previous_mode.max(mode))
}

/// Read and decode one meta-data file.
pub fn read_meta(path: &Path) -> Result<MetaFile, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_meta::decode(&bytes).map_err(|c| Error::corrupt(path, c))
}

type FileFindings = ((PathBuf, Vec<(u32, u32)>), RunArgs);
/// A worker's tally, its per-file results tagged with the file index, and
/// its time reading and decoding.
type WorkerResult = (
    Tally,
    Vec<(usize, Result<FileFindings, Error>)>,
    (Duration, Duration),
);

/// Merge counter files on `threads` threads, this one included: it runs
/// `first` before it joins in. Each thread owns a tally, the tallies are
/// combined at the end (merging is order independent, so the result is
/// deterministic). Errors report the first bad file in processing order,
/// as a sequential reader would.
fn merge_counter_files<R>(
    files: &[PathBuf],
    layout: &Layout,
    mode: CounterMode,
    threads: usize,
    timings: &mut Timings,
    first: impl FnOnce() -> R,
) -> (Result<(Tally, Vec<FileFindings>), Error>, R) {
    let helpers = threads.saturating_sub(1).min(files.len());
    let next = AtomicUsize::new(0);
    let work = || -> WorkerResult {
        let mut tally = Tally::new(layout, mode);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut folder = Folder::default();
        let (mut reading, mut merging) = (Duration::ZERO, Duration::ZERO);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = files.get(i) else { break };
            let before = tally.unknown.len();
            let t = Instant::now();
            let read = read_into(path, &mut folder, &mut buf);
            let t2 = Instant::now();
            reading += t2 - t;
            let r = read.and_then(|len| {
                let mut cf =
                    decode_counters::open(&buf[..len]).map_err(|c| Error::corrupt(path, c))?;
                let args = std::mem::take(&mut cf.args);
                tally
                    .add_file(layout, &mut cf)
                    .map_err(|c| Error::corrupt(path, c))?;
                let unknown = tally.unknown.split_off(before);
                Ok(((path.clone(), unknown), args))
            });
            merging += t2.elapsed();
            out.push((i, r));
        }
        (tally, out, (reading, merging))
    };
    let (results, side): (Vec<WorkerResult>, R) = std::thread::scope(|s| {
        // The first helper away from this thread; the kernel spreads any
        // more (each move away costs a migration).
        let handles: Vec<_> = (0..helpers)
            .map(|i| match i {
                0 => spawn_elsewhere::spawn(s, work),
                _ => s.spawn(work),
            })
            .collect();
        let side = first();
        let mut results = vec![work()];
        results.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        (results, side)
    });
    (
        combine_results(files.len(), layout, mode, results, timings),
        side,
    )
}

/// The threads' tallies folded into one, and the per-file findings in
/// file order (the first error wins).
fn combine_results(
    files: usize,
    layout: &Layout,
    mode: CounterMode,
    results: Vec<WorkerResult>,
    timings: &mut Timings,
) -> Result<(Tally, Vec<FileFindings>), Error> {
    let mut total: Option<Tally> = None;
    let mut per_file: Vec<(usize, Result<FileFindings, Error>)> = Vec::with_capacity(files);
    for (tally, out, (reading, merging)) in results {
        timings.counters_read += reading;
        timings.counters_merge += merging;
        per_file.extend(out);
        match &mut total {
            None => total = Some(tally),
            Some(t) => t.combine(tally),
        }
    }
    per_file.sort_by_key(|(i, _)| *i);
    let mut findings = Vec::with_capacity(per_file.len());
    for (_, r) in per_file {
        findings.push(r?);
    }
    Ok((total.unwrap_or_else(|| Tally::new(layout, mode)), findings))
}

/// Read a whole file into the start of `buf`, which the caller reuses
/// from file to file, and return its length: open, read until end of
/// file, close. (`read_to_end` asks for the size and position first, two
/// more system calls a file; with the buffer already as large as the
/// files, that knowledge saves nothing.) The buffer keeps its length, so
/// only growing it zeroes memory (`read` wants initialized bytes).
/// A read that leaves room in the buffer ends the file, as it does for a
/// regular file (POSIX); counter files are written whole and renamed into
/// place. So one `read` a file, not a second one to see end of file: if a
/// file was cut short all the same, decoding reports it as truncated.
fn read_into(path: &Path, folder: &mut Folder, buf: &mut Vec<u8>) -> Result<usize, Error> {
    use std::io::Read;
    let mut f = folder.open(path).map_err(|e| Error::io(path, e))?;
    if buf.is_empty() {
        buf.resize(64 * 1024, 0);
    }
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(2 * len, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(len)
}

/// The folder of the last file a worker opened, kept open: a counter file
/// in it is opened by its name alone. The kernel then looks up one name
/// rather than every folder of the path: 2,000 files open in about 10%
/// less time. A file elsewhere, or a folder that cannot be opened, is
/// opened by its whole path as before.
#[derive(Default)]
struct Folder(Option<(PathBuf, std::os::fd::OwnedFd)>);

impl Folder {
    fn open(&mut self, path: &Path) -> std::io::Result<std::fs::File> {
        use rustix::fs::{Mode, OFlags, open, openat};
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return std::fs::File::open(path);
        };
        if self.0.as_ref().is_none_or(|(p, _)| p != parent) {
            // Read access, not O_PATH (Linux only): the scan listed it.
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            self.0 = open(parent, flags, Mode::empty())
                .ok()
                .map(|fd| (parent.to_path_buf(), fd));
        }
        match &self.0 {
            Some((_, dir)) => {
                let fd = openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
                Ok(fd.into())
            }
            None => std::fs::File::open(path),
        }
    }
}

/// `go tool covdata merge`'s argument merge: a value survives only if
/// every counter file agrees.
#[derive(Default)]
pub(crate) struct ArgsMerge {
    state: Option<RunArgs>,
}

impl ArgsMerge {
    pub(crate) fn add(&mut self, a: RunArgs) {
        match &mut self.state {
            None => self.state = Some(a),
            Some(s) => {
                if s.os_args != a.os_args {
                    s.os_args.clear();
                }
                if s.goos != a.goos {
                    s.goos.clear();
                }
                if s.goarch != a.goarch {
                    s.goarch.clear();
                }
            }
        }
    }
    pub(crate) fn finish(self) -> RunArgs {
        self.state.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_open_by_name_in_the_last_folder_and_by_path_elsewhere() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for (dir, name) in [(&a, "x"), (&a, "z"), (&b, "y")] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(name), name).unwrap();
        }
        let mut folder = Folder::default();
        let mut buf = Vec::new();
        for path in [a.join("x"), b.join("y"), a.join("z"), a.join("x")] {
            let len = read_into(&path, &mut folder, &mut buf).unwrap();
            assert_eq!(&buf[..len], path.file_name().unwrap().as_encoded_bytes());
            assert_eq!(folder.0.as_ref().map(|(p, _)| p.as_path()), path.parent());
        }
        // A missing file is reported with its whole path, as before.
        let missing = a.join("gone");
        let err = read_into(&missing, &mut folder, &mut buf).unwrap_err();
        let expected = Error::io(&missing, std::fs::File::open(&missing).unwrap_err());
        assert_eq!(err.to_string(), expected.to_string());
        // A folder that is gone now: the whole path, and its error.
        std::fs::remove_dir_all(&b).unwrap();
        let err = read_into(&b.join("y"), &mut folder, &mut buf).unwrap_err();
        assert!(err.to_string().contains("b/y"), "{err}");
    }
}

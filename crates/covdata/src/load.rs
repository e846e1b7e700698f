//! The whole read path in one call: scan the folders, decode each group's
//! meta-data file, merge its counter files (in parallel), and merge the
//! groups into a [`Profile`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::decode_counters::{self, RunArgs};
use crate::decode_meta::{self, MetaFile};
use crate::error::Error;
use crate::merge::counters::{Layout, Tally};
use crate::merge::groups::ProfileBuilder;
use crate::model::{CounterMode, Granularity, Profile};
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

/// The result of [`load`].
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged coverage of all inputs.
    pub profile: Profile,
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
/// elapsed time of the whole counter stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Walking the folders and pairing files into groups.
    pub listing: Duration,
    /// Reading the meta-data files.
    pub meta_read: Duration,
    /// Decoding them.
    pub meta_decode: Duration,
    /// Reading counter files (summed over threads).
    pub counters_read: Duration,
    /// Decoding and merging counter files (summed over threads).
    pub counters_merge: Duration,
    /// Elapsed time of reading, decoding and merging counter files.
    pub counters_wall: Duration,
    /// Building the merged profile from the groups.
    pub profile: Duration,
}

/// Read every Go coverage file below `inputs` and merge them.
///
/// Errors: [`Error::BadInput`] for a missing folder, [`Error::NoData`] when
/// no meta-data file is found at all, [`Error::Corrupt`] naming the file
/// and byte offset of damaged data, [`Error::ModeClash`] /
/// [`Error::GranularityClash`] for incompatible inputs.
pub fn load(inputs: &[PathBuf], options: &LoadOptions) -> Result<Loaded, Error> {
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

    for group in &scanned.groups {
        let t = Instant::now();
        let bytes = std::fs::read(&group.meta).map_err(|e| Error::io(&group.meta, e))?;
        timings.meta_read += t.elapsed();
        let t = Instant::now();
        let meta = decode_meta::decode(&bytes).map_err(|c| Error::corrupt(&group.meta, c))?;
        drop(bytes);
        timings.meta_decode += t.elapsed();
        // Go checks mode and granularity when it opens each meta file and
        // merges that group's counters with the (possibly upgraded) mode.
        let merge_mode = match state {
            None => meta.mode,
            Some((mode, gran)) => {
                if gran != meta.granularity {
                    return Err(Error::GranularityClash {
                        path: group.meta.clone(),
                        previous: gran,
                        new: meta.granularity,
                    });
                }
                if mode != meta.mode && options.mode_clash == ModeClash::Refuse {
                    return Err(Error::ModeClash {
                        path: group.meta.clone(),
                        previous: mode,
                        new: meta.mode,
                    });
                }
                mode.max(meta.mode)
            }
        };
        state = Some((merge_mode, meta.granularity));
        let t = Instant::now();
        let layout = Layout::new(&meta);
        let (tally, group_args) =
            merge_counter_files(&group.counters, &layout, merge_mode, threads, &mut timings)?;
        let merged = tally.finish();
        timings.counters_wall += t.elapsed();
        if merged.overflow {
            warnings.push(Warning::CounterOverflow {
                meta: group.meta.clone(),
            });
        }
        for (path, a) in group_args {
            args.add(a);
            for &(package, function) in &path.1 {
                warnings.push(Warning::UnknownFunction {
                    path: path.0.clone(),
                    package,
                    function,
                });
            }
        }
        let t = Instant::now();
        builder.add_group(&meta, &layout, &merged.counts, options.packages.as_ref());
        timings.profile += t.elapsed();
    }
    let t = Instant::now();
    let profile = builder.finish().ok_or(Error::NoData {
        searched: inputs.to_vec(),
    })?;
    timings.profile += t.elapsed();
    Ok(Loaded {
        profile,
        warnings,
        groups: scanned.groups,
        args: args.finish(),
        timings,
    })
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

/// Merge counter files with `threads` workers; each worker owns a tally,
/// the tallies are combined at the end. Errors report the first bad file in
/// processing order, as a sequential reader would.
fn merge_counter_files(
    files: &[PathBuf],
    layout: &Layout,
    mode: CounterMode,
    threads: usize,
    timings: &mut Timings,
) -> Result<(Tally, Vec<FileFindings>), Error> {
    let workers = threads.min(files.len()).max(1);
    let next = AtomicUsize::new(0);
    let work = || -> WorkerResult {
        let mut tally = Tally::new(layout, mode);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let (mut reading, mut merging) = (Duration::ZERO, Duration::ZERO);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = files.get(i) else { break };
            let before = tally.unknown.len();
            let t = Instant::now();
            let read = read_into(path, &mut buf);
            let t2 = Instant::now();
            reading += t2 - t;
            let r = read.and_then(|()| {
                let mut cf = decode_counters::open(&buf).map_err(|c| Error::corrupt(path, c))?;
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
    let results: Vec<WorkerResult> = if workers == 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers).map(|_| s.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    let mut total: Option<Tally> = None;
    let mut per_file: Vec<(usize, Result<FileFindings, Error>)> = Vec::with_capacity(files.len());
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

fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<(), Error> {
    use std::io::Read;
    buf.clear();
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    f.read_to_end(buf).map_err(|e| Error::io(path, e))?;
    Ok(())
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

//! `subtract` and `intersect`: combine coverage folders block by block and
//! write the result as Go coverage files, with `go tool covdata`'s semantics
//! (`cmd/covdata/subtractintersect.go`).
//!
//! Per binary (a meta-data file and its counter files, gathered from all
//! inputs), the counter files of the first input folder are merged as usual.
//! Then, for every later folder, each of its counter files is applied
//! function by function to the functions the first folder has:
//!
//! - `subtract` (exactly two folders): a counter becomes 0 wherever the
//!   second folder's counter is nonzero: what the first run covered and the
//!   second did not;
//! - `intersect` (one or more): a counter becomes 0 wherever that file's
//!   counter is 0, and a function the folder's files never mention is
//!   dropped. A later folder with no counter files for a binary leaves that
//!   binary's data unchanged, as in Go.
//!
//! The output folder gets, per binary, a copy of the meta-data file and one
//! counter file (pid 0, ULEB128, no program arguments), as Go writes them.
//!
//! One deliberate difference: each binary is processed on its own. Go
//! carries its "current folder" across binaries, so with several binaries it
//! panics (`decreasing dir index`) as soon as a later binary has files from
//! an earlier folder, and `intersect` can drop a later binary's data
//! entirely; for one binary, and for the several-binary inputs Go completes,
//! the results are the same.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::decode_counters;
use crate::encode::{self, CounterEntry, Segment};
use crate::error::Error;
use crate::merge::counters::merge_into;
use crate::model::CounterMode;
use crate::pkgpattern::PkgFilter;
use crate::scan;

/// Which set operation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// Coverage of the first folder not also covered by the second.
    Subtract,
    /// Coverage present in every folder.
    Intersect,
}

impl SetOp {
    pub fn name(self) -> &'static str {
        match self {
            SetOp::Subtract => "subtract",
            SetOp::Intersect => "intersect",
        }
    }
}

/// What [`run`] wrote.
#[derive(Debug, Clone, Default)]
pub struct SetOpOutput {
    /// The meta-data and counter files in the output folder, in write order.
    pub files: Vec<PathBuf>,
    /// A counter file named a function its meta-data file does not have
    /// (data from a different build under the same hash); such counters
    /// are left out, as Go does.
    pub unknown_functions: usize,
}

type Key = (u32, u32);

/// Runs `op` over `inputs` (each searched recursively) and writes the
/// result into `out_dir` (created if missing).
pub fn run(op: SetOp, inputs: &[PathBuf], out_dir: &Path) -> Result<SetOpOutput, Error> {
    run_with(op, inputs, out_dir, None)
}

/// [`run`], keeping only the packages `packages` selects (Go's `-pkg`):
/// each binary then gets a new meta-data file holding only those packages,
/// renumbered in meta-data order, as Go's `subtract`/`intersect` write it.
pub fn run_with(
    op: SetOp,
    inputs: &[PathBuf],
    out_dir: &Path,
    packages: Option<&PkgFilter>,
) -> Result<SetOpOutput, Error> {
    match (op, inputs.len()) {
        (SetOp::Subtract, 2) => {}
        (SetOp::Subtract, _) => {
            return Err(Error::BadInput {
                path: inputs.last().cloned().unwrap_or_default(),
                reason: format!(
                    "subtract takes exactly two input folders (got {}): the data, then what to take away",
                    inputs.len()
                ),
            });
        }
        // One folder intersected with nothing is that folder, as in Go.
        (SetOp::Intersect, 0) => {
            return Err(Error::BadInput {
                path: PathBuf::new(),
                reason: "intersect takes one or more input folders".into(),
            });
        }
        (SetOp::Intersect, _) => {}
    }
    let scanned = scan::scan(inputs)?;
    if scanned.groups.is_empty() {
        return Err(Error::NoData {
            searched: inputs.to_vec(),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let roots: Vec<PathBuf> = inputs.iter().map(|p| scan::clean(p)).collect();
    let mut output = SetOpOutput::default();
    let mut buf = Vec::new();
    for group in &scanned.groups {
        let meta_bytes = std::fs::read(&group.meta).map_err(|e| Error::io(&group.meta, e))?;
        let meta =
            crate::decode_meta::decode(&meta_bytes).map_err(|c| Error::corrupt(&group.meta, c))?;
        let mut state = GroupState::new(op, meta.mode);
        for path in &group.counters {
            let origin = roots.iter().position(|r| path.starts_with(r)).unwrap_or(0);
            state.begin_file(origin);
            buf.clear();
            buf.extend_from_slice(&std::fs::read(path).map_err(|e| Error::io(path, e))?);
            let mut file = decode_counters::open(&buf).map_err(|c| Error::corrupt(path, c))?;
            let mut counters = Vec::new();
            while let Some(h) = file
                .next_function(&mut counters)
                .map_err(|c| Error::corrupt(path, c))?
            {
                state.visit((h.package, h.function), &counters);
            }
        }
        state.end_counters();

        let mut entries = Vec::with_capacity(state.functions.len());
        for ((package, function), counters) in state.functions {
            let known = meta
                .packages
                .get(package as usize)
                .is_some_and(|p| (function as usize) < p.functions.len());
            if !known {
                output.unknown_functions += 1;
                continue;
            }
            entries.push(CounterEntry {
                package,
                function,
                counters,
            });
        }
        // New package numbers of the selected packages.
        let selected: Vec<Option<u32>> = {
            let mut next = 0u32;
            meta.packages
                .iter()
                .map(|p| {
                    packages.is_none_or(|f| f.matches(&p.path)).then(|| {
                        next += 1;
                        next - 1
                    })
                })
                .collect()
        };
        let (meta_out, hash) = match packages {
            None => {
                let meta_name = group.meta.file_name().map_or_else(
                    || PathBuf::from(format!("covmeta.{}", hex(&meta.hash))),
                    PathBuf::from,
                );
                let meta_out = out_dir.join(meta_name);
                encode::write_atomic(&meta_out, &meta_bytes)?;
                (meta_out, meta.hash)
            }
            Some(_) => {
                let blobs: Vec<Vec<u8>> = crate::decode_meta::package_blobs(&meta_bytes, &meta)
                    .into_iter()
                    .zip(&selected)
                    .filter_map(|(b, s)| s.map(|_| b))
                    .collect();
                let (bytes, hash) =
                    encode::encode_selected_meta(&blobs, meta.mode, meta.granularity);
                let meta_out = out_dir.join(format!("covmeta.{}", hex(&hash)));
                encode::write_atomic(&meta_out, &bytes)?;
                (meta_out, hash)
            }
        };
        let entries: Vec<CounterEntry> = entries
            .into_iter()
            .filter_map(|mut e| {
                e.package = selected.get(e.package as usize).copied().flatten()?;
                Some(e)
            })
            .collect();
        let counters = encode::encode_counters(
            hash,
            decode_counters::Flavor::Uleb128,
            &[Segment {
                args: BTreeMap::new(),
                entries,
            }],
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let counters_out = out_dir.join(format!("covcounters.{}.0.{nanos}", hex(&hash)));
        encode::write_atomic(&counters_out, &counters)?;
        output.files.push(meta_out);
        output.files.push(counters_out);
    }
    Ok(output)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's per-binary visitor state: which folder's files are being read, and
/// (intersect) which functions the current later folder has mentioned.
struct GroupState {
    op: SetOp,
    mode: CounterMode,
    current: Option<usize>,
    seen: Option<HashSet<Key>>,
    functions: BTreeMap<Key, Vec<u32>>,
}

impl GroupState {
    fn new(op: SetOp, mode: CounterMode) -> Self {
        GroupState {
            op,
            mode,
            current: None,
            // Go starts each binary of an intersect with an empty set; the
            // first folder's files clear it again.
            seen: (op == SetOp::Intersect).then(HashSet::new),
            functions: BTreeMap::new(),
        }
    }

    fn begin_file(&mut self, origin: usize) {
        if self.current == Some(origin) {
            return;
        }
        if origin == 0 {
            self.seen = None;
        } else if self.op == SetOp::Intersect {
            if self.seen.is_some() {
                self.prune();
            }
            self.seen = Some(HashSet::new());
        }
        self.current = Some(origin);
    }

    fn visit(&mut self, key: Key, data: &[u32]) {
        if self.current == Some(0) {
            let val = self.functions.entry(key).or_default();
            if val.len() < data.len() {
                val.resize(data.len(), 0);
            }
            let mut overflow = false;
            merge_into(val, data, self.mode, &mut overflow);
            return;
        }
        let Some(val) = self.functions.get_mut(&key) else {
            return;
        };
        match self.op {
            SetOp::Subtract => {
                for (v, &d) in val.iter_mut().zip(data) {
                    if d != 0 {
                        *v = 0;
                    }
                }
            }
            SetOp::Intersect => {
                if let Some(seen) = &mut self.seen {
                    seen.insert(key);
                }
                for (v, &d) in val.iter_mut().zip(data) {
                    if d == 0 {
                        *v = 0;
                    }
                }
            }
        }
    }

    fn end_counters(&mut self) {
        if self.seen.is_some() {
            self.prune();
        }
    }

    /// Drops the functions the folder just read never mentioned.
    fn prune(&mut self) {
        if let Some(seen) = self.seen.take() {
            self.functions.retain(|k, _| seen.contains(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(op: SetOp) -> GroupState {
        GroupState::new(op, CounterMode::Count)
    }

    #[test]
    fn subtract_zeroes_what_the_second_folder_hit() {
        let mut s = state(SetOp::Subtract);
        s.begin_file(0);
        s.visit((0, 0), &[3, 1, 0]);
        s.visit((0, 1), &[2]);
        s.begin_file(1);
        s.visit((0, 0), &[1, 0, 5]);
        s.visit((0, 2), &[1]);
        s.end_counters();
        let got: Vec<_> = s.functions.into_iter().collect();
        assert_eq!(got, vec![((0, 0), vec![0, 1, 0]), ((0, 1), vec![2])]);
    }

    #[test]
    fn intersect_keeps_common_blocks_per_file() {
        let mut s = state(SetOp::Intersect);
        s.begin_file(0);
        s.visit((0, 0), &[3, 1, 4]);
        s.visit((0, 1), &[2]);
        s.begin_file(1);
        s.visit((0, 0), &[1, 0, 5]);
        s.visit((0, 0), &[1, 1, 0]);
        s.end_counters();
        // (0,1) was never mentioned by folder 1: dropped. Each file of
        // folder 1 zeroes its own gaps.
        let got: Vec<_> = s.functions.into_iter().collect();
        assert_eq!(got, vec![((0, 0), vec![3, 0, 0])]);
    }

    #[test]
    fn intersect_without_later_files_keeps_the_first_folder() {
        let mut s = state(SetOp::Intersect);
        s.begin_file(0);
        s.visit((0, 0), &[3]);
        s.end_counters();
        assert_eq!(s.functions.len(), 1);
    }
}

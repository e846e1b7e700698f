//! `go tool covdata merge`: merged Go-format files, laid out as Go's merge
//! lays them out (`cmd/covdata/merge.go`, `metamerge.go`).
//!
//! - Plain merge: per group (binary), the meta-data file is copied as is
//!   and one counter file holds the group's merged counters.
//! - With a package filter (`-pkg`): per group, a new meta-data file with
//!   only the selected packages (their blobs unchanged, renumbered) and
//!   the matching counter file.
//! - `pcombine`: one meta-data file for all groups: packages by import path
//!   in the order first seen, functions deduplicated by Go's hash of their
//!   description (name, file, blocks, literal flag), counters merged.
//!
//! Counters are merged with the mode in effect (per group, or upgraded
//! across groups under `pcombine`); program arguments survive only where
//! all counter files of the output agree, as in Go.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::decode_counters::{self, Flavor};
use crate::decode_meta::{self, MetaFile, MetaPackage};
use crate::encode::{self, CounterEntry, Fnv128a, Segment};
use crate::error::Error;
use crate::load::ArgsMerge;
use crate::merge::counters::merge_into;
use crate::model::{self, CounterMode, Granularity};
use crate::pkgpattern::PkgFilter;
use crate::scan;
use crate::warning::Warning;

/// Options of [`merge`].
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Go's `-pkg`.
    pub packages: Option<PkgFilter>,
    /// Go's `-pcombine`: combine different binaries into one meta-data file.
    pub pcombine: bool,
}

/// What [`merge`] wrote.
#[derive(Debug, Clone, Default)]
pub struct MergeOutput {
    pub files: Vec<PathBuf>,
    pub warnings: Vec<Warning>,
}

/// One output package being built.
struct OutPackage {
    /// Plain merge: the input blob. `pcombine`: the functions collected.
    blob: Vec<u8>,
    combined: Option<model::Package>,
    /// Go's function hash -> function index (pcombine only).
    by_hash: HashMap<[u8; 16], u32>,
    /// Function index -> merged counters; written in index order.
    counters: HashMap<u32, Vec<u32>>,
}

/// Mode, granularity, packages and arguments of one output.
#[derive(Default)]
struct Output {
    state: Option<(CounterMode, Granularity)>,
    packages: Vec<OutPackage>,
    by_path: HashMap<String, usize>,
    args: ArgsMerge,
}

impl Output {
    fn set_mode(&mut self, path: &Path, meta: &MetaFile) -> Result<CounterMode, Error> {
        let mode = match self.state {
            None => meta.mode,
            Some((mode, gran)) => {
                if gran != meta.granularity {
                    return Err(Error::GranularityClash {
                        path: path.to_path_buf(),
                        previous: gran,
                        new: meta.granularity,
                    });
                }
                // Go's merge uses the relaxed policy: upgrade.
                mode.max(meta.mode)
            }
        };
        self.state = Some((mode, meta.granularity));
        Ok(mode)
    }

    /// Write the meta-data file (unless `copy_meta` gives one to copy) and
    /// the counter file into `dir`.
    fn write(
        self,
        dir: &Path,
        copy_meta: Option<(&Path, [u8; 16])>,
        files: &mut Vec<PathBuf>,
    ) -> Result<(), Error> {
        let (mode, granularity) = self
            .state
            .unwrap_or((CounterMode::Set, Granularity::PerBlock));
        let hash = match copy_meta {
            Some((input, hash)) => {
                let name = input.file_name().map_or_else(
                    || format!("covmeta.{}", hex(&hash)).into(),
                    |n| n.to_owned(),
                );
                let path = dir.join(name);
                let bytes = std::fs::read(input).map_err(|e| Error::io(input, e))?;
                encode::write_atomic(&path, &bytes)?;
                files.push(path);
                hash
            }
            None => {
                let blobs: Vec<Vec<u8>> = self
                    .packages
                    .iter()
                    .map(|p| match &p.combined {
                        Some(pkg) => encode::encode_package(pkg),
                        None => p.blob.clone(),
                    })
                    .collect();
                let (bytes, hash) = encode::encode_selected_meta(&blobs, mode, granularity);
                let path = dir.join(format!("covmeta.{}", hex(&hash)));
                encode::write_atomic(&path, &bytes)?;
                files.push(path);
                hash
            }
        };
        let mut entries = Vec::new();
        for (pi, p) in self.packages.into_iter().enumerate() {
            let mut fids: Vec<(u32, Vec<u32>)> = p.counters.into_iter().collect();
            fids.sort_by_key(|(f, _)| *f);
            entries.extend(fids.into_iter().map(|(function, counters)| CounterEntry {
                package: pi as u32,
                function,
                counters,
            }));
        }
        let segment = Segment {
            args: self.args.finish().to_table(),
            entries,
        };
        let bytes = encode::encode_counters(hash, Flavor::Uleb128, &[segment]);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = dir.join(format!("covcounters.{}.0.{nanos}", hex(&hash)));
        encode::write_atomic(&path, &bytes)?;
        files.push(path);
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `encodemeta.HashFuncDesc`.
fn function_hash(pkg: &MetaPackage, f: &decode_meta::MetaFunction) -> [u8; 16] {
    let mut h = Fnv128a::new();
    h.write(pkg.function_name(f).as_bytes());
    h.write(pkg.function_file(f).as_bytes());
    for u in pkg.function_units(f) {
        for v in [
            u.start_line,
            u.start_col,
            u.end_line,
            u.end_col,
            u.statements,
        ] {
            h.write(&v.to_le_bytes());
        }
    }
    h.write(&u32::from(f.literal).to_le_bytes());
    h.sum()
}

/// Merge every group below `inputs` into `out_dir` (created if missing).
pub fn merge(
    inputs: &[PathBuf],
    out_dir: &Path,
    options: &MergeOptions,
) -> Result<MergeOutput, Error> {
    let scanned = scan::scan(inputs)?;
    if scanned.groups.is_empty() {
        return Err(Error::NoData {
            searched: inputs.to_vec(),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut result = MergeOutput {
        warnings: scanned.warnings,
        ..MergeOutput::default()
    };
    let mut out = Output::default();
    let mut values = Vec::new();
    for group in &scanned.groups {
        let bytes = std::fs::read(&group.meta).map_err(|e| Error::io(&group.meta, e))?;
        let meta = decode_meta::decode(&bytes).map_err(|c| Error::corrupt(&group.meta, c))?;
        let mode = out.set_mode(&group.meta, &meta)?;
        // This group's counters, merged over its counter files.
        let mut group_counters: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        for path in &group.counters {
            let buf = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let mut file = decode_counters::open(&buf).map_err(|c| Error::corrupt(path, c))?;
            out.args.add(std::mem::take(&mut file.args));
            while let Some(h) = file
                .next_function(&mut values)
                .map_err(|c| Error::corrupt(path, c))?
            {
                let dst = group_counters.entry((h.package, h.function)).or_default();
                if dst.len() < values.len() {
                    dst.resize(values.len(), 0);
                }
                let mut overflow = false;
                merge_into(dst, &values, mode, &mut overflow);
                if overflow {
                    result.warnings.push(Warning::CounterOverflow {
                        meta: group.meta.clone(),
                    });
                }
            }
        }
        let blobs = (!options.pcombine).then(|| decode_meta::package_blobs(&bytes, &meta));
        for (pi, pkg) in meta.packages.iter().enumerate() {
            if let Some(f) = &options.packages
                && !f.matches(&pkg.path)
            {
                continue;
            }
            let oi = match out.by_path.get(&pkg.path) {
                Some(&i) => i,
                None => {
                    out.by_path.insert(pkg.path.clone(), out.packages.len());
                    out.packages.push(OutPackage {
                        blob: blobs
                            .as_ref()
                            .and_then(|b| b.get(pi).cloned())
                            .unwrap_or_default(),
                        combined: options.pcombine.then(|| model::Package {
                            path: pkg.path.clone(),
                            name: pkg.name.clone(),
                            module_path: pkg.module_path.clone(),
                            functions: Vec::new(),
                        }),
                        by_hash: HashMap::new(),
                        counters: HashMap::new(),
                    });
                    out.packages.len() - 1
                }
            };
            let target = &mut out.packages[oi];
            for (fi, func) in pkg.functions.iter().enumerate() {
                let mut index = fi as u32;
                if let Some(combined) = &mut target.combined {
                    let hash = function_hash(pkg, func);
                    index = *target.by_hash.entry(hash).or_insert_with(|| {
                        combined.functions.push(model::Function {
                            name: pkg.function_name(func).to_string(),
                            file: pkg.function_file(func).to_string(),
                            literal: func.literal,
                            units: pkg
                                .function_units(func)
                                .iter()
                                .map(|u| model::Unit {
                                    start_line: u.start_line,
                                    start_col: u.start_col,
                                    end_line: u.end_line,
                                    end_col: u.end_col,
                                    statements: u.statements,
                                    count: 0,
                                })
                                .collect(),
                        });
                        combined.functions.len() as u32 - 1
                    });
                }
                let Some(counters) = group_counters.remove(&(pi as u32, fi as u32)) else {
                    continue;
                };
                match target.counters.get_mut(&index) {
                    Some(dst) => {
                        if dst.len() < counters.len() {
                            dst.resize(counters.len(), 0);
                        }
                        let mut overflow = false;
                        merge_into(dst, &counters, mode, &mut overflow);
                        if overflow {
                            result.warnings.push(Warning::CounterOverflow {
                                meta: group.meta.clone(),
                            });
                        }
                    }
                    None => {
                        target.counters.insert(index, counters);
                    }
                }
            }
        }
        for (package, function) in group_counters.into_keys() {
            if meta
                .packages
                .get(package as usize)
                .is_none_or(|p| function as usize >= p.functions.len())
            {
                result.warnings.push(Warning::UnknownFunction {
                    path: group.meta.clone(),
                    package,
                    function,
                });
            }
        }
        if !options.pcombine {
            let copy = options
                .packages
                .is_none()
                .then_some((group.meta.as_path(), meta.hash));
            std::mem::take(&mut out).write(out_dir, copy, &mut result.files)?;
        }
    }
    if options.pcombine {
        out.write(out_dir, None, &mut result.files)?;
    }
    Ok(result)
}

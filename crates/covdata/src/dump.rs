//! `go tool covdata debugdump`: every group, its counter files and every
//! function with its blocks and merged counts, in Go's words and order.
//!
//! Unlike the other reports this one is not made from the merged
//! [`crate::model::Profile`]: Go prints each group (meta-data file) on its
//! own, with the counts merged over that group's counter files only, and
//! marks which functions appear in any counter file (`-live` keeps those).
//! The layout follows `dstate` in Go's `cmd/covdata/dump.go`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use crate::decode_counters;
use crate::error::Error;
use crate::load::read_meta;
use crate::merge::counters::merge_into;
use crate::pkgpattern::PkgFilter;
use crate::scan;
use crate::warning::Warning;

/// Options of [`write`].
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// Go's `-pkg`.
    pub packages: Option<PkgFilter>,
    /// Go's `-live`: only functions some counter file mentions.
    pub live: bool,
    /// The command line shown in the header (Go shows its own argv).
    pub command_line: String,
}

/// Write the dump of every group below `inputs` to `out`; returns the
/// warnings (counters for functions the meta-data lacks, …).
///
/// Errors: as [`crate::load`], plus write errors as [`Error::Io`] on
/// `<stdout>`.
pub fn write(
    inputs: &[PathBuf],
    options: &DumpOptions,
    out: &mut dyn Write,
) -> Result<Vec<Warning>, Error> {
    let scanned = scan::scan(inputs)?;
    if scanned.groups.is_empty() {
        return Err(Error::NoData {
            searched: inputs.to_vec(),
        });
    }
    let mut warnings = scanned.warnings;
    let io = |e| Error::io("<stdout>", e);
    write!(
        out,
        "/* WARNING: the format of this dump is not stable and is\n * expected to change from one Go release to the next.\n *\n * produced by:\n *\t{}\n */\n",
        options.command_line
    )
    .map_err(io)?;
    let (mut total, mut covered) = (0u64, 0u64);
    let mut buf = Vec::new();
    let mut values = Vec::new();
    for group in &scanned.groups {
        let meta = read_meta(&group.meta)?;
        writeln!(out, "Cover mode: {}", meta.mode.as_str()).map_err(io)?;
        writeln!(out, "Cover granularity: {}", meta.granularity.as_str()).map_err(io)?;
        // (package, function) -> counters merged over this group's files;
        // presence is what `-live` asks about.
        let mut merged: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        for path in &group.counters {
            buf.clear();
            buf.extend_from_slice(&std::fs::read(path).map_err(|e| Error::io(path, e))?);
            let mut file = decode_counters::open(&buf).map_err(|c| Error::corrupt(path, c))?;
            // Everything below but the counts comes from a pod: escaped
            // (what a real program records never needs it).
            let shown = hostile_text::escape;
            write!(out, "data file {}", shown(&path.to_string_lossy())).map_err(io)?;
            if !file.args.goos.is_empty() {
                write!(out, " GOOS={}", shown(&file.args.goos)).map_err(io)?;
            }
            if !file.args.goarch.is_empty() {
                write!(out, " GOARCH={}", shown(&file.args.goarch)).map_err(io)?;
            }
            if !file.args.os_args.is_empty() {
                let args: Vec<_> = file.args.os_args.iter().map(|a| shown(a)).collect();
                writeln!(out, "  program args: [{}]", args.join(" ")).map_err(io)?;
            }
            writeln!(out).map_err(io)?;
            while let Some(h) = file
                .next_function(&mut values)
                .map_err(|c| Error::corrupt(path, c))?
            {
                // Go checks the package and function against the meta-data
                // (with an off-by-one that lets function == count through;
                // such a function is never printed either way).
                let known = meta
                    .packages
                    .get(h.package as usize)
                    .is_some_and(|p| h.function as usize <= p.functions.len());
                if !known {
                    warnings.push(Warning::UnknownFunction {
                        path: path.clone(),
                        package: h.package,
                        function: h.function,
                    });
                    continue;
                }
                let dst = merged.entry((h.package, h.function)).or_default();
                if dst.len() < values.len() {
                    dst.resize(values.len(), 0);
                }
                let mut overflow = false;
                merge_into(dst, &values, meta.mode, &mut overflow);
                if overflow {
                    warnings.push(Warning::CounterOverflow {
                        meta: group.meta.clone(),
                    });
                }
            }
        }
        for (pi, pkg) in meta.packages.iter().enumerate() {
            if let Some(f) = &options.packages
                && !f.matches(&pkg.path)
            {
                continue;
            }
            let mut preamble = false;
            for (fi, func) in pkg.functions.iter().enumerate() {
                let counters = merged.get(&(pi as u32, fi as u32));
                let show = counters.is_some() || !options.live;
                if show {
                    if !preamble {
                        write!(
                            out,
                            "\nPackage path: {}\nPackage name: {}\nModule path: {}\n",
                            hostile_text::escape(&pkg.path),
                            hostile_text::escape(&pkg.name),
                            hostile_text::escape(&pkg.module_path)
                        )
                        .map_err(io)?;
                        preamble = true;
                    }
                    write!(
                        out,
                        "\nFunc: {}\nSrcfile: {}\nLiteral: {}\n",
                        hostile_text::escape(pkg.function_name(func)),
                        hostile_text::escape(pkg.function_file(func)),
                        func.literal
                    )
                    .map_err(io)?;
                }
                for (i, u) in pkg.function_units(func).iter().enumerate() {
                    let count = counters.and_then(|c| c.get(i)).copied().unwrap_or(0);
                    if show {
                        // Decoded units never carry a parent, so Go always
                        // takes its `NS=` branch.
                        writeln!(
                            out,
                            "{i}: L{}:C{} -- L{}:C{} NS={} = {count}",
                            u.start_line, u.start_col, u.end_line, u.end_col, u.statements
                        )
                        .map_err(io)?;
                    }
                    total += u64::from(u.statements);
                    if count != 0 {
                        covered += u64::from(u.statements);
                    }
                }
            }
        }
    }
    writeln!(out, "totalStmts: {total} coveredStmts: {covered}").map_err(io)?;
    Ok(warnings)
}

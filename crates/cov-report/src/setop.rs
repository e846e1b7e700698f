//! `cov-report subtract -o DIR BASE OTHER` and `cov-report intersect -o DIR
//! A B [C…]`: Go-format coverage folders, as `go tool covdata
//! subtract`/`intersect` write them (see `covdata::setops`).

use std::path::PathBuf;

use anyhow::Result;
use covdata::setops::{self, SetOp};

use crate::usage::Usage;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder to write the result into (created if missing); required.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Input folders in order (searched recursively).
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Input folders, comma separated (as `go tool covdata -i`).
    #[arg(
        short = 'i',
        long = "input",
        value_name = "DIRS",
        value_delimiter = ','
    )]
    pub input: Vec<PathBuf>,
    /// Only packages whose import path matches (as Go's -pkg); each
    /// binary's meta-data file then holds only those.
    #[arg(long = "pkg", value_name = "PATTERNS")]
    pub pkg: Vec<String>,
}

pub fn run(op: SetOp, args: &Args) -> Result<()> {
    let dirs: Vec<PathBuf> = args.dirs.iter().chain(&args.input).cloned().collect();
    // Go's checks, in Go's order and words.
    if dirs.is_empty() {
        return Usage::err(format!(
            "select input directories with '-i' option: {} needs its input folders (-i=DIR1,DIR2)",
            op.name()
        ));
    }
    if op == SetOp::Subtract && dirs.len() != 2 {
        return Usage::err(format!(
            "supply exactly two input dirs for subtract operation: got {}; subtract takes the data, then what to take away",
            dirs.len()
        ));
    }
    let Some(output) = args.output.as_ref().filter(|p| !p.as_os_str().is_empty()) else {
        return Usage::err(format!(
            "select output directory with '-o' option: {} writes Go-format files into -o=DIR",
            op.name()
        ));
    };
    let filter = covdata::PkgFilter::from_values(&args.pkg);
    // The library's errors name the file; no prefix, so the first line
    // reads as Go's does.
    let out = setops::run_with(op, &dirs, output, filter.as_ref())?;
    if out.unknown_functions > 0 {
        tracing::warn!(
            count = out.unknown_functions,
            "counters for functions missing from their meta-data file were left out"
        );
    }
    for f in &out.files {
        tracing::info!(path = %f.display(), "wrote");
    }
    Ok(())
}

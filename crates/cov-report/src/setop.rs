//! `cov-report subtract -o DIR BASE OTHER` and `cov-report intersect -o DIR
//! A B [C…]`: Go-format coverage folders, as `go tool covdata
//! subtract`/`intersect` write them (see `covdata::setops`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use covdata::setops::{self, SetOp};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder to write the result into (created if missing).
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output: PathBuf,
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
}

pub fn run(op: SetOp, args: &Args) -> Result<()> {
    let dirs: Vec<PathBuf> = args.dirs.iter().chain(&args.input).cloned().collect();
    let out = setops::run(op, &dirs, &args.output)
        .with_context(|| format!("cov-report {}", op.name()))?;
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

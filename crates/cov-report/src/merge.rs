//! `cov-report merge -o DIR`: merge the inputs into Go-format `covmeta.*` +
//! `covcounters.*` files laid out as `go tool covdata merge` lays them out
//! (one pair per binary; one pair in all with `--pcombine`), which
//! `go tool covdata` reports exactly as it reports the inputs.

use std::path::PathBuf;

use anyhow::Result;
use covdata::gomerge::MergeOptions;

use crate::inputs::Inputs;
use crate::usage::Usage;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder to write the merged files into (created if missing); required.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Combine different binaries into one meta-data file (as Go's
    /// -pcombine); otherwise each binary keeps its own.
    #[arg(long)]
    pub pcombine: bool,
    #[command(flatten)]
    pub inputs: Inputs,
}

pub fn run(args: &Args) -> Result<()> {
    let Some(output) = args.output.as_ref().filter(|p| !p.as_os_str().is_empty()) else {
        return Usage::err(
            "select output directory with '-o' option: merge writes Go-format files into -o=DIR",
        );
    };
    let options = MergeOptions {
        packages: covdata::PkgFilter::from_values(&args.inputs.pkg),
        pcombine: args.pcombine,
    };
    // The library's errors name the file; no prefix, so the first line
    // reads as Go's does.
    let merged = covdata::gomerge::merge(&args.inputs.folders(), output, &options)?;
    crate::inputs::report_warnings(&merged.warnings)?;
    for f in &merged.files {
        tracing::info!(path = %f.display(), "wrote");
    }
    Ok(())
}

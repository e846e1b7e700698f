//! `cov-report merge -o DIR`: merge every input into one Go-format
//! `covmeta.*` + `covcounters.*` pair that `go tool covdata` reads and
//! reports exactly as it reports the inputs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use covdata::ModeClash;
use covdata::encode::EncodeOptions;

use crate::inputs::Inputs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder to write the merged files into (created if missing).
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output: PathBuf,
    #[command(flatten)]
    pub inputs: Inputs,
}

pub fn run(args: &Args) -> Result<()> {
    // Like Go's merge, mixed modes are accepted.
    let loaded = args.inputs.load(ModeClash::Upgrade)?;
    let options = EncodeOptions {
        args: loaded.args.clone(),
        ..EncodeOptions::default()
    };
    let written = covdata::encode::write_dir_with(&loaded.profile, &args.output, &options)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("writing merged data to {}", args.output.display()))?;
    tracing::info!(meta = %written.meta.display(), counters = %written.counters.display(), "merged");
    Ok(())
}

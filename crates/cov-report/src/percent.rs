//! `cov-report percent`: percent of statements covered per package; with
//! `-o FILE` also the text profile, as Go's `percent -o` writes it.

use std::path::PathBuf;

use anyhow::Result;
use covdata::ModeClash;

use crate::inputs::Inputs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also write the text profile `go tool cover` reads (as Go's -o).
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: Inputs,
}

pub fn run(args: &Args) -> Result<()> {
    // Go's percent accepts mixed counter modes, even with -o.
    let loaded = args.inputs.load(ModeClash::Upgrade)?;
    let started = std::time::Instant::now();
    crate::output::stdout(|w| covdata::format::percent::write(&loaded.profile, w))?;
    if let Some(path) = &args.output {
        crate::output::file(path, |w| {
            covdata::format::textfmt::write(&loaded.profile, w)
        })?;
    }
    crate::inputs::log_stage_times(&loaded.timings, started.elapsed());
    // The process ends next: freeing the profile's ~100k allocations one
    // by one would cost about 4% of the run (callgrind, bench data set).
    std::mem::forget(loaded);
    Ok(())
}

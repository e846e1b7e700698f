//! `cov-report textfmt -o FILE`: the legacy text profile (`mode: …` then
//! one line per block) that `go tool cover -html/-func` reads.

use std::path::PathBuf;

use anyhow::Result;
use covdata::ModeClash;

use crate::inputs::Inputs;
use crate::usage::Usage;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The text profile to write (a regular file is replaced atomically;
    /// devices and pipes are written through); required.
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: Inputs,
}

pub fn run(args: &Args) -> Result<()> {
    let Some(output) = args.output.as_ref().filter(|p| !p.as_os_str().is_empty()) else {
        return Usage::err(
            "select output file name with '-o' option: textfmt writes a text profile to -o=FILE",
        );
    };
    // A text profile has a single mode line: Go refuses mixed modes here.
    let loaded = args.inputs.load(ModeClash::Refuse)?;
    let started = std::time::Instant::now();
    crate::output::file(output, |w| {
        covdata::format::textfmt::write(&loaded.profile, w)
    })?;
    crate::inputs::log_stage_times(&loaded.timings, started.elapsed());
    // The process ends next: freeing the profile's ~100k allocations one
    // by one would cost about 4% of the run (callgrind, bench data set).
    std::mem::forget(loaded);
    Ok(())
}

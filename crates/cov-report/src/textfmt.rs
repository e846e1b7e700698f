//! `cov-report textfmt -o FILE`: the legacy text profile (`mode: …` then
//! one line per block) that `go tool cover -html/-func` reads.

use std::path::PathBuf;

use anyhow::Result;
use covdata::ModeClash;

use crate::inputs::Inputs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The text profile to write (replaced atomically).
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub inputs: Inputs,
}

pub fn run(args: &Args) -> Result<()> {
    // A text profile has a single mode line: Go refuses mixed modes here.
    let loaded = args.inputs.load(ModeClash::Refuse)?;
    crate::output::file(&args.output, |w| {
        covdata::format::textfmt::write(&loaded.profile, w)
    })
}

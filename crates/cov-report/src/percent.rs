//! `cov-report percent`: percent of statements covered per package.

use anyhow::Result;
use covdata::ModeClash;

use crate::inputs::Inputs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub inputs: Inputs,
}

pub fn run(args: &Args) -> Result<()> {
    // Go's percent accepts mixed counter modes.
    let loaded = args.inputs.load(ModeClash::Upgrade)?;
    crate::output::stdout(|w| covdata::format::percent::write(&loaded.profile, w))
}

//! `cov-report func`: coverage per function, then the total.

use anyhow::Result;
use covdata::ModeClash;

use crate::inputs::Inputs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub inputs: Inputs,
}

pub fn run(args: &Args) -> Result<()> {
    let loaded = args.inputs.load(ModeClash::Upgrade)?;
    crate::output::stdout(|w| covdata::format::func::write(&loaded.profile, w))
}

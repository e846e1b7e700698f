//! `cov-report pkglist`: the import paths of the covered packages.

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
    crate::output::stdout(|w| covdata::format::pkglist::write(&loaded.profile, w))
}

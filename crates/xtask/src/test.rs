//! `cargo xtask test`: everything CI checks, in one command.

use anyhow::Result;
use std::process::Command;

use crate::tools::run;

pub fn run_all() -> Result<()> {
    crate::tools::install()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = toolchain::workspace_root();
    let step = |args: &[&str]| -> Result<()> {
        println!("xtask test: cargo {}", args.join(" "));
        run(
            Command::new(&cargo).args(args).current_dir(&root),
            &format!("cargo {}", args.join(" ")),
        )
    };
    step(&["fmt", "--all", "--check"])?;
    step(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // Binaries first: end-to-end tests run the tools as a user would.
    step(&["build", "--workspace", "--bins"])?;
    step(&["test", "--workspace"])?;
    Ok(())
}

//! `cargo xtask check-macos`: type-check the three host tools for macOS, where
//! Skaffold's host hooks also run.
//!
//! There is no Apple SDK on Linux, so the C code in `ring` (TLS) cannot be
//! compiled for macOS here. `cargo check` never links, so a stand-in C compiler
//! that writes empty objects lets every line of Rust (ours and the
//! dependencies') be checked against macOS's standard library and `cfg`s.

use anyhow::{Context, Result};
use std::process::Command;

use crate::tools::{run, set_executable};

const TARGET: &str = "aarch64-apple-darwin";
const TOOLS: [&str; 3] = ["cov-signal", "cov-collect", "cov-report"];

/// Answers cc-rs's compiler probes as clang does and writes empty objects.
const STAND_IN_CC: &str = r#"#!/bin/sh
for a in "$@"; do
  case "$a" in -E) echo '"clang"'; exit 0;; "-?") exit 1;; esac
done
out=""
while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift;; esac; shift; done
[ -n "$out" ] && : > "$out"
exit 0
"#;

pub fn run_check() -> Result<()> {
    let root = toolchain::workspace_root();
    run(
        Command::new("rustup").args(["target", "add", TARGET]),
        &format!("rustup target add {TARGET}"),
    )?;
    let dir = root.join("target/xtask-macos");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cc = dir.join("cc");
    std::fs::write(&cc, STAND_IN_CC).with_context(|| format!("writing {}", cc.display()))?;
    set_executable(&cc)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["check", "--target", TARGET];
    for t in TOOLS {
        args.extend(["-p", t]);
    }
    println!("xtask check-macos: cargo {}", args.join(" "));
    run(
        Command::new(cargo)
            .args(&args)
            .current_dir(&root)
            .env("CC_aarch64_apple_darwin", &cc)
            .env("AR_aarch64_apple_darwin", "ar"),
        &format!("cargo {}", args.join(" ")),
    )?;
    println!(
        "xtask check-macos: {} type-check for {TARGET}",
        TOOLS.join(", ")
    );
    Ok(())
}

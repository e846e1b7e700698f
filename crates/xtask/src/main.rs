//! `cargo xtask …`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `tools`: install Go and kubectl into `.tools/` (idempotent).
//! - `test`: install tools, then run every test (what CI runs).
//! - `demo`: the whole Skaffold coverage flow on localkube.
//! - `bench report|collect`: benchmarks against Go's and kubectl's own way.
//! - `check-macos`: type-check the host tools for macOS.

mod bench;
mod demo;
mod macos;
mod test;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the Go toolchain and kubectl 1.35 into `.tools/` (quick when already there).
    Tools,
    /// Install tools, then run fmt, clippy and every test (what CI runs).
    Test,
    /// The whole Skaffold coverage flow of the example on localkube, in under a minute.
    Demo(demo::Options),
    /// Benchmarks against the tools this project replaces.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Type-check cov-signal, cov-collect and cov-report for macOS (aarch64-apple-darwin).
    CheckMacos,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// cov-report against `go tool covdata` (percent, textfmt; 200 and 2000 runs).
    Report(bench::report::Args),
    /// cov-signal + cov-collect against the tutorial's kubectl script (1, 10, 50 pods on localkube).
    #[cfg(target_os = "linux")]
    Collect(bench::collect::Args),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Tools => tools::install(),
        Command::Test => test::run_all(),
        Command::Demo(opts) => demo::run(opts),
        Command::CheckMacos => macos::run_check(),
        Command::Bench(BenchCommand::Report(a)) => bench::report::run(&a),
        #[cfg(target_os = "linux")]
        Command::Bench(BenchCommand::Collect(a)) => bench::collect::run(&a),
    }
}

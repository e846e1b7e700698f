//! `cov-report`: read Go's binary coverage data (`covmeta.*`/`covcounters.*`,
//! as written by binaries built with `go build -cover`) without a Go
//! toolchain, and print what `go tool covdata` prints.
//!
//! ```text
//! cov-report                         # percent of reports/coverage, searched recursively
//! cov-report func dir1 dir2          # per-function coverage
//! cov-report textfmt -o cover.out    # legacy text profile for `go tool cover`
//! cov-report pkglist -i a,b          # import paths
//! cov-report merge -o merged/        # Go-format covmeta+covcounters files
//! cov-report percent -i=a,b -pkg=example.com/...   # Go's own syntax works too
//! ```
//!
//! Every `go tool covdata` subcommand takes Go's flags in Go's syntax
//! (see `goflags`, which normalises argv before clap).
//!
//! Exit codes: 0 ok, 1 the work failed (e.g. an output could not be
//! written), 2 bad usage or input (no data, corrupt data, mode clash).
//! Each subcommand lives in its own module; this file is only wiring.

mod debugdump;
mod diff;
mod func;
mod goflags;
mod inputs;
mod merge;
mod output;
mod percent;
mod pkglist;
mod report;
mod setop;
mod textfmt;
mod usage;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cov-report",
    version,
    about = "Report Go coverage data (GOCOVERDIR files) like `go tool covdata`, without Go",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Inputs of the default subcommand (`percent`).
    #[command(flatten)]
    inputs: inputs::Inputs,
    /// Report files and the coverage gate of the default subcommand.
    #[command(flatten)]
    report: report::ReportArgs,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Percent of statements covered, per package (the default).
    Percent(percent::Args),
    /// Coverage per function, and the total.
    Func(func::Args),
    /// Write the text profile `go tool cover` reads.
    Textfmt(textfmt::Args),
    /// List the import paths of the covered packages.
    Pkglist(pkglist::Args),
    /// Merge all inputs into one Go-format meta-data + counter file pair.
    Merge(merge::Args),
    /// Percent, plus report files (--format) and the coverage gate (--fail-under).
    Report(report::Args),
    /// Packages and functions whose coverage changed between two runs.
    Diff(diff::Args),
    /// Write coverage of the first folder not covered by the second (Go format).
    Subtract(setop::Args),
    /// Write coverage present in every folder (Go format).
    Intersect(setop::Args),
    /// Dump every meta-data and counter file, as Go's debugdump does.
    Debugdump(debugdump::Args),
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let normalised = match goflags::normalise(argv, &Cli::command()) {
        Ok(n) => n,
        Err(e) => {
            // Go's first line as is (Go's flag errors carry no "error: ").
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(&normalised.argv);
    let go = &normalised.go_only;
    let go_level = go.verbosity.map_or(0, |v| v.clamp(0, 2) as u8);
    init_logging(cli.verbose.max(go_level));
    inputs::FATAL_WARNINGS.store(go.fatal_warnings, std::sync::atomic::Ordering::Relaxed);
    for (flag, value) in &go.profiling {
        tracing::warn!(
            "-{flag}={value} accepted for compatibility with go tool covdata, but cov-report writes no Go profiles"
        );
    }
    let result = match cli.command {
        None => report::run_with(&cli.inputs, &cli.report),
        Some(Command::Percent(a)) => percent::run(&a),
        Some(Command::Func(a)) => func::run(&a),
        Some(Command::Textfmt(a)) => textfmt::run(&a),
        Some(Command::Pkglist(a)) => pkglist::run(&a),
        Some(Command::Merge(a)) => merge::run(&a),
        Some(Command::Report(a)) => report::run(&a),
        Some(Command::Diff(a)) => diff::run(&a),
        Some(Command::Subtract(a)) => setop::run(covdata::setops::SetOp::Subtract, &a),
        Some(Command::Intersect(a)) => setop::run(covdata::setops::SetOp::Intersect, &a),
        Some(Command::Debugdump(a)) => debugdump::run(&a, debugdump_command_line(&normalised)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// What Go's debugdump header shows: argv[0], the subcommand, then the
/// arguments as given.
fn debugdump_command_line(n: &goflags::Normalised) -> String {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    std::iter::once(argv0)
        .chain(std::iter::once("debugdump".into()))
        .chain(n.original.iter().cloned())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Bad usage or input (the library's errors: no data, corrupt files,
/// clashes) is 2; anything else (writing outputs) is a failed job, 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| {
        c.downcast_ref::<covdata::Error>().is_some() || c.downcast_ref::<usage::Usage>().is_some()
    }) {
        2
    } else {
        1
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // Warnings name files from (pod-supplied) coverage data: escaped.
    tracing_subscriber::fmt()
        .fmt_fields(hostile_text::escaped_fields())
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

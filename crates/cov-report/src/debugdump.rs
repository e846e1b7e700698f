//! `cov-report debugdump`: Go's `go tool covdata debugdump`, byte for byte
//! (see `covdata::dump`).

use std::io::Write;

use anyhow::Result;

use crate::inputs::Inputs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only functions that some counter file mentions (as Go's -live).
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub inputs: Inputs,
}

/// `command_line` is shown in the dump's header, as Go shows its argv.
pub fn run(args: &Args, command_line: String) -> Result<()> {
    let options = covdata::dump::DumpOptions {
        packages: covdata::PkgFilter::from_values(&args.inputs.pkg),
        live: args.live,
        command_line,
    };
    let folders = args.inputs.folders();
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let written = covdata::dump::write(&folders, &options, &mut w).and_then(|warnings| {
        w.flush()
            .map(|()| warnings)
            .map_err(|e| covdata::Error::Io {
                path: "<stdout>".into(),
                source: e,
            })
    });
    match written {
        Ok(warnings) => crate::inputs::report_warnings(&warnings),
        // `| head` closed the pipe: not an error.
        Err(covdata::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

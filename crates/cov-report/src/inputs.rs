//! The input options every subcommand shares, and loading them.

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use covdata::{Coverage, LoadOptions, Loaded, ModeClash, PkgFilter, Warning};

/// Go's `-hw` ("panic on warnings"): set once by `main`, makes the first
/// warning an error.
pub static FATAL_WARNINGS: AtomicBool = AtomicBool::new(false);

/// Log `warnings` on stderr; with `-hw`, fail on the first.
pub fn report_warnings(warnings: &[Warning]) -> Result<()> {
    for w in warnings {
        if FATAL_WARNINGS.load(Ordering::Relaxed) {
            return crate::usage::Usage::err(format!("warning made fatal by -hw: {w}"));
        }
        tracing::warn!("{w}");
    }
    Ok(())
}

/// Where the coverage data is and which packages to report.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Inputs {
    /// Folders with Go coverage data, searched recursively
    /// [default: reports/coverage, under SKAFFOLD_WORK_DIR when set].
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Input folders, comma separated (as `go tool covdata -i`).
    #[arg(
        short = 'i',
        long = "input",
        value_name = "DIRS",
        value_delimiter = ','
    )]
    pub input: Vec<PathBuf>,
    /// Only packages whose import path matches (comma separated; `...`
    /// matches anything, `net/...` includes `net`; as `go tool covdata -pkg`).
    #[arg(long = "pkg", value_name = "PATTERNS")]
    pub pkg: Vec<String>,
}

/// The default input folder, where cov-collect puts the data.
pub const DEFAULT_DIR: &str = "reports/coverage";

/// A relative `path` under `SKAFFOLD_WORK_DIR` when Skaffold sets it (as
/// cov-collect places its `--out`), else as given.
pub fn in_work_dir(path: &Path) -> PathBuf {
    match std::env::var_os("SKAFFOLD_WORK_DIR") {
        Some(w) if path.is_relative() && !w.is_empty() => PathBuf::from(w).join(path),
        _ => path.to_path_buf(),
    }
}

impl Inputs {
    pub fn folders(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .dirs
            .iter()
            .chain(&self.input)
            .filter(|p| !p.as_os_str().is_empty())
            .cloned()
            .collect();
        if v.is_empty() {
            v.push(in_work_dir(Path::new(DEFAULT_DIR)));
        }
        v
    }

    /// Load and merge, logging warnings on stderr.
    pub fn load(&self, mode_clash: ModeClash) -> Result<Loaded<Coverage>> {
        let folders = self.folders();
        let options = LoadOptions {
            packages: PkgFilter::from_values(&self.pkg),
            mode_clash,
            threads: None,
        };
        let loaded = covdata::load_lazily(&folders, &options)?;
        report_warnings(&loaded.warnings)?;
        tracing::info!(
            groups = loaded.groups.len(),
            counter_files = loaded
                .groups
                .iter()
                .map(|g| g.counters.len())
                .sum::<usize>(),
            "read coverage data"
        );
        if options.packages.is_some() && loaded.profile.is_empty() {
            tracing::warn!("no package matched --pkg {}", self.pkg.join(","));
        }
        Ok(loaded)
    }
}

/// Log where the time went (`-v`; `cargo xtask bench report` prints it).
pub fn log_stage_times(t: &covdata::Timings, formatting: std::time::Duration) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    tracing::info!(
        "stage times (ms): listing {:.1}, meta read {:.1}, meta decode {:.1}, counters read {:.1} + decode/merge {:.1} (summed over threads; {:.1} elapsed), profile {:.1}, formatting {:.1}",
        ms(t.listing),
        ms(t.meta_read),
        ms(t.meta_decode),
        ms(t.counters_read),
        ms(t.counters_merge),
        ms(t.counters_wall),
        ms(t.profile),
        ms(formatting),
    );
}

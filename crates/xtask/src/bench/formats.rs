//! `cargo xtask bench report`, "all formats": the time `cov-report` takes to
//! print `percent` *and* write every report format (html, lcov, cobertura,
//! json, markdown, textfmt) against `cov-report percent` alone, on the same
//! coverage folder. Target (issue 6): less than twice `percent`.
//!
//! Runs alternate between the two commands and each side reports the median
//! of `runs` runs, so background load hits both alike. HTML includes the
//! standard-library sources when `goroot` is given, its heaviest case.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Medians of the two sides.
#[derive(Debug, Clone, Copy)]
pub struct FormatsTiming {
    pub percent: Duration,
    pub all_formats: Duration,
}

impl FormatsTiming {
    pub fn ratio(&self) -> f64 {
        self.all_formats.as_secs_f64() / self.percent.as_secs_f64().max(1e-9)
    }
}

const FORMATS: &str = "html,lcov,cobertura,json,markdown,textfmt";

fn timed(cmd: &mut Command, what: &str) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("starting {what}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The reports folder, removed when the benchmark ends.
struct OutDir(std::path::PathBuf);

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Times both sides `runs` times (at least 5), alternating, and prints them.
pub fn run(
    cov_report: &Path,
    covdir: &Path,
    source_root: &Path,
    goroot: Option<&Path>,
    runs: usize,
) -> Result<FormatsTiming> {
    let runs = runs.max(5);
    let out = OutDir(
        std::env::temp_dir().join(format!("cov-report-bench-formats-{}", std::process::id())),
    );
    let all = || {
        let mut c = Command::new(cov_report);
        c.arg("--format")
            .arg(FORMATS)
            .arg("-o")
            .arg(out.0.as_path())
            .arg("--source-root")
            .arg(source_root);
        if let Some(g) = goroot {
            c.arg("--goroot").arg(g);
        }
        c.arg(covdir);
        c
    };
    // Warm the page cache for both, and check the reports are complete.
    timed(&mut all(), "cov-report --format (warm-up)")?;
    for name in [
        "coverage.html",
        "lcov.info",
        "cobertura.xml",
        "coverage.json",
        "coverage.md",
        "coverage.txt",
    ] {
        let len = std::fs::metadata(out.0.as_path().join(name))
            .map(|m| m.len())
            .with_context(|| format!("cov-report wrote no {name}"))?;
        if len == 0 {
            bail!("cov-report wrote an empty {name}");
        }
    }
    let mut percent = Vec::with_capacity(runs);
    let mut formats = Vec::with_capacity(runs);
    for _ in 0..runs {
        percent.push(timed(
            Command::new(cov_report).arg("percent").arg(covdir),
            "cov-report percent",
        )?);
        formats.push(timed(&mut all(), "cov-report --format")?);
    }
    let t = FormatsTiming {
        percent: median(percent),
        all_formats: median(formats),
    };
    let sizes: u64 = std::fs::read_dir(out.0.as_path())
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "all formats ({FORMATS}, {:.1} MB written): median {:.3} s; cov-report percent: median {:.3} s; ratio {:.2} (target < 2)",
        sizes as f64 / 1e6,
        t.all_formats.as_secs_f64(),
        t.percent.as_secs_f64(),
        t.ratio()
    );
    Ok(t)
}

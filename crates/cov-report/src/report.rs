//! Report files and the coverage gate: `--format` (html, lcov, cobertura,
//! json, markdown, textfmt) into `--out-dir`, then `--fail-under` /
//! `--fail-under-pkg`. Reports are written before the gate is checked, so a
//! failing build still has them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use covdata::model::Profile;
use covdata::{ModeClash, PkgFilter};
use covformats::{Format, Options, Report, SourceMap};

use crate::inputs::Inputs;

/// An output of `--format`: a covformats format, or Go's text profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    Rich(Format),
    Textfmt,
}

fn parse_format(s: &str) -> Result<OutFormat, String> {
    if s == "textfmt" {
        return Ok(OutFormat::Textfmt);
    }
    Format::from_name(s).map(OutFormat::Rich).ok_or_else(|| {
        format!("unknown format {s:?}: choose html, lcov, cobertura, json, markdown or textfmt")
    })
}

/// `PATTERN=PERCENT` of `--fail-under-pkg`.
#[derive(Debug, Clone)]
pub struct PkgGate {
    pub pattern: String,
    pub filter: PkgFilter,
    pub percent: f64,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage (e.g. 80 or 72.5)"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not between 0 and 100"))
    }
}

fn parse_pkg_gate(s: &str) -> Result<PkgGate, String> {
    let (pattern, pct) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?} is not PATTERN=PERCENT (e.g. example.com/app/...=80)"))?;
    if pattern.is_empty() {
        return Err(format!("{s:?} has an empty package pattern"));
    }
    Ok(PkgGate {
        pattern: pattern.to_string(),
        filter: PkgFilter::parse(pattern),
        percent: parse_percent(pct)?,
    })
}

/// The report and gate flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReportArgs {
    /// Write a report in this format (repeatable or comma separated):
    /// html, lcov, cobertura, json, markdown, textfmt.
    #[arg(long = "format", value_name = "FORMAT", value_delimiter = ',', value_parser = parse_format)]
    pub formats: Vec<OutFormat>,
    /// Folder for the --format files (coverage.html, lcov.info,
    /// cobertura.xml, coverage.json, coverage.md, coverage.txt); relative to
    /// SKAFFOLD_WORK_DIR when set.
    #[arg(
        short = 'o',
        long = "out-dir",
        value_name = "DIR",
        default_value = "reports"
    )]
    pub out_dir: PathBuf,
    /// Where the Go sources are: go.mod files below it map import paths to
    /// files [default: $SKAFFOLD_WORK_DIR, else the current folder].
    #[arg(long, value_name = "DIR")]
    pub source_root: Option<PathBuf>,
    /// GOROOT, for standard-library sources [default: $GOROOT, else the
    /// installation of the `go` on PATH, if any].
    #[arg(long, value_name = "DIR")]
    pub goroot: Option<PathBuf>,
    /// Exit 1 when total statement coverage is below PERCENT.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub fail_under: Option<f64>,
    /// Exit 1 when a package matching PATTERN (as --pkg) is below PERCENT;
    /// repeatable.
    #[arg(long = "fail-under-pkg", value_name = "PATTERN=PERCENT", value_parser = parse_pkg_gate)]
    pub fail_under_pkg: Vec<PkgGate>,
}

/// The gate failed; the message lists every shortfall.
#[derive(Debug, thiserror::Error)]
#[error("coverage gate failed:\n{}", .0.join("\n"))]
pub struct GateFailed(pub Vec<String>);

/// `percent` plus report files and the gate.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub inputs: Inputs,
    #[command(flatten)]
    pub report: ReportArgs,
}

pub fn run(args: &Args) -> Result<()> {
    run_with(&args.inputs, &args.report)
}

/// Prints `percent`, writes the asked formats, then checks the gate.
pub fn run_with(inputs: &Inputs, report: &ReportArgs) -> Result<()> {
    let textfmt = report.formats.contains(&OutFormat::Textfmt);
    // A text profile has one mode line; Go's textfmt refuses mixed modes.
    let clash = if textfmt {
        ModeClash::Refuse
    } else {
        ModeClash::Upgrade
    };
    let coverage = inputs.load(clash)?.profile;
    let dir = crate::inputs::in_work_dir(&report.out_dir);
    if !report.formats.is_empty() {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating --out-dir {}", dir.display()))?;
    }
    std::thread::scope(|s| {
        // The text profile needs neither sources nor the whole profile in
        // memory: it is written from the loaded data on another thread
        // while this one builds what the other formats share.
        let text = textfmt.then(|| {
            spawn_elsewhere::spawn(s, || -> Result<PathBuf> {
                let path = dir.join("coverage.txt");
                crate::output::file(&path, |w| covdata::format::textfmt::write(&coverage, w))?;
                Ok(path)
            })
        });
        let profile = coverage.as_profile()?;
        crate::output::stdout(|w| covdata::format::percent::write(&*profile, w))?;
        let rich = write_rich(&profile, report, &dir);
        let text = text.map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        let mut written = rich?;
        written.extend(text.transpose()?);
        for p in &written {
            tracing::info!(path = %p.display(), "wrote report");
        }
        check_gate(&profile, report)
    })
}

/// Writes the `--format`s other than textfmt into `dir`; returns the paths
/// written.
fn write_rich(profile: &Profile, args: &ReportArgs, dir: &Path) -> Result<Vec<PathBuf>> {
    let rich: Vec<Format> = args
        .formats
        .iter()
        .filter_map(|f| match f {
            OutFormat::Rich(f) => Some(*f),
            OutFormat::Textfmt => None,
        })
        .collect();
    if rich.is_empty() {
        return Ok(Vec::new());
    }
    let root = match &args.source_root {
        Some(r) => r.clone(),
        None => std::env::var_os("SKAFFOLD_WORK_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .map_or_else(std::env::current_dir, Ok)
            .context("finding the current folder for --source-root")?,
    };
    let goroot = args.goroot.clone().or_else(covformats::find_goroot);
    let sources = SourceMap::discover(&root, goroot);
    let report = Report::new(profile, &sources);
    let options = Options {
        source_root: Some(root),
        ..Options::default()
    };
    Ok(covformats::write_files(&report, &rich, &options, dir)?)
}

/// Every shortfall of the gate, as lines for the error message.
pub fn shortfalls(profile: &Profile, args: &ReportArgs) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(min) = args.fail_under {
        let total = profile.statements();
        if total.percent() < min {
            out.push(format!(
                "  total: {:.1}% of statements is under --fail-under {min}%",
                total.percent()
            ));
        }
    }
    for gate in &args.fail_under_pkg {
        let mut matched = false;
        for pkg in profile
            .packages
            .iter()
            .filter(|p| gate.filter.matches(&p.path))
        {
            matched = true;
            let s = pkg.statements();
            if s.percent() < gate.percent {
                out.push(format!(
                    "  {}: {:.1}% of statements is under {}% (--fail-under-pkg {}={})",
                    pkg.path,
                    s.percent(),
                    gate.percent,
                    gate.pattern,
                    gate.percent
                ));
            }
        }
        if !matched {
            out.push(format!(
                "  --fail-under-pkg {}={}: no package matches {:?} (check the pattern, or --pkg)",
                gate.pattern, gate.percent, gate.pattern
            ));
        }
    }
    out
}

pub fn check_gate(profile: &Profile, args: &ReportArgs) -> Result<()> {
    let lines = shortfalls(profile, args);
    if lines.is_empty() {
        Ok(())
    } else {
        Err(GateFailed(lines).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats_percentages_and_package_gates() {
        assert_eq!(parse_format("html"), Ok(OutFormat::Rich(Format::Html)));
        assert_eq!(parse_format("textfmt"), Ok(OutFormat::Textfmt));
        assert!(parse_format("pdf").unwrap_err().contains("choose html"));
        assert_eq!(parse_percent("72.5"), Ok(72.5));
        assert_eq!(parse_percent("80%"), Ok(80.0));
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("x").is_err());
        let g = parse_pkg_gate("example.com/a/...=60").unwrap();
        assert_eq!((g.pattern.as_str(), g.percent), ("example.com/a/...", 60.0));
        assert!(g.filter.matches("example.com/a/b"));
        assert!(parse_pkg_gate("nopercent").is_err());
        assert!(parse_pkg_gate("=5").is_err());
    }
}

//! The command line `cov-signal` and `cov-collect` share: the flags that
//! choose cluster, pods, containers, parallelism and output ([`CommonArgs`]),
//! logging to stderr that never prints credentials ([`init_logging`]), and
//! the shape of both tools' run ([`driver`]: connect, select, work on every
//! container in parallel, print, choose the exit code).
//!
//! Every flag beats its environment variable (`SKAFFOLD_RUN_ID`,
//! `SKAFFOLD_KUBE_CONTEXT`, `SKAFFOLD_NAMESPACES`); empty variables count as unset.
//! Logging goes to stderr and only ever enables this project's crates beyond
//! `warn`: the Kubernetes client's own tracing (which could show request
//! headers) is never raised, so no token or certificate material reaches a log.
//!
//! ```no_run
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     common: runpods_cli::CommonArgs,
//! }
//! # async fn demo() -> i32 {
//! let cli = Cli::parse();
//! runpods_cli::init_logging(cli.common.verbose, &["my_tool"]);
//! let prepared = match runpods_cli::driver::prepare("my-tool", &cli.common).await {
//!     Ok(p) => p,
//!     Err(code) => return code,
//! };
//! println!("{} container(s) to work on", prepared.plan.targets.len());
//! # 0 }
//! ```

pub mod driver;
pub mod via;

use std::path::PathBuf;
use std::time::Duration;

use runpods::Error;
use runpods::cluster::ClusterChoice;
use runpods::retry::RetryPolicy;
use runpods::select::PodQuery;
use runpods::targets::ContainerChoice;

/// Exit code for usage errors and "nothing matched".
pub const EXIT_USAGE: i32 = 2;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Cluster, pod and container selection, parallelism and output: shared by both tools.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Kubeconfig file (default: KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the kubeconfig's current context).
    #[arg(long, env = "SKAFFOLD_KUBE_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
    /// Skaffold run id: selects pods labelled skaffold.dev/run-id=<ID>.
    #[arg(long, env = "SKAFFOLD_RUN_ID", value_name = "ID")]
    pub run_id: Option<String>,
    /// Label selector (`app=web,tier in (a,b),!legacy`); added to the run id, or used alone.
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Namespace to search (repeatable; default: SKAFFOLD_NAMESPACES, else all namespaces).
    #[arg(
        long = "namespace",
        short = 'n',
        env = "SKAFFOLD_NAMESPACES",
        value_delimiter = ',',
        value_name = "NS"
    )]
    pub namespaces: Vec<String>,
    /// Container name or glob (repeatable; default: containers whose env sets GOCOVERDIR).
    #[arg(long = "container", short = 'c', value_name = "GLOB")]
    pub containers: Vec<String>,
    /// Containers worked on at the same time.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Time allowed per container (e.g. 30s, 2m, 500ms).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Retries of transient API failures (429, 5xx, connection errors), with backoff.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,
    /// Treat skipped pods and containers (not running, no GOCOVERDIR) as failures.
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// How to reach the coverage folder: exec in the container, a helper
    /// (ephemeral) container, or auto (exec, else a helper when the image has
    /// no kill, ls or tar).
    #[arg(long, value_enum, default_value = "auto")]
    pub via: via::Via,
    /// Image of the helper container (--via helper/auto); a pinned multi-arch busybox by default.
    #[arg(long, default_value = runpods::helper::DEFAULT_HELPER_IMAGE, value_name = "IMAGE")]
    pub helper_image: String,
    /// More logging on stderr (-v, -vv).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl CommonArgs {
    pub fn cluster(&self) -> ClusterChoice {
        ClusterChoice {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone().filter(|c| !c.is_empty()),
            timeout: Some(self.timeout),
        }
    }

    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries,
            ..RetryPolicy::default()
        }
    }

    pub fn query(&self) -> PodQuery {
        PodQuery {
            run_id: self.run_id.clone().filter(|s| !s.is_empty()),
            selector: self.selector.clone().filter(|s| !s.trim().is_empty()),
            namespaces: self
                .namespaces
                .iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect(),
            retry: self.retry(),
        }
    }

    /// Helper settings: the image, and `--timeout` for it to start.
    pub fn helper(&self) -> runpods::helper::HelperConfig {
        runpods::helper::HelperConfig {
            image: self.helper_image.clone(),
            timeout: self.timeout,
            retry: self.retry(),
        }
    }

    pub fn container_choice(&self) -> Result<ContainerChoice, Error> {
        ContainerChoice::new(&self.containers)
    }
}

/// `30s`, `2m`, `500ms`, `1h`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 30s, 2m, 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{text:?} is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Log to stderr: warnings by default, info with -v, debug with -vv, for this
/// project's crates only (`crates` are the binary's own module paths).
pub fn init_logging(verbose: u8, crates: &[&str]) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // "off" for everything else: kube-rs logs failed requests at error level
    // itself, and its lower levels could show request details.
    let mut directives = format!("off,runpods={level},runpods_cli={level}");
    for c in crates {
        directives.push_str(&format!(",{c}={level}"));
    }
    let filter = tracing_subscriber::EnvFilter::new(directives);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(hostile_text::escaped_fields())
        .with_writer(std::io::stderr)
        .with_target(false)
        // Hooks' output lands in CI logs: colour only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }
}

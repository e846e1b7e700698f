//! `cov-signal`: make every coverage-built Go process of a Skaffold run write
//! its counters (exec `kill -USR1 1` in each container) and confirm that it did.
//!
//! Exit 0 when every selected container flushed, 1 when any failed, 2 for
//! usage errors or when nothing matched.

use std::time::Duration;

use clap::Parser;
use cov_signal::signal::{SignalOptions, SignalTotals, normalize_signal, signal_one, validate_pid};
use runpods_cli::driver::prepare;
use runpods_cli::via::{Router, Via};
use runpods_cli::{CommonArgs, EXIT_USAGE, init_logging};

#[derive(Parser)]
#[command(
    name = "cov-signal",
    version,
    about = "Make every coverage-built Go process of a Skaffold run write its counters, and confirm it",
    after_help = "Exit status: 0 every selected container flushed, 1 some failed, 2 usage error or nothing matched."
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Signal to send (name without SIG, or number).
    #[arg(long, default_value = "USR1", value_parser = normalize_signal)]
    signal: String,
    /// Process to signal (default 1; with shareProcessNamespace the service is found).
    #[arg(long, value_parser = validate_pid)]
    pid: Option<String>,
    /// How long to wait for the counter files.
    #[arg(long, default_value = "5s", value_parser = runpods_cli::parse_duration, value_name = "DURATION")]
    wait: Duration,
    /// Don't confirm the flush.
    #[arg(long)]
    no_wait: bool,
    /// Coverage folder in the container (default: GOCOVERDIR from the pod spec).
    #[arg(long, value_name = "DIR")]
    remote_dir: Option<String>,
    /// Snapshot this flush belongs to (shown in the output; `cov-collect --snapshot` keeps the record).
    #[arg(long, value_name = "NAME")]
    snapshot: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.common.verbose, &["cov_signal"]);
    let code = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("cov-signal: error: cannot start the async runtime: {e}");
            1
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> i32 {
    if let Some(name) = &cli.snapshot
        && let Err(e) = runpods::snapshot::validate_name(name)
    {
        eprintln!("cov-signal: error: --snapshot: {e}");
        return EXIT_USAGE;
    }
    let prepared = match prepare("cov-signal", &cli.common).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let opts = SignalOptions {
        signal: cli.signal.clone(),
        pid: cli.pid.clone(),
        wait: cli.wait,
        no_wait: cli.no_wait,
        remote_dir: cli.remote_dir.clone(),
        exec_timeout: cli.common.timeout,
        retry: cli.common.retry(),
    };
    let (client, opts) = (&prepared.cluster.client, &opts);
    let router = Router::new(
        "cov-signal",
        cli.common.via,
        client,
        &prepared.selection.pods,
        cli.common.helper(),
        cli.remote_dir.clone(),
    );
    let router = &router;
    let timeout = cli.common.timeout
        + if cli.no_wait {
            Duration::ZERO
        } else {
            cli.wait
        };
    // A helper may first have to be added and started (within --timeout).
    let timeout = match cli.common.via {
        Via::Exec => timeout,
        Via::Helper | Via::Auto => timeout + cli.common.timeout,
    };
    let results = prepared
        .run(&cli.common, timeout, |t| async move {
            router
                .run(t, |t| async move { signal_one(client, &t, opts).await })
                .await
        })
        .await;
    let details = || results.iter().filter_map(|o| o.details.as_ref());
    let totals = SignalTotals {
        signalled: details().filter(|d| d.signalled).count(),
        confirmed: details().filter(|d| d.confirmed).count(),
        counter_files: details().map(|d| d.counters_written.len()).sum(),
    };
    let line = format!(
        "{} flush(es) confirmed, {} counter file(s) written",
        totals.confirmed, totals.counter_files
    );
    let report = prepared.report("cov-signal", cli.snapshot.clone(), results, totals);
    prepared.finish(&report, &cli.common, &line)
}

//! `cov-collect`: stream the Go coverage files out of every pod of a Skaffold
//! run (tar over exec, gzip) and extract them safely into
//! `OUT/[SNAPSHOT/]<namespace>/<pod>/<container>/`.
//!
//! Exit 0 when every selected container was collected, 1 when any failed, 2
//! for usage errors or when nothing matched.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use cov_collect::collect::{CollectOptions, CollectTotals, collect_one, human_bytes};
use cov_collect::detach;
use cov_collect::follow::{FollowOptions, follow};
use cov_collect::outdir::{DEFAULT_OUT, resolve};
use cov_signal::signal::SignalOptions;
use runpods::cluster::Cluster;
use runpods::select::build_selector;
use runpods::snapshot::{Record, validate_name};
use runpods_cli::driver::prepare;
use runpods_cli::via::{Router, Via};
use runpods_cli::{CommonArgs, EXIT_USAGE, OutputFormat, init_logging, parse_duration};
use safe_untar::DEFAULT_MAX_BYTES;

#[derive(Parser)]
#[command(
    name = "cov-collect",
    version,
    about = "Stream the Go coverage files out of every pod of a Skaffold run and extract them safely",
    after_help = "Exit status: 0 every selected container collected, 1 some failed, 2 usage error or nothing matched."
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Output folder; relative to SKAFFOLD_WORK_DIR when Skaffold sets it.
    #[arg(long, default_value = DEFAULT_OUT, value_name = "DIR")]
    out: PathBuf,
    /// Collect as snapshot NAME: only counter files no earlier snapshot took, into OUT/NAME/.
    #[arg(long, value_name = "NAME")]
    snapshot: Option<String>,
    /// Coverage folder in the container (default: GOCOVERDIR from the pod spec).
    #[arg(long, value_name = "DIR")]
    remote_dir: Option<String>,
    /// Cap on the decompressed archive per container, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BYTES, value_name = "BYTES")]
    max_bytes: u64,
    /// Watch the run's pods and signal and collect each one as it goes (deleted, container restarted), until stopped; needs --run-id or --selector; works by exec.
    #[arg(long, conflicts_with = "snapshot")]
    follow: bool,
    /// With --follow: also signal and collect every running pod this often.
    #[arg(long, requires = "follow", value_parser = parse_duration, value_name = "DURATION")]
    interval: Option<Duration>,
    /// With --follow: stop (after a last collection) once this file exists.
    #[arg(long, requires = "follow", value_name = "FILE")]
    until_file: Option<PathBuf>,
    /// With --follow: stop (after a last collection) after this long.
    #[arg(long, requires = "follow", value_parser = parse_duration, value_name = "DURATION")]
    duration: Option<Duration>,
    /// With --follow: run in the background; returns once the watch is up. Needs --pid-file.
    #[arg(long, requires = "follow", requires = "pid_file")]
    detach: bool,
    /// Pid file of the background follower (--detach, --stop).
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Stop the background follower of --pid-file, wait for its last collection, print its summary and exit with its status.
    #[arg(long, requires = "pid_file", conflicts_with = "follow")]
    stop: bool,
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.common.verbose, &["cov_collect"]);
    if let (true, Some(pid_file)) = (cli.stop, &cli.pid_file) {
        // The follower's last collection is bounded by its own timeouts.
        let wait = cli.common.timeout * 3 + Duration::from_secs(30);
        std::process::exit(detach::stop(pid_file, wait));
    }
    if let (true, Some(pid_file)) = (cli.detach, &cli.pid_file) {
        std::process::exit(detach::start(pid_file, cli.common.timeout));
    }
    let code = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("cov-collect: error: cannot start the async runtime: {e}");
            1
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> i32 {
    let work_dir = std::env::var_os("SKAFFOLD_WORK_DIR").map(PathBuf::from);
    let out = resolve(&cli.out, work_dir.as_deref());
    if cli.follow {
        return run_follow(&cli, out).await;
    }
    let record = match &cli.snapshot {
        Some(name) => {
            if let Err(e) = validate_name(name) {
                eprintln!("cov-collect: error: --snapshot: {e}");
                return EXIT_USAGE;
            }
            match Record::load(&out) {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("cov-collect: error: {e}");
                    return EXIT_USAGE;
                }
            }
        }
        None => None,
    };
    let prepared = match prepare("cov-collect", &cli.common).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let opts = CollectOptions {
        out: out.clone(),
        snapshot: cli.snapshot.clone(),
        remote_dir: cli.remote_dir.clone(),
        max_bytes: cli.max_bytes,
        exec_timeout: cli.common.timeout,
        retry: cli.common.retry(),
    };
    let (client, opts_ref) = (&prepared.cluster.client, &opts);
    let record_ref = Arc::new(record.clone());
    let snapshot = cli.snapshot.clone().unwrap_or_default();
    let router = Router::new(
        "cov-collect",
        cli.common.via,
        client,
        &prepared.selection.pods,
        cli.common.helper(),
        cli.remote_dir.clone(),
    );
    let router = &router;
    // A helper may first have to be added and started (within --timeout).
    let timeout = match cli.common.via {
        Via::Exec => cli.common.timeout,
        Via::Helper | Via::Auto => cli.common.timeout * 2,
    };
    let results = prepared
        .run(&cli.common, timeout, |t| {
            let taken = record_ref
                .as_ref()
                .as_ref()
                .map(|r| r.taken_by_others(&t.label(), &snapshot))
                .unwrap_or_default();
            async move {
                router
                    .run(t, |t| {
                        let taken = taken.clone();
                        async move { collect_one(client, &t, opts_ref, taken).await }
                    })
                    .await
            }
        })
        .await;

    if let (Some(mut record), Some(name)) = (record, &cli.snapshot) {
        for o in &results {
            if let (Some(c), Some(d)) = (&o.container, &o.details) {
                let key = format!("{}/{}/{c}", o.namespace, o.pod);
                record.add(&key, name, &d.snapshot_counters);
            }
        }
        if let Err(e) = record.save(&out) {
            eprintln!("cov-collect: error: {e}");
            return 1;
        }
    }

    let details = || results.iter().filter_map(|o| o.details.as_ref());
    let totals = CollectTotals {
        files: details().map(|d| d.files).sum(),
        bytes_transferred: details().map(|d| d.bytes_transferred).sum(),
        bytes_written: details().map(|d| d.bytes_written).sum(),
        out: match &cli.snapshot {
            Some(s) => out.join(s),
            None => out.clone(),
        },
    };
    let line = format!(
        "{} file(s), {} transferred, {} written to {}",
        totals.files,
        human_bytes(totals.bytes_transferred),
        human_bytes(totals.bytes_written),
        totals.out.display()
    );
    let report = prepared.report("cov-collect", cli.snapshot.clone(), results, totals);
    prepared.finish(&report, &cli.common, &line)
}

async fn run_follow(cli: &Cli, out: PathBuf) -> i32 {
    let common = &cli.common;
    if common.via == Via::Helper {
        eprintln!(
            "cov-collect: error: --follow signals and collects by exec in the coverage container; --via helper is not supported with it"
        );
        return EXIT_USAGE;
    }
    if common.run_id.is_none() && common.selector.is_none() {
        eprintln!(
            "cov-collect: error: --follow needs --run-id (or SKAFFOLD_RUN_ID) or --selector: the pods may not exist yet, so the run id cannot be detected"
        );
        return EXIT_USAGE;
    }
    let usage = |e: runpods::Error| {
        eprintln!("cov-collect: error: {e}");
        if e.is_usage() { EXIT_USAGE } else { 1 }
    };
    let choice = match common.container_choice() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let selector = match build_selector(common.run_id.as_deref(), common.selector.as_deref()) {
        Ok(s) => s.to_string(),
        Err(e) => return usage(e),
    };
    let cluster = match Cluster::connect(&common.cluster()).await {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let opts = FollowOptions {
        collect: CollectOptions {
            out,
            snapshot: None,
            remote_dir: cli.remote_dir.clone(),
            max_bytes: cli.max_bytes,
            exec_timeout: common.timeout,
            retry: common.retry(),
        },
        signal: SignalOptions {
            signal: "USR1".into(),
            pid: None,
            wait: Duration::from_secs(10),
            no_wait: false,
            remote_dir: cli.remote_dir.clone(),
            exec_timeout: common.timeout,
            retry: common.retry(),
        },
        choice,
        selector,
        namespaces: common.query().namespaces,
        interval: cli.interval,
        parallel: common.parallel.into(),
    };
    let stop = stop_when(cli.until_file.clone(), cli.duration);
    let summary = follow(cluster.client.clone(), opts, stop, detach::mark_ready).await;
    let mut stdout = std::io::stdout().lock();
    let written = match common.output {
        OutputFormat::Json => serde_json::to_writer_pretty(&mut stdout, &summary)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(stdout)),
        OutputFormat::Text => summary.write_human(&mut stdout),
    };
    let _ = stdout.flush();
    let code = if written.is_err() {
        1
    } else {
        summary.exit_code()
    };
    detach::record_exit(code);
    code
}

/// What ends a follow: SIGINT/SIGTERM, `--until-file`, `--duration`.
async fn stop_when(until_file: Option<PathBuf>, duration: Option<Duration>) -> String {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return "a failure to install the signal handlers".into();
    };
    let file = async {
        match &until_file {
            Some(f) => {
                while !f.exists() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            None => std::future::pending().await,
        }
    };
    let limit = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM".into(),
        _ = int.recv() => "SIGINT".into(),
        () = file => "--until-file".into(),
        () = limit => "--duration".into(),
    }
}

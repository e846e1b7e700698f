//! `cov-collect`: stream the Go coverage files out of every pod of a Skaffold
//! run (tar over exec, gzip) and extract them safely into
//! `OUT/[SNAPSHOT/]<namespace>/<pod>/<container>/`.
//!
//! Exit 0 when every selected container was collected, 1 when any failed, 2
//! for usage errors or when nothing matched.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use cov_collect::collect::{CollectOptions, CollectTotals, collect_one, human_bytes};
use cov_collect::outdir::{DEFAULT_OUT, resolve};
use runpods::snapshot::{Record, validate_name};
use runpods_cli::driver::prepare;
use runpods_cli::via::{Router, Via};
use runpods_cli::{CommonArgs, EXIT_USAGE, init_logging};
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
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.common.verbose, &["cov_collect"]);
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

//! `localkube up`: run a local Kubernetes API stand-in with real-process pods in
//! the foreground until SIGINT/SIGTERM, for demos and manual testing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "A local Kubernetes API stand-in whose pods are real processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Start the API server and the pods; stop everything on SIGINT/SIGTERM.
    Up(Up),
}

#[derive(Parser)]
struct Up {
    /// Folder for the kubeconfig, certificates, pod volumes and logs.
    #[arg(long)]
    dir: PathBuf,
    /// Deployment, Pod or Service manifest (repeatable).
    #[arg(short = 'f', long = "filename", required = true)]
    manifests: Vec<PathBuf>,
    /// The local image for an image name: NAME=PATH, PATH an OCI image layout
    /// folder, an OCI or docker save tar archive, or a single executable (repeatable).
    #[arg(long = "image", value_name = "NAME=PATH")]
    images: Vec<String>,
    /// Label to stamp on every pod: KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Context name in the kubeconfig.
    #[arg(long, default_value = "localkube")]
    context: String,
    /// Port to listen on (default: a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Print the pod list as JSON.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    output: String,
}

fn split_pair(flag: &str, s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{flag} {s:?}: expected KEY=VALUE"),
    }
}

fn up(args: Up) -> Result<ExitCode> {
    let mut builder = localkube::LocalKube::builder(&args.dir)
        .context(&args.context)
        .port(args.port);
    for m in &args.manifests {
        builder = builder.manifest(m);
    }
    for i in &args.images {
        let (name, path) = split_pair("--image", i)?;
        builder = builder.image(name, path);
    }
    for l in &args.labels {
        let (k, v) = split_pair("--label", l)?;
        builder = builder.label(k, v);
    }
    let kube = match builder.start() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("localkube: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.output == "json" {
        let pods: Vec<_> = kube
            .pods()
            .into_iter()
            .map(|p| {
                serde_json::json!({
                    "namespace": p.namespace, "name": p.name, "phase": p.phase,
                    "address": p.address.map(|a| a.to_string()),
                    "containers": p.containers.iter().map(|c| &c.name).collect::<Vec<_>>(),
                })
            })
            .collect();
        let services: Vec<_> = kube
            .services()
            .into_iter()
            .map(|(namespace, name)| serde_json::json!({"namespace": namespace, "name": name}))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "context": kube.context(), "kubeconfig": kube.kubeconfig(),
                "server": kube.server_url(), "pods": pods, "services": services,
            })
        );
    } else {
        println!("context {} at {}", kube.context(), kube.server_url());
        println!("export KUBECONFIG={}", kube.kubeconfig().display());
        for p in kube.pods() {
            let containers: Vec<_> = p.containers.iter().map(|c| c.name.as_str()).collect();
            println!(
                "pod {}/{} {} containers={} address={}",
                p.namespace,
                p.name,
                p.phase,
                containers.join(","),
                p.address
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".into())
            );
        }
        for (namespace, name) in kube.services() {
            println!("service {namespace}/{name} (reach it with kubectl port-forward svc/{name})");
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })
    .context("waiting for SIGINT/SIGTERM")?;
    eprintln!("localkube: stopping");
    kube.shutdown();
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .init();
    let result = match cli.command {
        Command::Up(args) => up(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("localkube: {e:#}");
            ExitCode::from(2)
        }
    }
}

//! The pods of a Skaffold run, as `cov-signal` and `cov-collect` see them.
//!
//! The data flows through one module per step:
//!
//! - [`cluster`]: which cluster (kubeconfig + context, as kubectl chooses them);
//! - [`select`]: which pods (run id, label selector, namespaces, auto-detected run id);
//! - [`targets`]: which containers of those pods (`GOCOVERDIR` in the spec, or `--container` globs);
//! - [`exec`]: running an argv in a container with a timeout, retries and a trustworthy exit status;
//! - [`helper`]: a helper (ephemeral) container for images without `kill`, `ls` or `tar`;
//! - [`listing`]: reading a coverage folder's listing (`ls -ln`) from a container;
//! - [`snapshot`]: the record of which counter files earlier snapshots already took;
//! - [`outcome`]: per-container results, the summary, JSON output and exit codes;
//! - [`parallel`]: working on many containers at once, each under a deadline.
//!
//! Neighbours: `safe-untar` extracts the tar streams this crate's exec
//! delivers; `runpods-cli` holds the flags, logging and run shape of the tools.
//!
//! ```no_run
//! # async fn demo() -> Result<(), runpods::Error> {
//! let cluster = runpods::cluster::Cluster::connect(&runpods::cluster::ClusterChoice::default()).await?;
//! let query = runpods::select::PodQuery { run_id: Some("abc".into()), ..Default::default() };
//! let selection = runpods::select::select_pods(&cluster, &query).await?;
//! println!("{} pods", selection.pods.len());
//! # Ok(()) }
//! ```

pub mod cluster;
mod error;
pub mod exec;
pub mod helper;
pub mod listing;
pub mod outcome;
pub mod parallel;
pub mod retry;
pub mod select;
pub mod snapshot;
pub mod targets;

pub use error::Error;

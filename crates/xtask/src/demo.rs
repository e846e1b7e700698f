//! `cargo xtask demo`: the whole Skaffold coverage flow on this machine, with
//! localkube standing in for the cluster.
//!
//! It does what `skaffold run --profile coverage` does for
//! `examples/go-integration-coverage`: builds the service with
//! `-cover -covermode=atomic`, assembles its image as an OCI layout (the
//! binary at `/ko-app/greeter` on a busybox base, as ko would on the
//! profile's `gcr.io/distroless/base-debian12:debug`), renders the coverage overlay with
//! `kubectl kustomize`, deploys the rendered manifests to localkube under a
//! fresh `skaffold.dev/run-id` (the integration test reaches the Service
//! through `kubectl port-forward service/greeter`, as a user would), then runs the
//! profile's `after` deploy hooks from `skaffold.yaml` (integration test,
//! cov-signal, cov-collect, cov-report) with the environment Skaffold gives
//! host hooks.

#[cfg(target_os = "linux")]
mod cluster;
#[cfg(target_os = "linux")]
mod dev;
#[cfg(target_os = "linux")]
mod flow;
#[cfg(target_os = "linux")]
mod hooks;

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Folder for the demo's files: the copy of the example the hooks run in
    /// (and its reports/), the built service, the rendered manifests,
    /// the image layouts, localkube's state. Its `greeter/`, `bin/`, `images/`
    /// and `localkube/` subfolders are replaced on each run. Default: `demo/` in the Cargo target folder.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The Skaffold profile to run: `coverage` (the service on a busybox base,
    /// as distroless `:debug`), or `coverage-distroless` (on a no-shell base
    /// running as uid 65532, as distroless `static:nonroot`: `--via auto`
    /// adds a helper container to each pod, and the demo lists them).
    #[arg(long, default_value = "coverage", value_name = "NAME")]
    pub profile: String,
    /// Run the `dev` profile the way `skaffold dev` runs it over two
    /// iterations: its before-deploy hook starts `cov-collect --follow`, the
    /// after-deploy hooks run the integration test, stop the follower and
    /// report; then the Deployment is rolled (`kubectl rollout restart`, as a
    /// redeploy replaces the pods) and the hooks run again against the new
    /// pods. The last report covers both generations of pods.
    #[arg(long, conflicts_with = "profile")]
    pub dev: bool,
}

#[cfg(target_os = "linux")]
pub fn run(opts: Options) -> anyhow::Result<()> {
    flow::run(opts)
}

/// localkube runs pods in Linux namespaces; the tools themselves also run
/// on macOS, against a real cluster.
#[cfg(not(target_os = "linux"))]
pub fn run(_opts: Options) -> anyhow::Result<()> {
    anyhow::bail!(
        "cargo xtask demo needs Linux (localkube runs pods in Linux namespaces); \
         on this OS, use examples/go-integration-coverage with a real cluster"
    )
}

//! `cargo xtask demo --dev`: the `dev` profile over two `skaffold dev`
//! iterations. Each iteration runs the profile's before-deploy hooks (a
//! background `cov-collect --follow`), the deploy, then its after-deploy hooks
//! (the integration test, `cov-collect --stop`, `cov-report`). The first
//! deploy is localkube starting with the rendered manifests; the second rolls
//! the Deployment (`kubectl rollout restart`, as a redeploy with a new image
//! replaces every pod), so the follower collects the first generation of
//! pods while their preStop hook holds them, and the last report covers both.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::cluster::Cluster;
use super::flow::{Steps, hook_env, run_hooks};
use super::hooks;

/// The Skaffold profile `--dev` runs.
pub const PROFILE: &str = "dev";

/// How long a rollout may take: the old pods' preStop hold (5 s in the
/// overlay) and their flush on SIGTERM, with a margin.
const ROLLOUT_WITHIN: Duration = Duration::from_secs(60);

pub fn iterations(
    steps: &mut Steps,
    cluster: &mut Cluster,
    manifests: &Path,
    project: &Path,
    tool_dir: &Path,
    run_id: &str,
) -> Result<()> {
    let skaffold_yaml = project.join("skaffold.yaml");
    let before = hooks::before_deploy(&skaffold_yaml, PROFILE)?;
    let after = hooks::after_deploy(&skaffold_yaml, PROFILE)?;

    steps.say(
        "skaffold dev, iteration 1: the before-deploy hooks (the deploy was localkube starting)",
    );
    let env = hook_env(cluster, run_id, project, tool_dir)?;
    run_hooks(steps, &before, project, &env)?;
    steps.say("iteration 1: the after-deploy hooks");
    run_hooks(steps, &after, project, &env)?;
    let first = pod_names(cluster);

    steps.say("skaffold dev, iteration 2 (a change was saved): the before-deploy hooks");
    run_hooks(steps, &before, project, &env)?;
    for (namespace, name) in deployments(manifests)? {
        steps.say(format!(
            "the redeploy replaces the pods: kubectl rollout restart deployment/{name} -n {namespace}"
        ));
        kubectl(
            cluster,
            &[
                "rollout",
                "restart",
                &format!("deployment/{name}"),
                "-n",
                &namespace,
            ],
        )?;
    }
    cluster.wait_replaced(&first, ROLLOUT_WITHIN)?;
    let second = pod_names(cluster);
    println!(
        "         generation 1 pods (replaced): {}",
        first.join(", ")
    );
    println!("         generation 2 pods: {}", second.join(", "));
    steps.say("iteration 2: the after-deploy hooks, against the new pods");
    let env = hook_env(cluster, run_id, project, tool_dir)?;
    run_hooks(steps, &after, project, &env)?;
    println!(
        "         the report covers both generations: generation 1's files were collected as its pods went"
    );
    Ok(())
}

fn pod_names(cluster: &Cluster) -> Vec<String> {
    cluster.pods().iter().map(|p| p.name.clone()).collect()
}

/// (namespace, name) of every Deployment in the rendered manifests.
fn deployments(manifests: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(manifests)
        .with_context(|| format!("reading {}", manifests.display()))?;
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
        .with_context(|| format!("{} is not valid YAML", manifests.display()))?;
    let found: Vec<(String, String)> = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .filter_map(|d| {
            let meta = &d["metadata"];
            Some((
                meta["namespace"].as_str().unwrap_or("default").to_owned(),
                meta["name"].as_str()?.to_owned(),
            ))
        })
        .collect();
    if found.is_empty() {
        bail!("{}: no Deployment to roll", manifests.display());
    }
    Ok(found)
}

/// Real kubectl against the demo's localkube.
fn kubectl(cluster: &Cluster, args: &[&str]) -> Result<()> {
    let kubectl = toolchain::kubectl()?;
    let out = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .arg("--context")
        .arg(cluster.context())
        .args(args)
        .output()
        .with_context(|| format!("starting {}", kubectl.display()))?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print!("         {}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

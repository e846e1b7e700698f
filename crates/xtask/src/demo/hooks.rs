//! The `before` and `after` deploy hooks of a Skaffold profile, read from `skaffold.yaml`
//! and run the way Skaffold runs host hooks: in order, in the project folder,
//! with Skaffold's environment variables, stopping at the first failure.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// One host hook: the argv to run and the operating systems it is meant for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHook {
    pub command: Vec<String>,
    pub os: Vec<String>,
}

impl HostHook {
    /// Skaffold skips a host hook whose `os` list does not name this OS.
    pub fn runs_here(&self) -> bool {
        self.os.is_empty() || self.os.iter().any(|os| os == std::env::consts::OS)
    }

    pub fn display(&self) -> String {
        self.command.join(" ")
    }
}

/// The profile named `profile` of `skaffold.yaml`.
fn profile(skaffold_yaml: &Path, profile: &str) -> Result<Value> {
    let text = std::fs::read_to_string(skaffold_yaml)
        .with_context(|| format!("reading {}", skaffold_yaml.display()))?;
    let doc: Value = serde_saphyr::from_str(&text)
        .with_context(|| format!("{} is not valid YAML", skaffold_yaml.display()))?;
    doc.get("profiles")
        .and_then(Value::as_array)
        .and_then(|profiles| {
            profiles
                .iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(profile))
        })
        .cloned()
        .with_context(|| format!("{}: no profile {profile:?}", skaffold_yaml.display()))
}

/// The first kustomize path the profile renders (`manifests.kustomize.paths`).
pub fn overlay(skaffold_yaml: &Path, name: &str) -> Result<String> {
    profile(skaffold_yaml, name)?
        .get("manifests")
        .and_then(|m| m.get("kustomize")?.get("paths")?.get(0)?.as_str())
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "{} profile {name:?}: no manifests.kustomize.paths",
                skaffold_yaml.display()
            )
        })
}

/// The base image ko builds the profile's first artifact on
/// (`build.artifacts[0].ko.fromImage`).
pub fn from_image(skaffold_yaml: &Path, name: &str) -> Result<String> {
    profile(skaffold_yaml, name)?
        .get("build")
        .and_then(|b| {
            b.get("artifacts")?
                .get(0)?
                .get("ko")?
                .get("fromImage")?
                .as_str()
        })
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "{} profile {name:?}: no build.artifacts[0].ko.fromImage",
                skaffold_yaml.display()
            )
        })
}

/// The host hooks under `deploy.kubectl.hooks.after` of profile `profile`.
pub fn after_deploy(skaffold_yaml: &Path, profile: &str) -> Result<Vec<HostHook>> {
    deploy_hooks(skaffold_yaml, profile, "after")
}

/// The host hooks under `deploy.kubectl.hooks.before` of profile `profile`.
pub fn before_deploy(skaffold_yaml: &Path, profile: &str) -> Result<Vec<HostHook>> {
    deploy_hooks(skaffold_yaml, profile, "before")
}

/// The host hooks under `deploy.kubectl.hooks.<when>` of profile `profile`.
fn deploy_hooks(skaffold_yaml: &Path, profile: &str, when: &str) -> Result<Vec<HostHook>> {
    let text = std::fs::read_to_string(skaffold_yaml)
        .with_context(|| format!("reading {}", skaffold_yaml.display()))?;
    let doc: Value = serde_saphyr::from_str(&text)
        .with_context(|| format!("{} is not valid YAML", skaffold_yaml.display()))?;
    let where_ = || format!("{} profile {profile:?}", skaffold_yaml.display());
    let profile_doc = doc
        .get("profiles")
        .and_then(Value::as_array)
        .and_then(|profiles| {
            profiles
                .iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(profile))
        })
        .with_context(|| format!("{}: no such profile", where_()))?;
    let after = profile_doc
        .get("deploy")
        .and_then(|d| d.get("kubectl"))
        .and_then(|k| k.get("hooks"))
        .and_then(|h| h.get(when))
        .and_then(Value::as_array)
        .with_context(|| format!("{}: no deploy.kubectl.hooks.{when} list", where_()))?;
    after
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let host = item.get("host").with_context(|| {
                format!("{}: {when} hook {} is not a host hook", where_(), i + 1)
            })?;
            Ok(HostHook {
                command: strings(host.get("command")).with_context(|| {
                    format!(
                        "{}: {when} hook {}: `command` must be a list of strings",
                        where_(),
                        i + 1
                    )
                })?,
                os: match host.get("os") {
                    None => Vec::new(),
                    some => strings(some).with_context(|| {
                        format!(
                            "{}: {when} hook {}: `os` must be a list of strings",
                            where_(),
                            i + 1
                        )
                    })?,
                },
            })
        })
        .collect()
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .filter(|v| !v.is_empty())
}

/// Runs one hook in `dir` with `env` added to this process's environment.
pub fn run(hook: &HostHook, dir: &Path, env: &[(String, String)]) -> Result<()> {
    let (program, args) = hook
        .command
        .split_first()
        .context("a hook with an empty command")?;
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        // The integration test's shortcut past the Service: the demo always
        // takes the user's path (kubectl port-forward) instead.
        .env_remove("GREETER_ADDRS")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .with_context(|| format!("starting hook `{}` (is {program} on PATH?)", hook.display()))?;
    if !status.success() {
        bail!("hook `{}` failed ({status})", hook.display());
    }
    Ok(())
}

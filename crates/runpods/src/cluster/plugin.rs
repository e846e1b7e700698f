//! Exec credential plugins (`users[].user.exec`), run here rather than by kube.
//!
//! kube 5 runs the plugin with no time limit, passes the terminal to it unless
//! `interactiveMode: Never`, and puts the full command (with its env) and the
//! plugin's output into its error. Here the plugin runs under the caller's
//! deadline, never gets a terminal (the tools run as hooks, so kubectl's
//! `IfAvailable` finds none), and every error names the command and the
//! plugin's exit status only: its env values and its output (stdout and stderr)
//! are never shown, as they can hold credentials.
//!
//! The protocol is client-go's (`pkg/client/auth/exec`, and the Kubernetes docs
//! "client-go credential plugins"): `KUBERNETES_EXEC_INFO` carries an
//! `ExecCredential` with `spec.interactive` (and `spec.cluster` when
//! `provideClusterInfo` is set); the plugin prints an `ExecCredential` of the
//! same `apiVersion` whose `status` holds a `token`, or
//! `clientCertificateData` and `clientKeyData` (PEM).

use std::process::Stdio;
use std::time::Duration;

use kube::config::{ExecConfig, ExecInteractiveMode};
use tokio::io::AsyncReadExt;

/// The API versions of `ExecCredential` that kubectl 1.35 accepts.
const VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];
/// A plugin printing more than this is not printing a credential.
const MAX_OUTPUT: usize = 1 << 20;

/// What a plugin returned.
pub enum Credential {
    Token(String),
    Certificate { cert_pem: String, key_pem: String },
}

/// Why a plugin gave no credential. Every message names the command only.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("user {user:?}: the exec credential plugin has no command")]
    NoCommand { user: String },
    #[error(
        "user {user:?}: exec credential plugin {command:?} uses apiVersion {version:?}; kubectl accepts {}",
        VERSIONS.join(" or ")
    )]
    Version {
        user: String,
        command: String,
        version: String,
    },
    #[error(
        "user {user:?}: exec credential plugin {command:?} needs interactiveMode (required by {version})"
    )]
    NoInteractiveMode {
        user: String,
        command: String,
        version: String,
    },
    #[error(
        "user {user:?}: exec credential plugin {command:?} has interactiveMode Always, but the tools run without a terminal; set interactiveMode: Never or IfAvailable, or log in first"
    )]
    NeedsTerminal { user: String, command: String },
    #[error("user {user:?}: cannot start exec credential plugin {command:?}: {source}{hint}")]
    Start {
        user: String,
        command: String,
        hint: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "user {user:?}: exec credential plugin {command:?} did not finish within {timeout:?} (stopped); check that it can run without a terminal"
    )]
    TimedOut {
        user: String,
        command: String,
        timeout: Duration,
    },
    #[error(
        "user {user:?}: exec credential plugin {command:?} failed ({status}); its output is not shown because it may hold credentials: run the plugin by hand to see it"
    )]
    Failed {
        user: String,
        command: String,
        status: String,
    },
    #[error(
        "user {user:?}: exec credential plugin {command:?} printed no usable ExecCredential ({problem}); its output is not shown because it may hold credentials"
    )]
    Output {
        user: String,
        command: String,
        problem: String,
    },
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential {
    api_version: Option<String>,
    kind: Option<String>,
    status: Option<Status>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    expiration_timestamp: Option<String>,
}

/// Run `exec` for kubeconfig user `user` and return its credential, within `timeout`.
/// `cluster` is the `spec.cluster` object given when `provideClusterInfo` is set.
pub async fn run(
    user: &str,
    exec: &ExecConfig,
    cluster: serde_json::Value,
    timeout: Duration,
) -> Result<Credential, PluginError> {
    let user = user.to_string();
    let command = exec
        .command
        .clone()
        .ok_or_else(|| PluginError::NoCommand { user: user.clone() })?;
    let version = exec.api_version.clone().unwrap_or_default();
    if !VERSIONS.contains(&version.as_str()) {
        return Err(PluginError::Version {
            user,
            command,
            version,
        });
    }
    match exec.interactive_mode {
        None if version.ends_with("/v1") => {
            return Err(PluginError::NoInteractiveMode {
                user,
                command,
                version,
            });
        }
        Some(ExecInteractiveMode::Always) => {
            return Err(PluginError::NeedsTerminal { user, command });
        }
        _ => {}
    }
    let mut spec = serde_json::json!({"interactive": false});
    if exec.provide_cluster_info {
        spec["cluster"] = cluster;
    }
    let info = serde_json::json!({
        "apiVersion": version,
        "kind": "ExecCredential",
        "spec": spec,
    });
    let mut cmd = tokio::process::Command::new(&command);
    cmd.args(exec.args.iter().flatten())
        .env("KUBERNETES_EXEC_INFO", info.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for pair in exec.env.iter().flatten() {
        if let (Some(name), Some(value)) = (pair.get("name"), pair.get("value")) {
            cmd.env(name, value);
        }
    }
    for name in exec.drop_env.iter().flatten() {
        cmd.env_remove(name);
    }
    let mut child = cmd.spawn().map_err(|source| PluginError::Start {
        user: user.clone(),
        command: command.clone(),
        hint: exec
            .install_hint
            .as_deref()
            .map(|h| format!("; install hint: {}", crate::cluster::one_line(h)))
            .unwrap_or_default(),
        source,
    })?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        let read_out = async {
            let mut buf = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut buf).await;
            }
            buf
        };
        // stderr is read (so the plugin never blocks on it) and dropped.
        let drain_err = async {
            if let Some(s) = stderr.as_mut() {
                let _ =
                    tokio::io::copy(&mut s.take(MAX_OUTPUT as u64), &mut tokio::io::sink()).await;
            }
        };
        let (out, ()) = tokio::join!(read_out, drain_err);
        let status = child.wait().await;
        (out, status)
    };
    let (out, status) = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => {
            return Err(PluginError::TimedOut {
                user,
                command,
                timeout,
            });
        }
    };
    let failed = |status: String| PluginError::Failed {
        user: user.clone(),
        command: command.clone(),
        status,
    };
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(failed(s.to_string())),
        Err(e) => return Err(failed(e.to_string())),
    }
    let bad = |problem: String| PluginError::Output {
        user: user.clone(),
        command: command.clone(),
        problem,
    };
    // client-go decodes with a YAML-tolerant codec; JSON is YAML. Only the
    // error's position is kept: serde's messages can quote the input.
    let cred: ExecCredential = serde_saphyr::from_slice(&out).map_err(|e| {
        bad(match e.location() {
            Some(l) => format!(
                "not an ExecCredential at line {} column {}",
                l.line(),
                l.column()
            ),
            None => "not an ExecCredential".into(),
        })
    })?;
    if cred.kind.as_deref() != Some("ExecCredential") {
        return Err(bad("kind is not ExecCredential".into()));
    }
    if cred.api_version.as_deref() != Some(version.as_str()) {
        return Err(bad(format!(
            "apiVersion differs from the configured {version}"
        )));
    }
    let status = cred.status.ok_or_else(|| bad("no status".into()))?;
    if let Some(exp) = &status.expiration_timestamp {
        let t: k8s_openapi::jiff::Timestamp = exp
            .parse()
            .map_err(|_| bad("expirationTimestamp is not an RFC 3339 time".into()))?;
        if t <= k8s_openapi::jiff::Timestamp::now() {
            return Err(bad(format!("the credential expired at {t}")));
        }
    }
    match (
        status.token.filter(|t| !t.is_empty()),
        status.client_certificate_data,
        status.client_key_data,
    ) {
        (_, Some(cert_pem), Some(key_pem)) => Ok(Credential::Certificate { cert_pem, key_pem }),
        (Some(token), None, None) => Ok(Credential::Token(token)),
        (_, Some(_), None) | (_, None, Some(_)) => Err(bad(
            "clientCertificateData and clientKeyData must come together".into(),
        )),
        (None, None, None) => Err(bad(
            "status has neither a token nor a client certificate".into()
        )),
    }
}

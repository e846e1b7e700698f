//! Running an argv in a container, with the kube-rs 5 pitfalls handled:
//!
//! - the stdout pipe is raised from kube's 1 KiB default (`max_stdout_buf_size`);
//! - stdout and stderr are read at the same time, so neither stalls the other;
//! - the status is taken (`take_status`) before `join`, and a missing status
//!   (the connection ended without one) is a failure, never a success;
//! - everything runs under our own timeout (kube has no read timeout);
//! - connecting is retried on transient errors (429, 5xx, connection trouble).
//!
//! Commands are argv vectors, never shell strings.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf, ReadHalf, SimplexStream};

use crate::retry::{RetryPolicy, is_transient, with_retries};

/// The stdout pipe size for exec streams: big enough that a tar stream never
/// waits on the pipe while we decompress.
pub const STDOUT_PIPE: usize = 1 << 20;
/// How long the status may lag behind the end of stdout.
const STATUS_GRACE: Duration = Duration::from_secs(2);
/// How much stderr is kept for messages (the rest is read and dropped).
const STDERR_KEPT: usize = 16 * 1024;

/// How the remote command ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitStatus {
    /// Exit code 0.
    Success,
    /// A nonzero exit code.
    Code { code: i32 },
    /// The server reported a failure without an exit code (e.g. the program does not exist).
    Failure { reason: String, message: String },
    /// The connection ended without any status: the outcome is unknown.
    NoStatus,
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Success => write!(f, "exit code 0"),
            ExitStatus::Code { code } => write!(f, "exit code {code}"),
            ExitStatus::Failure { reason, message } => write!(f, "{reason}: {message}"),
            ExitStatus::NoStatus => write!(f, "the connection ended without an exit status"),
        }
    }
}

impl ExitStatus {
    /// Interpret the `Status` frame of an exec.
    pub fn from_status(status: Option<Status>) -> ExitStatus {
        let Some(s) = status else {
            return ExitStatus::NoStatus;
        };
        if s.status.as_deref() == Some("Success") {
            return ExitStatus::Success;
        }
        let reason = s.reason.unwrap_or_default();
        if reason == "NonZeroExitCode" {
            let code = s
                .details
                .iter()
                .flat_map(|d| d.causes.iter().flatten())
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
                .and_then(|c| c.message.as_deref()?.trim().parse::<i32>().ok());
            if let Some(code) = code {
                return ExitStatus::Code { code };
            }
        }
        ExitStatus::Failure {
            reason: if reason.is_empty() {
                "Failure".into()
            } else {
                reason
            },
            message: s.message.unwrap_or_default(),
        }
    }

    pub fn code(&self) -> Option<i32> {
        match self {
            ExitStatus::Success => Some(0),
            ExitStatus::Code { code } => Some(*code),
            _ => None,
        }
    }
}

/// What to run, where, and how patiently.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub argv: Vec<String>,
    /// The whole exec, connect to status, must finish within this.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ExecSpec {
    pub fn new(namespace: &str, pod: &str, container: &str, argv: &[&str]) -> Self {
        ExecSpec {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

/// A finished exec: what the stdout consumer returned, the stderr text, the status.
#[derive(Debug)]
pub struct Finished<T> {
    pub output: T,
    pub stderr: String,
    pub status: ExitStatus,
    /// Connection attempts made (1 when the first worked).
    pub attempts: u32,
}

/// An exec that produced no usable status at all.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(
        "exec refused after {attempts} attempt(s): {}",
        describe_kube_error(source)
    )]
    Connect {
        attempts: u32,
        #[source]
        source: kube::Error,
    },
    /// RBAC refused the exec (403): what is missing and how to check it.
    #[error(
        "exec refused: HTTP 403 {message}: the tools need \"create\" and \"get\" on \"pods/exec\" (see hooks/rbac/); check with: {can_i}"
    )]
    Forbidden { message: String, can_i: String },
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

impl ExecError {
    /// The HTTP code of a refused exec, when there was one.
    pub fn http_code(&self) -> Option<u16> {
        match self {
            ExecError::Connect {
                source: kube::Error::Api(s),
                ..
            } => Some(s.code),
            ExecError::Connect {
                source:
                    kube::Error::UpgradeConnection(
                        kube::client::UpgradeConnectionError::ProtocolSwitch(code),
                    ),
                ..
            } => Some(code.as_u16()),
            ExecError::Forbidden { .. } => Some(403),
            _ => None,
        }
    }
}

/// A kube error as one line: API errors by code and message (no request
/// details, which could include headers).
pub fn describe_kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let msg = if s.message.is_empty() {
                &s.reason
            } else {
                &s.message
            };
            format!("HTTP {} {}", s.code, msg)
        }
        other => other.to_string(),
    }
}

/// stdout or stderr of an exec: ends when kube's pipe ends, or when the
/// exec's message loop has ended and nothing is left in the pipe.
pub struct ExecStream {
    pipe: Option<ReadHalf<SimplexStream>>,
    ended: Pin<Box<dyn Future<Output = ()> + Send>>,
    loop_over: bool,
}

impl ExecStream {
    fn new(
        pipe: Option<ReadHalf<SimplexStream>>,
        mut ended: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        ExecStream {
            pipe,
            ended: Box::pin(async move {
                let _ = ended.wait_for(|over| *over).await;
            }),
            loop_over: false,
        }
    }
}

impl AsyncRead for ExecStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let Some(pipe) = this.pipe.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        // Everything the loop writes is in the pipe before it ends, so an
        // empty pipe seen *after* the end was seen is the end of the stream.
        if !this.loop_over && this.ended.as_mut().poll(cx).is_ready() {
            this.loop_over = true;
        }
        if let Poll::Ready(r) = Pin::new(pipe).poll_read(cx, buf) {
            return Poll::Ready(r);
        }
        if this.loop_over {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

/// Run `spec.argv` and hand its stdout to `consume` while stderr is drained alongside.
///
/// `consume` should read until EOF; if it stops early (e.g. a size cap), the
/// exec is abandoned and its status will be [`ExitStatus::NoStatus`].
pub async fn exec_with<T, F, Fut>(
    client: &kube::Client,
    spec: &ExecSpec,
    consume: F,
) -> Result<Finished<T>, ExecError>
where
    F: FnOnce(ExecStream) -> Fut,
    Fut: Future<Output = T>,
{
    let api: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
    let params = AttachParams::default()
        .container(spec.container.clone())
        .stdin(false)
        .stdout(true)
        .stderr(true)
        .max_stdout_buf_size(STDOUT_PIPE)
        .max_stderr_buf_size(64 * 1024);
    let what = format!("exec in {}/{}/{}", spec.namespace, spec.pod, spec.container);
    let work = async {
        let (connected, attempts) = with_retries(spec.retry, &what, is_transient, || {
            api.exec(&spec.pod, spec.argv.clone(), &params)
        })
        .await;
        let mut process = connected.map_err(|source| {
            let refused = ExecError::Connect { attempts, source };
            if refused.http_code() != Some(403) {
                return refused;
            }
            let message = match &refused {
                ExecError::Connect {
                    source: kube::Error::Api(s),
                    ..
                } => s.message.clone(),
                _ => "Forbidden".into(),
            };
            // kube-apiserver 1.35 checks both for a WebSocket exec
            // (AuthorizePodWebsocketUpgradeCreatePermission, kubernetes#134577).
            ExecError::Forbidden {
                message: crate::cluster::one_line(&message),
                can_i: crate::cluster::can_i_all(&spec.namespace),
            }
        })?;
        // kube closes stdout/stderr only when its loop ends normally; when the
        // connection breaks (no status, no close frame) the pipes stay open. So
        // the end of the loop is watched through the status future, which
        // resolves either way, and both readers end there too.
        let (ended_tx, ended_rx) = tokio::sync::watch::channel(false);
        let status_task = {
            let status = process.take_status();
            tokio::spawn(async move {
                let s = match status {
                    Some(fut) => fut.await,
                    None => None,
                };
                let _ = ended_tx.send(true);
                s
            })
        };
        let stdout = ExecStream::new(process.stdout(), ended_rx.clone());
        let mut stderr = ExecStream::new(process.stderr(), ended_rx);
        // stderr is read by its own task, at the same time as stdout.
        let read_stderr = tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut buf = vec![0u8; 8192];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = STDERR_KEPT.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
            String::from_utf8_lossy(&kept).into_owned()
        });
        let output = consume(stdout).await;
        // A consumer that read to the end finds the status already there. One
        // that stopped early (a size cap) leaves the remote side writing into
        // a pipe nobody reads: give up on the status then.
        let status = match tokio::time::timeout(STATUS_GRACE, status_task).await {
            Ok(Ok(status)) => status,
            _ => {
                process.abort();
                None
            }
        };
        let stderr_text = match tokio::time::timeout(STATUS_GRACE, read_stderr).await {
            Ok(Ok(text)) => text,
            _ => String::new(),
        };
        // join() only after the status is in hand; its error (e.g. after the
        // abort above) is already reflected in a missing status.
        let _ = process.join().await;
        Ok(Finished {
            output,
            stderr: stderr_text,
            status: ExitStatus::from_status(status),
            attempts,
        })
    };
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(spec.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ExecError::TimedOut(spec.timeout)),
    };
    match &result {
        Ok(f) => tracing::debug!(
            "{what}: {:?} -> {} in {:.0?}",
            spec.argv,
            f.status,
            started.elapsed()
        ),
        Err(e) => tracing::debug!("{what}: {:?} failed: {e}", spec.argv),
    }
    result
}

/// Run `spec.argv` and keep its stdout (up to `max_stdout` bytes; the rest is dropped).
pub async fn exec_capture(
    client: &kube::Client,
    spec: &ExecSpec,
    max_stdout: usize,
) -> Result<Finished<Vec<u8>>, ExecError> {
    exec_with(client, spec, |mut out| async move {
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match out.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = max_stdout.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    })
    .await
}

/// Whether a failed exec means "the program is not in the image": the
/// runtime could not start it (exit 126/127, runc's "executable file not
/// found in $PATH" in a failure status). A program that ran and then printed
/// "No such file or directory" (busybox `tar` and `ls` for a missing folder,
/// GNU tar for a missing `gzip`) exists; see [`path_missing`].
pub fn program_missing(status: &ExitStatus, _stderr: &str) -> bool {
    match status {
        ExitStatus::Code { code: 126 | 127 } => true,
        ExitStatus::Failure { message, .. } => {
            let t = message.to_ascii_lowercase();
            t.contains("executable file not found")
                || t.contains("no such file or directory")
                || t.contains("not found in $path")
        }
        _ => false,
    }
}

/// Whether a program's stderr says `path` itself does not exist (GNU:
/// "tar: DIR: Cannot open: No such file or directory", "ls: cannot access
/// 'DIR': …"; busybox: "tar: can't change directory to 'DIR': …", "ls: DIR: …").
pub fn path_missing(stderr: &str, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    !path.is_empty()
        && stderr.lines().any(|l| {
            l.contains(path) && l.to_ascii_lowercase().contains("no such file or directory")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> Option<Status> {
        Some(serde_json::from_value(json).expect("status json"))
    }

    #[test]
    fn exit_codes_are_read_from_causes() {
        let s = status(serde_json::json!({
            "status": "Failure", "reason": "NonZeroExitCode", "message": "command terminated with non-zero exit code",
            "details": {"causes": [{"reason": "ExitCode", "message": "2"}]}
        }));
        assert_eq!(ExitStatus::from_status(s), ExitStatus::Code { code: 2 });
        assert_eq!(
            ExitStatus::from_status(status(serde_json::json!({"status": "Success"}))),
            ExitStatus::Success
        );
    }

    #[test]
    fn missing_status_is_not_success() {
        assert_eq!(ExitStatus::from_status(None), ExitStatus::NoStatus);
        assert_eq!(ExitStatus::NoStatus.code(), None);
    }

    #[test]
    fn other_failures_keep_their_reason() {
        let s = status(
            serde_json::json!({"status": "Failure", "reason": "InternalError",
            "message": "exec: \"kill\": executable file not found in $PATH"}),
        );
        let st = ExitStatus::from_status(s);
        assert!(matches!(&st, ExitStatus::Failure { reason, .. } if reason == "InternalError"));
        assert!(program_missing(&st, ""));
    }

    #[test]
    fn a_missing_folder_is_not_a_missing_program() {
        let busybox = "tar: can't change directory to '/cov': No such file or directory\n";
        assert!(!program_missing(&ExitStatus::Code { code: 1 }, busybox));
        assert!(path_missing(busybox, "/cov/"));
        assert!(path_missing(
            "ls: /cov: No such file or directory\n",
            "/cov"
        ));
        assert!(!path_missing(
            "tar: can't execute 'gzip': No such file or directory\n",
            "/cov"
        ));
        assert!(program_missing(&ExitStatus::Code { code: 127 }, ""));
    }
}

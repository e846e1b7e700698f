//! The `pods/exec` WebSocket session (`v5.channel.k8s.io` / `v4.channel.k8s.io`).
//!
//! Every binary frame starts with a channel byte: 0 stdin, 1 stdout, 2 stderr,
//! 3 the final `Status` JSON, 4 terminal resize, 255 (v5 only) "close this
//! channel". Output goes out in frames of at most 32 KiB; after the command
//! ends and its output is drained, one status frame, then a normal close.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

use crate::sys::ChildProcess;
use crate::sys::nsexec::ExecProcess;

pub(crate) const V5: &str = "v5.channel.k8s.io";
pub(crate) const V4: &str = "v4.channel.k8s.io";
const MAX_FRAME: usize = 32 * 1024;

/// Wait for a child to end without blocking a thread (the pidfd becomes readable).
pub(crate) async fn wait_exit(process: &ChildProcess) -> std::io::Result<i32> {
    let owned = process.pidfd.as_fd().try_clone_to_owned()?;
    // SAFETY: the AsyncFd owns this duplicate descriptor for as long as it is registered.
    let fd = unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    loop {
        if let Some(code) = process.try_wait()? {
            return Ok(code);
        }
        let mut guard = fd.readable().await?;
        guard.clear_ready();
    }
}

/// Fault settings that shape the stream.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StreamFaults {
    pub cut_after: Option<usize>,
    pub bytes_per_sec: Option<u64>,
}

/// Kills and reaps the relay process if the session ends early.
struct Reaper {
    process: Arc<ChildProcess>,
    done: bool,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.process.signal(libc::SIGKILL);
            let _ = self.process.wait();
        }
    }
}

enum Out {
    Data(u8, Vec<u8>),
    Eof,
}

/// Status frame for a finished command.
fn status_json(argv: &[String], code: i32) -> String {
    if code == 0 {
        json!({"metadata": {}, "status": "Success"}).to_string()
    } else {
        json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command {argv:?}, exit code {code}"
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        })
        .to_string()
    }
}

/// The Status when the program could not be executed at all. A kubelet with
/// containerd and runc answers (kubelet `remotecommand.ServeExec` wraps the
/// runtime's error as an InternalError):
/// `Internal error occurred: error executing command in container: failed to
/// exec in container: failed to start exec "<id>": OCI runtime exec failed:
/// exec failed: unable to start container process: exec: "ps": executable
/// file not found in $PATH: unknown` (as reported in
/// nigelpoulton/TheK8sBook#30; the text is runc's `exec.LookPath` error).
fn exec_failed_json(argv: &[String], errno: i32, exec_id: &str) -> String {
    let argv0 = argv.first().map(String::as_str).unwrap_or_default();
    let why = if errno == libc::ENOENT && !argv0.contains('/') {
        "executable file not found in $PATH".to_string()
    } else if errno == libc::ENOENT {
        format!("stat {argv0}: no such file or directory")
    } else {
        std::io::Error::from_raw_os_error(errno)
            .to_string()
            .split(" (os error")
            .next()
            .unwrap_or_default()
            .to_lowercase()
    };
    let cause = format!(
        "error executing command in container: failed to exec in container: failed to start exec {exec_id:?}: OCI runtime exec failed: exec failed: unable to start container process: exec: {argv0:?}: {why}: unknown"
    );
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {cause}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": cause}]},
        "code": 500,
    })
    .to_string()
}

/// Wait until the program runs (EOF) or could not be executed (its errno).
async fn exec_errno(fd: std::os::fd::OwnedFd) -> Option<i32> {
    let mut rd = pipe::Receiver::from_owned_fd(fd).ok()?;
    let mut buf = [0u8; 4];
    match rd.read_exact(&mut buf).await {
        Ok(_) => Some(i32::from_ne_bytes(buf)),
        Err(_) => None,
    }
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// Run one exec session to its end.
pub(crate) async fn session(
    socket: WebSocket,
    proc_: ExecProcess,
    protocol: &'static str,
    argv: Vec<String>,
    faults: StreamFaults,
) {
    let process = Arc::new(proc_.process);
    let mut reaper = Reaper {
        process: Arc::clone(&process),
        done: false,
    };
    let (mut sink, mut stream) = socket.split();
    if let Some(errno) = exec_errno(proc_.exec_failed).await {
        let _ = wait_exit(&process).await;
        reaper.done = true;
        let id = crate::manifest::random_suffix(64);
        let _ = sink
            .send(frame(3, exec_failed_json(&argv, errno, &id).as_bytes()))
            .await;
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
        let _ = sink.flush().await;
        return;
    }

    // Output readers feed one queue, so the sender can pace and cut it.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Out>(8);
    for (channel, fd) in [(1u8, proc_.stdout), (2u8, proc_.stderr)] {
        let tx = tx.clone();
        tokio::spawn(async move {
            let Ok(mut rd) = pipe::Receiver::from_owned_fd(fd) else {
                let _ = tx.send(Out::Eof).await;
                return;
            };
            let mut buf = vec![0u8; MAX_FRAME];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send(Out::Data(channel, buf[..n].to_vec()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Out::Eof).await;
        });
    }
    drop(tx);

    // Incoming frames: stdin data, stdin close (v5), resize (ignored); pings are
    // answered by the WebSocket layer while this loop reads.
    let mut stdin = proc_
        .stdin
        .and_then(|fd| pipe::Sender::from_owned_fd(fd).ok());
    let v5 = protocol == V5;
    let mut reader = tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let Ok(msg) = msg else { break };
            match msg {
                Message::Binary(data) if !data.is_empty() => match data[0] {
                    0 => {
                        if let Some(w) = stdin.as_mut()
                            && w.write_all(&data[1..]).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    255 if v5 && data.get(1) == Some(&0) => stdin = None,
                    _ => {}
                },
                Message::Close(_) => break,
                _ => {}
            }
        }
    });

    let start = Instant::now();
    let mut sent: usize = 0;
    let mut open_streams = 2;
    while open_streams > 0 {
        let out = tokio::select! {
            out = rx.recv() => out,
            // The client closed or dropped the connection: nobody wants the rest,
            // so stop the command (the reaper kills it) instead of letting it run on.
            _ = &mut reader => return,
        };
        let Some(out) = out else { break };
        let (channel, mut data) = match out {
            Out::Eof => {
                open_streams -= 1;
                continue;
            }
            Out::Data(c, d) => (c, d),
        };
        if let Some(limit) = faults.cut_after {
            let left = limit.saturating_sub(sent);
            if data.len() >= left {
                data.truncate(left);
                if !data.is_empty() {
                    let _ = sink.send(frame(channel, &data)).await;
                }
                let _ = sink.flush().await;
                // Drop the connection without status or close frame.
                reader.abort();
                return;
            }
        }
        if let Some(rate) = faults.bytes_per_sec.filter(|r| *r > 0) {
            // Pace in small slices so the rate holds within a frame too.
            let slice = ((rate / 10).max(1) as usize).min(MAX_FRAME);
            for chunk in data.chunks(slice) {
                sent += chunk.len();
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                let elapsed = start.elapsed();
                if due > elapsed {
                    tokio::time::sleep(due - elapsed).await;
                }
                if sink.send(frame(channel, chunk)).await.is_err() {
                    reader.abort();
                    return;
                }
            }
            continue;
        }
        sent += data.len();
        if sink.send(frame(channel, &data)).await.is_err() {
            reader.abort();
            return;
        }
    }
    let code = match wait_exit(&process).await {
        Ok(code) => code,
        Err(e) => {
            tracing::warn!("waiting for exec process: {e}");
            255
        }
    };
    reaper.done = true;
    let _ = sink
        .send(frame(3, status_json(&argv, code).as_bytes()))
        .await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    let _ = sink.flush().await;
    // Give the client a moment to answer the close, then drop the connection.
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
}

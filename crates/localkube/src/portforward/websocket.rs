//! Port-forward over WebSocket, `v4.channel.k8s.io`, as the kubelet serves it
//! (kubernetes `staging/src/k8s.io/kubelet/pkg/cri/streaming/portforward/websocket.go`):
//! port `i` of the request gets channels `2i` (data) and `2i+1` (error). Each
//! channel first carries the port number (2 bytes, little-endian); after that
//! the data channel carries the connection's bytes both ways and the error
//! channel, from the server only, the kubelet's message if forwarding fails.
//! One connection per port per WebSocket; when every port's connection has
//! ended the server closes the WebSocket (`handleWebSocketStreams` returns and
//! its deferred `conn.Close()` runs).

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::Target;

pub(crate) const V4: &str = "v4.channel.k8s.io";
const MAX_FRAME: usize = 32 * 1024;

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// Run one port-forward WebSocket to its end.
pub(crate) async fn session(socket: WebSocket, target: Target, ports: Vec<u16>) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(16);
    // Channel numbers are one byte: at most 128 ports.
    let ports: Vec<u16> = ports.into_iter().take(128).collect();
    for (i, port) in ports.iter().enumerate() {
        for ch in [2 * i as u8, 2 * i as u8 + 1] {
            if sink.send(frame(ch, &port.to_le_bytes())).await.is_err() {
                return;
            }
        }
    }
    let mut to_pod = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, &port) in ports.iter().enumerate() {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
        to_pod.push(Some(tx));
        tasks.spawn(forward_port(
            target.clone(),
            port,
            2 * i as u8,
            rx,
            out_tx.clone(),
        ));
    }
    drop(out_tx);
    // From the client: data for a port's connection. Pings are answered by
    // the WebSocket layer while this reads.
    let reader = async {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Binary(data) if data.len() > 1 => {
                    let ch = usize::from(data[0]);
                    if ch % 2 == 0
                        && let Some(slot) = to_pod.get_mut(ch / 2)
                        && let Some(tx) = slot
                        && tx.send(data[1..].to_vec()).await.is_err()
                    {
                        *slot = None;
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    let writer = async {
        while let Some(msg) = out_rx.recv().await {
            if sink.send(msg).await.is_err() {
                return;
            }
        }
        // Every port's connection is over (all senders are gone).
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
        let _ = sink.flush().await;
    };
    tokio::select! {
        // The client went away: stop every connection.
        _ = reader => tasks.abort_all(),
        _ = writer => {}
    }
}

/// One port: connect inside the pod, then copy both ways until the pod's side
/// ends (a WebSocket channel cannot be half-closed by the client).
async fn forward_port(
    target: Target,
    port: u16,
    data_ch: u8,
    mut from_client: mpsc::Receiver<Vec<u8>>,
    out: mpsc::Sender<Message>,
) {
    let tcp = match target.connect(port).await {
        Ok(t) => t,
        Err(msg) => {
            let _ = out.send(frame(data_ch + 1, msg.as_bytes())).await;
            return;
        }
    };
    let (mut rd, mut wr) = tcp.into_split();
    let upload = async {
        while let Some(data) = from_client.recv().await {
            wr.write_all(&data).await?;
        }
        // Keep reading the pod's answer: only the pod's side ends a forward.
        std::future::pending::<std::io::Result<()>>().await
    };
    let download = async {
        let mut buf = vec![0u8; MAX_FRAME];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Err(e) => return Err(e),
                Ok(n) => {
                    if out.send(frame(data_ch, &buf[..n])).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    };
    let result = tokio::select! {
        r = upload => r,
        r = download => r,
    };
    if let Err(e) = result {
        let msg = target.copy_error(port, &e);
        let _ = out.send(frame(data_ch + 1, msg.as_bytes())).await;
    }
}

//! Port-forward over SPDY/3.1, the kubelet's way
//! (`staging/src/k8s.io/kubelet/pkg/cri/streaming/portforward/httpstream.go`,
//! on apimachinery's `util/httpstream/spdy` and moby/spdystream).
//!
//! For each local connection client-go (`tools/portforward/portforward.go`
//! `handleConnection`) opens two streams carrying the headers `streamType`
//! (`error`, then `data`), `port` and `requestID`. Every stream is accepted
//! with an empty SYN_REPLY. When both streams of a request have arrived the
//! data stream is joined to `localhost:port` in the pod; a failure is written
//! as text on the error stream; at the end both streams are closed (FIN), as
//! the kubelet's deferred `Close` calls do. A request whose second stream does
//! not come within 30 s gets "timeout waiting for streams" on its error stream
//! (`monitorStreamPair`, the CRI streaming server's `StreamCreationTimeout`).
//! The client resets (RST_STREAM) a data stream when it is done with it; that
//! ends the forward quietly.
//!
//! Copying follows containerd's `portForward`: when one direction ends, the
//! other gets one more second, then the connection to the pod is closed.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::spdy::{Decoder, Encoder, Frame, Headers, rst};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::Target;

/// The CRI streaming server's default `StreamCreationTimeout`.
const CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// containerd gives the second direction this long after the first ends.
const GRACE: Duration = Duration::from_secs(1);
/// Bytes per DATA frame towards the client (io.Copy's buffer size in Go).
const CHUNK: usize = 32 * 1024;
/// Frames from the client larger than this end the session: client-go never
/// sends more than `CHUNK` in one, and the buffer must stay bounded.
const MAX_FRAME: usize = 1 << 20;

/// kubelet `api/core/v1` port-forward header names, lowercased as SPDY sends them.
const STREAM_TYPE: &str = "streamtype";
const PORT: &str = "port";
const REQUEST_ID: &str = "requestid";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Error,
    Data,
}

struct StreamInfo {
    request: String,
    kind: Kind,
}

/// The two streams of one forwarded connection.
struct Pair {
    error: Option<u32>,
    data: Option<u32>,
    port: u16,
    /// Client bytes for the pod; dropped on the data stream's FIN.
    to_pod: Option<mpsc::Sender<Vec<u8>>>,
    from_client: Option<mpsc::Receiver<Vec<u8>>>,
    /// Fired (or dropped) when the client resets the data stream.
    cancel: Option<oneshot::Sender<()>>,
    started: bool,
}

enum Event {
    /// A request's second stream did not come in time.
    Timeout(String),
    /// A request's forward is over.
    Done(String),
}

struct Session {
    target: Target,
    out: mpsc::Sender<Frame>,
    events: mpsc::Sender<Event>,
    streams: HashMap<u32, StreamInfo>,
    pairs: HashMap<String, Pair>,
    tasks: tokio::task::JoinSet<()>,
}

/// Serve SPDY/3.1 port-forward over `io` until the client goes away.
pub(crate) async fn serve<IO>(io: IO, target: Target)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (out, mut out_rx) = mpsc::channel::<Frame>(64);
    tokio::spawn(async move {
        let Ok(mut encoder) = Encoder::new() else {
            return;
        };
        while let Some(frame) = out_rx.recv().await {
            let bytes = match encoder.encode(&frame) {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!("port-forward: cannot encode a SPDY frame: {e}");
                    break;
                }
            };
            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let (events_tx, mut events) = mpsc::channel::<Event>(16);
    let mut s = Session {
        target,
        out: out.clone(),
        events: events_tx,
        streams: HashMap::new(),
        pairs: HashMap::new(),
        tasks: tokio::task::JoinSet::new(),
    };
    let mut decoder = Decoder::new();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut last_stream = 0;
    'conn: loop {
        tokio::select! {
            n = rd.read(&mut chunk) => {
                let n = match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    match decoder.decode(&buf) {
                        Ok(Some((frame, used))) => {
                            buf.drain(..used);
                            if let Frame::SynStream { stream_id, .. } = &frame {
                                last_stream = last_stream.max(*stream_id);
                            }
                            if !s.on_frame(frame).await {
                                break 'conn;
                            }
                        }
                        Ok(None) => {
                            let declared = buf
                                .get(4..8)
                                .map(|b| (u32::from_be_bytes([0, b[1], b[2], b[3]])) as usize);
                            if declared.is_some_and(|len| len > MAX_FRAME) {
                                tracing::debug!("port-forward: a SPDY frame over {MAX_FRAME} bytes");
                                let _ = out.send(Frame::GoAway { last_good_stream_id: last_stream, status: 1 }).await;
                                break 'conn;
                            }
                            break;
                        }
                        Err(e) => {
                            // Header compression state is lost: the session is over
                            // (spdystream answers a bad frame with GOAWAY too).
                            tracing::debug!("port-forward: bad SPDY input: {e}");
                            let _ = out.send(Frame::GoAway { last_good_stream_id: last_stream, status: 1 }).await;
                            break 'conn;
                        }
                    }
                }
            }
            Some(event) = events.recv() => s.on_event(event).await,
            // Reap finished forwards and timers.
            Some(_) = s.tasks.join_next() => {}
        }
    }
    // The client is gone: stop every forward.
    s.tasks.abort_all();
}

impl Session {
    async fn send(&self, frame: Frame) {
        let _ = self.out.send(frame).await;
    }

    /// Handle one frame; `false` ends the session.
    async fn on_frame(&mut self, frame: Frame) -> bool {
        match frame {
            Frame::SynStream {
                stream_id, headers, ..
            } => {
                if self.streams.contains_key(&stream_id) {
                    self.send(Frame::RstStream {
                        stream_id,
                        status: rst::STREAM_IN_USE,
                    })
                    .await;
                    return true;
                }
                // apimachinery spdy connection.go newSpdyStream: every stream
                // is accepted with an empty reply before it is looked at.
                self.send(Frame::SynReply {
                    stream_id,
                    fin: false,
                    headers: Vec::new(),
                })
                .await;
                self.add_stream(stream_id, &headers).await;
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                let Some(info) = self.streams.get(&stream_id) else {
                    return true;
                };
                if info.kind != Kind::Data {
                    return true;
                }
                let Some(pair) = self.pairs.get_mut(&info.request) else {
                    return true;
                };
                if !data.is_empty()
                    && let Some(tx) = &pair.to_pod
                {
                    if pair.started {
                        // Wait for the pod to take it, as spdystream's frame
                        // loop waits for the stream's reader.
                        if tx.send(data).await.is_err() {
                            pair.to_pod = None;
                        }
                    } else if tx.try_send(data).is_err() {
                        // Data before its error stream came, more than is
                        // buffered: refuse the stream rather than wait for a
                        // forward that may never start.
                        pair.to_pod = None;
                        pair.data = None;
                        self.streams.remove(&stream_id);
                        self.send(Frame::RstStream {
                            stream_id,
                            status: rst::FLOW_CONTROL_ERROR,
                        })
                        .await;
                        return true;
                    }
                }
                if fin {
                    pair.to_pod = None;
                }
            }
            Frame::RstStream { stream_id, .. } => {
                if let Some(info) = self.streams.remove(&stream_id)
                    && info.kind == Kind::Data
                    && let Some(pair) = self.pairs.get_mut(&info.request)
                {
                    pair.data = None;
                    pair.to_pod = None;
                    if let Some(cancel) = pair.cancel.take() {
                        let _ = cancel.send(());
                    }
                }
            }
            Frame::Ping { id } => self.send(Frame::Ping { id }).await,
            Frame::GoAway { .. } => return false,
            // No flow control (spdystream has none), settings and late headers
            // change nothing here.
            _ => {}
        }
        true
    }

    async fn add_stream(&mut self, stream_id: u32, headers: &Headers) {
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let kind = match get(STREAM_TYPE) {
            Some("error") => Kind::Error,
            Some("data") => Kind::Data,
            other => {
                // httpstream.go requestStreamHandler: an unknown type is refused.
                tracing::debug!(
                    "port-forward: stream {stream_id} has invalid stream type {:?}",
                    other.unwrap_or("")
                );
                self.send(Frame::RstStream {
                    stream_id,
                    status: rst::PROTOCOL_ERROR,
                })
                .await;
                return;
            }
        };
        // httpstream.go requestID: clients before requestID paired an error
        // stream with the data stream two ids later.
        let request = match get(REQUEST_ID) {
            Some(id) => id.to_string(),
            None if kind == Kind::Error => stream_id.to_string(),
            None => stream_id.saturating_sub(2).to_string(),
        };
        if !self.pairs.contains_key(&request) {
            let (tx, rx) = mpsc::channel(64);
            self.pairs.insert(
                request.clone(),
                Pair {
                    error: None,
                    data: None,
                    port: 0,
                    to_pod: Some(tx),
                    from_client: Some(rx),
                    cancel: None,
                    started: false,
                },
            );
            let events = self.events.clone();
            let id = request.clone();
            self.tasks.spawn(async move {
                tokio::time::sleep(CREATION_TIMEOUT).await;
                let _ = events.send(Event::Timeout(id)).await;
            });
        }
        let Some(pair) = self.pairs.get_mut(&request) else {
            return;
        };
        let slot = match kind {
            Kind::Error => &mut pair.error,
            Kind::Data => &mut pair.data,
        };
        if slot.is_some() || pair.started {
            self.send(Frame::RstStream {
                stream_id,
                status: rst::PROTOCOL_ERROR,
            })
            .await;
            return;
        }
        *slot = Some(stream_id);
        if kind == Kind::Data {
            // httpstream.go portForward: the data stream's `port`; a bad one
            // parses as 0, which nothing listens on.
            pair.port = get(PORT).and_then(|p| p.parse().ok()).unwrap_or(0);
        }
        self.streams.insert(
            stream_id,
            StreamInfo {
                request: request.clone(),
                kind,
            },
        );
        if let (Some(error), Some(data)) = (pair.error, pair.data) {
            pair.started = true;
            let (cancel_tx, cancel_rx) = oneshot::channel();
            pair.cancel = Some(cancel_tx);
            let from_client = pair
                .from_client
                .take()
                .unwrap_or_else(|| mpsc::channel(1).1);
            let job = Forward {
                target: self.target.clone(),
                port: pair.port,
                data,
                error,
                out: self.out.clone(),
            };
            let events = self.events.clone();
            self.tasks.spawn(async move {
                job.run(from_client, cancel_rx).await;
                let _ = events.send(Event::Done(request)).await;
            });
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Timeout(request) => {
                let Some(pair) = self.pairs.get(&request).filter(|p| !p.started) else {
                    return;
                };
                if let Some(error) = pair.error {
                    let msg =
                        format!("(conn=localkube, request={request}) timeout waiting for streams");
                    self.send(Frame::Data {
                        stream_id: error,
                        fin: false,
                        data: msg.into_bytes(),
                    })
                    .await;
                    self.send(Frame::Data {
                        stream_id: error,
                        fin: true,
                        data: Vec::new(),
                    })
                    .await;
                }
                self.forget(&request);
            }
            Event::Done(request) => self.forget(&request),
        }
    }

    fn forget(&mut self, request: &str) {
        if self.pairs.remove(request).is_some() {
            self.streams.retain(|_, s| s.request != request);
        }
    }
}

/// One forwarded connection.
struct Forward {
    target: Target,
    port: u16,
    data: u32,
    error: u32,
    out: mpsc::Sender<Frame>,
}

impl Forward {
    async fn run(self, from_client: mpsc::Receiver<Vec<u8>>, cancel: oneshot::Receiver<()>) {
        let data_fin = AtomicBool::new(false);
        let outcome = tokio::select! {
            r = self.copy(from_client, &data_fin) => Some(r),
            // The client reset the data stream: nothing more goes on it.
            _ = cancel => None,
        };
        if let Some(Err(msg)) = &outcome {
            self.frame(self.error, false, msg.as_bytes().to_vec()).await;
        }
        if outcome.is_some() && !data_fin.load(Ordering::Relaxed) {
            self.frame(self.data, true, Vec::new()).await;
        }
        self.frame(self.error, true, Vec::new()).await;
    }

    async fn frame(&self, stream_id: u32, fin: bool, data: Vec<u8>) {
        let _ = self
            .out
            .send(Frame::Data {
                stream_id,
                fin,
                data,
            })
            .await;
    }

    /// containerd `portForward`: connect, copy both ways, stop one second
    /// after the first direction ends.
    async fn copy(
        &self,
        mut from_client: mpsc::Receiver<Vec<u8>>,
        data_fin: &AtomicBool,
    ) -> Result<(), String> {
        let tcp = self.target.connect(self.port).await?;
        let (mut rd, mut wr) = tcp.into_split();
        let to_pod = async {
            while let Some(bytes) = from_client.recv().await {
                wr.write_all(&bytes).await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let from_pod = async {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = rd.read(&mut buf).await?;
                if n == 0 {
                    self.frame(self.data, true, Vec::new()).await;
                    data_fin.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                if self
                    .out
                    .send(Frame::Data {
                        stream_id: self.data,
                        fin: false,
                        data: buf[..n].to_vec(),
                    })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        };
        let (mut to_pod, mut from_pod) = (pin!(to_pod), pin!(from_pod));
        let (first, to_pod_done) = tokio::select! {
            r = &mut to_pod => (r, true),
            r = &mut from_pod => (r, false),
        };
        let second = if to_pod_done {
            tokio::time::timeout(GRACE, &mut from_pod).await
        } else {
            tokio::time::timeout(GRACE, &mut to_pod).await
        };
        let result = first.and(second.unwrap_or(Ok(())));
        result.map_err(|e| self.target.copy_error(self.port, &e))
    }
}

/// SPDY tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`): each
/// binary message carries the next bytes of the SPDY connection, both ways
/// (client-go `tools/portforward/tunneling_connection.go`).
pub(crate) async fn tunnelled(socket: WebSocket, target: Target) {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (mut r, mut w) = tokio::io::split(theirs);
    let inbound = async move {
        while let Some(Ok(msg)) = ws_rx.next().await {
            match msg {
                Message::Binary(bytes) if w.write_all(&bytes).await.is_err() => break,
                Message::Binary(_) => {}
                // A text message is a protocol error for the tunnel.
                Message::Text(_) | Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = w.shutdown().await;
    };
    let outbound = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws_tx
                        .send(Message::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = ws_tx
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    };
    tokio::join!(serve(ours, target), inbound, outbound);
}

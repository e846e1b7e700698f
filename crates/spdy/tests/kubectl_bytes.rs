//! Frame by frame against what a real client sends: the bytes kubectl 1.35
//! (client-go `tools/portforward` on moby/spdystream) wrote over a plain
//! `Upgrade: SPDY/3.1` port-forward connection for one local connection
//! carrying an HTTP request. Captured against a plain-HTTP fake API server
//! (discovery, a Running pod `web`, and a `101` to the portforward POST that
//! answers each SYN_STREAM with an empty SYN_REPLY and records every byte) with
//! `KUBECTL_PORT_FORWARD_WEBSOCKETS=false kubectl port-forward pod/web
//! 38123:8080`, then `curl http://127.0.0.1:38123/`.

use spdy::{Decoder, Frame};

const CAPTURE: &[u8] = include_bytes!("fixtures/kubectl-1.35-portforward.bin");

fn frames() -> Vec<Frame> {
    let mut dec = Decoder::new();
    let mut rest = CAPTURE;
    let mut out = Vec::new();
    while let Some((frame, used)) = dec.decode(rest).expect("kubectl's bytes decode") {
        out.push(frame);
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "{} bytes left over", rest.len());
    out
}

/// A SYN_STREAM's id and its headers, sorted (spdystream writes them in Go's
/// random map order; the set is kubectl's contract).
fn syn(f: &Frame) -> (u32, Vec<(String, String)>) {
    match f {
        Frame::SynStream {
            stream_id,
            associated_to: 0,
            fin: false,
            unidirectional: false,
            headers,
            ..
        } => {
            let mut h = headers.clone();
            h.sort();
            (*stream_id, h)
        }
        other => panic!("not a plain SYN_STREAM: {other:?}"),
    }
}

fn headers(kind: &str) -> Vec<(String, String)> {
    // client-go's header names, lowercased on the wire by spdystream.
    let mut h: Vec<(String, String)> = [("streamtype", kind), ("port", "8080"), ("requestid", "0")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    h.sort();
    h
}

#[test]
fn kubectl_opens_an_error_stream_then_a_data_stream_per_connection() {
    let frames = frames();
    assert_eq!(frames.len(), 6, "{frames:?}");
    // portforward.go handleConnection: the error stream, closed for writing at
    // once (its header block starts the zlib stream: DICTID of SPDY/3's dictionary).
    assert_eq!(syn(&frames[0]), (1, headers("error")));
    assert_eq!(
        frames[1],
        Frame::Data {
            stream_id: 1,
            fin: true,
            data: vec![]
        }
    );
    // Then the data stream, same port and requestID (its header block goes on
    // with the same zlib stream).
    assert_eq!(syn(&frames[2]), (3, headers("data")));
    // The local connection's bytes, then FIN when the local side is done.
    match &frames[3] {
        Frame::Data {
            stream_id: 3,
            fin: false,
            data,
        } => assert!(data.starts_with(b"GET / HTTP/1.1\r\n")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        frames[4],
        Frame::Data {
            stream_id: 3,
            fin: true,
            data: vec![]
        }
    );
    // NewClientConnectionWithPings: pings with odd ids from the client.
    assert_eq!(frames[5], Frame::Ping { id: 1 });
}

//! SPDY/3.1 frames and header blocks, enough to serve Kubernetes port-forward.
//!
//! kubectl still speaks SPDY/3.1 for port-forward (client-go
//! `tools/portforward`, on top of `github.com/moby/spdystream`), either over a
//! plain `Upgrade: SPDY/3.1` connection or tunnelled inside a WebSocket
//! (`SPDY/3.1+portforward.k8s.io`). No maintained Rust crate speaks SPDY, so
//! this one implements the framing layer of the SPDY/3 draft
//! (<https://www.chromium.org/spdy/spdy-protocol/spdy-protocol-draft3-1/>,
//! section 2.2 frames, 2.6 control frames, 2.6.10 header blocks), sans-IO:
//! [`Decoder::decode`] takes bytes and gives frames, [`Encoder::encode`] takes
//! frames and gives bytes. Stream state and flow control belong to the caller
//! (spdystream does no flow control either: it never waits for WINDOW_UPDATE).
//!
//! Header blocks are zlib-compressed with one stream per direction per
//! connection, primed with the dictionary of section 2.6.10.1.
//!
//! ```
//! use spdy::{Decoder, Encoder, Frame};
//! let (mut enc, mut dec) = (Encoder::new().unwrap(), Decoder::new());
//! let syn = Frame::SynStream {
//!     stream_id: 1,
//!     associated_to: 0,
//!     priority: 0,
//!     fin: false,
//!     unidirectional: false,
//!     headers: vec![("port".into(), "8080".into())],
//! };
//! let bytes = enc.encode(&syn).unwrap();
//! let (frame, used) = dec.decode(&bytes).unwrap().unwrap();
//! assert_eq!((frame, used), (syn, bytes.len()));
//! ```

use std::sync::OnceLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// A frame's payload length is 24 bits.
pub const MAX_LENGTH: usize = (1 << 24) - 1;
/// The most a header block may inflate to; port-forward's are tiny.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// Header name/value pairs; names are lowercase (section 2.6.10), several
/// values of one name are joined by NUL as on the wire.
pub type Headers = Vec<(String, String)>;

/// RST_STREAM status codes (section 2.6.3).
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const FLOW_CONTROL_ERROR: u32 = 7;
    pub const INTERNAL_ERROR: u32 = 6;
    pub const STREAM_IN_USE: u32 = 8;
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        clear: bool,
        /// `(flags, id, value)`
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Vec<u8>,
    },
    /// A control frame type this crate does not know (CREDENTIAL, or a
    /// future one): section 2.2.1 says to ignore it.
    Unknown {
        kind: u16,
    },
}

/// What can go wrong reading or writing frames. All are connection errors:
/// after one, the header compression state is lost and the session must end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported SPDY version {0} (this peer speaks SPDY/3.1)")]
    Version(u16),
    #[error("invalid {kind} frame: {why}")]
    Invalid { kind: &'static str, why: String },
    #[error("header block: {0}")]
    HeaderBlock(String),
    #[error("frame payload of {0} bytes is over the 24-bit limit")]
    TooLong(usize),
}

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// The names of the length-prefixed part of the header dictionary
/// (SPDY/3 section 2.6.10.1), in order.
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail, which has no length prefixes.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec",
    " 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,",
    "image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,public",
    "privatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The zlib dictionary every SPDY/3 header stream starts from.
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        let mut d = Vec::with_capacity(1423);
        for w in DICTIONARY_WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
        d
    })
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn invalid(kind: &'static str, why: impl Into<String>) -> Error {
    Error::Invalid {
        kind,
        why: why.into(),
    }
}

/// Reads frames; owns the inbound header decompressor.
pub struct Decoder {
    z: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            z: Decompress::new(true),
        }
    }

    /// The first whole frame at the start of `buf` and how many bytes it
    /// took, or `None` if `buf` holds only part of one.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<(Frame, usize)>, Error> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let flags = buf[4];
        let len = (be32(&buf[4..8]) & 0x00ff_ffff) as usize;
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let payload = &buf[8..8 + len];
        let fin = flags & FLAG_FIN != 0;
        let frame = if buf[0] & 0x80 == 0 {
            let stream_id = be32(buf) & 0x7fff_ffff;
            if stream_id == 0 {
                return Err(invalid("DATA", "stream id 0"));
            }
            Frame::Data {
                stream_id,
                fin,
                data: payload.to_vec(),
            }
        } else {
            let version = u16::from_be_bytes([buf[0], buf[1]]) & 0x7fff;
            if version != VERSION {
                return Err(Error::Version(version));
            }
            let kind = u16::from_be_bytes([buf[2], buf[3]]);
            self.control(kind, flags, payload)?
        };
        Ok(Some((frame, 8 + len)))
    }

    fn control(&mut self, kind: u16, flags: u8, p: &[u8]) -> Result<Frame, Error> {
        let fin = flags & FLAG_FIN != 0;
        let need = |name: &'static str, n: usize| {
            if p.len() < n {
                Err(invalid(
                    name,
                    format!("{} bytes of payload, at least {n} needed", p.len()),
                ))
            } else {
                Ok(())
            }
        };
        let stream = |name: &'static str| {
            let id = be32(p) & 0x7fff_ffff;
            if id == 0 {
                Err(invalid(name, "stream id 0"))
            } else {
                Ok(id)
            }
        };
        Ok(match kind {
            SYN_STREAM => {
                need("SYN_STREAM", 10)?;
                Frame::SynStream {
                    stream_id: stream("SYN_STREAM")?,
                    associated_to: be32(&p[4..]) & 0x7fff_ffff,
                    priority: p[8] >> 5,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: self.headers(&p[10..])?,
                }
            }
            SYN_REPLY => {
                need("SYN_REPLY", 4)?;
                Frame::SynReply {
                    stream_id: stream("SYN_REPLY")?,
                    fin,
                    headers: self.headers(&p[4..])?,
                }
            }
            HEADERS => {
                need("HEADERS", 4)?;
                Frame::Headers {
                    stream_id: stream("HEADERS")?,
                    fin,
                    headers: self.headers(&p[4..])?,
                }
            }
            RST_STREAM => {
                need("RST_STREAM", 8)?;
                Frame::RstStream {
                    stream_id: stream("RST_STREAM")?,
                    status: be32(&p[4..]),
                }
            }
            SETTINGS => {
                need("SETTINGS", 4)?;
                let n = be32(p) as usize;
                if p.len() != 4 + n.saturating_mul(8) {
                    return Err(invalid(
                        "SETTINGS",
                        format!("{n} entries in {} bytes", p.len()),
                    ));
                }
                let entries = p[4..]
                    .chunks_exact(8)
                    .map(|e| (e[0], be32(e) & 0x00ff_ffff, be32(&e[4..])))
                    .collect();
                Frame::Settings {
                    clear: fin,
                    entries,
                }
            }
            PING => {
                need("PING", 4)?;
                Frame::Ping { id: be32(p) }
            }
            GOAWAY => {
                need("GOAWAY", 8)?;
                Frame::GoAway {
                    last_good_stream_id: be32(p) & 0x7fff_ffff,
                    status: be32(&p[4..]),
                }
            }
            WINDOW_UPDATE => {
                need("WINDOW_UPDATE", 8)?;
                Frame::WindowUpdate {
                    stream_id: be32(p) & 0x7fff_ffff,
                    delta: be32(&p[4..]) & 0x7fff_ffff,
                }
            }
            kind => Frame::Unknown { kind },
        })
    }

    /// Inflate one header block (a sync-flushed piece of the connection's
    /// zlib stream) and parse its pairs.
    fn headers(&mut self, mut input: &[u8]) -> Result<Headers, Error> {
        let mut raw = Vec::with_capacity(256);
        loop {
            if raw.len() == raw.capacity() {
                if raw.len() >= MAX_HEADER_BLOCK {
                    return Err(Error::HeaderBlock(format!(
                        "inflates to more than {MAX_HEADER_BLOCK} bytes"
                    )));
                }
                raw.reserve(raw.len());
            }
            let (in_before, out_before) = (self.z.total_in(), raw.len());
            let result = self
                .z
                .decompress_vec(input, &mut raw, FlushDecompress::Sync);
            input = &input[(self.z.total_in() - in_before) as usize..];
            match result {
                Ok(Status::StreamEnd) => {
                    return Err(Error::HeaderBlock("the zlib stream ended".into()));
                }
                Ok(_) => {
                    if input.is_empty() && raw.len() < raw.capacity() {
                        break;
                    }
                    if raw.len() == out_before && !input.is_empty() && raw.len() < raw.capacity() {
                        return Err(Error::HeaderBlock("zlib made no progress".into()));
                    }
                }
                Err(e) => match e.needs_dictionary() {
                    Some(id) if id == adler32(dictionary()) => {
                        self.z
                            .set_dictionary(dictionary())
                            .map_err(|e| Error::HeaderBlock(e.to_string()))?;
                    }
                    Some(id) => {
                        return Err(Error::HeaderBlock(format!(
                            "asks for dictionary {id:#010x}, not SPDY/3's"
                        )));
                    }
                    None => return Err(Error::HeaderBlock(e.to_string())),
                },
            }
        }
        parse_pairs(&raw)
    }
}

fn parse_pairs(raw: &[u8]) -> Result<Headers, Error> {
    let bad = |why: &str| Error::HeaderBlock(why.to_string());
    let mut rest = raw;
    let mut take = |n: usize| -> Result<&[u8], Error> {
        if rest.len() < n {
            return Err(bad("truncated"));
        }
        let (a, b) = rest.split_at(n);
        rest = b;
        Ok(a)
    };
    let count = be32(take(4)?) as usize;
    // Each pair takes at least 8 bytes: refuse counts the block cannot hold.
    if count > raw.len() / 8 {
        return Err(bad("more pairs than bytes"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let n = be32(take(4)?) as usize;
        let name = std::str::from_utf8(take(n)?).map_err(|_| bad("a name is not UTF-8"))?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Error::HeaderBlock(format!(
                "header name {name:?} is empty or not lowercase"
            )));
        }
        let n = be32(take(4)?) as usize;
        let value = std::str::from_utf8(take(n)?).map_err(|_| bad("a value is not UTF-8"))?;
        out.push((name.to_string(), value.to_string()));
    }
    if !rest.is_empty() {
        return Err(bad("bytes after the last pair"));
    }
    Ok(out)
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// Writes frames; owns the outbound header compressor.
pub struct Encoder {
    z: Compress,
}

impl Encoder {
    pub fn new() -> Result<Self, Error> {
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(dictionary())
            .map_err(|e| Error::HeaderBlock(e.to_string()))?;
        Ok(Encoder { z })
    }

    /// The bytes of `frame`.
    pub fn encode(&mut self, frame: &Frame) -> Result<Vec<u8>, Error> {
        let (kind, flags, payload): (u16, u8, Vec<u8>) = match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if data.len() > MAX_LENGTH {
                    return Err(Error::TooLong(data.len()));
                }
                let mut out = Vec::with_capacity(8 + data.len());
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&len_flags(u8::from(*fin), data.len()));
                out.extend_from_slice(data);
                return Ok(out);
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&(associated_to & 0x7fff_ffff).to_be_bytes());
                p.push((priority & 0x07) << 5);
                p.push(0);
                p.extend(self.header_block(headers)?);
                let flags = u8::from(*fin)
                    | if *unidirectional {
                        FLAG_UNIDIRECTIONAL
                    } else {
                        0
                    };
                (SYN_STREAM, flags, p)
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => (
                SYN_REPLY,
                u8::from(*fin),
                self.stream_block(*stream_id, headers)?,
            ),
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => (
                HEADERS,
                u8::from(*fin),
                self.stream_block(*stream_id, headers)?,
            ),
            Frame::RstStream { stream_id, status } => {
                (RST_STREAM, 0, two_words(*stream_id & 0x7fff_ffff, *status))
            }
            Frame::Settings { clear, entries } => {
                let mut p = (entries.len() as u32).to_be_bytes().to_vec();
                for (flags, id, value) in entries {
                    p.extend_from_slice(
                        &((u32::from(*flags) << 24) | (id & 0x00ff_ffff)).to_be_bytes(),
                    );
                    p.extend_from_slice(&value.to_be_bytes());
                }
                (SETTINGS, u8::from(*clear), p)
            }
            Frame::Ping { id } => (PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => (
                GOAWAY,
                0,
                two_words(*last_good_stream_id & 0x7fff_ffff, *status),
            ),
            Frame::WindowUpdate { stream_id, delta } => (
                WINDOW_UPDATE,
                0,
                two_words(*stream_id & 0x7fff_ffff, delta & 0x7fff_ffff),
            ),
            Frame::Unknown { kind } => {
                return Err(invalid(
                    "control",
                    format!("cannot write unknown type {kind}"),
                ));
            }
        };
        if payload.len() > MAX_LENGTH {
            return Err(Error::TooLong(payload.len()));
        }
        let mut out = Vec::with_capacity(8 + payload.len());
        out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&len_flags(flags, payload.len()));
        out.extend(payload);
        Ok(out)
    }

    fn stream_block(&mut self, stream_id: u32, headers: &Headers) -> Result<Vec<u8>, Error> {
        let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
        p.extend(self.header_block(headers)?);
        Ok(p)
    }

    /// Serialize and deflate (sync flush) one header block.
    fn header_block(&mut self, headers: &Headers) -> Result<Vec<u8>, Error> {
        let mut raw = (headers.len() as u32).to_be_bytes().to_vec();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            raw.extend_from_slice(&(name.len() as u32).to_be_bytes());
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(&(value.len() as u32).to_be_bytes());
            raw.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| Error::HeaderBlock(e.to_string()))?;
            input = &input[(self.z.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn len_flags(flags: u8, len: usize) -> [u8; 4] {
    ((u32::from(flags) << 24) | len as u32).to_be_bytes()
}

fn two_words(a: u32, b: u32) -> Vec<u8> {
    let mut p = a.to_be_bytes().to_vec();
    p.extend_from_slice(&b.to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_the_specs() {
        // Length and Adler-32 of the SPDY/3 dictionary (the zlib DICTID that
        // every SPDY/3 header stream, spdystream's included, announces).
        assert_eq!(dictionary().len(), 1423);
        assert_eq!(adler32(dictionary()), 0xe3c6_a7c2);
    }

    #[test]
    fn round_trips_every_frame_and_keeps_compression_state() {
        let (mut enc, mut dec) = (Encoder::new().unwrap(), Decoder::new());
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 3,
                fin: false,
                unidirectional: true,
                headers: vec![
                    ("streamtype".into(), "error".into()),
                    ("port".into(), "8080".into()),
                    ("requestid".into(), "0".into()),
                ],
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: vec![],
            },
            Frame::Headers {
                stream_id: 3,
                fin: true,
                headers: vec![("a".into(), "b\0c".into())],
            },
            Frame::RstStream {
                stream_id: 3,
                status: rst::CANCEL,
            },
            Frame::Settings {
                clear: true,
                entries: vec![(1, 7, 65536), (0, 4, 100)],
            },
            Frame::Ping { id: 2 },
            Frame::GoAway {
                last_good_stream_id: 5,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 1000,
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: b"GET / HTTP/1.1\r\n".to_vec(),
            },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(enc.encode(f).unwrap());
        }
        // Fed a byte at a time, every frame comes out whole, in order.
        let mut got = Vec::new();
        let mut buf = Vec::new();
        for b in wire {
            buf.push(b);
            if let Some((f, n)) = dec.decode(&buf).unwrap() {
                assert_eq!(n, buf.len());
                buf.clear();
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn control_frame_layout_is_the_drafts() {
        let mut enc = Encoder::new().unwrap();
        // Section 2.6.5: PING is 80 03 00 06, flags 0, length 4, then the id.
        assert_eq!(
            enc.encode(&Frame::Ping { id: 7 }).unwrap(),
            [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 7]
        );
        // Section 2.2.2: a data frame with FIN.
        assert_eq!(
            enc.encode(&Frame::Data {
                stream_id: 5,
                fin: true,
                data: vec![]
            })
            .unwrap(),
            [0, 0, 0, 5, 1, 0, 0, 0]
        );
        // Section 2.6.3: RST_STREAM with CANCEL.
        assert_eq!(
            enc.encode(&Frame::RstStream {
                stream_id: 1,
                status: rst::CANCEL
            })
            .unwrap(),
            [0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 5]
        );
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        let mut dec = Decoder::new();
        // SPDY/2.
        assert!(matches!(
            dec.decode(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]),
            Err(Error::Version(2))
        ));
        // A SYN_STREAM too short to hold its fields.
        assert!(dec.decode(&[0x80, 3, 0, 1, 0, 0, 0, 2, 0, 1]).is_err());
        // A header block that is not zlib.
        let mut f = vec![0x80, 3, 0, 2, 0, 0, 0, 8, 0, 0, 0, 1];
        f.extend_from_slice(&[1, 2, 3, 4]);
        assert!(Decoder::new().decode(&f).is_err());
        // Data on stream 0.
        assert!(Decoder::new().decode(&[0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // Incomplete frames wait for more bytes.
        assert!(
            Decoder::new()
                .decode(&[0, 0, 0, 1, 0, 0, 0, 9, 1])
                .unwrap()
                .is_none()
        );
        // An unknown control type is passed up to be ignored.
        assert_eq!(
            Decoder::new()
                .decode(&[0x80, 3, 0, 10, 0, 0, 0, 0])
                .unwrap()
                .unwrap()
                .0,
            Frame::Unknown { kind: 10 }
        );
    }

    #[test]
    fn header_pair_counts_are_bounded() {
        assert!(parse_pairs(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(parse_pairs(&[0, 0, 0, 1, 0, 0, 0, 1, b'A', 0, 0, 0, 0]).is_err());
        assert_eq!(
            parse_pairs(&[0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b']).unwrap(),
            vec![("a".to_string(), "b".to_string())]
        );
    }
}

//! Escaping text for HTML and XML (the same five characters matter in both).

use std::io::{self, Write};

/// Bytes that need an entity.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t
};

/// Writes `s` with `& < > " '` escaped, safe in element text and in
/// double- or single-quoted attributes.
pub(crate) fn write_escaped(w: &mut (impl Write + ?Sized), s: &str) -> io::Result<()> {
    let mut buf = Vec::with_capacity(s.len() + 16);
    push_escaped(&mut buf, s.as_bytes());
    w.write_all(&buf)
}

/// [`write_escaped`] into a buffer, for text already known to be UTF-8
/// (only ASCII bytes are replaced, so the output stays valid wherever the
/// input is).
pub(crate) fn push_escaped(buf: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if SPECIAL[b as usize] {
            buf.extend_from_slice(&bytes[start..i]);
            buf.extend_from_slice(entity(b));
            start = i + 1;
        }
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// Element text (never an attribute value) escaped into a buffer: only
/// `& < >` need it there, and `memchr3` finds them many bytes at a time,
/// which matters for the megabytes of source in an HTML report.
pub(crate) fn push_text(buf: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for i in memchr::memchr3_iter(b'&', b'<', b'>', bytes) {
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(entity(bytes[i]));
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// The entity of one of the [`SPECIAL`] bytes.
fn entity(b: u8) -> &'static [u8] {
    match b {
        b'&' => b"&amp;",
        b'<' => b"&lt;",
        b'>' => b"&gt;",
        b'"' => b"&quot;",
        _ => b"&#39;",
    }
}

/// `s` escaped, as a value for `write!`.
pub(crate) struct Esc<'a>(pub &'a str);

impl std::fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut start = 0;
        for (i, c) in self.0.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => continue,
            };
            f.write_str(&self.0[start..i])?;
            f.write_str(rep)?;
            start = i + 1;
        }
        f.write_str(&self.0[start..])
    }
}

/// Appends the decimal digits of `n` (the per-line records of large
/// reports are written with this instead of `format_args!`).
pub(crate) fn push_u32(buf: &mut Vec<u8>, n: u32) {
    push_u64(buf, n.into());
}

/// [`push_u32`] for a u64.
pub(crate) fn push_u64(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_both_ways() {
        let mut out = Vec::new();
        write_escaped(&mut out, "a<b>&\"c'").unwrap();
        assert_eq!(out, b"a&lt;b&gt;&amp;&quot;c&#39;");
        assert_eq!(Esc("x<é>").to_string(), "x&lt;é&gt;");
        let mut b = Vec::new();
        for n in [0, 7, 10, 4_294_967_295] {
            push_u32(&mut b, n);
            b.push(b' ');
        }
        push_u64(&mut b, u64::MAX);
        assert_eq!(b, b"0 7 10 4294967295 18446744073709551615");
        let mut e = Vec::new();
        push_escaped(&mut e, "a<b>&\"c'é".as_bytes());
        assert_eq!(e, "a&lt;b&gt;&amp;&quot;c&#39;é".as_bytes());
        e.clear();
        push_text(&mut e, "a<b>&\"c'é<".as_bytes());
        assert_eq!(e, "a&lt;b&gt;&amp;\"c'é&lt;".as_bytes());
    }
}

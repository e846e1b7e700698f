//! Escaping text for HTML and XML (the same five characters matter in both).

use std::io::{self, Write};

/// Writes `s` with `& < > " '` escaped, safe in element text and in
/// double- or single-quoted attributes.
pub(crate) fn write_escaped(w: &mut (impl Write + ?Sized), s: &str) -> io::Result<()> {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&#39;",
            _ => continue,
        };
        w.write_all(&bytes[start..i])?;
        w.write_all(rep)?;
        start = i + 1;
    }
    w.write_all(&bytes[start..])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_both_ways() {
        let mut out = Vec::new();
        write_escaped(&mut out, "a<b>&\"c'").unwrap();
        assert_eq!(out, b"a&lt;b&gt;&amp;&quot;c&#39;");
        assert_eq!(Esc("x<é>").to_string(), "x&lt;é&gt;");
    }
}

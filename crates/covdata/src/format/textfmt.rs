//! `go tool covdata textfmt`: the text profile `go tool cover` reads.

use std::io::{self, Write};

use crate::model::Packages;

/// `mode: <mode>` then `file:sl.sc,el.ec stmts count` per block.
pub fn write(packages: &dyn Packages, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "mode: {}", packages.mode().as_str())?;
    // Lines are put together in one buffer, written out in large pieces.
    let mut out = Vec::with_capacity(1 << 16);
    packages.for_each(&mut |pkg| {
        for (f, u) in super::sorted_units(pkg) {
            out.extend_from_slice(f.file.as_bytes());
            // `:sl.sc,el.ec stmts count\n`: at most 6 * 11 bytes.
            let mut tail = [0u8; 66];
            let mut n = 0;
            for (sep, v) in [
                (b':', u.start_line),
                (b'.', u.start_col),
                (b',', u.end_line),
                (b'.', u.end_col),
                (b' ', u.statements),
                (b' ', u.count),
            ] {
                tail[n] = sep;
                n += 1 + decimal(v, &mut tail[n + 1..]);
            }
            tail[n] = b'\n';
            out.extend_from_slice(&tail[..=n]);
            if out.len() >= 1 << 16 {
                w.write_all(&out)?;
                out.clear();
            }
        }
        Ok(())
    })?;
    w.write_all(&out)
}

/// `v` in decimal at the start of `to` (which has room for 10 digits);
/// returns the number of digits.
fn decimal(v: u32, to: &mut [u8]) -> usize {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v).as_bytes();
    to[..digits.len()].copy_from_slice(digits);
    digits.len()
}

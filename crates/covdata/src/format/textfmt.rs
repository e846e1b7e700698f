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
            out.push(b':');
            push_u32(&mut out, u.start_line);
            out.push(b'.');
            push_u32(&mut out, u.start_col);
            out.push(b',');
            push_u32(&mut out, u.end_line);
            out.push(b'.');
            push_u32(&mut out, u.end_col);
            out.push(b' ');
            push_u32(&mut out, u.statements);
            out.push(b' ');
            push_u32(&mut out, u.count);
            out.push(b'\n');
            if out.len() >= 1 << 16 {
                w.write_all(&out)?;
                out.clear();
            }
        }
        Ok(())
    })?;
    w.write_all(&out)
}

fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

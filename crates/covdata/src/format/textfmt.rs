//! `go tool covdata textfmt`: the text profile `go tool cover` reads.

use std::io::{self, Write};

use crate::model::Packages;

/// `mode: <mode>` then `file:sl.sc,el.ec stmts count` per block.
pub fn write(packages: &dyn Packages, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "mode: {}", packages.mode().as_str())?;
    let mut line = Vec::with_capacity(256);
    packages.for_each(&mut |pkg| {
        for (f, u) in super::sorted_units(pkg) {
            line.clear();
            line.extend_from_slice(f.file.as_bytes());
            line.push(b':');
            push_u32(&mut line, u.start_line);
            line.push(b'.');
            push_u32(&mut line, u.start_col);
            line.push(b',');
            push_u32(&mut line, u.end_line);
            line.push(b'.');
            push_u32(&mut line, u.end_col);
            line.push(b' ');
            push_u32(&mut line, u.statements);
            line.push(b' ');
            push_u32(&mut line, u.count);
            line.push(b'\n');
            w.write_all(&line)?;
        }
        Ok(())
    })
}

fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

//! A port of the parts of Go's `text/tabwriter` that `go tool covdata func`
//! uses (no flags, tab padding), so column alignment matches byte for byte:
//! elastic tabstops, widths counted in runes (an invalid UTF-8 byte counts
//! as one), Go's escape character `0xff`, and line/cell terminators
//! `\t`, `\v`, `\n`, `\f`.

#[derive(Clone, Copy, Default)]
struct Cell {
    size: usize,
    width: usize,
    htab: bool,
}

/// Collects text, aligns it on [`TabWriter::flush`].
pub struct TabWriter {
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    buf: Vec<u8>,
    pos: usize,
    cell: Cell,
    end_char: u8,
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    out: Vec<u8>,
}

const ESCAPE: u8 = 0xff;

/// Go's `utf8.RuneCount`: invalid bytes count one each.
fn rune_count(b: &[u8]) -> usize {
    b.utf8_chunks()
        .map(|c| c.valid().chars().count() + c.invalid().len())
        .sum()
}

impl TabWriter {
    pub fn new(minwidth: usize, tabwidth: usize, padding: usize) -> Self {
        let mut t = TabWriter {
            minwidth,
            tabwidth,
            padding,
            buf: Vec::new(),
            pos: 0,
            cell: Cell::default(),
            end_char: 0,
            lines: Vec::new(),
            widths: Vec::new(),
            out: Vec::new(),
        };
        t.reset();
        t
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.cell = Cell::default();
        self.end_char = 0;
        self.lines.clear();
        self.widths.clear();
        self.lines.push(Vec::new());
    }

    fn append(&mut self, text: &[u8]) {
        self.buf.extend_from_slice(text);
        self.cell.size += text.len();
    }

    fn update_width(&mut self) {
        self.cell.width += rune_count(&self.buf[self.pos..]);
        self.pos = self.buf.len();
    }

    fn end_escape(&mut self) {
        if self.end_char == ESCAPE {
            self.update_width();
            // Escape bytes are not counted (no StripEscape flag).
            self.cell.width = self.cell.width.saturating_sub(2);
        }
        self.pos = self.buf.len();
        self.end_char = 0;
    }

    fn terminate_cell(&mut self, htab: bool) -> usize {
        self.cell.htab = htab;
        let line = self.lines.last_mut().expect("reset leaves one line");
        line.push(self.cell);
        self.cell = Cell::default();
        line.len()
    }

    /// Feed text (Go's `Write`).
    pub fn write(&mut self, buf: &[u8]) {
        let mut n = 0;
        for (i, &ch) in buf.iter().enumerate() {
            if self.end_char == 0 {
                match ch {
                    b'\t' | b'\x0b' | b'\n' | b'\x0c' => {
                        self.append(&buf[n..i]);
                        self.update_width();
                        n = i + 1;
                        let ncells = self.terminate_cell(ch == b'\t');
                        if ch == b'\n' || ch == b'\x0c' {
                            self.lines.push(Vec::new());
                            if ch == b'\x0c' || ncells == 1 {
                                self.flush_inner();
                            }
                        }
                    }
                    ESCAPE => {
                        self.append(&buf[n..i]);
                        self.update_width();
                        n = i;
                        self.end_char = ESCAPE;
                    }
                    _ => {}
                }
            } else if ch == self.end_char {
                self.append(&buf[n..=i]);
                n = i + 1;
                self.end_escape();
            }
        }
        self.append(&buf[n..]);
    }

    fn flush_inner(&mut self) {
        if self.cell.size > 0 {
            if self.end_char != 0 {
                self.end_escape();
            }
            self.terminate_cell(false);
        }
        let nlines = self.lines.len();
        self.format(0, 0, nlines);
        self.reset();
    }

    /// Align everything written so far and return the output.
    pub fn flush(mut self) -> Vec<u8> {
        self.flush_inner();
        self.out
    }

    fn write_padding(&mut self, textw: usize, cellw: usize) {
        if self.tabwidth == 0 {
            return;
        }
        let cellw = cellw.div_ceil(self.tabwidth) * self.tabwidth;
        let n = cellw.saturating_sub(textw);
        let tabs = n.div_ceil(self.tabwidth);
        self.out.extend(std::iter::repeat_n(b'\t', tabs));
    }

    fn write_lines(&mut self, mut pos: usize, line0: usize, line1: usize) -> usize {
        for i in line0..line1 {
            for j in 0..self.lines[i].len() {
                let c = self.lines[i][j];
                if c.size > 0 {
                    self.out.extend_from_slice(&self.buf[pos..pos + c.size]);
                    pos += c.size;
                }
                if j < self.widths.len() {
                    self.write_padding(c.width, self.widths[j]);
                }
            }
            if i + 1 == self.lines.len() {
                // The last buffered line has no newline yet: the pending cell.
                self.out
                    .extend_from_slice(&self.buf[pos..pos + self.cell.size]);
                pos += self.cell.size;
            } else {
                self.out.push(b'\n');
            }
        }
        pos
    }

    fn format(&mut self, mut pos: usize, mut line0: usize, line1: usize) -> usize {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            pos = self.write_lines(pos, line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            pos = self.format(pos, line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(pos, line0, line1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_go() {
        let mut t = TabWriter::new(1, 8, 1);
        t.write(b"a.go:1:\tF\t50.0%\nlonger/file/name.go:10:\tMethod\t100.0%\ntotal\t(statements)\t75.0%\n");
        let out = String::from_utf8(t.flush()).unwrap();
        assert_eq!(
            out,
            "a.go:1:\t\t\tF\t\t50.0%\nlonger/file/name.go:10:\tMethod\t\t100.0%\ntotal\t\t\t(statements)\t75.0%\n"
        );
    }
}

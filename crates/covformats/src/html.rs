//! One self-contained HTML page (`coverage.html`): no network, no external
//! assets, readable without JavaScript.
//!
//! The page has a sortable package/file tree with statement coverage and
//! bars, then one section per file (shown when its link is followed, through
//! CSS `:target`) with the file's functions and its source. Source is
//! coloured exactly as `go tool cover -html` colours it: each unit is a span
//! of class `cov0` (not covered, red) or `cov1`..`cov10` (covered, grey to
//! green by `log(count)/log(max count in file)`; `cov8` when every count is
//! at most 1, as in set mode); text outside every unit is "not tracked" and
//! keeps the default colour. The script only sorts the tree (by a click on
//! a column, or on load from a `#sort=<name|stmts|covered|pct>[-desc]` link).

use crate::Options;
use crate::escape::{Esc, push_escaped, push_text, push_u64, write_escaped};
use crate::view::{FileView, Report};
use covdata::format::split;
use covdata::model::{CounterMode, Statements};
use std::io::{self, Write};
use std::ops::Range;

/// Source lines from which the page is rendered on two threads (about a
/// megabyte of Go; fewer cost more in a thread than they save), in pieces
/// of about [`CHUNK_LINES`] (a few hundred kilobytes of page).
const PARALLEL_LINES: usize = 30_000;
const CHUNK_LINES: usize = 4_000;

const STYLE: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg2: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); }
header, main, footer { padding: 0 24px; }
header h1 { font-size: 22px; margin: 18px 0 4px; }
header p, footer { color: var(--muted); margin: 4px 0 16px; }
table.tree, table.funcs { border-collapse: collapse; width: 100%; max-width: 1100px; }
table.tree th, table.tree td, table.funcs th, table.funcs td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left; }
table.tree th { background: var(--bg2); position: sticky; top: 0; }
table.tree th button { all: unset; cursor: pointer; font-weight: 600; }
table.tree th button::after { content: " \2195"; color: var(--muted); }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.pkg td { font-weight: 600; background: #fbfcfd; }
tr.file td:first-child { padding-left: 28px; }
td.cov { white-space: nowrap; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; width: 120px; height: 10px; margin-right: 8px; background: rgb(192, 0, 0); vertical-align: middle; border-radius: 2px; overflow: hidden; }
.bar span { display: block; height: 100%; background: rgb(44, 212, 149); }
section.src { display: none; margin: 24px 0; }
section.src:target { display: block; }
section.src h2 { font-size: 16px; margin: 0 0 4px; }
section.src p { margin: 0 0 8px; color: var(--muted); }
.code { display: flex; background: black; color: rgb(80, 80, 80); overflow-x: auto; margin-top: 12px; }
.code pre { margin: 0; padding: 8px; font: bold 12px/1.4 Menlo, Consolas, monospace; tab-size: 8; -moz-tab-size: 8; }
.code pre.nums { color: #555; text-align: right; border-right: 1px solid #333; user-select: none; }
#legend span { margin-right: 10px; }
#legend { background: black; padding: 6px 10px; display: inline-block; font: bold 12px Menlo, monospace; color: rgb(80, 80, 80); }
"#;

/// Sorts each package's group and the files within it; `tbody` per package
/// keeps files under their package whatever the order.
const SCRIPT: &str = r#"
(function () {
  var table = document.getElementById('tree');
  if (!table) return;
  var dir = {};
  function key(row, k) {
    var v = row.getAttribute('data-' + k);
    return k === 'name' ? v : parseFloat(v);
  }
  function cmp(k, d) {
    return function (a, b) {
      var x = key(a, k), y = key(b, k);
      return (x < y ? -1 : x > y ? 1 : 0) * d;
    };
  }
  var buttons = table.querySelectorAll('th button');
  function sortBy(k, d) {
    dir[k] = d;
    var groups = Array.prototype.slice.call(table.tBodies);
    groups.forEach(function (g) {
      var files = Array.prototype.slice.call(g.rows, 1).sort(cmp(k, d));
      files.forEach(function (r) { g.appendChild(r); });
    });
    groups.sort(function (a, b) { return cmp(k, d)(a.rows[0], b.rows[0]); });
    groups.forEach(function (g) { table.appendChild(g); });
    Array.prototype.forEach.call(buttons, function (b) {
      if (b.getAttribute('data-key') === k) {
        b.parentNode.setAttribute('aria-sort', d === 1 ? 'ascending' : 'descending');
      } else {
        b.parentNode.removeAttribute('aria-sort');
      }
    });
  }
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener('click', function () {
      var k = button.getAttribute('data-key');
      sortBy(k, dir[k] === 1 ? -1 : 1);
    });
  });
  // A link may carry an order: #sort=pct (ascending) or #sort=pct-desc.
  var m = /^#sort=(name|stmts|covered|pct)(-desc)?$/.exec(location.hash);
  if (m) sortBy(m[1], m[2] ? -1 : 1);
})();
"#;

/// Go's colour for coverage level `n` (0 = not covered, 1..=10 grey to green).
fn rgb(n: u32) -> String {
    if n == 0 {
        return "rgb(192, 0, 0)".into();
    }
    let n = n as i32;
    format!(
        "rgb({}, {}, {})",
        128 - 12 * (n - 1),
        128 + 12 * (n - 1),
        128 + 3 * (n - 1)
    )
}

/// Go's levels for the counts of a file whose largest count is `max`.
struct Levels {
    max: u32,
    /// `ln(max)`, once per file.
    ln_max: f64,
}

impl Levels {
    fn new(max: u32) -> Levels {
        Levels {
            max,
            ln_max: f64::from(max).ln(),
        }
    }

    fn of(&self, count: u32) -> u32 {
        if count == 0 {
            0
        } else if self.max <= 1 {
            8
        } else {
            let norm = f64::from(count).ln() / self.ln_max;
            (norm * 9.0).floor() as u32 + 1
        }
    }
}

pub fn write<W: Write>(report: &Report<'_>, options: &Options, out: &mut W) -> io::Result<()> {
    let total = report.statements;
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}",
        Esc(&options.title)
    )?;
    for n in 0..=10 {
        writeln!(out, ".cov{n} {{ color: {} }}", rgb(n))?;
    }
    out.write_all(b"</style>\n</head>\n<body>\n")?;
    writeln!(
        out,
        "<header id=\"top\"><h1>{}</h1><p>{:.1}% of statements ({} of {}) in {} packages, {} files &middot; mode {} &middot; {}</p></header>\n<main>",
        Esc(&options.title),
        total.percent(),
        total.covered,
        total.total,
        report.packages.len(),
        report.files().count(),
        report.profile.mode.as_str(),
        Esc(&options.generator)
    )?;
    write_tree(report, out)?;
    let numbers = LineNumbers::new(report);
    let files: Vec<&FileView<'_>> = report.files().map(|(_, f)| f).collect();
    // Most of the page is sources: with enough of them, the sections are
    // rendered in chunks on two threads.
    let lines = |f: &&FileView<'_>| match (&f.source, f.units.last()) {
        (Some(_), Some(u)) => u.end_line as usize,
        _ => 0,
    };
    let chunks = (files.iter().map(lines).sum::<usize>() >= PARALLEL_LINES && split::two_cores())
        .then(|| split::cuts(files.iter().map(lines), CHUNK_LINES));
    write_sections(&files, &numbers, chunks.as_deref(), out)?;
    out.write_all(b"</main>\n<footer>\n")?;
    write_legend(report.profile.mode, out)?;
    writeln!(
        out,
        "\n</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>"
    )
}

fn write_row<W: Write>(
    out: &mut W,
    class: &str,
    name: &str,
    link: Option<usize>,
    s: Statements,
) -> io::Result<()> {
    let pct = s.percent();
    write!(
        out,
        "<tr class=\"{class}\" data-name=\"{}\" data-stmts=\"{}\" data-covered=\"{}\" data-pct=\"{pct}\"><td>",
        Esc(name),
        s.total,
        s.covered
    )?;
    match link {
        Some(i) => write!(out, "<a href=\"#f{i}\">{}</a>", Esc(name))?,
        None => write_escaped(out, name)?,
    }
    writeln!(
        out,
        "</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"cov\"><span class=\"bar\"><span style=\"width:{pct:.1}%\"></span></span>{pct:.1}%</td></tr>",
        s.total, s.covered
    )
}

fn write_tree<W: Write>(report: &Report<'_>, out: &mut W) -> io::Result<()> {
    out.write_all(
        b"<table class=\"tree\" id=\"tree\">\n<thead><tr>\
          <th><button type=\"button\" data-key=\"name\">Package / file</button></th>\
          <th class=\"num\"><button type=\"button\" data-key=\"stmts\">Statements</button></th>\
          <th class=\"num\"><button type=\"button\" data-key=\"covered\">Covered</button></th>\
          <th><button type=\"button\" data-key=\"pct\">Coverage</button></th></tr></thead>\n",
    )?;
    let mut index = 0;
    for pkg in &report.packages {
        out.write_all(b"<tbody>\n")?;
        write_row(out, "pkg", pkg.path, None, pkg.statements)?;
        for file in &pkg.files {
            write_row(out, "file", file.base_name(), Some(index), file.statements)?;
            index += 1;
        }
        out.write_all(b"</tbody>\n")?;
    }
    out.write_all(b"</table>\n")
}

fn write_legend<W: Write>(mode: CounterMode, out: &mut W) -> io::Result<()> {
    out.write_all(b"<p id=\"legend\"><span>not tracked</span>")?;
    if mode == CounterMode::Set {
        out.write_all(
            b"<span class=\"cov0\">not covered</span><span class=\"cov8\">covered</span>",
        )?;
    } else {
        out.write_all(
            b"<span class=\"cov0\">no coverage</span><span class=\"cov1\">low coverage</span>",
        )?;
        for n in 2..=9 {
            write!(out, "<span class=\"cov{n}\">*</span>")?;
        }
        out.write_all(b"<span class=\"cov10\">high coverage</span>")?;
    }
    out.write_all(b"</p>")
}

/// The files' sections; cut at `chunks` (bounds of file indexes), the odd
/// pieces rendered on another thread meanwhile.
fn write_sections(
    files: &[&FileView<'_>],
    numbers: &LineNumbers,
    chunks: Option<&[usize]>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let render = |range: Range<usize>, buf: &mut Vec<u8>, src: &mut Vec<u8>| {
        for (i, file) in files.iter().enumerate().take(range.end).skip(range.start) {
            render_file(i, file, numbers, src, buf);
        }
    };
    match chunks {
        Some(bounds) => split::write_interleaved(out, bounds.len() - 1, |c, buf, src| {
            render(bounds[c]..bounds[c + 1], buf, src);
            Ok(())
        }),
        None => {
            // Both reused from file to file: fresh large buffers cost page
            // faults.
            let (mut buf, mut src) = (Vec::with_capacity(1 << 16), Vec::new());
            for i in 0..files.len() {
                buf.clear();
                render(i..i + 1, &mut buf, &mut src);
                out.write_all(&buf)?;
            }
            Ok(())
        }
    }
}

/// One file's section, rendered into `buf` (one write per file: the page
/// is mostly these, and building them in memory skips the formatting
/// machinery and a writer call per span).
fn render_file(
    index: usize,
    file: &FileView<'_>,
    numbers: &LineNumbers,
    src: &mut Vec<u8>,
    buf: &mut Vec<u8>,
) {
    buf.extend_from_slice(b"<section class=\"src\" id=\"f");
    push_u64(buf, index as u64);
    buf.extend_from_slice(b"\"><h2><a href=\"#top\" title=\"back to the tree\">&uarr;</a> ");
    push_escaped(buf, file.name.as_bytes());
    buf.extend_from_slice(b" &mdash; ");
    push_percent(buf, file.statements.percent());
    buf.extend_from_slice(b"%</h2>\n");
    let source = file.source.as_ref().map(|p| (p, read_into(p, src)));
    match &source {
        Some((p, Ok(_))) => {
            buf.extend_from_slice(b"<p>");
            push_escaped(buf, p.to_string_lossy().as_bytes());
            buf.extend_from_slice(b"</p>\n");
        }
        Some((p, Err(e))) => {
            buf.extend_from_slice(b"<p>source ");
            push_escaped(buf, p.to_string_lossy().as_bytes());
            buf.extend_from_slice(b" could not be read: ");
            push_escaped(buf, e.to_string().as_bytes());
            buf.extend_from_slice(b"</p>\n");
        }
        None => buf.extend_from_slice(
            b"<p>source not found: give --source-root (modules) or --goroot (standard library)</p>\n",
        ),
    }
    buf.extend_from_slice(b"<table class=\"funcs\"><thead><tr><th>Function</th><th class=\"num\">Line</th><th class=\"num\">Statements</th><th class=\"num\">Coverage</th></tr></thead><tbody>\n");
    for f in &file.functions {
        buf.extend_from_slice(b"<tr><td>");
        push_escaped(buf, f.name.as_bytes());
        buf.extend_from_slice(b"</td><td class=\"num\">");
        push_u64(buf, f.start_line.into());
        buf.extend_from_slice(b"</td><td class=\"num\">");
        push_u64(buf, f.statements.total);
        buf.extend_from_slice(b"</td><td class=\"num\">");
        push_percent(buf, f.statements.percent());
        buf.extend_from_slice(b"%</td></tr>\n");
    }
    buf.extend_from_slice(b"</tbody></table>\n");
    if let Some((_, Ok(()))) = &source {
        // Valid UTF-8 is written as is (escaping touches ASCII only); other
        // bytes become U+FFFD, once, for the whole file.
        match std::str::from_utf8(src) {
            Ok(_) => render_source(file, src, numbers, buf),
            Err(_) => {
                let text = String::from_utf8_lossy(src);
                render_source(file, text.as_bytes(), numbers, buf);
            }
        }
    }
    buf.extend_from_slice(b"</section>\n");
}

/// The whole file at `path` into `buf`, replacing what it held.
fn read_into(path: &std::path::Path, buf: &mut Vec<u8>) -> io::Result<()> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf).map(drop)
}

/// `{:.1}` of a percentage.
fn push_percent(buf: &mut Vec<u8>, pct: f64) {
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "{pct:.1}");
}

/// The source with one span per unit, as `go tool cover -html` marks it.
fn render_source(file: &FileView<'_>, src: &[u8], numbers: &LineNumbers, buf: &mut Vec<u8>) {
    let mut line_starts = vec![0usize];
    line_starts.extend(memchr::memchr_iter(b'\n', src).map(|i| i + 1));
    let line_count = if src.last() == Some(&b'\n') || src.is_empty() {
        line_starts.len() - 1
    } else {
        line_starts.len()
    };
    let offset = |line: u32, col: u32| -> usize {
        let l = (line.max(1) - 1) as usize;
        match line_starts.get(l) {
            Some(&s) => (s + col.max(1) as usize - 1).min(src.len()),
            None => src.len(),
        }
    };
    buf.extend_from_slice(b"<div class=\"code\"><pre class=\"nums\">");
    buf.extend_from_slice(numbers.first(line_count).as_bytes());
    buf.extend_from_slice(b"</pre><pre class=\"body\">");
    let levels = Levels::new(file.max_count());
    let mut pos = 0usize;
    for u in &file.units {
        let start = offset(u.start_line, u.start_col).max(pos);
        let end = offset(u.end_line, u.end_col);
        if end <= start {
            continue;
        }
        push_text(buf, &src[pos..start]);
        buf.extend_from_slice(b"<span class=\"cov");
        push_u64(buf, levels.of(u.count).into());
        buf.extend_from_slice(b"\" title=\"");
        push_u64(buf, u.count.into());
        buf.extend_from_slice(b"\">");
        push_text(buf, &src[start..end]);
        buf.extend_from_slice(b"</span>");
        pos = end;
    }
    push_text(buf, &src[pos..]);
    buf.extend_from_slice(b"</pre></div>\n");
}

/// Line numbers built once at most (about 600 KB of text).
const PREBUILT_LINE_NUMBERS: usize = 100_000;

/// `"1\n2\n…"` built once for the longest file; each file uses a prefix.
struct LineNumbers {
    text: String,
    /// `ends[n]` is the length of the prefix holding numbers 1..=n.
    ends: Vec<usize>,
}

impl LineNumbers {
    fn new(report: &Report<'_>) -> LineNumbers {
        // Sources may be longer than their last unit, and a unit's lines
        // come from a pod (it may claim 4e9): the numbers are built for what
        // the files with a source seem to need, up to a bound; a longer
        // source gets its own (`first`), as long as the file really is.
        let guess = report
            .files()
            .filter(|(_, f)| f.source.is_some())
            .flat_map(|(_, f)| f.units.last().map(|u| u.end_line as usize))
            .max()
            .unwrap_or(0);
        let mut n = LineNumbers {
            text: String::new(),
            ends: vec![0],
        };
        n.grow(guess.min(PREBUILT_LINE_NUMBERS) + 64);
        n
    }

    fn grow(&mut self, lines: usize) {
        use std::fmt::Write as _;
        while self.ends.len() <= lines {
            let next = self.ends.len();
            let _ = writeln!(self.text, "{next}");
            self.ends.push(self.text.len());
        }
    }

    fn first(&self, lines: usize) -> std::borrow::Cow<'_, str> {
        match self.ends.get(lines) {
            Some(&end) => self.text[..end].into(),
            None => (1..=lines)
                .map(|i| format!("{i}\n"))
                .collect::<String>()
                .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SourceMap, testprofile::sample};

    #[test]
    fn levels_match_go() {
        assert_eq!(Levels::new(10).of(0), 0);
        assert_eq!(Levels::new(1).of(1), 8);
        assert_eq!(Levels::new(10).of(1), 1);
        assert_eq!(Levels::new(10).of(10), 10);
        assert_eq!(rgb(0), "rgb(192, 0, 0)");
        assert_eq!(rgb(10), "rgb(20, 236, 155)");
    }

    #[test]
    fn self_contained_page_with_tree_and_sections() {
        let profile = sample();
        let report = Report::new(&profile, &SourceMap::default());
        let mut out = Vec::new();
        write(&report, &Options::default(), &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert_eq!(html.matches("<section class=\"src\"").count(), 3);
        assert_eq!(html.matches("<tr class=\"pkg\"").count(), 2);
        assert!(html.contains("*DB.Get&lt;&amp;&gt;"));
    }

    /// A source map with module `example.com/app` in `dir`.
    fn app_in(dir: &std::path::Path) -> SourceMap {
        SourceMap::new(
            vec![crate::sourcemap::Module {
                path: "example.com/app".into(),
                dir: dir.into(),
            }],
            None,
        )
    }

    /// Sections rendered on two threads join up to those of one, however
    /// they are cut.
    #[test]
    fn split_sections_join_up_to_the_whole() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        for (i, name) in ["main.go", "util.go"].iter().enumerate() {
            let body: String = (0..40).map(|l| format!("// {i} line {l} <&>\n")).collect();
            std::fs::write(tmp.path().join(name), body)?;
        }
        let profile = sample();
        let map = app_in(tmp.path());
        let report = Report::new(&profile, &map);
        let files: Vec<&FileView<'_>> = report.files().map(|(_, f)| f).collect();
        let numbers = LineNumbers::new(&report);
        let mut whole = Vec::new();
        write_sections(&files, &numbers, None, &mut whole)?;
        let text = String::from_utf8_lossy(&whole);
        assert!(text.contains("// 0 line 39 &lt;&amp;&gt;") && text.contains("// 1 line 0"));
        for piece in 1..50 {
            let bounds = split::cuts(files.iter().map(|f| f.units.len()), piece);
            let mut joined = Vec::new();
            write_sections(&files, &numbers, Some(&bounds), &mut joined)?;
            assert_eq!(joined, whole, "cut at {bounds:?}");
        }
        Ok(())
    }

    #[test]
    fn source_spans_follow_units() {
        let tmp = tempfile::tempdir().unwrap();
        let src = "package main\n\nfunc main() {\n\tif x < 1 {\n\t\ty()\n\t}\n}\n";
        std::fs::write(tmp.path().join("main.go"), src).unwrap();
        let mut profile = sample();
        profile.packages.truncate(1);
        profile.packages[0].functions = vec![covdata::model::Function {
            name: "main".into(),
            file: "example.com/app/main.go".into(),
            literal: false,
            units: vec![
                covdata::model::Unit {
                    start_line: 3,
                    start_col: 13,
                    end_line: 4,
                    end_col: 11,
                    statements: 1,
                    count: 5,
                },
                covdata::model::Unit {
                    start_line: 4,
                    start_col: 11,
                    end_line: 6,
                    end_col: 3,
                    statements: 1,
                    count: 0,
                },
            ],
        }];
        let map = app_in(tmp.path());
        let report = Report::new(&profile, &map);
        let mut out = Vec::new();
        write(&report, &Options::default(), &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(
            html.contains("func main() <span class=\"cov10\" title=\"5\">{\n\tif x &lt; 1 </span><span class=\"cov0\" title=\"0\">{\n\t\ty()\n\t}</span>\n}\n</pre>"),
            "{html}"
        );
        assert!(html.contains("<pre class=\"nums\">1\n2\n3\n4\n5\n6\n7\n</pre>"));
    }
}

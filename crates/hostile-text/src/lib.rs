//! Text that came from a pod or a cluster (file names, link targets, a
//! program's stderr, labels), made safe to print on a terminal or in a CI log.
//!
//! A pod chooses the bytes of its file names and of what its `tar`, `kill` or
//! `ls` print. Printed raw, they could move the cursor or recolour the
//! terminal (ANSI escapes), forge lines (newlines, carriage returns), reorder
//! text (Unicode bidirectional overrides), or run CI workflow commands: GitHub
//! Actions acts on a line that starts with `::` (after white space) and on
//! `##[` anywhere in a line (actions/runner, `ActionCommand.cs`); Azure
//! Pipelines on `##vso[` and `##[` anywhere in a line.
//!
//! - [`escape`] makes one value printable: controls become `\n`, `\x1b`,
//!   `\u{202e}`…, a backslash becomes `\\` (so the escaping is unambiguous),
//!   and the `#`/`:` that would start a workflow command become `\x23`/`\x3a`.
//!   Printable text, including non-ASCII letters, is left alone.
//! - [`Shown`] does the same inside `format!`: `format!("refused {}", Shown(name))`.
//! - [`cap`] keeps the first few of many similar lines and counts the rest.
//! - [`escaped_fields`] escapes every field of a `tracing` log line.
//! - [`to_json_pretty`] writes JSON whose strings carry the raw values, with
//!   every control character (also DEL, C1 and bidi controls, which JSON
//!   allows raw) and CI command prefixes written as `\uXXXX`, so printing
//!   the JSON is safe too.
//!
//! ```
//! let name = "covmeta.\u{1b}[31mred";
//! assert_eq!(hostile_text::escape(name), "covmeta.\\x1b[31mred");
//! assert_eq!(hostile_text::escape("::error::owned"), "\\x3a:error::owned");
//! let lines: Vec<String> = (0..12).map(|i| format!("refused f{i}")).collect();
//! let capped = hostile_text::cap(lines, 10, "refused member(s)");
//! assert_eq!(capped.last().map(String::as_str), Some("… and 2 more refused member(s)"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io;

/// How many of a run of similar warnings are shown before "and K more".
pub const DEFAULT_CAP: usize = 10;

/// Whether `c` must not reach a terminal raw: C0 and C1 controls, DEL, and
/// the Unicode format characters that reorder or hide text.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'     // zero-width, LRM/RLM
            | '\u{202a}'..='\u{202e}'   // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}'   // bidi isolates
            | '\u{feff}'                // zero-width no-break space
            | '\u{2028}' | '\u{2029}'   // line and paragraph separators
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' => out.push_str("\\\\"),
        c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// Whether printing `text` raw could be unsafe (see [`escape`]).
fn needs_escape(text: &str) -> bool {
    text.chars().any(|c| is_unsafe(c) || c == '\\')
        || text.contains("##")
        || text.trim_start().starts_with("::")
}

/// `text`, safe to print as part of one line (see the crate doc).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !needs_escape(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let lead = text.len() - text.trim_start().len();
    for (i, c) in text.char_indices() {
        let rest = &text[i..];
        if is_unsafe(c) || c == '\\' {
            push_escaped(&mut out, c);
        } else if c == ':' && i == lead && rest.starts_with("::") {
            // A GitHub Actions command at the start of the line.
            out.push_str("\\x3a");
        } else if c == '#' && (rest.starts_with("##[") || rest.starts_with("##vso[")) {
            // GitHub's and Azure's command prefixes, anywhere in a line.
            out.push_str("\\x23");
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Displays its text escaped: `format!("{}", Shown(name))` = [`escape`]`(name)`.
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// The first `keep` of `lines`, then one line `… and K more <what>` for the rest.
pub fn cap(lines: Vec<String>, keep: usize, what: &str) -> Vec<String> {
    let total = lines.len();
    if total <= keep {
        return lines;
    }
    let mut kept: Vec<String> = lines.into_iter().take(keep).collect();
    kept.push(format!("… and {} more {what}", total - keep));
    kept
}

/// A JSON formatter that also writes DEL, C1 controls, the format
/// characters of [`escape`] and the `#` that starts a `##[`/`##vso[` CI
/// command as `\uXXXX` (serde_json escapes only what JSON requires: `"`,
/// `\` and C0 controls). A `::` cannot start a line: newlines are escaped.
struct StrictStrings(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for StrictStrings {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let rest = &fragment[i..];
            let command = c == '#' && (rest.starts_with("##[") || rest.starts_with("##vso["));
            if is_unsafe(c) || command {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{u:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    // The rest is the pretty formatter's layout.
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Pretty JSON of `value` (as `serde_json::to_writer_pretty`), with every
/// control character in its strings escaped (see [`StrictStrings`]).
pub fn to_json_pretty<W: io::Write, T: serde::Serialize + ?Sized>(
    out: W,
    value: &T,
) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(
        out,
        StrictStrings(serde_json::ser::PrettyFormatter::new()),
    );
    value.serialize(&mut ser).map_err(io::Error::other)
}

/// Log fields printed through [`escape`], for
/// `tracing_subscriber::fmt().fmt_fields(hostile_text::escaped_fields())`:
/// log lines carry pod text (names, stderr); only the level and time around
/// it are the program's own.
pub fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            write!(w, "{}", Shown(&text))
        } else {
            write!(w, "{}={}", field.name(), Shown(&text))
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_ansi_are_escaped() {
        assert_eq!(escape("plain-name_1.go"), "plain-name_1.go");
        assert_eq!(escape("größe"), "größe");
        assert_eq!(escape("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape("\u{1b}[2J\u{7f}\u{9b}"), "\\x1b[2J\\x7f\\x9b");
        assert_eq!(escape("evil\u{202e}txt.go"), "evil\\u{202e}txt.go");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn workflow_commands_are_neutralised() {
        assert_eq!(escape("::error::x"), "\\x3a:error::x");
        assert_eq!(escape("  ::warning ::x"), "  \\x3a:warning ::x");
        assert_eq!(escape("a::b"), "a::b");
        assert_eq!(
            escape("x ##vso[task.setvariable]y"),
            "x \\x23#vso[task.setvariable]y"
        );
        assert_eq!(escape("##[group]x"), "\\x23#[group]x");
        assert_eq!(escape("## heading"), "## heading");
        // After escaping, no newline remains, so no later line can start a command.
        assert_eq!(escape("ok\n::error::x"), "ok\\n::error::x");
    }

    #[test]
    fn caps_repeats() {
        let lines: Vec<String> = (0..3).map(|i| i.to_string()).collect();
        assert_eq!(cap(lines.clone(), 3, "x"), lines);
        assert_eq!(cap(lines, 1, "lines"), vec!["0", "… and 2 more lines"]);
    }

    #[test]
    fn json_keeps_raw_values_and_escapes_every_control() {
        let value = serde_json::json!({"name": "a\u{1b}[31m\u{9b}\u{202e}b\"\n##vso[x]"});
        let mut out = Vec::new();
        to_json_pretty(&mut out, &value).expect("json");
        let text = String::from_utf8(out).expect("utf8");
        assert!(!text.chars().any(|c| is_unsafe(c) && c != '\n'), "{text:?}");
        assert!(text.contains("\\u001b") && text.contains("\\u009b") && text.contains("\\u202e"));
        let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back, value);
        let plain = serde_json::to_string_pretty(&value).expect("json");
        let unescaped = text
            .replace("\\u009b", "\u{9b}")
            .replace("\\u202e", "\u{202e}")
            .replace("\\u0023", "#");
        assert!(!text.contains("##vso["), "{text}");
        assert_eq!(unescaped, plain, "the layout of to_string_pretty");
    }
}

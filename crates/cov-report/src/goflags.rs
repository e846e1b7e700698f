//! Go's command line for the `go tool covdata` subcommands.
//!
//! clap cannot parse Go's flag syntax (`-pkg=x` is a cluster of short
//! flags to clap, `-v 2` a count plus a positional), so for the eight
//! subcommands Go has, argv is normalised *before* clap sees it:
//!
//! 1. Each argument is read as Go's `flag` package reads it (`-name`,
//!    `--name`, `-name=value`, `-name value`, booleans as `-name` or
//!    `-name=true`; `--` ends the flags). Names are looked up in the flag
//!    set Go defines for that subcommand (`src/cmd/covdata/*.go`).
//! 2. A Go flag is taken out of argv and recorded with Go's rules: the
//!    last occurrence wins, booleans parse as `strconv.ParseBool`, ints as
//!    `strconv.ParseInt(…, 0, …)`. Flags clap knows too (`-i`, `-pkg`, `-o`)
//!    are put back once, in our long spelling (`--input=…`).
//! 3. Anything else starting with `-` must be one of our own flags (asked of
//!    clap's definition, so the two never drift); otherwise it is Go's
//!    "flag provided but not defined" error.
//!
//! So every command line Go accepts means the same here, and our own long
//! flags keep working. Unlike Go, flags may follow positional folders
//! (Go refuses positional arguments altogether, so nothing Go accepts
//! changes meaning). Other subcommands (`report`, `diff`, none) are left
//! to clap untouched.

use std::ffi::OsString;

/// The `go tool covdata` subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoCmd {
    Percent,
    Func,
    Pkglist,
    Textfmt,
    Merge,
    Subtract,
    Intersect,
    Debugdump,
}

impl GoCmd {
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "percent" => GoCmd::Percent,
            "func" => GoCmd::Func,
            "pkglist" => GoCmd::Pkglist,
            "textfmt" => GoCmd::Textfmt,
            "merge" => GoCmd::Merge,
            "subtract" => GoCmd::Subtract,
            "intersect" => GoCmd::Intersect,
            "debugdump" => GoCmd::Debugdump,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            GoCmd::Percent => "percent",
            GoCmd::Func => "func",
            GoCmd::Pkglist => "pkglist",
            GoCmd::Textfmt => "textfmt",
            GoCmd::Merge => "merge",
            GoCmd::Subtract => "subtract",
            GoCmd::Intersect => "intersect",
            GoCmd::Debugdump => "debugdump",
        }
    }

    /// Go's flag set for this subcommand: the global flags of covdata.go
    /// plus those `makeDumpOp`/`makeMergeOp`/`makeSubtractIntersectOp` add.
    fn flags(self) -> impl Iterator<Item = &'static GoFlag> {
        const TEXT_OUT: &[GoFlag] = &[GoFlag::new("o", Kind::Str, Some("output-file"))];
        const MERGE: &[GoFlag] = &[
            GoFlag::new("o", Kind::Str, Some("output-dir")),
            GoFlag::new("pcombine", Kind::Bool, Some("pcombine")),
        ];
        const DIR_OUT: &[GoFlag] = &[GoFlag::new("o", Kind::Str, Some("output-dir"))];
        const DUMP: &[GoFlag] = &[GoFlag::new("live", Kind::Bool, Some("live"))];
        let extra: &'static [GoFlag] = match self {
            GoCmd::Percent | GoCmd::Textfmt => TEXT_OUT,
            GoCmd::Merge => MERGE,
            GoCmd::Subtract | GoCmd::Intersect => DIR_OUT,
            GoCmd::Debugdump => DUMP,
            GoCmd::Func | GoCmd::Pkglist => &[],
        };
        GLOBAL.iter().chain(extra)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Str,
    Int,
}

/// One of Go's flags and, if clap has it too, our long name for it.
#[derive(Debug)]
struct GoFlag {
    name: &'static str,
    kind: Kind,
    ours: Option<&'static str>,
}

impl GoFlag {
    const fn new(name: &'static str, kind: Kind, ours: Option<&'static str>) -> Self {
        GoFlag { name, kind, ours }
    }
}

/// The flags covdata.go defines for every subcommand.
const GLOBAL: &[GoFlag] = &[
    GoFlag::new("v", Kind::Int, None),
    GoFlag::new("h", Kind::Bool, None),
    GoFlag::new("hw", Kind::Bool, None),
    GoFlag::new("i", Kind::Str, Some("input")),
    GoFlag::new("pkg", Kind::Str, Some("pkg")),
    GoFlag::new("cpuprofile", Kind::Str, None),
    GoFlag::new("memprofile", Kind::Str, None),
    GoFlag::new("memprofilerate", Kind::Int, None),
];

/// Go flags that do not map onto a clap argument.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoOnly {
    /// `-v=N`: Go's trace level; here the log level (1 info, 2+ debug).
    pub verbosity: Option<i64>,
    /// `-h`: Go panics on fatal errors for a stack trace; accepted.
    pub panic_on_error: bool,
    /// `-hw`: Go panics on warnings; here warnings become an error (exit 2).
    pub fatal_warnings: bool,
    /// `-cpuprofile`, `-memprofile`, `-memprofilerate` as given.
    pub profiling: Vec<(&'static str, String)>,
}

/// The result of [`normalise`].
#[derive(Debug, Clone)]
pub struct Normalised {
    /// argv for clap.
    pub argv: Vec<OsString>,
    pub go_only: GoOnly,
    /// The arguments after the subcommand as given (debugdump prints them).
    pub original: Vec<OsString>,
}

/// A command line Go's `flag` package would refuse. `message` is Go's own
/// first line; `hint` our detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}\n{hint}")]
pub struct GoFlagError {
    pub message: String,
    pub hint: String,
}

/// Whether clap's definition of `sub` has a long flag `name`, and whether
/// it takes a value.
pub trait OurFlags {
    fn long_flag(&self, sub: &str, name: &str) -> Option<bool>;
    fn short_flag(&self, sub: &str, c: char) -> Option<bool>;
}

impl OurFlags for clap::Command {
    fn long_flag(&self, sub: &str, name: &str) -> Option<bool> {
        let cmd = self.find_subcommand(sub)?;
        cmd.get_arguments()
            .chain(self.get_arguments().filter(|a| a.is_global_set()))
            .find(|a| a.get_long() == Some(name))
            .map(|a| a.get_action().takes_values())
    }
    fn short_flag(&self, sub: &str, c: char) -> Option<bool> {
        let cmd = self.find_subcommand(sub)?;
        cmd.get_arguments()
            .chain(self.get_arguments().filter(|a| a.is_global_set()))
            .find(|a| a.get_short() == Some(c))
            .map(|a| a.get_action().takes_values())
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` as the `flag` package uses it (base
/// prefixes and `_` separators allowed); the error is Go's wording.
fn parse_int(s: &str) -> Result<i64, &'static str> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    // Underscores only between digits, and only with a base prefix.
    if digits.contains('_')
        && (!prefixed || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__"))
    {
        return Err("parse error");
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
        return Err("parse error");
    }
    let v = u128::from_str_radix(&clean, radix).map_err(|_| "value out of range")?;
    let v = if neg { -(v as i128) } else { v as i128 };
    i64::try_from(v).map_err(|_| "value out of range")
}

fn usage_hint(cmd: GoCmd) -> String {
    format!(
        "cov-report {0} takes `go tool covdata {0}`'s flags in Go's syntax (-flag, -flag=value, -flag value) and its own --long flags; see `cov-report {0} --help`",
        cmd.name()
    )
}

/// Normalise `args` (including the program name) for clap; see the module
/// documentation.
pub fn normalise(args: Vec<OsString>, ours: &impl OurFlags) -> Result<Normalised, GoFlagError> {
    let cmd = args
        .get(1)
        .and_then(|a| a.to_str())
        .and_then(GoCmd::from_name);
    let Some(cmd) = cmd else {
        return Ok(Normalised {
            argv: args,
            go_only: GoOnly::default(),
            original: Vec::new(),
        });
    };
    let original: Vec<OsString> = args[2..].to_vec();
    let fail = |message: String| GoFlagError {
        message,
        hint: usage_hint(cmd),
    };
    let mut out: Vec<OsString> = args[..2].to_vec();
    let mut go_only = GoOnly::default();
    // Last value wins for each Go flag clap also has, as in Go.
    let mut mapped: Vec<(&'static str, Kind, String)> = Vec::new();
    // Our own flags and positional folders, in order; then whatever
    // followed `--`.
    let mut rest: Vec<OsString> = Vec::new();
    let mut after_dashes: Vec<OsString> = Vec::new();
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(s) = arg.to_str() else {
            rest.push(arg.clone());
            continue;
        };
        if s.len() < 2 || !s.starts_with('-') {
            rest.push(arg.clone());
            continue;
        }
        let dashes = if s.as_bytes()[1] == b'-' { 2 } else { 1 };
        if s == "--" {
            after_dashes.extend(args[i..].iter().cloned());
            break;
        }
        let body = &s[dashes..];
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(fail(format!("bad flag syntax: {s}")));
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if let Some(flag) = cmd.flags().find(|f| f.name == name) {
            let value = match (flag.kind, value) {
                (Kind::Bool, None) => "true".to_string(),
                (Kind::Bool, Some(v)) => match parse_bool(v) {
                    Some(b) => b.to_string(),
                    None => {
                        return Err(fail(format!(
                            "invalid boolean value {v:?} for -{name}: parse error"
                        )));
                    }
                },
                (_, Some(v)) => v.to_string(),
                (_, None) => match args.get(i) {
                    Some(next) => {
                        i += 1;
                        next.to_string_lossy().into_owned()
                    }
                    None => return Err(fail(format!("flag needs an argument: -{name}"))),
                },
            };
            if flag.kind == Kind::Int
                && let Err(e) = parse_int(&value)
            {
                return Err(fail(format!(
                    "invalid value {value:?} for flag -{name}: {e}"
                )));
            }
            match (flag.name, flag.ours) {
                (_, Some(long)) => {
                    mapped.retain(|(l, _, _)| *l != long);
                    mapped.push((long, flag.kind, value));
                }
                ("v", None) => go_only.verbosity = parse_int(&value).ok(),
                ("h", None) => go_only.panic_on_error = value == "true",
                ("hw", None) => go_only.fatal_warnings = value == "true",
                (n, None) => {
                    go_only.profiling.retain(|(f, _)| *f != n);
                    go_only.profiling.push((flag.name, value));
                }
            }
            continue;
        }
        // Not a Go flag: one of ours, or Go's error.
        let takes_value = if dashes == 2 {
            ours.long_flag(cmd.name(), name)
        } else {
            // A cluster of our short flags (`-vv`): every letter must be ours.
            let mut chars = body.chars();
            let first = chars.next().and_then(|c| ours.short_flag(cmd.name(), c));
            match first {
                Some(false) if chars.all(|c| ours.short_flag(cmd.name(), c) == Some(false)) => {
                    Some(false)
                }
                _ => None,
            }
        };
        match takes_value {
            Some(takes) => {
                rest.push(arg.clone());
                if takes
                    && value.is_none()
                    && dashes == 2
                    && let Some(next) = args.get(i)
                {
                    rest.push(next.clone());
                    i += 1;
                }
            }
            // Go prints its usage for -help; clap's help is ours.
            None if name == "help" => rest.push("--help".into()),
            None => return Err(fail(format!("flag provided but not defined: -{name}"))),
        }
    }
    for (long, kind, value) in mapped {
        match kind {
            Kind::Bool if value == "true" => out.push(format!("--{long}").into()),
            // Go's defaults: false, and an empty string is "not given".
            Kind::Bool => {}
            _ if value.is_empty() => {}
            _ => out.push(format!("--{long}={value}").into()),
        }
    }
    out.extend(rest);
    if !after_dashes.is_empty() {
        out.push("--".into());
        out.extend(after_dashes);
    }
    Ok(Normalised {
        argv: out,
        go_only,
        original,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our flags as the tests need them: `--format VALUE`, `--live`, `-v`.
    struct Ours;
    impl OurFlags for Ours {
        fn long_flag(&self, _sub: &str, name: &str) -> Option<bool> {
            match name {
                "format" => Some(true),
                "live" | "verbose" => Some(false),
                _ => None,
            }
        }
        fn short_flag(&self, _sub: &str, c: char) -> Option<bool> {
            (c == 'v').then_some(false)
        }
    }

    fn norm(args: &[&str]) -> Result<Normalised, GoFlagError> {
        let argv = std::iter::once("cov-report")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        normalise(argv, &Ours)
    }

    fn argv(args: &[&str]) -> Vec<String> {
        norm(args)
            .unwrap()
            .argv
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn go_spellings_become_our_long_flags_once_last_wins() {
        assert_eq!(
            argv(&["percent", "-i=a,b", "--pkg", "x/...", "-i", "c", "dir"]),
            ["percent", "--pkg=x/...", "--input=c", "dir"]
        );
        assert_eq!(
            argv(&["merge", "-pcombine", "-o=out", "-i=a"]),
            ["merge", "--pcombine", "--output-dir=out", "--input=a"]
        );
        assert_eq!(
            argv(&["merge", "-pcombine=false", "-i=a"]),
            ["merge", "--input=a"]
        );
        assert_eq!(argv(&["textfmt", "-o=", "-i=a"]), ["textfmt", "--input=a"]);
        // `--` ends the flags; what follows stays positional.
        assert_eq!(
            argv(&["func", "-i=a", "--", "-x"]),
            ["func", "--input=a", "--", "-x"]
        );
        // Not a Go subcommand: untouched.
        assert_eq!(argv(&["report", "-o", "x"]), ["report", "-o", "x"]);
    }

    #[test]
    fn go_only_flags_are_recorded() {
        let n = norm(&["percent", "-v", "0x2", "-hw", "-h=false", "-cpuprofile=c"]).unwrap();
        assert_eq!(n.go_only.verbosity, Some(2));
        assert!(n.go_only.fatal_warnings && !n.go_only.panic_on_error);
        assert_eq!(n.go_only.profiling, [("cpuprofile", "c".to_string())]);
    }

    #[test]
    fn our_own_flags_pass_through() {
        assert_eq!(
            argv(&["percent", "--format", "-i", "-vv"]),
            ["percent", "--format", "-i", "-vv"]
        );
    }

    #[test]
    fn errors_are_gos() {
        let e = |args: &[&str]| norm(args).unwrap_err().message;
        assert_eq!(e(&["percent", "-x"]), "flag provided but not defined: -x");
        assert_eq!(
            e(&["percent", "-live"]),
            "flag provided but not defined: -live"
        );
        assert_eq!(
            e(&["merge", "-modpaths=a"]),
            "flag provided but not defined: -modpaths"
        );
        assert_eq!(e(&["percent", "-v"]), "flag needs an argument: -v");
        assert_eq!(
            e(&["percent", "-v=x"]),
            "invalid value \"x\" for flag -v: parse error"
        );
        assert_eq!(
            e(&["debugdump", "-live=yes"]),
            "invalid boolean value \"yes\" for -live: parse error"
        );
        assert_eq!(e(&["percent", "---i"]), "bad flag syntax: ---i");
        assert_eq!(e(&["percent", "-=x"]), "bad flag syntax: -=x");
    }

    #[test]
    fn ints_parse_like_strconv() {
        assert_eq!(parse_int("10"), Ok(10));
        assert_eq!(parse_int("-0x1_0"), Ok(-16));
        assert_eq!(parse_int("0o17"), Ok(15));
        assert_eq!(parse_int("017"), Ok(15));
        assert_eq!(parse_int("1_0"), Err("parse error"));
        assert_eq!(parse_int("99999999999999999999"), Err("value out of range"));
        assert_eq!(parse_int(""), Err("parse error"));
    }
}

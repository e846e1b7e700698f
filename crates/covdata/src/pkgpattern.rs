//! `--pkg` package patterns, matched as `go tool covdata -pkg` does
//! (cmd/internal/pkgpattern's simple patterns): comma-separated, anchored,
//! `...` matches any string, and a trailing `/...` also matches the bare
//! prefix (`net/...` matches `net` and `net/http`).

/// A set of patterns; a package is selected if any pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgFilter {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    tokens: Vec<Token>,
    /// Trailing `/...`: also match `<prefix>(/.*)?`.
    optional_tail: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(String),
    /// `...`: like the regexp `.*`, which does not cross a newline.
    Any,
}

impl PkgFilter {
    /// Parse a comma-separated list as `-pkg` does. Empty items are
    /// ignored; note that, as in Go, a list with only empty items (",")
    /// selects nothing.
    pub fn parse(list: &str) -> Self {
        let patterns = list
            .split(',')
            .filter(|p| !p.is_empty())
            .map(Pattern::new)
            .collect();
        PkgFilter { patterns }
    }

    /// From several `--pkg` values (each may itself be a comma list).
    pub fn from_values<S: AsRef<str>>(values: &[S]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let joined = values
            .iter()
            .map(|v| v.as_ref())
            .collect::<Vec<_>>()
            .join(",");
        Some(Self::parse(&joined))
    }

    pub fn matches(&self, pkg: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(pkg))
    }
}

impl Pattern {
    fn new(p: &str) -> Self {
        let (body, optional_tail) = match p.strip_suffix("/...") {
            Some(b) => (b, true),
            None => (p, false),
        };
        let mut tokens = Vec::new();
        for (i, lit) in body.split("...").enumerate() {
            if i > 0 {
                tokens.push(Token::Any);
            }
            if !lit.is_empty() {
                tokens.push(Token::Lit(lit.to_string()));
            }
        }
        Pattern {
            tokens,
            optional_tail,
        }
    }

    fn matches(&self, name: &str) -> bool {
        let name = name.as_bytes();
        let ends = reachable(&self.tokens, name);
        if ends[name.len()] {
            return true;
        }
        if self.optional_tail {
            // `(/.*)?`: a '/' then anything without a newline up to the end.
            for (p, &ok) in ends.iter().enumerate() {
                if ok && name.get(p) == Some(&b'/') && !name[p + 1..].contains(&b'\n') {
                    return true;
                }
            }
        }
        false
    }
}

/// Positions in `name` where a match of all `tokens` from position 0 can end.
fn reachable(tokens: &[Token], name: &[u8]) -> Vec<bool> {
    let mut set = vec![false; name.len() + 1];
    set[0] = true;
    for t in tokens {
        let mut next = vec![false; name.len() + 1];
        match t {
            Token::Lit(l) => {
                let l = l.as_bytes();
                for p in 0..=name.len() {
                    if set[p] && name[p..].starts_with(l) {
                        next[p + l.len()] = true;
                    }
                }
            }
            Token::Any => {
                let mut on = false;
                for p in 0..=name.len() {
                    on |= set[p];
                    if on {
                        next[p] = true;
                    }
                    if name.get(p) == Some(&b'\n') {
                        on = false;
                    }
                }
            }
        }
        set = next;
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_pattern_semantics() {
        let f = PkgFilter::parse("net/...");
        assert!(f.matches("net"));
        assert!(f.matches("net/http"));
        assert!(!f.matches("network"));
        let f = PkgFilter::parse("example.com/...store,fmt");
        assert!(f.matches("example.com/app/store"));
        assert!(!f.matches("example.com/app/storex"));
        assert!(f.matches("fmt"));
        assert!(!f.matches("fmtx"));
        assert!(PkgFilter::parse("...").matches("anything/at/all"));
        assert!(!PkgFilter::parse(",").matches("fmt"));
        assert!(PkgFilter::parse("a...b").matches("ab"));
        assert!(!PkgFilter::parse("a...b").matches("a\nb"));
    }
}

//! The label selector grammar of `k8s.io/apimachinery/pkg/labels`: a lexer that
//! splits the text into identifiers and operator symbols, and a recursive-descent
//! parser that turns requirements into kube-core [`Expression`]s.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector};

use crate::{SelectorError, validate};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    End,
    Ident(String),
    In,
    NotIn,
    OpenPar,
    ClosePar,
    Comma,
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Error(String),
}

impl Token {
    /// The literal text, for error messages.
    fn literal(&self) -> &str {
        match self {
            Token::End => "",
            Token::Ident(s) | Token::Error(s) => s,
            Token::In => "in",
            Token::NotIn => "notin",
            Token::OpenPar => "(",
            Token::ClosePar => ")",
            Token::Comma => ",",
            Token::Not => "!",
            Token::Eq => "=",
            Token::DoubleEq => "==",
            Token::NotEq => "!=",
            Token::Gt => ">",
            Token::Lt => "<",
        }
    }

    /// Inside a value list, `in` and `notin` are plain identifiers.
    fn into_value(self) -> Token {
        match self {
            Token::In => Token::Ident("in".into()),
            Token::NotIn => Token::Ident("notin".into()),
            t => t,
        }
    }
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn symbol(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosePar,
        b"(" => Token::OpenPar,
        b"," => Token::Comma,
        b"!" => Token::Not,
        b"=" => Token::Eq,
        b"==" => Token::DoubleEq,
        b"!=" => Token::NotEq,
        b">" => Token::Gt,
        b"<" => Token::Lt,
        _ => return None,
    })
}

/// Split the selector into tokens; the last one is always [`Token::End`].
fn lex(s: &str) -> Vec<Token> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i == b.len() {
            out.push(Token::End);
            return out;
        }
        if is_special(b[i]) {
            // Longest run of special symbols that still forms a known operator.
            let start = i;
            let mut best: Option<(Token, usize)> = None;
            let mut j = i;
            while j < b.len() && is_special(b[j]) {
                j += 1;
                match symbol(&b[start..j]) {
                    Some(t) => best = Some((t, j)),
                    None if best.is_some() => break,
                    None => {}
                }
            }
            match best {
                Some((t, end)) => {
                    out.push(t);
                    i = end;
                }
                None => {
                    out.push(Token::Error(format!(
                        "error expected: keyword found '{}'",
                        &s[start..j]
                    )));
                    out.push(Token::End);
                    return out;
                }
            }
        } else {
            let start = i;
            while i < b.len() && !is_special(b[i]) && !is_space(b[i]) {
                i += 1;
            }
            out.push(match &s[start..i] {
                "in" => Token::In,
                "notin" => Token::NotIn,
                word => Token::Ident(word.to_string()),
            });
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

type Res<T> = Result<T, String>;

impl Parser {
    fn peek(&self) -> Token {
        self.tokens[self.pos].clone()
    }

    fn next(&mut self) -> Token {
        let t = self.peek();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn parse(&mut self) -> Res<Vec<Expression>> {
        let mut exprs = Vec::new();
        loop {
            match self.peek().into_value() {
                Token::Ident(_) | Token::Not => {
                    exprs.push(self.requirement()?);
                    match self.next().into_value() {
                        Token::End => return Ok(exprs),
                        Token::Comma => match self.peek().into_value() {
                            Token::Ident(_) | Token::Not => {}
                            t => {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        },
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ));
                        }
                    }
                }
                Token::End => return Ok(exprs),
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Res<Expression> {
        let mut negated = false;
        let mut tok = self.next().into_value();
        if tok == Token::Not {
            negated = true;
            tok = self.next().into_value();
        }
        let key = match tok {
            Token::Ident(k) => k,
            t => return Err(format!("found '{}', expected: identifier", t.literal())),
        };
        validate::label_key(&key)?;
        if negated {
            return Ok(Expression::DoesNotExist(key));
        }
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Ok(Expression::Exists(key));
        }
        match self.next() {
            Token::In => Ok(Expression::In(key, self.values()?)),
            Token::NotIn => Ok(Expression::NotIn(key, self.values()?)),
            Token::Eq | Token::DoubleEq => Ok(Expression::Equal(key, self.exact_value()?)),
            Token::NotEq => Ok(Expression::NotEqual(key, self.exact_value()?)),
            Token::Gt | Token::Lt => Err(format!(
                "key {key:?}: the '>' and '<' operators are not supported here (kube-core has no \
                 numeric comparison); use '=', '!=', 'in' or 'notin'"
            )),
            t => Err(format!(
                "found '{}', expected: '=', '!=', '==', 'in', notin'",
                t.literal()
            )),
        }
    }

    fn exact_value(&mut self) -> Res<String> {
        let value = match self.peek().into_value() {
            Token::End | Token::Comma => String::new(),
            _ => match self.next().into_value() {
                Token::Ident(v) => v,
                t => return Err(format!("found '{}', expected: identifier", t.literal())),
            },
        };
        validate::label_value(&value)?;
        Ok(value)
    }

    /// `( a, b, ... )`; as in Kubernetes, empty entries (`()`, `(a,)`) mean the empty value.
    fn values(&mut self) -> Res<BTreeSet<String>> {
        match self.next().into_value() {
            Token::OpenPar => {}
            t => return Err(format!("found '{}' expected: '('", t.literal())),
        }
        let mut set = BTreeSet::new();
        match self.peek().into_value() {
            Token::ClosePar => {
                self.next();
                set.insert(String::new());
            }
            Token::Ident(_) | Token::Comma => {
                self.identifiers(&mut set)?;
                match self.next().into_value() {
                    Token::ClosePar => {}
                    t => return Err(format!("found '{}', expected: ')'", t.literal())),
                }
            }
            t => {
                return Err(format!(
                    "found '{}', expected: ',', ')' or identifier",
                    t.literal()
                ));
            }
        }
        for v in &set {
            validate::label_value(v)?;
        }
        Ok(set)
    }

    /// The comma separated list up to (not including) the closing parenthesis.
    fn identifiers(&mut self, set: &mut BTreeSet<String>) -> Res<()> {
        loop {
            match self.next().into_value() {
                Token::Ident(v) => {
                    set.insert(v);
                    match self.peek().into_value() {
                        Token::Comma => continue,
                        Token::ClosePar => return Ok(()),
                        t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    match self.peek().into_value() {
                        Token::ClosePar => {
                            set.insert(String::new());
                            return Ok(());
                        }
                        Token::Comma => {
                            self.next();
                            set.insert(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    ));
                }
            }
        }
    }
}

/// Parse a label selector string, e.g. `skaffold.dev/run-id=abc,app in (web,api),!canary`.
///
/// The empty string selects everything. Errors read like the API server's.
pub fn parse_label_selector(s: &str) -> Result<Selector, SelectorError> {
    let mut p = Parser {
        tokens: lex(s),
        pos: 0,
    };
    if let Some(Token::Error(e)) = p.tokens.iter().find(|t| matches!(t, Token::Error(_))) {
        return Err(SelectorError::Label(e.clone()));
    }
    p.parse()
        .map(Selector::from_iter)
        .map_err(SelectorError::Label)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::SelectorExt;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn exprs(s: &str) -> Vec<Expression> {
        parse_label_selector(s)
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
            .into_iter()
            .collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn equality_forms() {
        assert_eq!(exprs("a=b"), [Expression::Equal("a".into(), "b".into())]);
        assert_eq!(exprs("a==b"), [Expression::Equal("a".into(), "b".into())]);
        assert_eq!(
            exprs("a!=b"),
            [Expression::NotEqual("a".into(), "b".into())]
        );
        assert_eq!(exprs("a="), [Expression::Equal("a".into(), "".into())]);
        assert_eq!(
            exprs(" a = b "),
            [Expression::Equal("a".into(), "b".into())]
        );
    }

    #[test]
    fn set_forms() {
        assert_eq!(
            exprs("env in (prod, qa)"),
            [Expression::In("env".into(), set(&["prod", "qa"]))]
        );
        assert_eq!(
            exprs("env notin (prod)"),
            [Expression::NotIn("env".into(), set(&["prod"]))]
        );
        // Keywords are plain values inside parentheses.
        assert_eq!(
            exprs("x in (in,notin)"),
            [Expression::In("x".into(), set(&["in", "notin"]))]
        );
        // Empty entries mean the empty value, as in apimachinery.
        assert_eq!(exprs("x in ()"), [Expression::In("x".into(), set(&[""]))]);
        assert_eq!(
            exprs("x in (a,)"),
            [Expression::In("x".into(), set(&["", "a"]))]
        );
        assert_eq!(
            exprs("x in (,a)"),
            [Expression::In("x".into(), set(&["", "a"]))]
        );
        assert_eq!(
            exprs("x in (a,,b)"),
            [Expression::In("x".into(), set(&["", "a", "b"]))]
        );
    }

    #[test]
    fn existence_and_conjunction() {
        assert_eq!(
            exprs("skaffold.dev/run-id=abc,app,!canary"),
            [
                Expression::Equal("skaffold.dev/run-id".into(), "abc".into()),
                Expression::Exists("app".into()),
                Expression::DoesNotExist("canary".into()),
            ]
        );
        assert!(exprs("").is_empty());
        assert!(exprs("   ").is_empty());
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for bad in [
            "a=b,",
            ",a=b",
            "a=b c",
            "a in b",
            "a in (b",
            "a in (b c)",
            "!a=b",
            "a=(b)",
            "=b",
            "a=b=c",
            "a!b",
            "-a=b",
            "a=b-",
            "a>1",
            "a<1",
            "Upper.Dev/x=y",
            "a in (b,-c)",
        ] {
            assert!(parse_label_selector(bad).is_err(), "{bad:?} should fail");
        }
        let e = parse_label_selector("a=b,").unwrap_err().to_string();
        assert_eq!(
            e,
            "unable to parse requirement: found '', expected: identifier after ','"
        );
    }

    #[test]
    fn matching_follows_kubernetes() {
        let l = labels(&[("app", "web"), ("skaffold.dev/run-id", "abc")]);
        let yes = [
            "app=web",
            "app",
            "!missing",
            "app in (web,api)",
            "app notin (db)",
            "missing notin (x)",
            "missing!=x",
            "skaffold.dev/run-id=abc,app==web",
            "",
        ];
        let no = [
            "app=api",
            "missing",
            "!app",
            "app in (api)",
            "app notin (web)",
            "missing in (x)",
            "app!=web",
            "skaffold.dev/run-id=other,app=web",
        ];
        for s in yes {
            assert!(parse_label_selector(s).unwrap().matches(&l), "{s}");
        }
        for s in no {
            assert!(!parse_label_selector(s).unwrap().matches(&l), "{s}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "a=b",
            "a!=b",
            "a in (b,c)",
            "a notin (b)",
            "a",
            "!a",
            "a=b,!c",
        ] {
            assert_eq!(parse_label_selector(s).unwrap().to_string(), s);
        }
    }
}

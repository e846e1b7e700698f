//! YAML manifests read with `serde-saphyr` (multi-document, anchors and
//! merge keys), keeping where every node is so that a field that does not fit
//! its Kubernetes type is reported with its line and column.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// One YAML node: its plain value and the position of it and its children.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub value: Value,
    pub line: u64,
    pub column: u64,
    children: Children,
}

#[derive(Debug, Clone, Default)]
enum Children {
    #[default]
    None,
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
}

/// Every document of a YAML stream (empty ones, e.g. after a trailing `---`,
/// are dropped). The error is the parser's, with line, column and a snippet.
pub(crate) fn documents(text: &str) -> Result<Vec<Node>, String> {
    let docs: Vec<Option<Spanned<Tree>>> =
        serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    Ok(docs
        .into_iter()
        .flatten()
        .map(Node::from)
        .filter(|n| !n.value.is_null())
        .collect())
}

impl Node {
    /// The node as `T`; an error names the field, its line and column.
    pub(crate) fn to<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_path_to_error::deserialize(&self.value).map_err(|e| {
            let at = self.at(e.path());
            let path = e.path().to_string();
            let field = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            format!(
                "{field}{} (line {}, column {})",
                e.inner(),
                at.line,
                at.column
            )
        })
    }

    /// The deepest node along `path` (as far as it exists).
    fn at(&self, path: &serde_path_to_error::Path) -> &Node {
        let mut node = self;
        for segment in path.iter() {
            let next = match (segment, &node.children) {
                (serde_path_to_error::Segment::Map { key }, Children::Map(entries)) => {
                    entries.iter().find(|(k, _)| k == key).map(|(_, n)| n)
                }
                (serde_path_to_error::Segment::Seq { index }, Children::Seq(items)) => {
                    items.get(*index)
                }
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }
}

impl From<Spanned<Tree>> for Node {
    fn from(s: Spanned<Tree>) -> Self {
        let (value, children) = match s.value {
            Tree::Scalar(v) => (v, Children::None),
            Tree::Map(entries) => {
                let entries: Vec<(String, Node)> = entries
                    .into_iter()
                    .map(|(k, v)| (k, Node::from(v)))
                    .collect();
                let map = entries
                    .iter()
                    .map(|(k, n)| (k.clone(), n.value.clone()))
                    .collect();
                (Value::Object(map), Children::Map(entries))
            }
            Tree::Seq(items) => {
                let items: Vec<Node> = items.into_iter().map(Node::from).collect();
                let list = items.iter().map(|n| n.value.clone()).collect();
                (Value::Array(list), Children::Seq(items))
            }
        };
        Node {
            value,
            line: s.referenced.line(),
            column: s.referenced.column(),
            children,
        }
    }
}

/// What the parser gives, positions attached by `Spanned`.
enum Tree {
    Scalar(Value),
    Map(Vec<(String, Spanned<Tree>)>),
    Seq(Vec<Spanned<Tree>>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("YAML")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Scalar(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Scalar(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Tree::Scalar(Value::Number(n)))
            .ok_or_else(|| E::custom(format!("{v} is not a number JSON can hold")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::String(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries: Vec<(String, Spanned<Tree>)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Tree::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_anchors_and_merge_keys() {
        let text = "a: &x {k: 1}\nb: *x\n---\n---\nc: {<<: {m: 2}, n: 3}\n";
        let docs = documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a": {"k": 1}, "b": {"k": 1}})
        );
        assert_eq!(docs[1].value, serde_json::json!({"c": {"m": 2, "n": 3}}));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_located() {
        #[derive(Debug, serde::Deserialize)]
        struct Spec {
            #[allow(dead_code)]
            items: Vec<Item>,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Item {
            #[allow(dead_code)]
            n: i32,
        }
        let docs = documents("items:\n  - n: 1\n  - n: many\n").unwrap();
        let e = docs[0].to::<Spec>().unwrap_err();
        assert!(e.starts_with("items[1].n: invalid type"), "{e}");
        assert!(e.ends_with("(line 3, column 8)"), "{e}");
    }

    #[test]
    fn a_syntax_error_is_located() {
        let e = documents("a: 1\nkind: [unclosed\n").unwrap_err();
        assert!(e.contains("line"), "{e}");
    }
}

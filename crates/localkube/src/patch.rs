//! PATCH bodies for the objects localkube lets clients change: JSON merge
//! patches (RFC 7386) and strategic merge patches, the kind `kubectl apply`
//! and `kubectl rollout restart` send.
//!
//! The strategic merge follows
//! <https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md>
//! and apimachinery `pkg/util/strategicpatch/patch.go`: maps merge, `null`
//! deletes a key, lists of objects with a merge key (the `patchMergeKey` tags of
//! the core types: containers and volumes by `name`, volumeMounts by
//! `mountPath`, ports by `containerPort`, …) merge element by element, other
//! lists are replaced. Directives: `$patch: replace|delete` (maps and list
//! elements), `$retainKeys`, `$setElementOrder/<list>` and
//! `$deleteFromPrimitiveList/<list>`.

use serde_json::{Map, Value};

/// The merge key of a list field (by the field's name, as in the Pod and
/// Deployment types), or `None` for lists that are replaced whole.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => Some("name"),
        "conditions" => Some("type"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ports" => Some("containerPort"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

/// Apply a JSON merge patch (RFC 7386).
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Apply a strategic merge patch to an object.
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Object(p) = patch else {
        return Err("a strategic merge patch must be a JSON object".into());
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    merge_map(target.as_object_mut().expect("an object"), p)
}

fn merge_map(t: &mut Map<String, Value>, p: &Map<String, Value>) -> Result<(), String> {
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *t = p
                .iter()
                .filter(|(k, _)| k.as_str() != "$patch")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            return Ok(());
        }
        Some("delete") => {
            t.clear();
            return Ok(());
        }
        Some(other) => return Err(format!("unknown $patch directive {other:?}")),
        None => {}
    }
    if let Some(retain) = p.get("$retainKeys") {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or("$retainKeys must be a list")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(gone)) = (t.get_mut(field), v) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue; // $patch, $retainKeys above; $setElementOrder below
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(Value::Object(tm)), Value::Object(pm)) => merge_map(tm, pm)?,
            (Some(Value::Array(tl)), Value::Array(pl)) => match merge_key(k) {
                Some(key) => merge_list(tl, pl, key)?,
                None => *tl = pl.clone(),
            },
            (_, Value::Object(pm)) => {
                let mut fresh = Map::new();
                merge_map(&mut fresh, pm)?;
                t.insert(k.clone(), Value::Object(fresh));
            }
            (_, Value::Array(pl)) => {
                // Directive-only elements have nothing to merge into.
                let list: Vec<Value> = pl
                    .iter()
                    .filter(|e| e.get("$patch").is_none())
                    .cloned()
                    .collect();
                t.insert(k.clone(), Value::Array(list));
            }
            (_, v) => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, order) in p {
        if let Some(field) = k.strip_prefix("$setElementOrder/")
            && let (Some(Value::Array(list)), Value::Array(order)) = (t.get_mut(field), order)
        {
            let key = merge_key(field);
            let rank = |e: &Value| {
                order.iter().position(|o| match key {
                    Some(key) => o.get(key).is_some() && o.get(key) == e.get(key),
                    None => o == e,
                })
            };
            // Listed elements in the given order, then the others as they were.
            list.sort_by_key(|e| rank(e).unwrap_or(usize::MAX));
        }
    }
    Ok(())
}

fn merge_list(t: &mut Vec<Value>, p: &[Value], key: &str) -> Result<(), String> {
    if p.len() == 1 && p[0].get("$patch").and_then(Value::as_str) == Some("replace") {
        *t = Vec::new();
        return Ok(());
    }
    for e in p {
        let Some(id) = e.get(key) else {
            return Err(format!("a list element lacks its merge key {key:?}: {e}"));
        };
        let at = t.iter().position(|x| x.get(key) == Some(id));
        match (e.get("$patch").and_then(Value::as_str), at) {
            (Some("delete"), Some(i)) => {
                t.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => {
                let Value::Object(pm) = e else { continue };
                if let Value::Object(tm) = &mut t[i] {
                    merge_map(tm, pm)?;
                }
            }
            (_, None) => {
                let mut fresh = Map::new();
                if let Value::Object(pm) = e {
                    merge_map(&mut fresh, pm)?;
                }
                t.push(Value::Object(fresh));
            }
        }
    }
    Ok(())
}

/// A request's `Content-Type` without parameters: which patch kind it is.
pub(crate) fn media_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_lists_merge_by_key_and_directives_apply() {
        let mut obj = json!({
            "metadata": {"annotations": {"a": "1", "b": "2"}},
            "spec": {"template": {"spec": {
                "containers": [
                    {"name": "app", "image": "v1", "args": ["x", "y"], "env": [{"name": "A", "value": "1"}]},
                    {"name": "side", "image": "s1"}
                ]
            }}}
        });
        let patch = json!({
            "metadata": {"annotations": {"a": null, "c": "3"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                "containers": [
                    {"name": "app", "image": "v2", "args": ["z"],
                     "env": [{"name": "B", "value": "2"}]},
                    {"name": "side", "$patch": "delete"}
                ]
            }}}
        });
        strategic_merge(&mut obj, &patch).unwrap();
        assert_eq!(
            obj,
            json!({
                "metadata": {"annotations": {"b": "2", "c": "3"}},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": "v2", "args": ["z"],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
                ]}}}
            })
        );
    }

    #[test]
    fn retain_keys_and_merge_patch() {
        let mut obj =
            json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}});
        strategic_merge(
            &mut obj,
            &json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}),
        )
        .unwrap();
        assert_eq!(obj, json!({"strategy": {"type": "Recreate"}}));
        let mut obj = json!({"a": {"b": [1, 2], "c": 1}});
        merge_patch(&mut obj, &json!({"a": {"b": [3], "c": null}}));
        assert_eq!(obj, json!({"a": {"b": [3]}}));
    }
}

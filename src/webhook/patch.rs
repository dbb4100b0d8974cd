//! A JSONPatch (RFC 6902) computed by diffing the pod before and after the
//! mutation `inject` applies, so the webhook's result equals `inject`'s by
//! construction: the webhook never builds a patch of its own.
//!
//! Operations are applied in order, so every path refers to the document as
//! left by the operations before it: insertions into an array are emitted
//! from the lowest index up, removals from the highest down.

use serde_json::{json, Map, Value};

/// The operations turning `before` into `after` (empty when equal).
pub(crate) fn diff(before: &Value, after: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    diff_at(&mut String::new(), before, after, &mut ops);
    ops
}

/// An RFC 6901 reference token: `~` and `/` escaped, in that order.
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn diff_at(path: &mut String, before: &Value, after: &Value, ops: &mut Vec<Value>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => diff_objects(path, a, b, ops),
        (Value::Array(a), Value::Array(b)) => diff_arrays(path, a, b, ops),
        _ => ops.push(json!({"op": "replace", "path": path.as_str(), "value": after})),
    }
}

fn with_token<R>(path: &mut String, token: &str, f: impl FnOnce(&mut String) -> R) -> R {
    let len = path.len();
    path.push('/');
    path.push_str(token);
    let r = f(path);
    path.truncate(len);
    r
}

fn diff_objects(
    path: &mut String,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    ops: &mut Vec<Value>,
) {
    for (k, old) in a {
        with_token(path, &escape(k), |p| match b.get(k) {
            None => ops.push(json!({"op": "remove", "path": p.as_str()})),
            Some(new) => diff_at(p, old, new, ops),
        });
    }
    for (k, new) in b {
        if !a.contains_key(k) {
            with_token(path, &escape(k), |p| {
                ops.push(json!({"op": "add", "path": p.as_str(), "value": new}))
            });
        }
    }
}

/// Items inserted (or removed) as one run, the rest unchanged, become adds
/// (or removes) of that run alone, so a sidecar placed first among the init
/// containers does not turn into a replace of each one. Anything else is
/// diffed position by position.
fn diff_arrays(path: &mut String, a: &[Value], b: &[Value], ops: &mut Vec<Value>) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    if b.len() > a.len() && prefix + suffix == a.len() {
        let append = suffix == 0;
        for (i, v) in b[prefix..b.len() - suffix].iter().enumerate() {
            let token = if append {
                "-".to_string()
            } else {
                (prefix + i).to_string()
            };
            with_token(path, &token, |p| {
                ops.push(json!({"op": "add", "path": p.as_str(), "value": v}))
            });
        }
        return;
    }
    if a.len() > b.len() && prefix + suffix == b.len() {
        for i in (prefix..a.len() - suffix).rev() {
            with_token(path, &i.to_string(), |p| {
                ops.push(json!({"op": "remove", "path": p.as_str()}))
            });
        }
        return;
    }
    let common = a.len().min(b.len());
    for i in 0..common {
        with_token(path, &i.to_string(), |p| diff_at(p, &a[i], &b[i], ops));
    }
    for v in &b[common..] {
        with_token(path, "-", |p| {
            ops.push(json!({"op": "add", "path": p.as_str(), "value": v}))
        });
    }
    for i in (common..a.len()).rev() {
        with_token(path, &i.to_string(), |p| {
            ops.push(json!({"op": "remove", "path": p.as_str()}))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small RFC 6902 applier (add/remove/replace), only to check that the
    /// diff round-trips here; the integration tests apply the patches with
    /// Python's `jsonpatch`, an independent implementation.
    fn apply(doc: &mut Value, ops: &[Value]) {
        for op in ops {
            let path = op["path"].as_str().unwrap();
            let (parent, last) = path.rsplit_once('/').unwrap();
            let last = last.replace("~1", "/").replace("~0", "~");
            let target = doc.pointer_mut(parent).unwrap();
            match (op["op"].as_str().unwrap(), target) {
                ("add", Value::Object(m)) | ("replace", Value::Object(m)) => {
                    m.insert(last, op["value"].clone());
                }
                ("remove", Value::Object(m)) => {
                    m.shift_remove(&last).unwrap();
                }
                ("add", Value::Array(v)) if last == "-" => v.push(op["value"].clone()),
                ("add", Value::Array(v)) => v.insert(last.parse().unwrap(), op["value"].clone()),
                ("replace", Value::Array(v)) => {
                    v[last.parse::<usize>().unwrap()] = op["value"].clone()
                }
                ("remove", Value::Array(v)) => {
                    v.remove(last.parse().unwrap());
                }
                (o, t) => panic!("cannot {o} at {path} in {t}"),
            }
        }
    }

    fn round_trip(a: Value, b: Value) -> Vec<Value> {
        let ops = diff(&a, &b);
        let mut c = a.clone();
        apply(&mut c, &ops);
        assert_eq!(c, b, "ops {ops:?}");
        ops
    }

    #[test]
    fn equal_documents_give_no_ops() {
        assert!(diff(&json!({"a": [1, {"b": 2}]}), &json!({"a": [1, {"b": 2}]})).is_empty());
    }

    #[test]
    fn escapes_tilde_and_slash() {
        let ops = round_trip(
            json!({"metadata": {"annotations": {}}}),
            json!({"metadata": {"annotations": {"a.io/x~y": "1"}}}),
        );
        assert_eq!(ops[0]["path"], "/metadata/annotations/a.io~1x~0y");
        assert_eq!(escape("~/"), "~0~1");
    }

    #[test]
    fn insertion_first_is_one_add() {
        let ops = round_trip(
            json!({"i": [{"n": "a"}, {"n": "b"}]}),
            json!({"i": [{"n": "s"}, {"n": "a"}, {"n": "b"}]}),
        );
        assert_eq!(
            ops,
            vec![json!({"op": "add", "path": "/i/0", "value": {"n": "s"}})]
        );
    }

    #[test]
    fn append_uses_dash() {
        let ops = round_trip(json!({"c": [1]}), json!({"c": [1, 2, 3]}));
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|o| o["path"] == "/c/-"));
    }

    #[test]
    fn mixed_changes_round_trip() {
        round_trip(
            json!({"c": [1, 2, 3, 4], "x": 1, "y": {"z": [1]}}),
            json!({"c": [9, 2], "y": {"z": []}, "w": null}),
        );
        round_trip(json!([1, 2, 3]), json!([1, 7, 8, 9, 3]));
        round_trip(json!({"c": [1, 2, 3]}), json!({"c": [1, 3]}));
        round_trip(json!({"a": 1}), json!({"a": [1]}));
    }
}

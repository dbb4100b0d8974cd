//! A JSONPatch (RFC 6902) computed by diffing the pod before and after the
//! mutation `inject` applies, so the webhook's result equals `inject`'s by
//! construction: the webhook never builds a patch of its own.
//!
//! The pod before is read straight from the request's bytes (a
//! [`RawValue`]), never copied into a tree: a `Value` tree takes many times
//! the JSON's size, and holding two of them made one large review cost
//! many times its body (issue 24). Each level is split into its members as
//! the diff descends, and equality is checked by streaming the bytes against
//! the tree, so the patch and the memory follow what changed.
//!
//! Operations are applied in order, so every path refers to the document as
//! left by the operations before it: insertions into an array are emitted
//! from the lowest index up, removals from the highest down.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{json, Number, Value};
use std::collections::BTreeMap;

/// The operations turning `before` into `after` (empty when equal). Fails
/// only if `before` is not JSON, which a `RawValue` always is.
pub(crate) fn diff(before: &RawValue, after: &Value) -> Result<Vec<Value>, serde_json::Error> {
    let mut ops = Vec::new();
    diff_at(&mut String::new(), before, after, &mut ops)?;
    Ok(ops)
}

/// An RFC 6901 reference token: `~` and `/` escaped, in that order.
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

type Ops = Vec<Value>;

fn diff_at(
    path: &mut String,
    before: &RawValue,
    after: &Value,
    ops: &mut Ops,
) -> Result<(), serde_json::Error> {
    if equal(before, after)? {
        return Ok(());
    }
    let first = before.get().trim_start().as_bytes().first();
    match (first, after) {
        (Some(b'{'), Value::Object(b)) => {
            let a: BTreeMap<String, &RawValue> = serde_json::from_str(before.get())?;
            for (k, old) in &a {
                with_token(path, &escape(k), |p| match b.get(k) {
                    None => {
                        ops.push(json!({"op": "remove", "path": p.as_str()}));
                        Ok(())
                    }
                    Some(new) => diff_at(p, old, new, ops),
                })?;
            }
            for (k, new) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                with_token(path, &escape(k), |p| add(p, new, ops));
            }
            Ok(())
        }
        (Some(b'['), Value::Array(b)) => {
            let a: Vec<&RawValue> = serde_json::from_str(before.get())?;
            diff_arrays(path, &a, b, ops)
        }
        _ => {
            ops.push(json!({"op": "replace", "path": path.as_str(), "value": after}));
            Ok(())
        }
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

fn add(path: &str, value: &Value, ops: &mut Ops) {
    ops.push(json!({"op": "add", "path": path, "value": value}));
}

/// Items inserted (or removed) as one run, the rest unchanged, become adds
/// (or removes) of that run alone, so a sidecar placed first among the init
/// containers does not turn into a replace of each one. Anything else is
/// diffed position by position.
fn diff_arrays(
    path: &mut String,
    a: &[&RawValue],
    b: &[Value],
    ops: &mut Ops,
) -> Result<(), serde_json::Error> {
    let mut prefix = 0;
    while prefix < a.len().min(b.len()) && equal(a[prefix], &b[prefix])? {
        prefix += 1;
    }
    let max_suffix = a.len().min(b.len()) - prefix;
    let mut suffix = 0;
    while suffix < max_suffix && equal(a[a.len() - 1 - suffix], &b[b.len() - 1 - suffix])? {
        suffix += 1;
    }
    if b.len() > a.len() && prefix + suffix == a.len() {
        let append = suffix == 0;
        for (i, v) in b[prefix..b.len() - suffix].iter().enumerate() {
            let token = if append {
                "-".to_string()
            } else {
                (prefix + i).to_string()
            };
            with_token(path, &token, |p| add(p, v, ops));
        }
        return Ok(());
    }
    if a.len() > b.len() && prefix + suffix == b.len() {
        for i in (prefix..a.len() - suffix).rev() {
            with_token(path, &i.to_string(), |p| {
                ops.push(json!({"op": "remove", "path": p.as_str()}))
            });
        }
        return Ok(());
    }
    let common = a.len().min(b.len());
    for i in 0..common {
        with_token(path, &i.to_string(), |p| diff_at(p, a[i], &b[i], ops))?;
    }
    for v in &b[common..] {
        with_token(path, "-", |p| add(p, v, ops));
    }
    for i in (common..a.len()).rev() {
        with_token(path, &i.to_string(), |p| {
            ops.push(json!({"op": "remove", "path": p.as_str()}))
        });
    }
    Ok(())
}

/// Whether the JSON text `raw` is `value`, as `Value`'s `==` would say of
/// it parsed (objects in any order, numbers by kind), without building it.
fn equal(raw: &RawValue, value: &Value) -> Result<bool, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    Same(value).deserialize(&mut de)
}

/// Compares the JSON being read with the `Value` it holds.
struct Same<'v>(&'v Value);

impl<'de> DeserializeSeed<'de> for Same<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Same<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(self.0.is_null())
    }
    fn visit_bool<E>(self, x: bool) -> Result<bool, E> {
        Ok(self.0.as_bool() == Some(x))
    }
    fn visit_u64<E>(self, x: u64) -> Result<bool, E> {
        Ok(matches!(self.0, Value::Number(n) if *n == Number::from(x)))
    }
    fn visit_i64<E>(self, x: i64) -> Result<bool, E> {
        Ok(matches!(self.0, Value::Number(n) if *n == Number::from(x)))
    }
    fn visit_f64<E>(self, x: f64) -> Result<bool, E> {
        let n = Number::from_f64(x);
        Ok(matches!(self.0, Value::Number(v) if Some(v) == n.as_ref()))
    }
    fn visit_str<E>(self, x: &str) -> Result<bool, E> {
        Ok(self.0.as_str() == Some(x))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let items = self.0.as_array().map_or(&[][..], Vec::as_slice);
        let mut same = self.0.is_array();
        let mut seen = 0;
        loop {
            // Read to the end even once different: the parser wants it.
            let more = match items.get(seen) {
                Some(v) if same => seq.next_element_seed(Same(v))?.map(|s| same &= s),
                _ => seq.next_element::<IgnoredAny>()?.map(|_| same = false),
            };
            if more.is_none() {
                return Ok(same && seen == items.len());
            }
            seen += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let members = self.0.as_object();
        let mut same = members.is_some();
        let mut seen = 0;
        while let Some(key) = map.next_key::<String>()? {
            match members.and_then(|m| m.get(&key)) {
                Some(v) if same => same &= map.next_value_seed(Same(v))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    same = false;
                }
            }
            seen += 1;
        }
        // A repeated key counts twice, so it reads as different.
        Ok(same && members.is_some_and(|m| m.len() == seen))
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

    fn raw(v: &Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(v).unwrap()
    }

    fn round_trip(a: Value, b: Value) -> Vec<Value> {
        let ops = diff(&raw(&a), &b).unwrap();
        let mut c = a.clone();
        apply(&mut c, &ops);
        assert_eq!(c, b, "ops {ops:?}");
        ops
    }

    #[test]
    fn equal_documents_give_no_ops() {
        let a = json!({"a": [1, {"b": 2}], "n": -1, "f": 1.5, "t": true, "z": null});
        assert!(diff(&raw(&a), &a.clone()).unwrap().is_empty());
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
        // Equal by value, whatever the order of members or the spelling.
        let text = RawValue::from_string(r#"{ "b": 1, "a": "\u0041" }"#.into()).unwrap();
        assert!(diff(&text, &json!({"a": "A", "b": 1})).unwrap().is_empty());
        // Numbers of another kind differ, as for `Value`'s `==`.
        round_trip(json!({"n": 1}), json!({"n": 1.0}));
        round_trip(json!({"n": [1, 2]}), json!({"n": {"0": 1}}));
    }
}

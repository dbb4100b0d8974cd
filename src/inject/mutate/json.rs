//! Small edits of an untyped pod template: lists by name, annotations.

use super::*;

pub(super) fn names_of(list: &[Value]) -> Vec<String> {
    list.iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

pub(super) fn spec_mut(template: &mut Value) -> Result<&mut Value, InjectError> {
    match template.get_mut("spec") {
        Some(s @ Value::Object(_)) => Ok(s),
        _ => Err(InjectError::Shape("spec is not an object".into())),
    }
}

/// The regular or init container named `name`: a pod's container names are unique
/// across both lists, so a name alone finds a target of either kind.
pub(super) fn find_container_mut<'a>(spec: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    let is_it = |c: &Value| c.get("name").and_then(Value::as_str) == Some(name);
    let in_regular = spec
        .get("containers")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(is_it));
    let field = if in_regular {
        "containers"
    } else {
        "initContainers"
    };
    spec.get_mut(field)?
        .as_array_mut()?
        .iter_mut()
        .find(|c| is_it(c))
}

/// The list at `obj[field]`, created if absent (or null).
pub(super) fn list_mut<'a>(obj: &'a mut Value, field: &str) -> &'a mut Vec<Value> {
    let slot = &mut obj[field];
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(a) => a,
        // Just made an array above.
        _ => unreachable!("slot was made an array"),
    }
}

pub(super) fn drop_if_empty(obj: &mut Value, field: &str) {
    if let Some(m) = obj.as_object_mut() {
        if m.get(field)
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            m.shift_remove(field);
        }
    }
}

/// Removes the entries of `obj[field]` whose name is in `names`; drops the list if that
/// leaves it empty (we created it, or it held only ours).
pub(super) fn remove_named(obj: &mut Value, field: &str, names: &[String]) {
    if let Some(list) = obj.get_mut(field).and_then(Value::as_array_mut) {
        list.retain(|e| {
            !e.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| names.iter().any(|x| x == n))
        });
    }
    drop_if_empty(obj, field);
}

pub(super) fn set_annotation(
    template: &mut Value,
    key: &str,
    value: String,
) -> Result<(), InjectError> {
    let t = template
        .as_object_mut()
        .ok_or_else(|| InjectError::Shape("not an object".into()))?;
    let meta = t.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    let ann = meta
        .as_object_mut()
        .ok_or_else(|| InjectError::Shape("metadata is not an object".into()))?
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if ann.is_null() {
        *ann = json!({});
    }
    ann.as_object_mut()
        .ok_or_else(|| InjectError::Shape("metadata.annotations is not a map".into()))?
        .insert(key.into(), Value::String(value));
    Ok(())
}

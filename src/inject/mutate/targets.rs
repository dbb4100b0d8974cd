//! Which containers of the pod get the trust.

use super::*;

/// The containers that get the trust, checked to exist; never empty.
pub(super) fn target_names(spec: &Value, o: &InjectOptions) -> Result<Vec<String>, InjectError> {
    let all: Vec<String> = match spec.get("containers") {
        Some(Value::Array(cs)) => cs
            .iter()
            .map(|c| {
                c.get("name")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .ok_or_else(|| InjectError::Shape("a container has no name".into()))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(InjectError::Shape("spec.containers is not a list".into())),
    };
    if all.is_empty() {
        return Err(InjectError::Shape("spec.containers is empty".into()));
    }
    if o.containers.is_empty() {
        return Ok(all);
    }
    for want in &o.containers {
        if !all.contains(want) {
            return Err(InjectError::UnknownContainer(want.clone()));
        }
    }
    // In the pod's order, so the base roots come from the first target's image.
    Ok(all
        .into_iter()
        .filter(|n| o.containers.contains(n))
        .collect())
}

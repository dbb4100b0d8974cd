//! Pods injected by another trust-injector version. The webhook leaves an injected pod
//! as its owner made it (its template came from `inject`), so an old sidecar could
//! linger unnoticed; it is said on the pod and counted in the webhook's `/metrics`.

use super::*;

/// The version in the marker annotation when it is not this build's; `None` for a
/// template without the marker or injected by this very version.
pub fn injected_by_other_version(template: &Value) -> Result<Option<String>, InjectError> {
    let Some(raw) = annotations(template)?.and_then(|a| a.get(ANN_STATUS)) else {
        return Ok(None);
    };
    let raw = raw
        .as_str()
        .ok_or_else(|| InjectError::BadStatus("not a string".into()))?;
    let status: Status =
        serde_json::from_str(raw).map_err(|e| InjectError::BadStatus(e.to_string()))?;
    Ok(Some(status.version).filter(|v| v != env!("CARGO_PKG_VERSION")))
}

/// Writes [`ANN_OUTDATED`] on a template injected by another version, saying how to
/// upgrade; returns that version. Nothing else of the template changes.
pub fn mark_outdated(template: &mut Value) -> Result<Option<String>, InjectError> {
    let Some(theirs) = injected_by_other_version(template)? else {
        return Ok(None);
    };
    let ours = env!("CARGO_PKG_VERSION");
    let note = format!(
        "injected by trust-injector {theirs}, not {ours}: run `trust-injector inject` \
         {ours} on its workload to upgrade the sidecar"
    );
    set_annotation(template, ANN_OUTDATED, note)?;
    Ok(Some(theirs))
}

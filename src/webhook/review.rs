//! `AdmissionReview` (`admission.k8s.io/v1`) in and out.
//!
//! The request is checked field by field so that a wrong document gets an
//! answer naming what is wrong, not a generic parse error. Only what the
//! webhook needs is read; the pod object itself stays a `serde_json::Value`,
//! so fields this version does not know survive the round trip untouched.

use base64::Engine;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The only version served; `admissionReviewVersions: [v1]` in the
/// configuration makes the API server send it.
pub(crate) const API_VERSION: &str = "admission.k8s.io/v1";

/// Why a request body is not a review this webhook can answer. Each becomes
/// HTTP 400 with a `Status` body carrying the message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReviewError {
    #[error("the body is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("apiVersion is {found:?}; this webhook serves {API_VERSION:?} only (set admissionReviewVersions: [v1])")]
    WrongApiVersion { found: String },
    #[error("kind is {found:?}, expected \"AdmissionReview\"")]
    WrongKind { found: String },
    #[error("no request in the AdmissionReview")]
    NoRequest,
    #[error("request.uid is missing or empty")]
    NoUid,
    #[error("request.kind is {found}; this webhook mutates v1 Pods only (check the rules of the MutatingWebhookConfiguration)")]
    NotAPod { found: String },
    #[error("request.object is missing or not an object")]
    NoObject,
}

/// A Pod review to answer, borrowing the pod's JSON from the request body.
#[derive(Debug)]
pub(crate) struct PodReview<'a> {
    /// Echoed in the response: the API server matches answers by it.
    pub uid: String,
    /// `CREATE`, `UPDATE`, ... Only a CREATE can add containers.
    pub operation: String,
    /// Set for subresource requests (`pods/binding`, ...), which are never
    /// mutated.
    pub sub_resource: Option<String>,
    /// Where the pod is created (the object itself often has no namespace yet).
    pub namespace: String,
    /// The Pod as sent: its text, parsed only when it is to be mutated, and
    /// the "before" of the patch. `None` for a DELETE, which carries none.
    pub pod: Option<&'a RawValue>,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// One level of a JSON object: its members, unparsed.
type Members<'a> = BTreeMap<String, &'a RawValue>;

/// A member parsed to a `Value`; `Null` when absent, which the checks below
/// then name.
fn member(m: &Members<'_>, key: &str) -> Result<Value, serde_json::Error> {
    match m.get(key) {
        Some(r) => serde_json::from_str(r.get()),
        None => Ok(Value::Null),
    }
}

/// Parses and checks a request body.
pub(crate) fn parse(body: &[u8]) -> Result<PodReview<'_>, ReviewError> {
    let doc: Members<'_> = serde_json::from_slice(body)?;
    let api_version = member(&doc, "apiVersion")?;
    let api_version = api_version.as_str().unwrap_or("");
    if api_version != API_VERSION {
        return Err(ReviewError::WrongApiVersion {
            found: api_version.to_string(),
        });
    }
    let kind = member(&doc, "kind")?;
    let kind = kind.as_str().unwrap_or("");
    if kind != "AdmissionReview" {
        return Err(ReviewError::WrongKind {
            found: kind.to_string(),
        });
    }
    let request: Members<'_> = match doc.get("request") {
        Some(r) if r.get().trim_start().starts_with('{') => serde_json::from_str(r.get())?,
        _ => return Err(ReviewError::NoRequest),
    };
    let field = |k: &str| member(&request, k);
    let uid = match field("uid")?.as_str() {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => return Err(ReviewError::NoUid),
    };
    let gvk = field("kind")?;
    let (group, version, kind) = (
        str_at(&gvk, "group").unwrap_or(""),
        str_at(&gvk, "version").unwrap_or(""),
        str_at(&gvk, "kind").unwrap_or(""),
    );
    if (group, version, kind) != ("", "v1", "Pod") {
        let found = if group.is_empty() {
            format!("{version}/{kind}")
        } else {
            format!("{group}/{version}/{kind}")
        };
        return Err(ReviewError::NotAPod { found });
    }
    let operation = field("operation")?.as_str().unwrap_or("").to_string();
    let sub_resource = field("subResource")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let namespace = field("namespace")?.as_str().unwrap_or("").to_string();
    let pod = match request.get("object") {
        Some(o) if o.get().trim_start().starts_with('{') => Some(*o),
        // A DELETE carries no object; it is allowed unchanged, like any
        // operation other than CREATE.
        _ if operation != "CREATE" => None,
        _ => return Err(ReviewError::NoObject),
    };
    Ok(PodReview {
        uid,
        operation,
        sub_resource,
        namespace,
        pod,
    })
}

/// The answer to a review.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Allowed; with a JSONPatch when it is not empty, and warnings (kubectl prints
    /// them) naming what was left without trust and why.
    Allow {
        patch: Vec<Value>,
        warnings: Vec<String>,
    },
    /// Denied with a message (the pod is not created; the user sees why).
    Deny { message: String },
}

impl Verdict {
    /// Allowed unchanged, nothing to say.
    pub(crate) fn allow() -> Verdict {
        Verdict::Allow {
            patch: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// The response document for `uid`, serialised. Serialising `Value`s
/// (string keys only) does not fail; if it ever did, the error is returned,
/// never an empty patch that would admit the pod without its sidecar.
pub(crate) fn response(uid: &str, verdict: &Verdict) -> Result<Vec<u8>, serde_json::Error> {
    let mut inner = match verdict {
        Verdict::Allow { patch, .. } if patch.is_empty() => json!({"uid": uid, "allowed": true}),
        Verdict::Allow { patch, .. } => {
            let bytes = serde_json::to_vec(patch)?;
            json!({
                "uid": uid,
                "allowed": true,
                "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(bytes),
            })
        }
        Verdict::Deny { message } => json!({
            "uid": uid,
            "allowed": false,
            "status": {"code": 400, "reason": "BadRequest", "message": message},
        }),
    };
    if let Verdict::Allow { warnings, .. } = verdict {
        if !warnings.is_empty() {
            inner["warnings"] = json!(warnings);
        }
    }
    serde_json::to_vec(
        &json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": inner}),
    )
}

/// A `metav1.Status` error body: the API server quotes its message when a
/// webhook call fails, so the user sees why instead of a bare status code.
pub(crate) fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(request: Value) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "request": request}),
        )
        .unwrap()
    }

    #[test]
    fn pod_create_parses() {
        let body = review(json!({
            "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "ns", "object": {"kind": "Pod"}
        }));
        let r = parse(&body).unwrap();
        assert_eq!((r.uid.as_str(), r.namespace.as_str()), ("u1", "ns"));
    }

    #[test]
    fn wrong_documents_name_the_field() {
        let e =
            parse(b"{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\"}")
                .unwrap_err();
        assert!(e.to_string().contains("v1beta1"), "{e}");
        let e = parse(&review(json!({"uid": "u", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}, "operation": "CREATE", "object": {}}))).unwrap_err();
        assert!(e.to_string().contains("apps/v1/Deployment"), "{e}");
        assert!(matches!(
            parse(b"{nope").unwrap_err(),
            ReviewError::NotJson(_)
        ));
        assert!(matches!(
            parse(&review(json!({"kind": {}}))).unwrap_err(),
            ReviewError::NoUid
        ));
    }
}

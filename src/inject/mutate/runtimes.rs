//! Runtimes that read neither SSL_CERT_FILE nor SSL_CERT_DIR, opted into by the annotation
//! [`ANN_RUNTIMES`]: each gets its own variable pointing at the published bundle.
//!
//! Opt-in because each variable changes what that runtime trusts (Node adds to its roots,
//! requests and curl replace theirs, Java needs the PKCS#12 store), and what each does on
//! rotation differs (docs/runtimes.md): the workload's owner decides.

use super::*;

/// Comma-separated runtimes that get their own variable: `node`, `python`, `curl`, `java`.
pub const ANN_RUNTIMES: &str = "trust-injector.io/runtimes";

/// Java reads options from this; we append to a plain value, never replace it.
pub(super) const JAVA_TOOL_OPTIONS: &str = "JAVA_TOOL_OPTIONS";

/// One runtime of [`ANN_RUNTIMES`], in the order their variables are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Runtime {
    /// `NODE_EXTRA_CA_CERTS`: added to Node's own roots.
    Node,
    /// `REQUESTS_CA_BUNDLE`: Python requests ignores SSL_CERT_FILE (it uses certifi).
    Python,
    /// `CURL_CA_BUNDLE`: curl builds that do not read SSL_CERT_FILE.
    Curl,
    /// `JAVA_TOOL_OPTIONS` pointing at `truststore.p12`, which the sidecar then
    /// publishes (`--pkcs12`): Java reads no PEM variable.
    Java,
}

impl Runtime {
    /// The environment variable this runtime reads.
    pub(super) fn var(self) -> &'static str {
        match self {
            Runtime::Node => "NODE_EXTRA_CA_CERTS",
            Runtime::Python => "REQUESTS_CA_BUNDLE",
            Runtime::Curl => "CURL_CA_BUNDLE",
            Runtime::Java => JAVA_TOOL_OPTIONS,
        }
    }
}

impl std::str::FromStr for Runtime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "node" => Ok(Runtime::Node),
            "python" => Ok(Runtime::Python),
            "curl" => Ok(Runtime::Curl),
            "java" => Ok(Runtime::Java),
            _ => Err(format!("{s:?} is not one of node, python, curl, java")),
        }
    }
}

/// The annotation's runtimes, sorted and without repeats; an unknown name is refused.
pub(super) fn parse_runtimes(value: &str) -> Result<Vec<Runtime>, InjectError> {
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        out.push(name.parse().map_err(|reason| InjectError::BadAnnotation {
            name: ANN_RUNTIMES,
            reason,
        })?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The Java options that point at the published store. It has no password: the sidecar
/// is given none, and Java reads a password-less PKCS#12 store without one.
pub(super) fn java_options() -> String {
    format!(
        "-Djavax.net.ssl.trustStore={TRUST_DIR}/truststore.p12 -Djavax.net.ssl.trustStoreType=PKCS12"
    )
}

/// Whether env entry `e` is a trust setting of one of `runtimes` that the container
/// chose itself: any of their variables, except a plain `JAVA_TOOL_OPTIONS` that sets
/// no truststore (we append to that one).
pub(super) fn is_runtime_conflict(e: &Value, runtimes: &[Runtime]) -> bool {
    let name = e.get("name").and_then(Value::as_str);
    runtimes.iter().any(|r| {
        if name != Some(r.var()) {
            return false;
        }
        *r != Runtime::Java || !java_appendable(e)
    })
}

/// A `JAVA_TOOL_OPTIONS` set as a plain value that does not choose a truststore.
pub(super) fn java_appendable(e: &Value) -> bool {
    e.get("valueFrom").is_none()
        && e.get("value").is_none_or(|v| {
            v.as_str()
                .is_some_and(|s| !s.contains("javax.net.ssl.trustStore"))
        })
}

/// The env entries for `runtimes`; `java_before` is the container's own plain
/// `JAVA_TOOL_OPTIONS` value, which ours is appended to.
pub(super) fn runtime_env(runtimes: &[Runtime], java_before: Option<&str>) -> Vec<Value> {
    let bundle = format!("{TRUST_DIR}/ca-certificates.crt");
    runtimes
        .iter()
        .map(|r| {
            let value = match (r, java_before) {
                (Runtime::Java, Some(b)) if !b.trim().is_empty() => {
                    format!("{} {}", b.trim_end(), java_options())
                }
                (Runtime::Java, _) => java_options(),
                _ => bundle.clone(),
            };
            json!({"name": r.var(), "value": value})
        })
        .collect()
}

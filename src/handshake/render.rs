//! The human-readable report.

use super::{CertInfo, Report, Verdict};
use crate::trust::cert::display_line;

/// The human report.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!("{k:<9} {v}\n"));
    line(
        &mut out,
        "backend:",
        &format!(
            "{} (server name {})",
            display_line(&r.url),
            display_line(&r.server_name)
        ),
    );
    line(
        &mut out,
        "bundle:",
        &format!(
            "{} ({} certificate(s))",
            display_line(&r.bundle),
            r.bundle_certificates
        ),
    );
    if let Some(a) = &r.address {
        let proto = r.protocol.as_deref().unwrap_or("handshake not completed");
        line(&mut out, "address:", &format!("{a}, {proto}"));
    }
    if !r.chain.is_empty() {
        out.push_str("chain sent by the server:\n");
        for (i, c) in r.chain.iter().enumerate() {
            out.push_str(&chain_entry(i, c));
        }
    }
    if let Some(a) = &r.anchor {
        line(
            &mut out,
            "anchor:",
            &format!(
                "{} (in the bundle, {}, sha256 {})",
                display_line(&a.cert.subject),
                if a.self_signed {
                    "self-signed"
                } else {
                    "NOT self-signed"
                },
                a.sha256.get(..16).unwrap_or(&a.sha256)
            ),
        );
    }
    for w in &r.warnings {
        line(&mut out, "warning:", &display_line(w));
    }
    let verdict = match r.verdict {
        Verdict::Trusted => "TRUSTED",
        Verdict::NotTrusted => "NOT TRUSTED",
        Verdict::CouldNotConnect => "COULD NOT CONNECT",
    };
    line(&mut out, "result:", verdict);
    for c in &r.causes {
        line(
            &mut out,
            "cause:",
            &format!("{}: {}", c.code, display_line(&c.message)),
        );
        line(&mut out, "fix:", &display_line(&c.fix));
    }
    out
}

/// One certificate of the chain the server sent, on its indented lines.
fn chain_entry(i: usize, c: &CertInfo) -> String {
    let mut out = format!("  [{i}] {}\n", display_line(&c.cert.subject));
    out.push_str(&format!(
        "      issuer:  {}\n",
        display_line(&c.cert.issuer)
    ));
    out.push_str(&format!(
        "      valid:   {} to {} ({})\n",
        c.cert.not_before,
        c.cert.not_after,
        days(c.days_left)
    ));
    if !c.names.is_empty() {
        out.push_str(&format!(
            "      names:   {}\n",
            display_line(&c.names.join(", "))
        ));
    }
    if c.in_bundle {
        out.push_str("      (this certificate is in the bundle)\n");
    }
    out
}

fn days(left: i64) -> String {
    if left < 0 {
        format!("EXPIRED {} days ago", -left)
    } else {
        format!("{left} days left")
    }
}

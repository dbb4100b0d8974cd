//! A backend's URL as `run --check` and the `trust-injector.io/checks` annotation
//! take it: `verify`'s URL, without credentials, since the URL is shown as is in
//! `/status`, as the metrics' `backend` label and in the log.

use crate::handshake::Target;

/// Parses `url` for a check; the error says what is wrong, in words.
pub fn parse_backend(url: &str) -> Result<Target, String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "URL {url}: credentials in a URL would be shown in /status, /metrics and the \
             log; a check needs none (it only makes the TLS handshake): remove `user@`"
        ));
    }
    Target::parse(url, None).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_backend;

    #[test]
    fn credentials_are_refused_the_rest_is_verify_s_url() {
        let e = parse_backend("https://svc:s3cret@api.internal/").unwrap_err();
        assert!(e.contains("credentials") && e.contains("remove"), "{e}");
        assert!(parse_backend("https://api.internal/a@b").is_ok());
        assert_eq!(parse_backend("api.internal:8443").unwrap().port, 8443);
        assert!(parse_backend("ldaps://dir/")
            .unwrap_err()
            .contains("give the port"));
    }
}

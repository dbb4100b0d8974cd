//! `--check URL`, `TRUST_INJECTOR_CHECKS` and `--check-file`: the backends
//! `run` checks against the bundle it publishes. Each URL is parsed as
//! `verify` parses it, at start, so a bad one stops `run` naming the flag,
//! the variable or the file's line rather than failing later, unseen, in
//! the background.

use super::validate::ConfigError;
use super::RunArgs;
use crate::checks::url::parse_backend;
use crate::handshake::Target;
use std::time::Duration;

/// Backends beyond this are refused: each is a series of every backend
/// metric, and a round must finish well within the interval.
pub const MAX_BACKENDS: usize = 256;

/// What the checker needs: whom to check, how often, how long to wait.
#[derive(Debug, Clone, Default)]
pub struct ChecksConfig {
    /// In the order given, without duplicates (one series per backend).
    pub targets: Vec<Target>,
    /// `None` with `--check-interval 0`: only after changed publishes.
    pub interval: Option<Duration>,
    /// For the connect and each step of a handshake.
    pub timeout: Duration,
}

impl RunArgs {
    /// The checks configured, or the first URL that cannot be checked.
    pub(super) fn checks(&self) -> Result<ChecksConfig, ConfigError> {
        let mut targets: Vec<Target> = Vec::new();
        let mut add = |target: Target| {
            if !targets.iter().any(|t| t.url == target.url) {
                targets.push(target);
            }
        };
        for url in self
            .checks
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
        {
            let target = parse_backend(url)
                .map_err(|e| self.refuse("--check", url, without_url(&e, url)))?;
            add(target);
        }
        if let Some(file) = &self.check_file {
            let text =
                std::fs::read_to_string(file).map_err(self.path_error("--check-file", file))?;
            for (n, line) in text.lines().enumerate() {
                let url = line.split('#').next().unwrap_or_default().trim();
                if url.is_empty() {
                    continue;
                }
                let target = parse_backend(url).map_err(|e| {
                    let why = format!("line {}: {e}", n + 1);
                    self.refuse("--check-file", file.display(), why)
                })?;
                add(target);
            }
        }
        if targets.len() > MAX_BACKENDS {
            let why = format!(
                "{} backends; at most {MAX_BACKENDS} can be checked (each is a metric series)",
                targets.len()
            );
            return Err(self.refuse("--check", targets.len(), why));
        }
        Ok(ChecksConfig {
            targets,
            interval: (self.check_interval > 0).then(|| Duration::from_secs(self.check_interval)),
            timeout: Duration::from_secs(self.check_timeout),
        })
    }
}

/// `verify`'s message names the URL, which the setting already shows.
fn without_url(message: &str, url: &str) -> String {
    message
        .strip_prefix(&format!("URL {url}: "))
        .unwrap_or(message)
        .to_string()
}

#[cfg(test)]
mod tests {
    use crate::config::{parse_from, Command};

    fn checks(extra: &[&str]) -> Result<super::ChecksConfig, String> {
        let mut argv = vec!["trust-injector", "run", "--source", "/s", "--out-dir", "/o"];
        argv.extend_from_slice(extra);
        match parse_from(argv.iter().map(std::ffi::OsString::from))
            .unwrap()
            .command
        {
            Some(Command::Run(args)) => {
                args.validate().map(|c| c.checks).map_err(|e| e.to_string())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn urls_are_parsed_at_start_and_bad_ones_named() {
        let c = checks(&["--check", "https://a:8443/", "--check", "https://a:8443/"]).unwrap();
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.interval.map(|d| d.as_secs()), Some(300));
        let e = checks(&["--check", "ldaps://b/"]).unwrap_err();
        assert!(e.starts_with("--check ldaps://b/: give the port"), "{e}");
        let none = checks(&["--check-interval", "0"]).unwrap();
        assert!(none.targets.is_empty() && none.interval.is_none());
    }

    #[test]
    fn a_file_of_urls_names_the_bad_line() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            tmp.path(),
            "# gateway backends\nhttps://a/\n\nhttps://:1/ # broken\n",
        )
        .unwrap();
        let path = tmp.path().to_str().unwrap();
        let e = checks(&["--check-file", path]).unwrap_err();
        assert!(e.contains("line 4: URL https://:1/: no host"), "{e}");
        std::fs::write(tmp.path(), "https://a/\nb:9443\n").unwrap();
        assert_eq!(checks(&["--check-file", path]).unwrap().targets.len(), 2);
    }
}

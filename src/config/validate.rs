//! `run`'s validation into a [`RunConfig`]: what needs more than one
//! option, or the file system, to check. Single values were parsed into
//! their types by clap (`values.rs`).

use super::args::{LogFormat, RunArgs};
use super::env::Setting;
use super::paths::canonical_lenient;
use super::values::SignalTarget;
use crate::trust::base::BaseSpec;
use crate::trust::include::{GlobError, Include};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem; always exit code 2. A message about a value
/// starts with the [`Setting`] at fault, as the user set it (the flag, or
/// the variable that set it).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A rule about the options as a whole (one missing, two that
    /// conflict), already in the words the user reads.
    #[error("{0}")]
    Invalid(String),
    /// A value that is refused, and why.
    #[error("{setting}: {why}")]
    Value {
        /// The option and its value.
        setting: Setting,
        /// What is wrong with it, and what is expected.
        why: String,
    },
    /// A path that cannot be resolved or read.
    #[error("{setting}: {source}")]
    Path {
        /// The option and the path as given.
        setting: Setting,
        /// Why it could not be resolved or read.
        source: std::io::Error,
    },
    /// `--listen` is neither `off` nor an address.
    #[error("{setting}: {source} (expected IP:PORT such as 0.0.0.0:9898, or off)")]
    Listen {
        /// `--listen` and its value.
        setting: Setting,
        /// Why it is not an address.
        source: std::net::AddrParseError,
    },
}

/// A validated `run` configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub sources: Vec<PathBuf>,
    pub base: BaseSpec,
    pub out_dir: PathBuf,
    /// `None` when `--listen off`.
    pub listen: Option<SocketAddr>,
    /// `None` when `--resync 0`.
    pub resync: Option<Duration>,
    pub debounce: Duration,
    pub keep_expired: bool,
    pub log_format: LogFormat,
    pub on_change_url: Option<String>,
    pub on_change_signal: Option<SignalTarget>,
    /// `Some` with `--pkcs12`.
    pub pkcs12: Option<crate::output::truststore::Pkcs12Config>,
    /// `--include`: which files of a directory source are taken.
    pub include: Include,
    /// `--retain-removed` in seconds; `None` when off (the default).
    pub retain_removed: Option<u64>,
    /// `--check`, `--check-file`: the backends checked against the bundle.
    pub checks: super::checks::ChecksConfig,
    pub once: bool,
}

impl RunArgs {
    /// Validates the options. Does not touch the out-dir (the publisher checks
    /// that it is writable; [`RunArgs::require_out_dir`] that it exists), but
    /// does check what can be known from paths.
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let (sources, out_dir) = self.sources_and_out_dir()?;
        self.check_base(&out_dir)?;
        let listen = match self.listen.as_str() {
            "off" => None,
            addr => Some(
                addr.parse::<SocketAddr>()
                    .map_err(|source| ConfigError::Listen {
                        setting: self.setting("--listen", addr),
                        source,
                    })?,
            ),
        };
        Ok(RunConfig {
            sources,
            base: self.base.clone(),
            out_dir: self.out_dir.clone(),
            listen,
            resync: (self.resync > 0).then(|| Duration::from_secs(self.resync)),
            debounce: Duration::from_millis(self.debounce),
            keep_expired: self.keep_expired,
            log_format: self.log_format,
            on_change_url: self.on_change_url.clone(),
            on_change_signal: self.on_change_signal.clone(),
            pkcs12: self.pkcs12_config()?,
            include: self.include()?,
            retain_removed: (self.retain_removed > 0).then_some(self.retain_removed),
            checks: self.checks()?,
            once: self.once,
        })
    }

    /// `config` if its out-dir is a directory. A missing one is the first
    /// thing a newcomer trying `--once` meets: say how to fix it rather than
    /// quoting `open(2)`.
    pub fn require_out_dir(&self, config: RunConfig) -> Result<RunConfig, ConfigError> {
        let dir = &config.out_dir;
        let why = match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => return Ok(config),
            Ok(_) => "not a directory".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
                "no such directory; create it (mkdir -p {}) or, in Kubernetes, mount the shared \
                 emptyDir there",
                dir.display()
            ),
            Err(e) => e.to_string(),
        };
        Err(self.refuse("--out-dir", dir.display(), why))
    }

    /// A [`ConfigError::Value`] about `flag` set to `value`.
    pub(super) fn refuse(
        &self,
        flag: &str,
        value: impl std::fmt::Display,
        why: String,
    ) -> ConfigError {
        ConfigError::Value {
            setting: self.setting(flag, value),
            why,
        }
    }

    /// A [`ConfigError::Path`] about `flag` set to `path`.
    pub(super) fn path_error(
        &self,
        flag: &str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> ConfigError {
        let setting = self.setting(flag, path.display());
        move |source| ConfigError::Path { setting, source }
    }

    /// The non-empty `--source` paths and the canonical `--out-dir`, which
    /// must not overlap: the output would be read back as input.
    fn sources_and_out_dir(&self) -> Result<(Vec<PathBuf>, PathBuf), ConfigError> {
        let sources: Vec<PathBuf> = self
            .sources
            .iter()
            .filter(|p| !p.as_os_str().is_empty())
            .cloned()
            .collect();
        if sources.is_empty() {
            return Err(ConfigError::Invalid(
                "no source given: pass --source PATH (or TRUST_INJECTOR_SOURCES) at least once"
                    .into(),
            ));
        }
        if self.out_dir.as_os_str().is_empty() {
            return Err(ConfigError::Value {
                setting: self.option("--out-dir"),
                why: "empty path".into(),
            });
        }
        let out_dir = canonical_lenient(&self.out_dir)
            .map_err(self.path_error("--out-dir", &self.out_dir))?;
        for s in &sources {
            let canon = canonical_lenient(s).map_err(self.path_error("--source", s))?;
            if canon.starts_with(&out_dir) || out_dir.starts_with(&canon) {
                let why = format!(
                    "overlaps {} (resolved: {} and {}); the output would be read back as input",
                    self.setting("--out-dir", self.out_dir.display()),
                    canon.display(),
                    out_dir.display()
                );
                return Err(self.refuse("--source", s.display(), why));
            }
        }
        Ok((sources, out_dir))
    }

    /// A `--base` path must be a file outside `out_dir` (the canonical
    /// out-dir): inside, the bundle would be merged into itself.
    fn check_base(&self, out_dir: &Path) -> Result<(), ConfigError> {
        let BaseSpec::Path(p) = &self.base else {
            return Ok(());
        };
        let canon = canonical_lenient(p).map_err(self.path_error("--base", p))?;
        if canon.starts_with(out_dir) {
            let why = format!(
                "lies inside {} (resolved: {} in {}); the bundle would be merged into itself",
                self.setting("--out-dir", self.out_dir.display()),
                canon.display(),
                out_dir.display()
            );
            return Err(self.refuse("--base", p.display(), why));
        }
        if !p.is_file() {
            return Err(self.refuse("--base", p.display(), "no such file".into()));
        }
        Ok(())
    }

    /// The `--include` patterns, checked now so a typo fails at start.
    fn include(&self) -> Result<Include, ConfigError> {
        Include::new(&self.include).map_err(|e| {
            let (pattern, why) = match &e {
                GlobError::Empty(p) => (p, "empty pattern"),
                GlobError::UnclosedClass(p) => (p, "unclosed '[' (a class needs its ']')"),
                GlobError::TrailingEscape(p) => (p, "ends with a lone '\\'"),
                GlobError::Absolute(p) => (p, "must be a path inside the source (no leading '/')"),
            };
            self.refuse("--include", format!("{pattern:?}"), why.into())
        })
    }

    /// `--pkcs12` and its password, read now so a bad file fails at start.
    fn pkcs12_config(
        &self,
    ) -> Result<Option<crate::output::truststore::Pkcs12Config>, ConfigError> {
        let password = match (&self.pkcs12_password, &self.pkcs12_password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(format!(
                    "{} and {}: give one or the other",
                    self.option("--pkcs12-password"),
                    self.option("--pkcs12-password-file")
                )))
            }
            (Some(p), None) => p.clone(),
            (None, Some(f)) => {
                let bytes =
                    std::fs::read(f).map_err(self.path_error("--pkcs12-password-file", f))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    self.refuse(
                        "--pkcs12-password-file",
                        f.display(),
                        "not UTF-8 text".into(),
                    )
                })?;
                // A file written by `echo` or an editor ends with a newline
                // that is not part of the password.
                let text = text.strip_suffix('\n').unwrap_or(&text);
                text.strip_suffix('\r').unwrap_or(text).to_string()
            }
            (None, None) => String::new(),
        };
        if !self.pkcs12 {
            let given = match (&self.pkcs12_password, &self.pkcs12_password_file) {
                (Some(_), _) => self.option("--pkcs12-password"),
                (None, Some(_)) => self.option("--pkcs12-password-file"),
                (None, None) => return Ok(None),
            };
            return Err(ConfigError::Invalid(format!(
                "{given}: only meaningful with {}",
                self.option("--pkcs12")
            )));
        }
        Ok(Some(crate::output::truststore::Pkcs12Config { password }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::args::{Cli, Command};
    use clap::Parser;

    fn args(extra: &[&str]) -> Result<RunConfig, ConfigError> {
        let mut argv = vec!["trust-injector", "run", "--out-dir", "/tmp/ti-out"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).unwrap();
        match cli.command {
            Some(Command::Run(r)) => r.validate(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn no_source_names_the_flag() {
        let e = args(&[]).unwrap_err().to_string();
        assert!(e.contains("--source"), "{e}");
    }

    #[test]
    fn base_inside_out_dir_is_refused() {
        let e = args(&[
            "--source",
            "/x",
            "--base",
            "/tmp/ti-out/ca-certificates.crt",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("--base"), "{e}");
    }

    #[test]
    fn listen_off_and_bad_listen() {
        assert!(args(&["--source", "/x", "--listen", "off"])
            .unwrap()
            .listen
            .is_none());
        let e = args(&["--source", "/x", "--listen", "nope"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--listen nope"), "{e}");
    }

    #[test]
    fn include_patterns_are_checked_at_start() {
        let e = args(&["--source", "/x", "--include", "ca-[0-9.crt"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--include"), "{e}");
        let ok = args(&["--source", "/x", "--include", "*.crt", "--include", "*.pem"]).unwrap();
        assert_eq!(ok.include.patterns(), ["*.crt", "*.pem"]);
    }
}

//! `run`'s validation into a [`RunConfig`].

use super::args::{LogFormat, RunArgs};
use crate::trust::base::{BaseSpec, BaseSpecError};
use crate::trust::include::GlobError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::paths::canonical_lenient;

/// A configuration problem; always exit code 2. Every message names the
/// flag (or the variable that set it) and the value or path at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A rule about the options themselves (one missing, two that conflict,
    /// a value out of range), already in the words the user reads.
    #[error("{0}")]
    Invalid(String),
    /// A path given to `flag` that cannot be resolved or read.
    #[error("{flag} {}: {source}", path.display())]
    Path {
        /// The flag, e.g. `--out-dir`.
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
        /// Why it could not be resolved or read.
        source: std::io::Error,
    },
    /// `--listen` is neither `off` nor an address.
    #[error("--listen {addr}: {source} (expected IP:PORT such as 0.0.0.0:9898, or off)")]
    Listen {
        /// The value as given.
        addr: String,
        /// Why it is not an address.
        source: std::net::AddrParseError,
    },
    /// `--base` has no value.
    #[error(transparent)]
    Base(#[from] BaseSpecError),
    /// An `--include` pattern that is not a glob.
    #[error(transparent)]
    Include(#[from] GlobError),
    /// `--retain-removed` is not a duration (the message, from
    /// `output::retain::parse_duration`, says what is expected).
    #[error("--retain-removed (TRUST_INJECTOR_RETAIN_REMOVED) {0}")]
    RetainRemoved(String),
}

impl ConfigError {
    /// A path error of `flag`.
    fn path(flag: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError {
        let path = path.to_path_buf();
        move |source| ConfigError::Path { flag, path, source }
    }
}

/// How to reach the application after a changed publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalTarget {
    /// Signal number.
    pub signal: i32,
    /// Signal name as given, for logs.
    pub signal_name: String,
    /// Process name (`/proc/<pid>/comm`).
    pub process: String,
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
    pub include: crate::trust::include::Include,
    /// `--retain-removed` in seconds; `None` when off (the default).
    pub retain_removed: Option<u64>,
    pub once: bool,
}

impl RunArgs {
    /// Validates the options. Does not touch the out-dir (the publisher checks
    /// that it is writable), but does check what can be known from paths.
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let err = |m: String| Err(ConfigError::Invalid(m));
        let (sources, out_dir) = self.sources_and_out_dir()?;
        let base = self.base_spec(&out_dir)?;
        let listen = match self.listen.as_str() {
            "off" => None,
            addr => Some(
                addr.parse::<SocketAddr>()
                    .map_err(|source| ConfigError::Listen {
                        addr: addr.to_string(),
                        source,
                    })?,
            ),
        };
        let on_change_url = match &self.on_change_url {
            Some(url) if !url.starts_with("http://") => {
                return err(format!(
                    "--on-change-url {url}: only http:// URLs are supported (the reload endpoint of a container in the same pod)"
                ))
            }
            other => other.clone(),
        };
        let on_change_signal = self
            .on_change_signal
            .as_deref()
            .map(parse_signal_target)
            .transpose()?;
        let pkcs12 = self.pkcs12_config()?;
        let include = crate::trust::include::Include::new(&self.include)?;
        let retain_removed = match &self.retain_removed {
            Some(text) => {
                crate::output::retain::parse_duration(text).map_err(ConfigError::RetainRemoved)?
            }
            None => None,
        };
        Ok(RunConfig {
            sources,
            base,
            out_dir: self.out_dir.clone(),
            listen,
            resync: (self.resync > 0).then(|| Duration::from_secs(self.resync)),
            debounce: Duration::from_millis(self.debounce),
            keep_expired: self.keep_expired,
            log_format: self.log_format,
            on_change_url,
            on_change_signal,
            pkcs12,
            include,
            retain_removed,
            once: self.once,
        })
    }

    /// The non-empty `--source` paths and the canonical `--out-dir`, which
    /// must not overlap: the output would be read back as input.
    fn sources_and_out_dir(&self) -> Result<(Vec<PathBuf>, PathBuf), ConfigError> {
        let err = |m: String| Err(ConfigError::Invalid(m));
        let sources: Vec<PathBuf> = self
            .sources
            .iter()
            .filter(|p| !p.as_os_str().is_empty())
            .cloned()
            .collect();
        if sources.is_empty() {
            return err(
                "no source given: pass --source PATH (or TRUST_INJECTOR_SOURCES) at least once"
                    .into(),
            );
        }
        if self.out_dir.as_os_str().is_empty() {
            return err("--out-dir: empty path".into());
        }
        let out_dir = canonical_lenient(&self.out_dir)
            .map_err(ConfigError::path("--out-dir", &self.out_dir))?;
        for s in &sources {
            let canon = canonical_lenient(s).map_err(ConfigError::path("--source", s))?;
            if canon.starts_with(&out_dir) || out_dir.starts_with(&canon) {
                return err(format!(
                    "--source {} ({}) overlaps --out-dir {} ({}); the output would be read back as input",
                    s.display(),
                    canon.display(),
                    self.out_dir.display(),
                    out_dir.display()
                ));
            }
        }
        Ok((sources, out_dir))
    }

    /// `--base`, with a path checked to be a file outside `out_dir` (the
    /// canonical out-dir): inside, the bundle would be merged into itself.
    fn base_spec(&self, out_dir: &Path) -> Result<BaseSpec, ConfigError> {
        let base = BaseSpec::parse(&self.base)?;
        if let BaseSpec::Path(p) = &base {
            let canon = canonical_lenient(p).map_err(ConfigError::path("--base", p))?;
            if canon.starts_with(out_dir) {
                return Err(ConfigError::Invalid(format!(
                    "--base {} ({}): lies inside --out-dir {} ({}); the bundle would be merged into itself",
                    p.display(),
                    canon.display(),
                    self.out_dir.display(),
                    out_dir.display()
                )));
            }
            if !p.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "--base {}: no such file",
                    p.display()
                )));
            }
        }
        Ok(base)
    }

    /// `--pkcs12` and its password, read now so a bad file fails at start.
    fn pkcs12_config(
        &self,
    ) -> Result<Option<crate::output::truststore::Pkcs12Config>, ConfigError> {
        let password = match (&self.pkcs12_password, &self.pkcs12_password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "--pkcs12-password and --pkcs12-password-file: give one or the other".into(),
                ))
            }
            (Some(p), None) => p.clone(),
            (None, Some(f)) => {
                let bytes =
                    std::fs::read(f).map_err(ConfigError::path("--pkcs12-password-file", f))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    ConfigError::Invalid(format!(
                        "--pkcs12-password-file {}: not UTF-8 text",
                        f.display()
                    ))
                })?;
                // A file written by `echo` or an editor ends with a newline
                // that is not part of the password.
                let text = text.strip_suffix('\n').unwrap_or(&text);
                text.strip_suffix('\r').unwrap_or(text).to_string()
            }
            (None, None) => String::new(),
        };
        if !self.pkcs12 {
            if self.pkcs12_password.is_some() || self.pkcs12_password_file.is_some() {
                return Err(ConfigError::Invalid(
                    "--pkcs12-password/--pkcs12-password-file: only meaningful with --pkcs12"
                        .into(),
                ));
            }
            return Ok(None);
        }
        Ok(Some(crate::output::truststore::Pkcs12Config { password }))
    }
}

/// Parses `SIG:NAME`, e.g. `HUP:nginx` or `SIGUSR1:dotnet`.
fn parse_signal_target(value: &str) -> Result<SignalTarget, ConfigError> {
    let bad = |why: &str| ConfigError::Invalid(format!("--on-change-signal {value}: {why}"));
    let (sig, name) = value
        .split_once(':')
        .ok_or_else(|| bad("expected SIG:NAME, e.g. HUP:nginx"))?;
    let sig_name = sig.trim_start_matches("SIG").to_ascii_uppercase();
    let signal = match sig_name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "TERM" => libc::SIGTERM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "KILL" => return Err(bad("KILL is refused: the application could not react")),
        n => n
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=64).contains(n) && *n != libc::SIGKILL)
            .ok_or_else(|| {
                bad("unknown signal (use HUP, USR1, USR2, TERM, INT, QUIT or a number)")
            })?,
    };
    if name.is_empty() || name.len() > 15 {
        return Err(bad(
            "process name must be 1 to 15 characters (as in /proc/PID/comm)",
        ));
    }
    Ok(SignalTarget {
        signal,
        signal_name: format!("SIG{sig_name}"),
        process: name.to_string(),
    })
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

    #[test]
    fn signal_targets() {
        let t = parse_signal_target("HUP:nginx").unwrap();
        assert_eq!((t.signal, t.process.as_str()), (libc::SIGHUP, "nginx"));
        assert_eq!(
            parse_signal_target("SIGUSR1:dotnet").unwrap().signal,
            libc::SIGUSR1
        );
        assert!(parse_signal_target("KILL:x").is_err());
        assert!(parse_signal_target("HUP").is_err());
    }
}

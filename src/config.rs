//! The command line, and its validation into a [`RunConfig`].
//!
//! Every `run` flag has an environment variable (a flag wins over it), because
//! in Kubernetes the environment is the easy place to set things. Validation
//! happens before anything runs and names the flag or path at fault: the
//! process then exits 2, which `main` maps from [`ConfigError`].

use crate::base::{is_inside, BaseSpec};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// trust-injector: publish private CAs merged with public roots for OpenSSL-style clients.
#[derive(Debug, Parser)]
#[command(
    name = "trust-injector",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `run`, accepted without the subcommand (the default command).
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the sources, publish, serve probes until SIGTERM/SIGINT.
    Run(RunArgs),
    /// List the certificates in bundles, files or directories.
    Inspect(InspectArgs),
    /// Try a TLS handshake to a backend trusting only FILE, and explain the outcome.
    Verify(VerifyArgs),
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `run` options, each with its environment variable.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// A PEM/DER file, or a directory such as a mounted Secret or ConfigMap volume (repeatable).
    #[arg(
        long = "source",
        value_name = "PATH",
        env = "TRUST_INJECTOR_SOURCES",
        value_delimiter = ','
    )]
    pub sources: Vec<PathBuf>,
    /// Base roots: system, embedded, none, or a bundle path.
    #[arg(
        long,
        value_name = "VALUE",
        env = "TRUST_INJECTOR_BASE",
        default_value = "system"
    )]
    pub base: String,
    /// Where to publish (the shared emptyDir).
    #[arg(
        long,
        value_name = "DIR",
        env = "TRUST_INJECTOR_OUT_DIR",
        default_value = "/var/run/trust"
    )]
    pub out_dir: PathBuf,
    /// Probe and metrics server address, or `off`.
    #[arg(
        long,
        value_name = "ADDR",
        env = "TRUST_INJECTOR_LISTEN",
        default_value = "0.0.0.0:9898"
    )]
    pub listen: String,
    /// Seconds between full re-reads (safety net against missed events); 0 turns it off.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TRUST_INJECTOR_RESYNC",
        allow_negative_numbers = true,
        default_value_t = 60
    )]
    pub resync: u64,
    /// Quiet time in milliseconds after a change event before re-reading.
    #[arg(
        long,
        value_name = "MILLIS",
        env = "TRUST_INJECTOR_DEBOUNCE",
        allow_negative_numbers = true,
        default_value_t = 50
    )]
    pub debounce: u64,
    /// Keep expired certificates instead of dropping them.
    #[arg(long, env = "TRUST_INJECTOR_KEEP_EXPIRED")]
    pub keep_expired: bool,
    /// Log line format (level from TRUST_INJECTOR_LOG, RUST_LOG syntax).
    #[arg(
        long,
        value_name = "FORMAT",
        env = "TRUST_INJECTOR_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// HTTP POST to URL after every publish that changed the bundle.
    #[arg(long, value_name = "URL", env = "TRUST_INJECTOR_ON_CHANGE_URL")]
    pub on_change_url: Option<String>,
    /// Send SIG to processes named NAME after every changed publish (SIG:NAME).
    #[arg(long, value_name = "SIG:NAME", env = "TRUST_INJECTOR_ON_CHANGE_SIGNAL")]
    pub on_change_signal: Option<String>,
    /// Also publish truststore.p12 (PKCS#12, every certificate trusted) for Java.
    #[arg(long, env = "TRUST_INJECTOR_PKCS12")]
    pub pkcs12: bool,
    /// Password of truststore.p12 (protects its integrity; empty or unset: none).
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "TRUST_INJECTOR_PKCS12_PASSWORD",
        hide_env_values = true
    )]
    pub pkcs12_password: Option<String>,
    /// File holding the password of truststore.p12 (one trailing newline ignored).
    #[arg(long, value_name = "FILE", env = "TRUST_INJECTOR_PKCS12_PASSWORD_FILE")]
    pub pkcs12_password_file: Option<PathBuf>,
    /// Keep a certificate that left the sources for DURATION (e.g. 90s, 30m,
    /// 24h, 7d; 0 or off: not at all), never an expired one.
    #[arg(long, value_name = "DURATION", env = "TRUST_INJECTOR_RETAIN_REMOVED")]
    pub retain_removed: Option<String>,
    /// Publish once and exit.
    #[arg(long)]
    pub once: bool,
}

/// `inspect` options.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Bundles, files or directories to list.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// `verify` options.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The backend, e.g. https://backend.internal:8443/.
    #[arg(value_name = "URL")]
    pub url: String,
    /// The bundle to trust (and nothing else).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// Server name for SNI and name checks, if not the URL's host.
    #[arg(long, value_name = "NAME")]
    pub servername: Option<String>,
    /// Seconds to wait for the connection and for each step of the handshake.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// A configuration problem; always exit code 2. The message names the flag
/// or the path.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

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
    pub pkcs12: Option<crate::truststore::Pkcs12Config>,
    /// `--retain-removed` in seconds; `None` when off (the default).
    pub retain_removed: Option<u64>,
    pub once: bool,
}

impl RunArgs {
    /// Validates the options. Does not touch the out-dir (the publisher checks
    /// that it is writable), but does check what can be known from paths.
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
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
        for s in &sources {
            if is_inside(s, &self.out_dir) || is_inside(&self.out_dir, s) {
                return err(format!(
                    "--source {}: overlaps --out-dir {}; the output would be read back as input",
                    s.display(),
                    self.out_dir.display()
                ));
            }
        }
        let base = BaseSpec::parse(&self.base).map_err(ConfigError)?;
        if let BaseSpec::Path(p) = &base {
            if is_inside(p, &self.out_dir) {
                return err(format!(
                    "--base {}: lies inside --out-dir {}; the bundle would be merged into itself",
                    p.display(),
                    self.out_dir.display()
                ));
            }
            if !p.is_file() {
                return err(format!("--base {}: no such file", p.display()));
            }
        }
        let listen = match self.listen.as_str() {
            "off" => None,
            addr => Some(addr.parse::<SocketAddr>().map_err(|e| {
                ConfigError(format!(
                    "--listen {addr}: {e} (expected IP:PORT such as 0.0.0.0:9898, or off)"
                ))
            })?),
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
        let retain_removed = match &self.retain_removed {
            Some(text) => crate::retain::parse_duration(text).map_err(|e| {
                ConfigError(format!(
                    "--retain-removed (TRUST_INJECTOR_RETAIN_REMOVED) {e}"
                ))
            })?,
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
            retain_removed,
            once: self.once,
        })
    }

    /// `--pkcs12` and its password, read now so a bad file fails at start.
    fn pkcs12_config(&self) -> Result<Option<crate::truststore::Pkcs12Config>, ConfigError> {
        let password = match (&self.pkcs12_password, &self.pkcs12_password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "--pkcs12-password and --pkcs12-password-file: give one or the other".into(),
                ))
            }
            (Some(p), None) => p.clone(),
            (None, Some(f)) => {
                let bytes = std::fs::read(f).map_err(|e| {
                    ConfigError(format!("--pkcs12-password-file {}: {e}", f.display()))
                })?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    ConfigError(format!(
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
                return Err(ConfigError(
                    "--pkcs12-password/--pkcs12-password-file: only meaningful with --pkcs12"
                        .into(),
                ));
            }
            return Ok(None);
        }
        Ok(Some(crate::truststore::Pkcs12Config { password }))
    }
}

/// Parses `SIG:NAME`, e.g. `HUP:nginx` or `SIGUSR1:dotnet`.
fn parse_signal_target(value: &str) -> Result<SignalTarget, ConfigError> {
    let bad = |why: &str| ConfigError(format!("--on-change-signal {value}: {why}"));
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

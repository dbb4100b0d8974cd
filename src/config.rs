//! The command line, and its validation into a [`RunConfig`].
//!
//! Every `run` flag has an environment variable (a flag wins over it), because
//! in Kubernetes the environment is the easy place to set things. Validation
//! happens before anything runs and names the flag or path at fault: the
//! process then exits 2, which `main` maps from [`ConfigError`].

use crate::trust::base::{BaseSpec, BaseSpecError};
use crate::trust::include::GlobError;
use clap::parser::ValueSource;
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `run`'s exit codes, in `--help` (the default command's, so also the top level's).
const RUN_EXIT_CODES: &str = "Exit codes: 0 clean stop (or --once published with every source \
valid); 1 a source was invalid or publishing failed (--once), or a fatal runtime error; 2 bad \
usage or configuration (the message names the flag, variable or path).";

/// The top level's `--help` epilogue: a newcomer reads the options listed
/// above it as `run`'s, so say why they are there.
const TOP_AFTER_HELP: &str = "Without a command, trust-injector runs `run`: the options above \
are run's (`trust-injector run --help`). Every run option can also be set by the environment \
variable shown; a flag wins over its variable. Boolean variables accept 1/0, true/false, \
yes/no, on/off.

Exit codes: 0 clean stop (or --once published with every source valid); 1 a source was invalid \
or publishing failed (--once), or a fatal runtime error; 2 bad usage or configuration. Each \
command's --help lists its own.";

/// trust-injector: publish private CAs merged with public roots for OpenSSL-style clients.
#[derive(Debug, Parser)]
#[command(
    name = "trust-injector",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = TOP_AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `run`, accepted without the subcommand (the default command).
    #[command(flatten, next_help_heading = "Options of `run` (the default command)")]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the sources, publish, serve probes until SIGTERM/SIGINT (the default command).
    #[command(after_help = RUN_EXIT_CODES)]
    Run(RunArgs),
    /// List the certificates in bundles, files or directories.
    #[command(
        after_help = "Exit codes: 0 every file parsed (a file holding only private keys is a \
                      warning, as in the sidecar); 1 a file could not be read or parsed; 2 bad usage."
    )]
    Inspect(InspectArgs),
    /// Try a TLS handshake to a backend trusting only the bundle, and explain the outcome.
    #[command(
        after_help = "Exit codes: 0 trusted; 1 not trusted; 2 bad usage (URL, --servername, an \
                      unreadable or empty bundle); 3 could not connect."
    )]
    Verify(VerifyArgs),
    /// Serve a mutating admission webhook that adds the sidecar to opted-in Pods.
    Webhook(WebhookArgs),
    /// Add the sidecar to the workloads in Kubernetes manifests (also a Helm post-renderer).
    Inject(crate::inject::InjectArgs),
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
        value_parser = parse_seconds,
        default_value_t = 60
    )]
    pub resync: u64,
    /// Quiet time in milliseconds after a change event before re-reading.
    #[arg(
        long,
        value_name = "MILLIS",
        env = "TRUST_INJECTOR_DEBOUNCE",
        allow_negative_numbers = true,
        value_parser = parse_millis,
        default_value_t = 50
    )]
    pub debounce: u64,
    /// Keep expired certificates instead of dropping them.
    #[arg(long, env = "TRUST_INJECTOR_KEEP_EXPIRED", action = ArgAction::SetTrue, value_parser = parse_bool)]
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
    #[arg(long, env = "TRUST_INJECTOR_PKCS12", action = ArgAction::SetTrue, value_parser = parse_bool)]
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
    /// Take only the files of a directory source whose path inside it matches GLOB (repeatable; default: every file).
    #[arg(
        long = "include",
        value_name = "GLOB",
        env = "TRUST_INJECTOR_INCLUDE",
        value_delimiter = ','
    )]
    pub include: Vec<String>,
    /// Keep a certificate that left the sources for DURATION (e.g. 90s, 30m,
    /// 24h, 7d; 0 or off: not at all), never an expired one.
    #[arg(long, value_name = "DURATION", env = "TRUST_INJECTOR_RETAIN_REMOVED")]
    pub retain_removed: Option<String>,
    /// Publish once and exit.
    #[arg(long)]
    pub once: bool,
    /// The flags whose value came from their environment variable, as
    /// (`--flag`, `VARIABLE`): an error about such a value names the
    /// variable, which is what the user has to change. Set by [`parse`].
    #[arg(skip)]
    pub from_env: Vec<(String, String)>,
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
    /// Print whole subjects, issuers and paths (by default long ones are
    /// shortened so that rows fit a terminal).
    #[arg(long)]
    pub wide: bool,
}

/// `verify` options.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The backend, e.g. https://backend.internal:8443/.
    #[arg(value_name = "URL")]
    pub url: String,
    /// The bundle to trust (and nothing else): a PEM/DER file, a hashed
    /// directory such as certs/, or a Secret volume.
    #[arg(long, value_name = "FILE|DIR")]
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

/// `webhook` options (see docs/webhook.md), each with its environment
/// variable like `run`'s, since the Deployment sets them in `env`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WebhookArgs {
    /// `webhook certs`: print a CA and serving certificate instead of serving.
    #[command(subcommand)]
    pub action: Option<WebhookCommand>,
    /// HTTPS address of the admission endpoint (POST /mutate).
    #[arg(
        long,
        value_name = "ADDR",
        env = "TRUST_INJECTOR_WEBHOOK_LISTEN",
        default_value = "0.0.0.0:8443"
    )]
    pub listen: SocketAddr,
    /// Plain-HTTP address of /healthz, /readyz and /metrics, or `off`; plain so
    /// probes and scrapes work before a certificate exists.
    #[arg(
        long,
        value_name = "ADDR",
        env = "TRUST_INJECTOR_WEBHOOK_PROBE_LISTEN",
        default_value = "0.0.0.0:9898"
    )]
    pub probe_listen: String,
    /// Serving certificate chain (PEM), re-read when it changes.
    #[arg(
        long,
        value_name = "FILE",
        env = "TRUST_INJECTOR_WEBHOOK_TLS_CERT",
        default_value = "/var/run/webhook-tls/tls.crt"
    )]
    pub tls_cert: PathBuf,
    /// Its private key (PEM), re-read with it.
    #[arg(
        long,
        value_name = "FILE",
        env = "TRUST_INJECTOR_WEBHOOK_TLS_KEY",
        default_value = "/var/run/webhook-tls/tls.key"
    )]
    pub tls_key: PathBuf,
    /// Image of the injected sidecar: the webhook's own image (the manifests
    /// copy it from the Deployment), so the two are one binary.
    #[arg(long, value_name = "IMAGE", env = "TRUST_INJECTOR_IMAGE", default_value = concat!("ghcr.io/trust-injector/trust-injector:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// Default CA Secret of injected pods (annotation `trust-injector.io/secret` overrides).
    #[arg(long, value_name = "NAME", env = "TRUST_INJECTOR_WEBHOOK_SECRET", default_value = crate::inject::mutate::DEFAULT_SECRET)]
    pub secret: String,
    /// Containers that get the trust (repeatable; default every container;
    /// annotation `trust-injector.io/containers` overrides).
    #[arg(
        long = "container",
        value_name = "NAME",
        env = "TRUST_INJECTOR_WEBHOOK_CONTAINERS",
        value_delimiter = ','
    )]
    pub containers: Vec<String>,
    /// `--include` globs for the sidecar (repeatable; annotation `trust-injector.io/include` overrides).
    #[arg(
        long = "include",
        value_name = "GLOB",
        env = "TRUST_INJECTOR_WEBHOOK_INCLUDE",
        value_delimiter = ','
    )]
    pub include: Vec<String>,
    /// `native` (Kubernetes >= 1.29) or `classic` (annotation `trust-injector.io/mode` overrides).
    #[arg(
        long,
        value_name = "MODE",
        env = "TRUST_INJECTOR_WEBHOOK_MODE",
        default_value = "native"
    )]
    pub mode: String,
    /// The sidecar's resources as JSON ResourceRequirements (annotation
    /// `trust-injector.io/resources` overrides); default: inject's.
    #[arg(long, value_name = "JSON", env = "TRUST_INJECTOR_WEBHOOK_RESOURCES")]
    pub resources: Option<String>,
    /// Largest request body accepted (bytes); a Pod is at most 1.5 MiB in etcd.
    #[arg(long, value_name = "BYTES", env = "TRUST_INJECTOR_WEBHOOK_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub max_body_bytes: u64,
    /// Seconds allowed to read one request (headers and body) and answer it.
    #[arg(long, value_name = "SECONDS", env = "TRUST_INJECTOR_WEBHOOK_REQUEST_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_timeout: u64,
    /// After SIGTERM, keep serving this many seconds (not ready) while the
    /// endpoint is removed, then finish in-flight requests and exit.
    #[arg(long, value_name = "SECONDS", env = "TRUST_INJECTOR_WEBHOOK_SHUTDOWN_DELAY", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_delay: u64,
    /// Seconds between re-reads of the certificate files (safety net against missed events).
    #[arg(long, value_name = "SECONDS", env = "TRUST_INJECTOR_WEBHOOK_RESYNC", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub resync: u64,
    /// Log line format (level from TRUST_INJECTOR_LOG, RUST_LOG syntax).
    #[arg(
        long,
        value_name = "FORMAT",
        env = "TRUST_INJECTOR_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// What `webhook` does instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum WebhookCommand {
    /// Write a new CA and a serving certificate for the webhook's Service, and
    /// print the caBundle (for installs without cert-manager).
    Certs(WebhookCertsArgs),
}

/// `webhook certs` options.
#[derive(Debug, Clone, Args)]
pub struct WebhookCertsArgs {
    /// Where to write ca.crt, tls.crt and tls.key (created; existing files are refused).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// The webhook Service's name (the certificate's DNS names derive from it).
    #[arg(long, value_name = "NAME", default_value = "trust-injector-webhook")]
    pub service: String,
    /// The webhook's namespace.
    #[arg(long, value_name = "NAMESPACE", default_value = "trust-injector")]
    pub namespace: String,
    /// Validity of both certificates, in days.
    #[arg(long, value_name = "DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
}

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

/// The canonical absolute form of `path`, whether it exists or not, so the
/// overlap checks compare what the kernel will open, not how it was spelled
/// (`.`, `./out`, `o1/../o1`, a symlink to the out-dir). A path that does not
/// exist yet (a source waited for, an out-dir to be created) has its nearest
/// existing ancestor canonicalised and the rest appended; `..` in that rest
/// cannot cross a symlink (nothing there exists), so it is removed lexically.
fn canonical_lenient(path: &Path) -> std::io::Result<PathBuf> {
    use std::path::Component;
    let mut canonical = PathBuf::from("/");
    // How many trailing components of `canonical` do not exist: those are
    // appended as spelled; the rest is canonical (no symlink in it).
    let mut missing = 0usize;
    for part in std::path::absolute(path)?.components() {
        match part {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            // The existing part holds no symlink, and a missing name is not
            // one: either way the parent is the lexical one.
            Component::ParentDir => {
                canonical.pop();
                missing = missing.saturating_sub(1);
            }
            Component::Normal(name) if missing > 0 => {
                canonical.push(name);
                missing += 1;
            }
            Component::Normal(name) => match std::fs::canonicalize(canonical.join(name)) {
                Ok(c) => canonical = c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    canonical.push(name);
                    missing = 1;
                }
                Err(e) => return Err(e),
            },
        }
    }
    Ok(canonical)
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

/// The spellings of a boolean variable people write in manifests (`"1"`,
/// `"yes"`, `"on"` …); clap alone accepts only `true`/`false`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1/0, true/false, yes/no or on/off".into()),
    }
}

/// A whole, non-negative number, with an error that says what is expected
/// (the standard one says "invalid digit found in string").
fn parse_count(value: &str, unit: &str, zero: &str) -> Result<u64, String> {
    let expected = format!("expected a whole number of {unit} such as 60 ({zero})");
    let v = value.trim();
    if v.starts_with('-') {
        return Err(format!("must not be negative: {expected}"));
    }
    v.parse::<u64>().map_err(|_| expected)
}

fn parse_seconds(value: &str) -> Result<u64, String> {
    parse_count(value, "seconds", "0 turns the resync off")
}

fn parse_millis(value: &str) -> Result<u64, String> {
    parse_count(value, "milliseconds", "0 re-reads at once")
}

/// Parses the command line like [`Cli::parse`], but an error about a value
/// taken from an environment variable names the variable (the flag does not
/// appear on the command line, so naming it would send the user looking in
/// the wrong place), and `run`'s options learn which came from a variable.
pub fn parse() -> Cli {
    parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// [`parse`] on given arguments (tests).
pub fn parse_from<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let command = Cli::command();
    let matches = command
        .clone()
        .try_get_matches_from(&argv)
        .map_err(|e| name_variable_in_error(e, &command, &argv))?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    let (args, run_matches) = match (&mut cli.command, matches.subcommand()) {
        (Some(Command::Run(args)), Some((_, sub))) => (args, sub),
        (None, _) => (&mut cli.run, &matches),
        _ => return Ok(cli),
    };
    for arg in command.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        if run_matches.value_source(arg.get_id().as_str()) == Some(ValueSource::EnvVariable) {
            args.from_env
                .push((format!("--{long}"), env.to_string_lossy().into_owned()));
        }
    }
    Ok(cli)
}

/// Rewrites clap's "invalid value 'x' for '--flag'" into "VARIABLE=x: …"
/// when the value came from the flag's variable.
fn name_variable_in_error(
    e: clap::Error,
    command: &clap::Command,
    argv: &[OsString],
) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return e;
    }
    let Some(ContextValue::String(flag)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let Some(long) = flag
        .split_whitespace()
        .next()
        .and_then(|f| f.strip_prefix("--"))
    else {
        return e;
    };
    let on_command_line = argv.iter().any(|a| {
        let a = a.to_string_lossy();
        a.strip_prefix("--")
            .is_some_and(|rest| rest == long || rest.starts_with(&format!("{long}=")))
    });
    let arg = command
        .get_arguments()
        .chain(command.get_subcommands().flat_map(|c| c.get_arguments()))
        .find(|a| a.get_long() == Some(long));
    let Some(var) = arg.and_then(|a| a.get_env()) else {
        return e;
    };
    let Some(value) = std::env::var_os(var).filter(|_| !on_command_line) else {
        return e;
    };
    let expected = match (
        e.get(ContextKind::ValidValue),
        std::error::Error::source(&e),
    ) {
        (Some(ContextValue::Strings(valid)), _) => format!("expected one of {}", valid.join(", ")),
        (_, Some(why)) => why.to_string(),
        _ => "invalid value".to_string(),
    };
    clap::Error::raw(
        e.kind(),
        format!(
            "{}={}: {expected}\n",
            var.to_string_lossy(),
            value.to_string_lossy()
        ),
    )
}

impl RunArgs {
    /// [`RunArgs::validate`], with an error about a value taken from an
    /// environment variable naming the variable.
    pub fn check(&self) -> Result<RunConfig, ConfigError> {
        self.validate().map_err(|e| {
            let message = e.to_string();
            let named = self.name_variables(&message);
            if named == message {
                e
            } else {
                ConfigError::Invalid(named)
            }
        })
    }

    /// Rewrites a message that starts with `--flag value` into
    /// `VARIABLE=value` when that flag was set through its variable; other
    /// messages are returned as they are.
    pub fn name_variables(&self, message: &str) -> String {
        for (flag, var) in &self.from_env {
            if let Some(rest) = message.strip_prefix(flag.as_str()) {
                if let Some(value_and_more) = rest.strip_prefix(' ') {
                    return format!("{var}={value_and_more}");
                }
                if rest.starts_with(':') {
                    return format!("{var}{rest}");
                }
            }
        }
        message.to_string()
    }
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
    fn canonical_lenient_sees_through_spellings_and_missing_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(root.join("out")).unwrap();
        std::os::unix::fs::symlink("out", root.join("link")).unwrap();
        let c = |p: &str| canonical_lenient(&root.join(p)).unwrap();
        assert_eq!(c("out"), root.join("out"));
        assert_eq!(c("./out/."), root.join("out"));
        assert_eq!(c("link"), root.join("out"));
        assert_eq!(c("link/new/ca.crt"), root.join("out/new/ca.crt"));
        assert_eq!(c("missing/../out"), root.join("out"));
        // Back out of a missing part into an existing symlink: resolved.
        assert_eq!(c("missing/../link/x"), root.join("out/x"));
        assert_eq!(c("missing/a/../../link"), root.join("out"));
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
    fn booleans_take_every_usual_spelling() {
        for v in ["1", "true", "yes", "on", "TRUE", " On "] {
            assert_eq!(parse_bool(v), Ok(true), "{v}");
        }
        for v in ["0", "false", "no", "off", "No"] {
            assert_eq!(parse_bool(v), Ok(false), "{v}");
        }
        assert!(parse_bool("maybe").unwrap_err().contains("yes/no"));
    }

    #[test]
    fn counts_say_what_is_expected() {
        assert_eq!(parse_seconds("0"), Ok(0));
        let e = parse_seconds("-1").unwrap_err();
        assert!(e.contains("negative") && e.contains("seconds"), "{e}");
        assert!(parse_millis("soon").unwrap_err().contains("milliseconds"));
    }

    #[test]
    fn messages_name_the_variable_that_set_the_value() {
        let mut run = match Cli::try_parse_from(["trust-injector", "run"])
            .unwrap()
            .command
        {
            Some(Command::Run(r)) => r,
            _ => unreachable!(),
        };
        run.from_env = vec![("--listen".into(), "TRUST_INJECTOR_LISTEN".into())];
        assert_eq!(
            run.name_variables("--listen nope: bad"),
            "TRUST_INJECTOR_LISTEN=nope: bad"
        );
        assert_eq!(run.name_variables("--listener x"), "--listener x");
        assert_eq!(run.name_variables("--base x: no"), "--base x: no");
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

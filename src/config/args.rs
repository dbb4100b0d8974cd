//! The clap definitions of the top level and of `run`, `inspect` and `verify`.

use super::values::{
    parse_base, parse_bool, parse_http_url, parse_millis, parse_retain, parse_seconds,
    parse_signal_target, SignalTarget,
};
use super::webhook_args::WebhookArgs;
use crate::trust::base::BaseSpec;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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

/// `inject`'s exit codes, in its `--help` (see `inject::cli::run`).
const INJECT_EXIT_CODES: &str = "Exit codes: 0 the manifests were written; 1 a manifest could \
not be processed or the output could not be written (nothing is written then); 2 bad usage (a \
flag or variable, or an input path that cannot be read).";

/// `webhook`'s exit codes, in its `--help` (see `webhook::WebhookError`).
const WEBHOOK_EXIT_CODES: &str = "Exit codes: 0 clean stop after SIGTERM/SIGINT (or `certs` \
wrote its files); 1 a fatal runtime error (an address in use, a certificate that cannot be \
written or loaded); 2 bad usage or configuration (the message names the flag or variable).";

/// trust-injector: publish private CAs merged with public roots for OpenSSL-style clients.
#[derive(Debug, Parser)]
#[command(
    name = "trust-injector",
    version,
    about,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
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
    #[command(after_help = WEBHOOK_EXIT_CODES)]
    Webhook(WebhookArgs),
    /// Add the sidecar to the workloads in Kubernetes manifests (also a Helm post-renderer).
    #[command(after_help = INJECT_EXIT_CODES)]
    Inject(crate::inject::InjectArgs),
    /// Copy this binary into a shared volume, or, run from there inside an application's
    /// image, write that image's CA bundle for the sidecar (injected init containers).
    #[command(
        after_help = "Exit codes: 0 done (also when the image has no CA bundle: nothing is \
                      written and the sidecar uses its embedded roots); 1 an I/O error; 2 bad usage."
    )]
    Roots(crate::inject::roots::RootsArgs),
    /// Ask the sidecar on loopback whether it is ready or live (its injected exec probes).
    #[command(
        after_help = "Exit codes: 0 HTTP 200; 1 anything else (the reason on stderr); 2 bad usage."
    )]
    Probe(crate::inject::probe::ProbeArgs),
    /// Print the help of trust-injector or of a command (`help inspect`, `help webhook certs`).
    #[command(after_help = "Exit codes: 0 printed; 2 no such command.")]
    Help(HelpArgs),
}

/// `help` options. Ours rather than clap's built-in `help`, which refuses
/// `help --help`.
#[derive(Debug, Clone, Args)]
pub struct HelpArgs {
    /// The command (and subcommand) whose help to print; none: the top level's.
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
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
        default_value = "system",
        value_parser = parse_base
    )]
    pub base: BaseSpec,
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
    #[arg(long, value_name = "URL", env = "TRUST_INJECTOR_ON_CHANGE_URL", value_parser = parse_http_url)]
    pub on_change_url: Option<String>,
    /// Send SIG to processes named NAME after every changed publish (SIG:NAME).
    #[arg(long, value_name = "SIG:NAME", env = "TRUST_INJECTOR_ON_CHANGE_SIGNAL", value_parser = parse_signal_target)]
    pub on_change_signal: Option<SignalTarget>,
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
    #[arg(
        long,
        value_name = "DURATION",
        env = "TRUST_INJECTOR_RETAIN_REMOVED",
        default_value = "off",
        value_parser = parse_retain
    )]
    pub retain_removed: u64,
    /// Check the TLS backend at URL against the published bundle after every
    /// change and every --check-interval (repeatable; handshake only).
    #[arg(
        long = "check",
        value_name = "URL",
        env = "TRUST_INJECTOR_CHECKS",
        value_delimiter = ','
    )]
    pub checks: Vec<String>,
    /// A file of backend URLs to check, one a line (blank lines and # comments ignored).
    #[arg(long, value_name = "FILE", env = "TRUST_INJECTOR_CHECK_FILE")]
    pub check_file: Option<PathBuf>,
    /// Seconds between backend checks besides the one after each changed publish; 0: only those.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TRUST_INJECTOR_CHECK_INTERVAL",
        allow_negative_numbers = true,
        value_parser = parse_seconds,
        default_value_t = 300
    )]
    pub check_interval: u64,
    /// Seconds a backend check waits to connect and for each step of the handshake.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TRUST_INJECTOR_CHECK_TIMEOUT",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=600)
    )]
    pub check_timeout: u64,
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

//! The `trust-injector` command. Exit codes: 0 success, 1 a source was
//! invalid or publishing failed (or a fatal runtime error), 2 bad usage or
//! configuration.

use std::process::ExitCode;
use trust_injector::cli::config::{self, Command, RunArgs, WebhookCommand};
use trust_injector::cli::daemon::{self, DaemonError};
use trust_injector::cli::{inspect, logging, webhook};
use trust_injector::{inject, verify};

fn main() -> ExitCode {
    let cli = config::parse();
    match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::Inspect(args)) => {
            let report = inspect::inspect(&args.paths);
            let table = if args.wide {
                inspect::render_wide
            } else {
                inspect::render_table
            };
            if !print_report(&report, args.json, table) {
                return ExitCode::from(1);
            }
            ExitCode::from(report.exit_code())
        }
        Some(Command::Verify(args)) => {
            let timeout = std::time::Duration::from_secs(args.timeout);
            let report =
                match verify::run(&args.url, &args.bundle, args.servername.as_deref(), timeout) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("trust-injector verify: {e}");
                        return ExitCode::from(2);
                    }
                };
            if !print_report(&report, args.json, verify::render_text) {
                return ExitCode::from(1);
            }
            ExitCode::from(report.verdict.exit_code())
        }
        Some(Command::Webhook(args)) => {
            if let Some(WebhookCommand::Help(h)) = &args.action {
                let path: Vec<String> = std::iter::once("webhook".to_string())
                    .chain(h.command.iter().cloned())
                    .collect();
                config::help(&path).exit()
            }
            match webhook::main(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("trust-injector webhook: {e}");
                    ExitCode::from(match e {
                        webhook::WebhookError::Config(_) => 2,
                        webhook::WebhookError::Fatal(_) => 1,
                    })
                }
            }
        }
        Some(Command::Inject(args)) => ExitCode::from(inject::cli::run(&args)),
        Some(Command::Roots(args)) => ExitCode::from(inject::roots::run(&args)),
        Some(Command::Probe(args)) => ExitCode::from(inject::probe::run(&args)),
        Some(Command::Help(args)) => config::help(&args.command).exit(),
    }
}

/// Prints a command's report as JSON or as text; false if it could not be
/// serialised (which the caller turns into exit code 1).
fn print_report<R: serde::Serialize>(report: &R, json: bool, text: fn(&R) -> String) -> bool {
    if !json {
        print!("{}", text(report));
        return true;
    }
    match serde_json::to_string_pretty(report) {
        Ok(s) => {
            println!("{s}");
            true
        }
        Err(e) => {
            eprintln!("trust-injector: {e}");
            false
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    let config = match args.validate().and_then(|c| args.require_out_dir(c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("trust-injector: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_format);
    if config.once {
        return match daemon::run_once(&config) {
            Ok(report) if report.complete() => ExitCode::SUCCESS,
            // The failure itself was logged where it happened ("publishing
            // failed", "cannot use source file"); say only what it means here.
            Ok(report) if report.publish_error.is_some() => ExitCode::from(1),
            Ok(report) => {
                tracing::error!(
                    in_error = report.errors,
                    "published without the source files in error (above); exit code 1"
                );
                ExitCode::from(1)
            }
            Err(e) => exit_for(e, &args),
        };
    }
    // A current-thread runtime: one sidecar per pod, so every thread and
    // megabyte counts, and there is nothing to parallelise.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trust-injector: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit_for(e, &args),
    }
}

/// Logs why the daemon stopped, once: the log is where a sidecar's output
/// goes, and printing it a second time to stderr (the same stream) only
/// doubled it. A configuration error names the option as the user set it.
fn exit_for(e: DaemonError, args: &RunArgs) -> ExitCode {
    let message = match &e {
        DaemonError::OutDir(why) => format!("{}: {why}", args.option("--out-dir")),
        DaemonError::Listen { addr, source } => {
            let hint = if source.kind() == std::io::ErrorKind::AddrInUse {
                "; another process listens there: choose another --listen address, or --listen off"
            } else {
                ""
            };
            format!("{}: {source}{hint}", args.setting("--listen", addr))
        }
        other => other.to_string(),
    };
    tracing::error!("{message}");
    ExitCode::from(e.exit_code())
}

//! The `trust-injector` command. Exit codes: 0 success, 1 a source was
//! invalid or publishing failed (or a fatal runtime error), 2 bad usage or
//! configuration.

use clap::Parser;
use std::process::ExitCode;
use trust_injector::config::{Cli, Command, RunArgs};
use trust_injector::daemon::{self, DaemonError};
use trust_injector::{inject, inspect, logging, verify};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::Inspect(args)) => {
            let report = inspect::inspect(&args.paths);
            if !print_report(&report, args.json, inspect::render_table) {
                return ExitCode::from(1);
            }
            ExitCode::from(u8::from(!report.errors.is_empty()))
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
        Some(Command::Webhook(args)) => match trust_injector::webhook::main(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("trust-injector webhook: {e}");
                ExitCode::from(match e {
                    trust_injector::webhook::WebhookError::Config(_) => 2,
                    trust_injector::webhook::WebhookError::Fatal(_) => 1,
                })
            }
        },
        Some(Command::Inject(args)) => ExitCode::from(inject::cli::run(&args)),
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
    let config = match args.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("trust-injector: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_format);
    if config.once {
        return match daemon::run_once(&config) {
            Ok(report) if report.publish_error.is_none() && report.errors == 0 => ExitCode::SUCCESS,
            Ok(report) => {
                tracing::error!(
                    errors = report.errors,
                    publish_error = report.publish_error.as_deref().unwrap_or(""),
                    "published with errors"
                );
                ExitCode::from(1)
            }
            Err(e) => exit_for(e),
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
        Err(e) => exit_for(e),
    }
}

fn exit_for(e: DaemonError) -> ExitCode {
    tracing::error!("{e}");
    eprintln!("trust-injector: {e}");
    match e {
        DaemonError::Config(_) => ExitCode::from(2),
        DaemonError::Fatal(_) => ExitCode::from(1),
    }
}

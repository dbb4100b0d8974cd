//! The `trust-injector` command. Exit codes: 0 success, 1 a source was
//! invalid or publishing failed (or a fatal runtime error), 2 bad usage or
//! configuration.

use clap::Parser;
use std::process::ExitCode;
use trust_injector::config::{Cli, Command, RunArgs};
use trust_injector::daemon::{self, DaemonError};
use trust_injector::{inspect, logging, verify};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::Inspect(args)) => {
            let report = inspect::inspect(&args.paths);
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("trust-injector: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print!("{}", inspect::render_table(&report));
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
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("trust-injector: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print!("{}", verify::render_text(&report));
            }
            ExitCode::from(report.verdict.exit_code())
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

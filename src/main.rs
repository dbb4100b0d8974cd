//! The `trust-injector` command. Exit codes: 0 success, 1 a source was
//! invalid or publishing failed (or a fatal runtime error), 2 bad usage or
//! configuration.

use clap::Parser;
use std::process::ExitCode;
use trust_injector::config::{Cli, Command, RunArgs};
use trust_injector::daemon::{self, DaemonError};
use trust_injector::{inspect, logging, verify};

/// musl's allocator is slow for this program's many small allocations; the
/// shipped amd64 musl binary uses mimalloc instead (why and numbers: Cargo.toml and
/// docs/performance.md). glibc builds keep glibc's malloc.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's defaults trade memory for speed in two ways a sidecar in every pod
/// should not: arenas committed eagerly (on Linux, because it overcommits), and
/// freed memory returned to the OS only after a delay, which an idle daemon never
/// reaches because returning happens inside later allocator calls. Measured idle RSS
/// (roots + 10 CAs, probes on): 14.9 MiB with the defaults, 3.7 MiB with these.
/// Set before the first allocation of `main`, when mimalloc has reserved nothing yet.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
fn tune_allocator() {
    // Positions in mimalloc 3's `mi_option_e` (include/mimalloc.h, the version
    // libmimalloc-sys builds by default); its Rust binding names only version 2's.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mi_option_set stores an integer in mimalloc's option table; any
    // value is valid for these two options.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_env = "musl", target_arch = "x86_64"))]
    tune_allocator();
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

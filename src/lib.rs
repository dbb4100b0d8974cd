//! trust-injector: reads private CA certificates from mounted Secret volumes,
//! merges them with a base bundle of public roots, and publishes one PEM
//! bundle (`SSL_CERT_FILE`) and an OpenSSL hashed directory (`SSL_CERT_DIR`)
//! into a shared directory, keeping both current as the Secret rotates.
//!
//! The folders follow the data (docs/architecture.md has the picture):
//! [`trust`] reads files and decides what is trusted, [`output`] writes it
//! into the out-dir, [`daemon`] keeps it current as the single writer fed by
//! watches, signals and timers, [`checks`] checks the backends against what
//! it published with [`handshake`] (also the `verify` command), and
//! [`commands`], [`inject`] and [`webhook`] are the other subcommands.
//! Every module is crate-private; the public modules below are a facade
//! holding exactly what the binary, the tests, the benchmarks and the fuzz
//! targets use, so the compiler reports everything else that nothing calls.

pub(crate) mod checks;
pub(crate) mod clock;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod handshake;
pub mod inject;
pub(crate) mod logging;
pub(crate) mod output;
pub(crate) mod serve;
pub(crate) mod trust;
pub(crate) mod webhook;

/// What `src/main.rs` calls: the parsed command line and each subcommand's
/// entry point (`inject`'s is [`inject::cli::run`], `verify`'s in [`verify`]).
pub mod cli {
    /// The command line and the checked `run` configuration.
    pub mod config {
        pub use crate::config::{help, parse, Command, RunArgs, WebhookCommand};
    }
    /// `run`: the loop and `--once`.
    pub mod daemon {
        pub use crate::daemon::{run, run_once, DaemonError};
    }
    /// `inspect`: the report and its two text layouts.
    pub mod inspect {
        pub use crate::commands::inspect::{inspect, render_table, render_wide};
    }
    /// The tracing subscriber `run` installs.
    pub mod logging {
        pub use crate::logging::init;
    }
    /// `webhook`: the admission server.
    pub mod webhook {
        pub use crate::webhook::{main, WebhookError};
    }
}

/// The base bundle (benches, tests/subject_hash.rs).
pub mod base {
    pub use crate::trust::base::embedded_roots;
}
/// Bundle assembly (benches, fuzz).
pub mod bundle {
    pub use crate::trust::bundle::assemble;
}
/// The parsed certificate (benches).
pub mod cert {
    pub use crate::trust::cert::Certificate;
}
/// DER writing (fuzz/subject_hash).
pub mod der {
    pub use crate::trust::der::write_tlv;
}
/// Certificate file parsing (benches, fuzz).
pub mod parse {
    pub use crate::trust::parse::{parse_bundle_lenient, parse_file};
}
/// What may be published (benches, fuzz).
pub mod policy {
    pub use crate::trust::policy::Policy;
}
/// OpenSSL's subject hash (fuzz/subject_hash).
pub mod subject_hash {
    pub use crate::trust::subject_hash::{canonical_encoding, subject_hash};
}
/// `verify`: the handshake, its explanation (tests/verify.rs) and the text report.
pub mod verify {
    pub use crate::handshake::{diagnose, render_text, run};
}

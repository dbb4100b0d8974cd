//! The command line: its definitions, its parsing and `run`'s validation
//! into a [`RunConfig`].
//!
//! Every `run` flag has an environment variable (a flag wins over it),
//! because in Kubernetes the environment is the easy place to set things;
//! `inject`'s and `webhook`'s are named `TRUST_INJECTOR_<COMMAND>_<FLAG>`.
//! One job a file: `args` and `webhook_args` are the clap definitions,
//! `values` the value parsers that turn each value into its type as it is
//! read, `env` the parsing that records which values came from a variable
//! and the [`env::Setting`] a message names, `validate` what needs several
//! options or the file system, `paths` the path resolution the overlap
//! checks use, `checks` the backends `run --check` checks, and `help` the `help` command. A configuration problem names
//! the flag, or the variable that set it, and exits 2.

mod args;
mod checks;
mod env;
mod help;
mod paths;
mod validate;
mod values;
mod webhook_args;

/// The boolean flags of `inject` read their variables as `run`'s do.
pub(crate) use values::parse_bool;

pub use args::{Command, LogFormat, RunArgs};
pub use checks::ChecksConfig;
pub use env::parse;
#[cfg(test)]
pub use env::parse_from;
pub use help::help;
pub use validate::RunConfig;
pub use values::SignalTarget;
pub use webhook_args::{WebhookArgs, WebhookCertsArgs, WebhookCommand};

//! The command line, and its validation into a [`RunConfig`].
//!
//! Every `run` flag has an environment variable (a flag wins over it), because
//! in Kubernetes the environment is the easy place to set things. Validation
//! happens before anything runs and names the flag or path at fault: the
//! process then exits 2, which `main` maps from [`ConfigError`].

mod args;
mod env;
mod help;
mod paths;
mod validate;
mod values;
mod webhook_args;

pub use args::{Command, LogFormat, RunArgs};
pub use env::parse;
#[cfg(test)]
pub use env::parse_from;
pub use help::help;
pub use validate::RunConfig;
pub use values::SignalTarget;
pub use webhook_args::{WebhookArgs, WebhookCertsArgs, WebhookCommand};

//! `trust-injector inject`: adds the sidecar to the workloads in Kubernetes manifests,
//! and the pod mutation the admission webhook shares.
//!
//! [`mutate`] is the one pod-template mutation (the narrow interface the webhook uses);
//! [`manifest`] finds pod templates in manifests and keeps every document it does not
//! change byte for byte ([`stream`] splits the text); [`cli`] is the subcommand.

pub mod cli;
pub mod manifest;
pub mod mutate;
pub mod probe;
pub mod roots;
mod stream;

pub use cli::InjectArgs;
pub use mutate::{
    inject_template, remove_template, InjectError, InjectOptions, Mode, Outcome, SkipReason,
};

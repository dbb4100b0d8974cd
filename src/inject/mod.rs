//! `trust-injector inject`: adds the sidecar to the workloads in Kubernetes manifests,
//! and the pod mutation the admission webhook shares.
//!
//! [`mutate`] is the one pod-template mutation (the narrow interface the webhook uses);
//! the rest of this module finds pod templates in manifests and keeps every document
//! it does not change byte for byte.

pub mod mutate;

pub use mutate::{
    inject_template, remove_template, InjectError, InjectOptions, Mode, Outcome, SkipReason,
};

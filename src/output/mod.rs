//! The outputs: what the trust pipeline decided, written into the out-dir.
//!
//! [`publish`] writes the PEM bundle and, through [`generations`], the hashed
//! directory atomically (file by file through [`dir`]),
//! [`truststore`] the optional Java/.NET stores, and [`retain`] keeps CAs that
//! left a Secret published for the grace period. These use the trust
//! pipeline's types and nothing of the daemon, so `run --once` and the loop
//! publish the same way.
//!
//! No `unsafe` here: every system call goes through rustix's safe wrappers,
//! and the compiler holds the module to that.
#![forbid(unsafe_code)]

pub(crate) mod dir;
pub(crate) mod generations;
pub(crate) mod publish;
pub(crate) mod retain;
pub(crate) mod truststore;

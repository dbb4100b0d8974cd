//! trust-injector: reads private CA certificates from mounted Secret volumes,
//! merges them with a base bundle of public roots, and publishes one PEM
//! bundle (`SSL_CERT_FILE`) and an OpenSSL hashed directory (`SSL_CERT_DIR`)
//! into a shared directory, keeping both current as the Secret rotates.
//!
//! The modules follow the data: [`source`] reads files, [`parse`] and
//! [`cert`] turn bytes into certificates, [`policy`] and [`bundle`] decide what
//! is published, [`publish`] writes it atomically, [`reconcile`] ties those
//! together as the single writer, and [`daemon`] feeds it events from
//! [`watch`], [`signals`] and timers while [`server`] exposes its state.

pub mod base;
pub mod bundle;
pub mod cert;
pub mod config;
pub mod daemon;
pub mod der;
pub mod hooks;
pub mod include;
pub mod inject;
pub mod inspect;
pub mod logging;
pub mod metrics;
pub mod parse;
pub mod policy;
pub mod publish;
pub mod reconcile;
pub mod retain;
pub mod server;
pub mod signals;
pub mod source;
pub mod status;
pub mod subject_hash;
pub mod truststore;
pub mod verify;
pub mod watch;
pub mod webhook;

//! The trust pipeline: from the bytes of mounted files to the set of
//! certificates to publish. Pure data in, data out: nothing here writes to
//! the out-dir or knows about the daemon, so `inspect`, `verify`, the daemon
//! and the fuzz targets all run the same code.
//!
//! [`source`] reads the Secret files (what [`include`] selects) and [`base`]
//! picks and loads the public roots; [`parse`] and [`cert`] turn bytes into
//! certificates, taking exactly what OpenSSL would load ([`pem`] reads PEM
//! as OpenSSL does, [`trusted`] its `TRUSTED CERTIFICATE`s; [`der`] and
//! [`subject_hash`] are the name encoding OpenSSL decodes and hashes); [`policy`] decides which certificates
//! may be published and [`bundle`] assembles them in their published order.
//!
//! [`read`] is the one reader for every file of trust input (capped, regular files
//! only, never blocking), [`bundle_files`] what the one-shot commands read,
//! [`name_text`] a name as people read it, and [`summary`] a certificate's fields as every JSON report shows them, [`warning`]
//! a warning about it likewise.

pub(crate) mod base;
pub(crate) mod bundle;
pub(crate) mod bundle_files;
pub(crate) mod cert;
pub(crate) mod der;
pub(crate) mod include;
pub(crate) mod name_text;
pub(crate) mod parse;
pub(crate) mod pem;
pub(crate) mod policy;
pub(crate) mod read;
pub(crate) mod source;
pub(crate) mod subject_hash;
pub(crate) mod summary;
pub(crate) mod tbs;
pub(crate) mod trusted;
pub(crate) mod warning;

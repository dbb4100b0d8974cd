//! The plumbing every long-running command shares: file watches and Unix
//! signals that wake a loop, and (in `http`) the accept loop with the
//! connection limits and timeouts both HTTP servers need.
//!
//! It sits outside `daemon/` so that `webhook/` reuses it without depending
//! on the sidecar's loop; it imports nothing from `trust/`, `output/`,
//! `daemon/` or `webhook/`.

pub(crate) mod exposition;
pub(crate) mod http;
pub(crate) mod signals;
pub(crate) mod slots;
pub(crate) mod watch;

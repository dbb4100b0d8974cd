//! The one-shot commands that read trust without publishing it:
//! [`inspect`] lists what files contain and [`verify`] explains a TLS
//! handshake against a bundle. (`inject` and `webhook` have folders of their
//! own beside this one because they are large.)

pub(crate) mod inspect;
pub(crate) mod verify;

//! The one-shot commands that read trust without publishing it:
//! [`inspect`] lists what files contain (`verify` lives in `handshake/`,
//! which the daemon's backend checks share). (`inject` and `webhook` have folders of their
//! own beside this one because they are large.)

pub(crate) mod inspect;

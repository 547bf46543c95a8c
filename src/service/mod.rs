//! BouncerServ: the administration service users and administrators talk to
//! in order to manage their account, networks and the bouncer itself.

pub mod flags;
pub mod words;

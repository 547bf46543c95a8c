//! The IRC wire protocol: no I/O, no tokio.

pub mod caps;
pub mod casemap;
pub mod isupport;
pub mod numeric;
pub mod sasl;
pub mod time;

//! The IRC wire protocol: no I/O, no tokio.

pub mod caps;
pub mod casemap;
pub mod codec;
pub mod isupport;
pub mod message;
pub mod numeric;
pub mod sasl;
pub mod time;
pub mod who;

pub use codec::{Frame, LineDecoder};
pub use message::Message;

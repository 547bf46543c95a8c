//! The IRC wire protocol: no I/O, no tokio.

pub mod codec;
pub mod message;

pub use codec::{Frame, LineDecoder};
pub use message::Message;

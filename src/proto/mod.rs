//! The IRC wire protocol: no I/O, no tokio.

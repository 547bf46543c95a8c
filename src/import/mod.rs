//! `tether import soju|znc`: moving users, networks, channels, SASL
//! settings and read markers from another bouncer into tether's database.
//!
//! An import runs in two steps. A reader turns the other bouncer's data
//! into a [`Source`], tether's own vocabulary, noting on the way what has no
//! equivalent: [`soju`] reads a soju SQLite database (read-only), [`znc`]
//! parses a `znc.conf` ([`znc_conf`]) and the module data next to it
//! ([`znc_registry`]). Then [`apply`] writes the [`Source`] through the
//! [`Db`](crate::db::Db) API, so validation and schema stay in one place, and
//! returns a [`Report`] ([`report`]).
//!
//! Imports are idempotent: users are matched by name, networks by (user,
//! name), channels by (network, casemapped name). A second run creates
//! nothing twice; it updates what differs and counts the rest unchanged
//! (see [`apply`] for what an update touches).
//!
//! tether loads its users when it starts, so an import is meant to run
//! while tether is stopped, or to be followed by a restart.
//! [`in_use::database_in_use`] tells whether another process has the
//! database open, for a warning. [`pem`] converts soju's DER certificates.

pub mod apply;
pub mod in_use;
pub mod pem;
pub mod report;
pub mod soju;
pub mod znc;
pub mod znc_conf;
pub mod znc_registry;

use std::path::PathBuf;

use crate::db::{DbError, MessageFilter, NetworkRecord};

pub use apply::apply;
pub use report::{Counts, Report};

/// Why an import could not run at all. Anything that only affects one
/// user, network or channel is a note in the [`Report`] instead.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is readable but is not what the importer expects.
    #[error("{}: {reason}", path.display())]
    NotSource { path: PathBuf, reason: String },
    /// SQLite failed while reading a soju database.
    #[error("{}: reading the soju database: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A syntax error in a ZNC configuration.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Writing to tether's database failed.
    #[error("writing to tether's database: {0}")]
    Db(#[from] DbError),
    /// Hashing a generated password failed.
    #[error("{0}")]
    Auth(#[from] crate::auth::AuthError),
}

/// How an imported user logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// A hash tether verifies (bcrypt from soju), kept as it is.
    Hash(String),
    /// Password login disabled.
    Disabled,
    /// A fresh random password, generated when the user is created and
    /// shown once in the report.
    Random,
}

/// Detached-channel settings, when the source has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DetachSettings {
    pub relay_detached: MessageFilter,
    pub reattach_on: MessageFilter,
    pub detach_on: MessageFilter,
    pub detach_after_ms: i64,
}

/// A channel to import.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceChannel {
    pub name: String,
    pub key: Option<String>,
    pub detached: bool,
    /// `None` leaves tether's settings (defaults for a new channel).
    pub detach: Option<DetachSettings>,
}

/// A network to import, with its channels and read markers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceNetwork {
    /// The settings; `id` and `user_id` are ignored. `None` fields (and an
    /// empty `connect_commands`) leave an existing network's value alone.
    pub record: NetworkRecord,
    pub channels: Vec<SourceChannel>,
    /// `(target, time in ms)`; only ever moves a marker forward.
    pub read_markers: Vec<(String, i64)>,
    /// What could not be carried over for this network.
    pub notes: Vec<String>,
}

/// A user to import, with their networks.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceUser {
    pub username: String,
    /// Only used when the user is created; an existing user keeps theirs.
    pub password: Password,
    pub admin: bool,
    /// `None` when the source has no such setting: a new user is enabled,
    /// an existing one keeps its state.
    pub enabled: Option<bool>,
    pub nick: Option<String>,
    pub realname: Option<String>,
    pub max_networks: Option<u32>,
    pub networks: Vec<SourceNetwork>,
    /// Device certificates: (lowercase hex SHA-512, label).
    pub device_certs: Vec<(String, String)>,
    /// What could not be carried over for this user.
    pub notes: Vec<String>,
}

impl SourceUser {
    /// A non-admin user without password, networks or enabled state.
    pub fn new(username: impl Into<String>) -> SourceUser {
        SourceUser {
            username: username.into(),
            password: Password::Disabled,
            admin: false,
            enabled: None,
            nick: None,
            realname: None,
            max_networks: None,
            networks: Vec::new(),
            device_certs: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Everything read from the other bouncer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Source {
    /// `soju` or `ZNC`, for the report.
    pub kind: &'static str,
    pub users: Vec<SourceUser>,
    /// What could not be carried over, not tied to one user.
    pub notes: Vec<String>,
}

//! Notifications (issue 7): which messages should reach the user while no
//! client is looking. This part holds the rules and the decision
//! ([`rules`]), quiet hours ([`quiet`]) and ignore masks ([`ignore`]); the
//! rules are stored by [`crate::db::notify`] and changed with BouncerServ
//! `notify` ([`crate::service::notify`]). [`rules::decide`] is called for
//! every relayed message by the "while you were away" summary
//! ([`crate::user::away_summary`]); push and webhook delivery come later.

pub mod ignore;
pub mod quiet;
pub mod rules;

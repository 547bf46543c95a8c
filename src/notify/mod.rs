//! Notifications (issue 7): which messages should reach the user while no
//! client is looking. This part holds the rules and the decision
//! ([`rules`]), quiet hours ([`quiet`]) and ignore masks ([`ignore`]); the
//! rules are stored by [`crate::db::notify`] and changed with BouncerServ
//! `notify` ([`crate::service::notify`]). The user actor calls
//! [`rules::decide`] for every relayed message
//! ([`crate::user::notify_out`]) and hands what notifies to
//! [`crate::delivery`].

pub mod ignore;
pub mod quiet;
pub mod rules;

//! Notifications (issue 7): which messages should reach the user while no
//! client is looking. This part holds the rules and the decision
//! ([`rules`]), quiet hours ([`quiet`]) and ignore masks ([`ignore`]); the
//! rules are stored by [`crate::db::notify`] and changed with BouncerServ
//! `notify` ([`crate::service::notify`]). Delivery (push, webhooks) comes
//! later and will call [`rules::decide`] for every relayed message.

pub mod ignore;
pub mod quiet;
pub mod rules;

//! Notifications (issue 7): which messages should reach the user while no
//! client is looking. This part holds the rules and the decision
//! ([`rules`]), quiet hours ([`quiet`]) and ignore masks ([`ignore`]); the
//! rules are stored by [`crate::db::notify`] and changed with BouncerServ
//! `notify` ([`crate::service::notify`]). The user actor calls
//! [`rules::decide`] for every relayed message: for push and webhook
//! delivery ([`crate::user::notify_out`], handing what notifies to
//! [`crate::delivery`]) and for the "while you were away" summary
//! ([`crate::user::away_summary`]).

pub mod ignore;
pub mod quiet;
pub mod rules;

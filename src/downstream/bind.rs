//! `BOUNCER BIND <netid>` during registration (`soju.im/bouncer-networks`):
//! the client picks the network for this connection by id instead of by a
//! `user/network` login name.
//!
//! The id can only be checked against the user's networks once tether knows
//! the user. After SASL it is checked at once. With `PASS`, the password is
//! only checked when registration ends, so the `BIND` is accepted
//! tentatively and checked then ([`check_at_finish`]). Without either, the
//! client gets `ACCOUNT_REQUIRED`.

use crate::conn::Writer;
use crate::proto::{Message, numeric};
use crate::server::Shared;

/// What registration knows about the user when `BIND` arrives.
pub(crate) struct BindAuth {
    /// The user id authenticated with SASL.
    pub sasl_user: Option<i64>,
    /// A `PASS` was given (it is checked when registration ends).
    pub pass_given: bool,
}

fn fail(shared: &Shared, params: &[&str]) -> Message {
    let mut all = vec!["BOUNCER"];
    all.extend_from_slice(params);
    Message::new("FAIL", all).with_source(shared.config.hostname.clone())
}

fn unknown_netid(shared: &Shared, raw: &str) -> Message {
    fail(
        shared,
        &["INVALID_NETID", "BIND", raw, "Unknown network ID"],
    )
}

/// Whether `net_id` is one of the user's networks.
async fn owns_network(shared: &Shared, user_id: i64, net_id: i64) -> Result<bool, String> {
    let networks = shared
        .db
        .list_networks(user_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(networks.iter().any(|n| n.id == net_id))
}

/// Handle a `BOUNCER` line during registration. `Ok` holds the id to bind
/// to; `Err` the reply for the client (the registration goes on).
pub(crate) async fn on_bouncer(
    shared: &Shared,
    nick: &str,
    auth: BindAuth,
    msg: &Message,
) -> Result<i64, Message> {
    let sub = msg.param(0).map(str::to_ascii_uppercase);
    let (Some("BIND"), Some(raw)) = (sub.as_deref(), msg.param(1)) else {
        let reply = match sub.as_deref() {
            Some("BIND") | None => Message::new(
                numeric::ERR_NEEDMOREPARAMS,
                [nick, "BOUNCER", "Not enough parameters"],
            ),
            // Every other subcommand needs a registered connection.
            Some(_) => Message::new(
                numeric::ERR_NOTREGISTERED,
                [nick, "You have not registered"],
            ),
        };
        return Err(reply.with_source(shared.config.hostname.clone()));
    };
    if auth.sasl_user.is_none() && !auth.pass_given {
        return Err(fail(
            shared,
            &[
                "ACCOUNT_REQUIRED",
                "BIND",
                "Authentication needed to bind to bouncer network",
            ],
        ));
    }
    let Ok(net_id) = raw.parse::<i64>() else {
        return Err(unknown_netid(shared, raw));
    };
    if let Some(user_id) = auth.sasl_user {
        match owns_network(shared, user_id, net_id).await {
            Ok(true) => {}
            Ok(false) => return Err(unknown_netid(shared, raw)),
            Err(e) => {
                tracing::warn!(error = %e, "network lookup for BIND failed");
                return Err(fail(
                    shared,
                    &["UNKNOWN_ERROR", "BIND", "Internal error, try again later"],
                ));
            }
        }
    }
    Ok(net_id)
}

/// Check the bound id once the user is known; on failure the client is
/// told and closed, and false is returned.
pub(crate) async fn check_at_finish(
    shared: &Shared,
    writer: &Writer,
    user_id: i64,
    net_id: i64,
) -> bool {
    match owns_network(shared, user_id, net_id).await {
        Ok(true) => true,
        Ok(false) => {
            let _ = writer.send_msg(&unknown_netid(shared, &net_id.to_string()));
            writer.close(Some("ERROR :Unknown network ID".to_string()));
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "network lookup for BIND failed");
            writer.close(Some("ERROR :Internal error, try again later".into()));
            false
        }
    }
}

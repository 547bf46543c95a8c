//! A client connection from accept to attach: registration (CAP, PASS,
//! NICK, USER, SASL PLAIN, `BOUNCER BIND`), authentication against the
//! database, handing the client to its user's actor, and then pumping the
//! client's lines to that actor until the connection ends.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::time::Instant;

use crate::conn::{BoxRead, BoxWrite, LineReader, Writer, WriterOptions, spawn_counted_writer};
use crate::downstream::handlers::cap::{self, CapState};
use crate::downstream::{Attach, bind};
use crate::metrics::{CounterRef, GaugeGuard, LoginFailure};
use crate::proto::codec::CLIENT_LINE_MAX;
use crate::proto::sasl::{Assembled, ChunkAssembler, decode_plain};
use crate::proto::{Frame, Message, numeric};
use crate::server::Shared;
use crate::user::{DownstreamEvent, UserEvent};

/// Lines queued for one client before it counts as too slow.
pub const CLIENT_QUEUE: usize = 2048;

/// The parts of a login name: `user/network@client` or `user@client/network`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginName {
    pub user: String,
    pub network: Option<String>,
    pub client: Option<String>,
}

impl LoginName {
    pub fn parse(raw: &str) -> LoginName {
        let Some(first) = raw.find(['/', '@']) else {
            return LoginName {
                user: raw.to_string(),
                ..LoginName::default()
            };
        };
        let user = raw[..first].to_string();
        let rest = &raw[first..];
        let (mut network, mut client) = (None, None);
        // The suffixes come in either order; each runs to the next marker.
        let mut remaining = rest;
        while let Some(marker) = remaining.chars().next() {
            let body = &remaining[1..];
            let end = body.find(['/', '@']).unwrap_or(body.len());
            let value = Some(body[..end].to_string()).filter(|v| !v.is_empty());
            if marker == '/' {
                network = network.or(value);
            } else {
                client = client.or(value);
            }
            remaining = &body[end..];
        }
        LoginName {
            user,
            network,
            client,
        }
    }

    /// Fill in suffixes missing here from `other`.
    fn merge(mut self, other: &LoginName) -> LoginName {
        if self.network.is_none() {
            self.network = other.network.clone();
        }
        if self.client.is_none() {
            self.client = other.client.clone();
        }
        self
    }
}

struct Registration {
    nick: Option<String>,
    user: Option<String>,
    pass: Option<String>,
    caps: HashSet<String>,
    cap_version: u32,
    offered: crate::downstream::capset::CapValues,
    negotiating: bool,
    /// The SASL exchange under way: its mechanism and the response so far.
    sasl: Option<(SaslMech, ChunkAssembler)>,
    /// Login name and user id authenticated by SASL.
    sasl_login: Option<(LoginName, i64)>,
    /// The network id chosen with `BOUNCER BIND`.
    bind: Option<i64>,
    /// Away state set before registration (draft/pre-away).
    away: Option<crate::user::away::ClientAway>,
    /// Fingerprint of the TLS client certificate presented, if any.
    client_cert: Option<String>,
}

/// The SASL mechanisms clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaslMech {
    Plain,
    /// A registered device certificate (`client-cert-auth`).
    External,
}

impl Registration {
    /// Whether this client may log in with SASL EXTERNAL.
    fn external_allowed(&self, shared: &Shared) -> bool {
        shared.config.client_cert_auth && self.client_cert.is_some()
    }
}

/// Serve one client connection until it closes.
///
/// `client_cert` is the fingerprint of the TLS client certificate the
/// client presented (see [`crate::server::client_cert`]).
pub async fn serve(
    shared: Arc<Shared>,
    read: BoxRead,
    write: BoxWrite,
    remote: String,
    client_cert: Option<String>,
) {
    let metrics = &shared.metrics;
    let _open = GaugeGuard::new(metrics, |m| &m.downstreams);
    let (writer, writer_task) = spawn_counted_writer(
        write,
        WriterOptions {
            capacity: CLIENT_QUEUE,
            flood: None,
        },
        Some(CounterRef::new(metrics, |m| &m.downstream_sent)),
    );
    let mut reader = LineReader::new(read, CLIENT_LINE_MAX)
        .counting(CounterRef::new(metrics, |m| &m.downstream_received));
    let id = shared.next_client_id();
    // `user` and `network` are filled in once the client has logged in.
    let span = tracing::info_span!(
        "client",
        client = id,
        %remote,
        user = tracing::field::Empty,
        network = tracing::field::Empty,
    );
    let attached = tracing::Instrument::instrument(
        register(&shared, &mut reader, &writer, id, remote, client_cert),
        span.clone(),
    )
    .await;
    if let Some(events) = attached {
        let limiter = crate::downstream::flood::Limiter::new(shared.live().client_flood);
        tracing::Instrument::instrument(pump(&mut reader, &writer, id, events, limiter), span)
            .await;
    }
    let _ = writer_task.await;
}

fn server_msg(shared: &Shared, command: &str, params: &[&str]) -> Message {
    Message::new(command, params.iter().copied()).with_source(shared.config.hostname.clone())
}

/// Send a message from the server to a client still registering.
fn num(shared: &Shared, writer: &Writer, command: &str, params: &[&str]) {
    reply(writer, server_msg(shared, command, params));
}

/// The generic SASL failure reply (904); the reason stays in the log.
fn sasl_failed(shared: &Shared, writer: &Writer, nick: &str) {
    num(
        shared,
        writer,
        numeric::ERR_SASLFAIL,
        &[nick, "SASL authentication failed"],
    );
}

fn reply(writer: &Writer, msg: Message) {
    // Registration replies are few; a full queue here means the client is
    // not reading at all, and the timeout will close it.
    let _ = writer.send_msg(&msg);
}

/// Run registration; on success the client has been handed to its user's
/// actor and the actor's event sender is returned for the pump.
async fn register(
    shared: &Arc<Shared>,
    reader: &mut LineReader,
    writer: &Writer,
    id: u64,
    remote: String,
    client_cert: Option<String>,
) -> Option<tokio::sync::mpsc::Sender<UserEvent>> {
    let deadline = Instant::now() + shared.live().registration_timeout;
    let mut reg = Registration {
        nick: None,
        user: None,
        pass: None,
        caps: HashSet::new(),
        cap_version: 0,
        offered: Default::default(),
        negotiating: false,
        sasl: None,
        sasl_login: None,
        bind: None,
        away: None,
        client_cert,
    };
    let cancel = writer.cancel_token();
    loop {
        let frame = tokio::select! {
            _ = shared.shutdown.cancelled() => {
                writer.close(Some("ERROR :Server shutting down".into()));
                return None;
            }
            _ = cancel.cancelled() => return None,
            r = tokio::time::timeout_at(deadline, reader.next_frame()) => match r {
                Err(_) => {
                    writer.close(Some("ERROR :Connection registration timed out".into()));
                    return None;
                }
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None)) | Ok(Err(_)) => {
                    writer.close(None);
                    return None;
                }
            },
        };
        let nick = reg.nick.clone().unwrap_or_else(|| "*".to_string());
        let msg = match frame {
            Frame::TooLong => {
                num(
                    shared,
                    writer,
                    numeric::ERR_INPUTTOOLONG,
                    &[&nick, "Input line was too long"],
                );
                continue;
            }
            Frame::Line { text, lossy } => match text.parse::<Message>() {
                Ok(msg) if lossy => {
                    reply(writer, invalid_utf8_reply(shared, &msg.command));
                    continue;
                }
                Ok(msg) => msg,
                Err(_) => continue,
            },
        };
        match msg.command.as_str() {
            "CAP" => {
                let sasl_external = reg.external_allowed(shared);
                let replies = cap::handle(
                    CapState {
                        caps: &mut reg.caps,
                        version: &mut reg.cap_version,
                        negotiating: &mut reg.negotiating,
                        offered: &mut reg.offered,
                        sasl_external,
                    },
                    None,
                    &nick,
                    &msg,
                );
                for r in replies {
                    reply(writer, r.with_source(shared.config.hostname.clone()));
                }
            }
            "PASS" => reg.pass = msg.param(0).map(str::to_string),
            "NICK" => match msg.param(0) {
                Some(n) if !n.is_empty() => {
                    if crate::service::is_service_nick(n) {
                        num(
                            shared,
                            writer,
                            numeric::ERR_NICKNAMEINUSE,
                            &[&nick, n, "Nickname reserved for bouncer service"],
                        );
                    } else {
                        reg.nick = Some(n.to_string());
                    }
                }
                _ => num(
                    shared,
                    writer,
                    numeric::ERR_NONICKNAMEGIVEN,
                    &[&nick, "No nickname given"],
                ),
            },
            "USER" => {
                if msg.params.len() < 4 {
                    num(
                        shared,
                        writer,
                        numeric::ERR_NEEDMOREPARAMS,
                        &[&nick, "USER", "Not enough parameters"],
                    );
                } else {
                    reg.user = msg.param(0).map(str::to_string);
                }
            }
            "AUTHENTICATE" => authenticate(shared, writer, &mut reg, &nick, &msg, &remote).await,
            "BOUNCER" => {
                let auth = bind::BindAuth {
                    sasl_user: reg.sasl_login.as_ref().map(|(_, id)| *id),
                    pass_given: reg.pass.is_some(),
                };
                match bind::on_bouncer(shared, &nick, auth, &msg).await {
                    Ok(net_id) => reg.bind = Some(net_id),
                    Err(fail) => reply(writer, fail),
                }
            }
            "PING" => {
                let token = msg.param(0).unwrap_or("");
                num(shared, writer, "PONG", &[&shared.config.hostname, token]);
            }
            "PONG" => {}
            // draft/extended-isupport: before the network is known, the
            // bouncer's own tokens; the burst brings the network's.
            "ISUPPORT" if reg.caps.contains("draft/extended-isupport") => {
                let host = &shared.config.hostname;
                for line in crate::downstream::burst::bouncer_isupport_lines(
                    host,
                    &shared.live(),
                    &nick,
                    &shared.vapid_public,
                ) {
                    reply(writer, line);
                }
            }
            // draft/pre-away: applied when the client attaches.
            "AWAY" if reg.caps.contains("draft/pre-away") => {
                reg.away = crate::user::away::parse_away(&msg);
            }
            "QUIT" => {
                writer.close(Some("ERROR :Closing link (quit)".into()));
                return None;
            }
            _ => num(
                shared,
                writer,
                numeric::ERR_NOTREGISTERED,
                &[&nick, "You have not registered"],
            ),
        }

        if reg.nick.is_some() && reg.user.is_some() && !reg.negotiating {
            return finish(shared, writer, reg, id, remote).await;
        }
    }
}

fn invalid_utf8_reply(shared: &Shared, command: &str) -> Message {
    let command = if command.is_empty() { "*" } else { command };
    server_msg(
        shared,
        "FAIL",
        &[
            command,
            "INVALID_UTF8",
            "Message rejected: it is not valid UTF-8",
        ],
    )
}

async fn authenticate(
    shared: &Arc<Shared>,
    writer: &Writer,
    reg: &mut Registration,
    nick: &str,
    msg: &Message,
    remote: &str,
) {
    if !reg.caps.contains("sasl") {
        num(
            shared,
            writer,
            numeric::ERR_SASLFAIL,
            &[nick, "SASL not negotiated"],
        );
        return;
    }
    let arg = msg.param(0).unwrap_or("");
    if arg == "*" {
        reg.sasl = None;
        num(
            shared,
            writer,
            numeric::ERR_SASLABORTED,
            &[nick, "SASL authentication aborted"],
        );
        return;
    }
    if reg.sasl_login.is_some() {
        num(
            shared,
            writer,
            numeric::ERR_SASLALREADY,
            &[nick, "You have already authenticated using SASL"],
        );
        return;
    }
    let Some((mech, assembler)) = reg.sasl.as_mut() else {
        let external = reg.external_allowed(shared);
        if arg.eq_ignore_ascii_case("PLAIN") {
            reg.sasl = Some((SaslMech::Plain, ChunkAssembler::default()));
            reply(writer, Message::new("AUTHENTICATE", ["+"]));
        } else if external && arg.eq_ignore_ascii_case("EXTERNAL") {
            reg.sasl = Some((SaslMech::External, ChunkAssembler::default()));
            reply(writer, Message::new("AUTHENTICATE", ["+"]));
        } else {
            let mechs = if external { "PLAIN,EXTERNAL" } else { "PLAIN" };
            num(
                shared,
                writer,
                numeric::RPL_SASLMECHS,
                &[nick, mechs, "are available SASL mechanisms"],
            );
            sasl_failed(shared, writer, nick);
        }
        return;
    };
    let mech = *mech;
    let payload = match assembler.push(arg) {
        Ok(Assembled::NeedMore) => return,
        Ok(Assembled::Done(payload)) => payload,
        Err(crate::proto::sasl::SaslError::TooLong) => {
            reg.sasl = None;
            num(
                shared,
                writer,
                numeric::ERR_SASLTOOLONG,
                &[nick, "SASL message too long"],
            );
            return;
        }
        Err(_) => {
            reg.sasl = None;
            sasl_failed(shared, writer, nick);
            return;
        }
    };
    reg.sasl = None;
    let result = match mech {
        SaslMech::Plain => {
            let creds = match decode_plain(&payload) {
                Ok(c) if c.authzid.is_empty() || c.authzid == c.authcid => c,
                _ => {
                    sasl_failed(shared, writer, nick);
                    return;
                }
            };
            let login = LoginName::parse(&creds.authcid);
            check_password(shared, &login.user, &creds.password, remote)
                .await
                .map(|id| (login, id))
        }
        SaslMech::External => {
            let Some(fingerprint) = reg.client_cert.clone() else {
                sasl_failed(shared, writer, nick);
                return;
            };
            let result =
                crate::downstream::sasl_external::login(shared, fingerprint, &payload, remote)
                    .await;
            if let Err(e) = &result {
                count_login_failure(shared, e);
            }
            result
        }
    };
    match result {
        Ok((login, user_id)) => {
            let account = login.user.clone();
            reg.sasl_login = Some((login, user_id));
            num(
                shared,
                writer,
                numeric::RPL_LOGGEDIN,
                &[
                    nick,
                    &format!("{nick}!{account}@tether"),
                    &account,
                    &format!("You are now logged in as {account}"),
                ],
            );
            num(
                shared,
                writer,
                numeric::RPL_SASLSUCCESS,
                &[nick, "SASL authentication successful"],
            );
        }
        Err(LoginError::Throttled) => {
            sasl_failed(shared, writer, nick);
            writer.close(Some(THROTTLED.into()));
        }
        Err(_) => {
            num(
                shared,
                writer,
                numeric::ERR_SASLFAIL,
                &[nick, "SASL authentication failed: invalid credentials"],
            );
        }
    }
}

/// Why a login was refused (the client only ever sees a generic text).
pub(crate) enum LoginError {
    Invalid,
    /// Too many recent failures for this user name or address.
    Throttled,
    Disabled,
    Internal,
}

/// The closing line for a throttled login attempt.
const THROTTLED: &str = "ERROR :Too many failed logins, try again later";

/// Check a login, counting failures against the password-guessing
/// throttle (`server::login_limit`).
async fn check_password(
    shared: &Shared,
    username: &str,
    password: &str,
    remote: &str,
) -> Result<i64, LoginError> {
    let ip = crate::server::login_limit::remote_ip(remote);
    if !shared.logins.allowed(username, ip) {
        tracing::info!(user = %username, %remote, "login refused: too many failures");
        count_login_failure(shared, &LoginError::Throttled);
        return Err(LoginError::Throttled);
    }
    let result = verify_login(shared, username, password).await;
    if let Err(e) = &result {
        count_login_failure(shared, e);
    }
    match result {
        Err(LoginError::Invalid) => {
            let slowdown = shared.logins.failed(username, ip);
            tokio::time::sleep(slowdown).await;
        }
        Ok(_) => shared.logins.succeeded(username),
        Err(_) => {}
    }
    result
}

/// Count a refused login (PASS, SASL PLAIN or EXTERNAL) in the metrics;
/// internal errors are not the client's failure and are not counted.
fn count_login_failure(shared: &Shared, error: &LoginError) {
    let reason = match error {
        LoginError::Invalid => LoginFailure::Invalid,
        LoginError::Throttled => LoginFailure::Throttled,
        LoginError::Disabled => LoginFailure::Disabled,
        LoginError::Internal => return,
    };
    shared.metrics.login_failures(reason).inc();
}

async fn verify_login(shared: &Shared, username: &str, password: &str) -> Result<i64, LoginError> {
    let record = match shared.db.get_user(username).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            // Spend the same effort as a real check so that timing does not
            // reveal which user names exist.
            let _ = crate::auth::hash_password_async(password.to_string()).await;
            return Err(LoginError::Invalid);
        }
        Err(e) => {
            tracing::warn!(error = %e, "user lookup failed");
            return Err(LoginError::Internal);
        }
    };
    let Some(hash) = record.password_hash.clone() else {
        return Err(LoginError::Invalid);
    };
    if !crate::auth::verify_password_async(password.to_string(), hash.clone()).await {
        return Err(LoginError::Invalid);
    }
    if !record.enabled {
        return Err(LoginError::Disabled);
    }
    if crate::auth::needs_rehash(&hash) {
        let db = shared.db.clone();
        let password = password.to_string();
        let mut updated = record.clone();
        tokio::spawn(async move {
            if let Ok(new_hash) = crate::auth::hash_password_async(password).await {
                updated.password_hash = Some(new_hash);
                if let Err(e) = db.update_user(updated).await {
                    tracing::warn!(error = %e, "could not upgrade password hash");
                }
            }
        });
    }
    Ok(record.id)
}

async fn finish(
    shared: &Arc<Shared>,
    writer: &Writer,
    reg: Registration,
    id: u64,
    remote: String,
) -> Option<tokio::sync::mpsc::Sender<UserEvent>> {
    let nick = reg.nick.clone().unwrap_or_default();
    let user_login = LoginName::parse(reg.user.as_deref().unwrap_or(""));
    let (login, user_id) = match reg.sasl_login {
        Some((login, user_id)) => (login.merge(&user_login), user_id),
        None => {
            let Some(pass) = reg.pass.as_deref() else {
                num(
                    shared,
                    writer,
                    numeric::ERR_PASSWDMISMATCH,
                    &[&nick, "Password required: use PASS or SASL"],
                );
                writer.close(Some("ERROR :Authentication required".into()));
                return None;
            };
            match check_password(shared, &user_login.user, pass, &remote).await {
                Ok(user_id) => (user_login, user_id),
                Err(LoginError::Disabled) => {
                    writer.close(Some("ERROR :This bouncer account is disabled".into()));
                    return None;
                }
                Err(LoginError::Internal) => {
                    writer.close(Some("ERROR :Internal error, try again later".into()));
                    return None;
                }
                Err(LoginError::Throttled) => {
                    writer.close(Some(THROTTLED.into()));
                    return None;
                }
                Err(LoginError::Invalid) => {
                    tracing::info!(user = %user_login.user, "login failed");
                    num(
                        shared,
                        writer,
                        numeric::ERR_PASSWDMISMATCH,
                        &[&nick, "Invalid credentials"],
                    );
                    writer.close(Some("ERROR :Invalid credentials".into()));
                    return None;
                }
            }
        }
    };
    if let Some(net_id) = reg.bind
        && !bind::check_at_finish(shared, writer, user_id, net_id).await
    {
        return None;
    }
    let Some(handle) = shared.user(&login.user) else {
        writer.close(Some(
            "ERROR :This account is not loaded, try again later".into(),
        ));
        return None;
    };
    let span = tracing::Span::current();
    span.record("user", login.user.as_str());
    if let Some(network) = &login.network {
        span.record("network", network.as_str());
    }
    tracing::info!(user = %login.user, network = ?login.network, network_id = ?reg.bind, client = ?login.client, "client registered");
    let attach = Attach {
        id,
        writer: writer.clone(),
        nick,
        caps: reg.caps,
        cap_version: reg.cap_version,
        offered: reg.offered,
        network: login.network,
        network_id: reg.bind,
        client_name: login.client,
        remote,
        away: reg.away,
        client_cert: reg.client_cert.map(String::into_boxed_str),
    };
    let events = handle.sender();
    if events
        .send(UserEvent::Attach(Box::new(attach)))
        .await
        .is_err()
    {
        writer.close(Some("ERROR :Account is shutting down".into()));
        return None;
    }
    Some(events)
}

/// Forward the client's input to its user's actor until the connection ends.
async fn pump(
    reader: &mut LineReader,
    writer: &Writer,
    id: u64,
    events: tokio::sync::mpsc::Sender<UserEvent>,
    mut limiter: crate::downstream::flood::Limiter,
) {
    use crate::downstream::flood::{Verdict, is_exempt};
    let cancel = writer.cancel_token();
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => break,
            // The actor stopped (account deleted, shutdown) before it took
            // this client: do not leave an idle client hanging.
            _ = events.closed() => {
                writer.close(Some("ERROR :Account is shutting down".into()));
                break;
            }
            r = reader.next_frame() => r,
        };
        let event = match frame {
            Ok(Some(Frame::TooLong)) => DownstreamEvent::TooLong,
            Ok(Some(Frame::Line { text, lossy })) => match text.parse::<Message>() {
                Ok(msg) if lossy => DownstreamEvent::InvalidUtf8(msg.command),
                Ok(msg) => DownstreamEvent::Line(Box::new(msg)),
                Err(_) if lossy => DownstreamEvent::InvalidUtf8(String::new()),
                Err(_) => DownstreamEvent::Malformed,
            },
            Ok(None) | Err(_) => break,
        };
        let counted = match &event {
            DownstreamEvent::Line(msg) => !is_exempt(&msg.command),
            _ => true,
        };
        if counted {
            match limiter.take() {
                Verdict::Now => {}
                Verdict::After(wait) => {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Verdict::Excess => {
                    tracing::info!("client disconnected for excess flood");
                    writer.close(Some("ERROR :Excess flood".into()));
                    drain(reader).await;
                    break;
                }
            }
        }
        if events
            .send(UserEvent::Downstream { id, event })
            .await
            .is_err()
        {
            writer.close(Some("ERROR :Account is shutting down".into()));
            break;
        }
    }
    let _ = events
        .send(UserEvent::Downstream {
            id,
            event: DownstreamEvent::Closed,
        })
        .await;
    writer.close(None);
}

/// Read and discard what a flooding client still sends, for a short while,
/// so that closing the socket with unread input (which makes the kernel
/// send a reset) does not destroy the `ERROR` line before the client has
/// read it.
async fn drain(reader: &mut LineReader) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Ok(Some(_)) = reader.next_frame().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_in_both_orders() {
        let p = LoginName::parse;
        assert_eq!(p("alice").user, "alice");
        let a = p("alice/libera@phone");
        assert_eq!(
            (a.user.as_str(), a.network.as_deref(), a.client.as_deref()),
            ("alice", Some("libera"), Some("phone"))
        );
        let b = p("alice@phone/libera");
        assert_eq!(
            (b.user.as_str(), b.network.as_deref(), b.client.as_deref()),
            ("alice", Some("libera"), Some("phone"))
        );
        let c = p("alice/libera");
        assert_eq!(
            (c.network.as_deref(), c.client.as_deref()),
            (Some("libera"), None)
        );
        let d = p("alice@laptop");
        assert_eq!(
            (d.network.as_deref(), d.client.as_deref()),
            (None, Some("laptop"))
        );
    }
}

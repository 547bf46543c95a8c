//! `WHO` from a client. On a network, `WHO <channel>` for a channel whose
//! full WHO tether has seen, or `WHO <nick>` for a nick in the user cache,
//! is answered from the cache (352, or 354 with the WHOX fields asked
//! for) when every field the reply needs is known and kept current;
//! anything else goes to the server, which tether remembers so that it
//! can read the replies. On the bouncer connection only the client itself
//! and BouncerServ exist.

use crate::downstream::ClientId;
use crate::proto::who::{WhoQuery, safe_param};
use crate::proto::{Message, numeric};
use crate::user::UserActor;
use crate::user::network::{LinkState, Network};
use crate::user::route::ReplyKind;
use crate::user::users::{Account, UserInfo};

/// What a reply line knows besides the cached user.
struct LineContext<'a> {
    me: &'a str,
    host: &'a str,
    /// The channel and the user's prefix symbols in it, for a channel WHO.
    channel: Option<(&'a str, &'a str)>,
    /// The away flag is kept current (away-notify, or ourselves).
    away_known: bool,
    /// The account is kept current (account-notify).
    account_known: bool,
    multi_prefix: bool,
}

/// The WHO flags: `H`/`G`, `*` for operators, then channel prefixes.
fn flags(ctx: &LineContext, info: &UserInfo) -> Option<String> {
    let away = info.away.filter(|_| ctx.away_known)?;
    let mut flags = String::from(if away { "G" } else { "H" });
    if info.oper == Some(true) {
        flags.push('*');
    }
    if let Some((_, prefixes)) = ctx.channel {
        if ctx.multi_prefix {
            flags.push_str(prefixes);
        } else if let Some(first) = prefixes.chars().next() {
            flags.push(first);
        }
    }
    Some(flags)
}

/// One reply line (352, or 354 for WHOX), or `None` when a field it needs
/// is not known.
fn who_line(ctx: &LineContext, info: &UserInfo, query: &WhoQuery) -> Option<Message> {
    let channel = ctx.channel.map_or("*", |(c, _)| c).to_string();
    let server = info.server.clone().unwrap_or_else(|| "*".to_string());
    let mut params = vec![ctx.me.to_string()];
    let Some(whox) = &query.whox else {
        params.extend([
            channel,
            safe_param(info.user.as_deref()?),
            safe_param(info.host.as_deref()?),
            server,
            info.nick.clone(),
            flags(ctx, info)?,
            format!("0 {}", info.realname.as_deref()?),
        ]);
        return Some(Message::new(numeric::RPL_WHOREPLY, params).with_source(ctx.host));
    };
    for field in whox.ordered() {
        let value = match field {
            't' => whox.token.clone()?,
            'c' => channel.clone(),
            'u' => safe_param(info.user.as_deref()?),
            'i' => "255.255.255.255".to_string(),
            'h' => safe_param(info.host.as_deref()?),
            's' => server.clone(),
            'n' => info.nick.clone(),
            'f' => flags(ctx, info)?,
            'a' if ctx.account_known => match info.account.as_ref()? {
                Account::LoggedOut => "0".to_string(),
                Account::LoggedIn(name) => name.clone(),
            },
            'a' => return None,
            'd' | 'l' | 'o' => "0".to_string(),
            'r' => info.realname.clone()?,
            _ => return None,
        };
        params.push(value);
    }
    Some(Message::new(RPL_WHOSPCRPL, params).with_source(ctx.host))
}

/// 354 RPL_WHOSPCRPL.
const RPL_WHOSPCRPL: &str = "354";

/// The reply lines for `query` from the cache of `net`, or `None` when the
/// server must answer.
fn from_cache(
    net: &Network,
    query: &WhoQuery,
    me: &str,
    host: &str,
    multi_prefix: bool,
) -> Option<Vec<Message>> {
    if net.state != LinkState::Registered || !query.flags.is_empty() {
        return None;
    }
    if let Some(whox) = &query.whox
        && !whox.is_standard()
    {
        return None;
    }
    let away_notify = net.caps_enabled.contains("away-notify");
    let account_notify = net.caps_enabled.contains("account-notify");
    let ctx = |nick: &str| {
        let followed = net.is_user_followed(nick);
        LineContext {
            me,
            host,
            channel: None,
            away_known: net.casemapping.eq(nick, &net.nick) || (away_notify && followed),
            account_known: account_notify && followed,
            multi_prefix,
        }
    };
    if net.is_channel(&query.mask) {
        let ch = net.channels.get(&query.mask)?;
        if !ch.who_fresh {
            return None;
        }
        let mut members: Vec<(&str, &String)> = ch.members.iter().collect();
        members.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::with_capacity(members.len());
        for (nick, prefixes) in members {
            let info = net.users.get(nick)?;
            let mut ctx = ctx(nick);
            ctx.channel = Some((&ch.name, prefixes));
            out.push(who_line(&ctx, info, query)?);
        }
        return Some(out);
    }
    if query.mask.contains(['*', '?', '!', '@']) {
        return None;
    }
    let info = net.users.get(&query.mask)?;
    Some(vec![who_line(&ctx(&query.mask), info, query)?])
}

impl UserActor {
    pub(crate) fn on_client_who(&mut self, id: ClientId, msg: Message) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let me = client.nick.clone();
        let multi_prefix = client.has_cap("multi-prefix");
        let Some(net_id) = client.network else {
            self.who_on_bouncer_connection(id, &msg);
            return;
        };
        let Some(query) = WhoQuery::parse(&msg) else {
            self.forward_queued(id, net_id, ReplyKind::Who, msg);
            return;
        };
        let host = self.shared.config.hostname.clone();
        let cached = self
            .networks
            .get(&net_id)
            .and_then(|net| from_cache(net, &query, &me, &host, multi_prefix));
        match cached {
            Some(lines) => {
                for line in &lines {
                    self.send_to(id, line);
                }
                self.reply_numeric(id, numeric::RPL_ENDOFWHO, &[&query.mask, "End of WHO list"]);
            }
            None => {
                // Queued WHOs go out one at a time in this order, so the
                // cache reads their replies in the same order.
                if let Some(net) = self.networks.get_mut(&net_id)
                    && net.state == crate::user::network::LinkState::Registered
                {
                    net.users.push_who(query);
                }
                self.forward_queued(id, net_id, ReplyKind::Who, msg);
            }
        }
    }

    /// The bouncer connection knows only the client and BouncerServ.
    fn who_on_bouncer_connection(&mut self, id: ClientId, msg: &Message) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let me = client.nick.clone();
        let host = self.shared.config.hostname.clone();
        let query = WhoQuery::parse(msg);
        let mask = query.as_ref().map_or("*", |q| q.mask.as_str()).to_string();
        let info = if mask.eq_ignore_ascii_case(&me) {
            Some(UserInfo {
                nick: me.clone(),
                user: Some(self.record.username.clone()),
                host: Some(host.clone()),
                realname: Some(
                    self.record
                        .realname
                        .clone()
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| me.clone()),
                ),
                account: Some(Account::LoggedIn(self.record.username.clone())),
                away: Some(client.away.is_some()),
                server: Some(host.clone()),
                ..UserInfo::default()
            })
        } else if crate::service::is_service_nick(&mask) {
            Some(UserInfo {
                nick: "BouncerServ".to_string(),
                user: Some("BouncerServ".to_string()),
                host: Some("BouncerServ".to_string()),
                realname: Some("tether bouncer service".to_string()),
                account: Some(Account::LoggedOut),
                away: Some(false),
                server: Some(host.clone()),
                ..UserInfo::default()
            })
        } else {
            None
        };
        if let (Some(info), Some(query)) = (info, &query) {
            let ctx = LineContext {
                me: &me,
                host: &host,
                channel: None,
                away_known: true,
                account_known: true,
                multi_prefix: true,
            };
            if let Some(line) = who_line(&ctx, &info, query) {
                self.send_to(id, &line);
            }
        }
        self.reply_numeric(id, numeric::RPL_ENDOFWHO, &[&mask, "End of WHO list"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(line: &str) -> WhoQuery {
        WhoQuery::parse(&line.parse::<Message>().expect("valid")).expect("query")
    }

    fn bob() -> UserInfo {
        UserInfo {
            nick: "bob".into(),
            user: Some("~b".into()),
            host: Some("::1".into()),
            realname: Some("Bob B".into()),
            account: Some(Account::LoggedIn("bobby".into())),
            away: Some(true),
            server: None,
            oper: Some(true),
            ..UserInfo::default()
        }
    }

    fn ctx<'a>(channel: Option<(&'a str, &'a str)>, known: bool) -> LineContext<'a> {
        LineContext {
            me: "me",
            host: "tether.test",
            channel,
            away_known: known,
            account_known: known,
            multi_prefix: false,
        }
    }

    #[test]
    fn plain_who_line() {
        let line =
            who_line(&ctx(Some(("#c", "@+")), true), &bob(), &query("WHO #c")).expect("known");
        assert_eq!(
            line.to_string(),
            ":tether.test 352 me #c ~b 0::1 * bob G*@ :0 Bob B"
        );
        assert!(
            who_line(&ctx(None, false), &bob(), &query("WHO bob")).is_none(),
            "the away flag is not kept current"
        );
    }

    #[test]
    fn whox_fields_in_order_with_placeholders() {
        let line =
            who_line(&ctx(None, true), &bob(), &query("WHO bob %rnatcfiodl,12")).expect("known");
        assert_eq!(
            line.to_string(),
            ":tether.test 354 me 12 * 255.255.255.255 bob G* 0 0 bobby 0 :Bob B"
        );
        // Only what is asked for must be known.
        let mut info = bob();
        info.realname = None;
        info.user = None;
        assert!(who_line(&ctx(None, false), &info, &query("WHO bob %hn")).is_some());
        assert!(who_line(&ctx(None, false), &info, &query("WHO bob %na")).is_none());
        assert!(who_line(&ctx(None, true), &info, &query("WHO bob %nr")).is_none());
        info.account = Some(Account::LoggedOut);
        let line = who_line(&ctx(None, true), &info, &query("WHO bob %na")).expect("known");
        assert_eq!(line.params, ["me", "bob", "0"]);
        // A token field without a token cannot be answered.
        assert!(who_line(&ctx(None, true), &info, &query("WHO bob %tn")).is_none());
    }
}

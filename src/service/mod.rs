//! BouncerServ: the administration service users and administrators talk to
//! in order to manage their account, networks and the bouncer itself.
//!
//! A command line is split into words ([`words`]), the command is found in
//! [`COMMANDS`] by unique-prefix matching of each word, and its flags are
//! parsed with [`flags`] (durations with [`duration`]). Commands that act
//! on one user's networks run inside that user's actor ([`network`],
//! [`channel`], [`sasl`], [`certfp`], [`notify`], [`notify_webhook`]); global commands (users, help) run in their own task
//! ([`user`]) so that they can never block an actor. The same commands are reachable from IRC clients
//! (`PRIVMSG BouncerServ`) and from the admin socket.

pub mod certfp;
pub mod channel;
pub mod channel_create;
pub mod channel_update;
pub mod device_cert;
pub mod duration;
pub mod flags;
pub mod network;
pub mod network_quote;
pub mod notify;
pub mod notify_webhook;
pub mod sasl;
pub mod server;
pub mod user;
pub mod user_update;
pub mod words;

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::downstream::ClientId;
use crate::proto::Message;
use crate::server::Shared;
use crate::user::{UserActor, UserEvent};

/// The source of BouncerServ's messages.
pub const SERVICE_SOURCE: &str = "BouncerServ!BouncerServ@BouncerServ";
/// BouncerServ's nick.
pub const SERVICE_NICK: &str = "BouncerServ";

/// Output lines on success, or the error text.
pub type ServiceResult = Result<Vec<String>, String>;

/// True for the nick reserved for the service (in any case).
pub fn is_service_nick(nick: &str) -> bool {
    nick.eq_ignore_ascii_case(SERVICE_NICK)
}

/// One BouncerServ command.
#[derive(Debug)]
pub struct CommandSpec {
    pub path: &'static [&'static str],
    pub usage: &'static str,
    pub desc: &'static str,
    /// Only administrators see and run it.
    pub admin: bool,
    /// It does not act on one user's networks, so it runs without a user
    /// context (and from the admin socket directly).
    pub global: bool,
}

/// Every command, in help order.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        path: &["help"],
        usage: "[command]",
        desc: "print help about commands",
        admin: false,
        global: true,
    },
    CommandSpec {
        path: &["network", "create"],
        usage: "-addr <uri> [-name <name>] [-nick <nick>] [-username <username>] [-realname <realname>] [-pass <password>] [-certfp <sha-256>] [-enabled true|false] [-connect-command <command>]...",
        desc: "add a network (uri: ircs://host[:port] or irc+insecure://host[:port])",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["network", "update"],
        usage: "<name> [-addr <uri>] [-name <name>] [-nick <nick>] [-username <username>] [-realname <realname>] [-pass <password>] [-certfp <sha-256>] [-enabled true|false] [-connect-command <command>]...",
        desc: "change a network's settings (it reconnects)",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["network", "delete"],
        usage: "<name>",
        desc: "remove a network and disconnect from it",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["network", "status"],
        usage: "",
        desc: "show your networks and their connection state",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["network", "quote"],
        usage: "[name] <line>",
        desc: "send a raw IRC line to a network's server (the network of your client when no name is given)",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["channel", "status"],
        usage: "[-network <name>]",
        desc: "show saved channels and whether they are joined",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["channel", "create"],
        usage: "<name> [-network <name>] [-key <key>] [-detached true|false] [-relay-detached default|none|highlight|message] [-reattach-on default|none|highlight|message] [-detach-on default|none|highlight|message] [-detach-after <duration>]",
        desc: "save a channel and join it (on the bouncer connection, name it #channel/network or use -network)",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["channel", "update"],
        usage: "<name> [-network <name>] [-detached true|false] [-relay-detached default|none|highlight|message] [-reattach-on default|none|highlight|message] [-detach-on default|none|highlight|message] [-detach-after <duration>]",
        desc: "change a channel's detached state and detach settings",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["channel", "delete"],
        usage: "<name> [-network <name>]",
        desc: "forget a saved channel and part it",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["sasl", "status"],
        usage: "[-network <name>]",
        desc: "show the SASL credentials used to log in to a network",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["sasl", "set-plain"],
        usage: "[-network <name>] <username> <password>",
        desc: "log in to a network with SASL PLAIN",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["sasl", "reset"],
        usage: "[-network <name>]",
        desc: "stop using SASL for a network",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["certfp", "generate"],
        usage: "[-network <name>] [-key-type ecdsa|ed25519] [-bits <n>]",
        desc: "create a client certificate that tether presents to a network (CertFP) and log in with SASL EXTERNAL; ecdsa keys have 256 (default) or 384 bits",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["certfp", "fingerprint"],
        usage: "[-network <name>]",
        desc: "show the SHA-256 and SHA-512 fingerprints of a network's client certificate",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["certfp", "delete"],
        usage: "[-network <name>]",
        desc: "stop presenting a client certificate to a network and forget it",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["device-certificate", "status"],
        usage: "",
        desc: "show the client certificates you can log in with (SASL EXTERNAL)",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["device-certificate", "create"],
        usage: "[-fingerprint <sha-512>] [-label <label>]",
        desc: "log in with a client certificate from now on: the one this connection presented, or the one with the given SHA-512 fingerprint (needs client-cert-auth)",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["device-certificate", "delete"],
        usage: "<fingerprint>",
        desc: "stop accepting a client certificate (any unique prefix of at least 12 hex digits)",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "status"],
        usage: "",
        desc: "show your notification rules",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "set"],
        usage: "[-network <name>] [-channel <channel or nick>] [-highlights true|false] [-direct-messages true|false] [-all-messages true|false] [-muted true|false] [-reset]",
        desc: "change when you are notified: everywhere, on one network, or for one channel or query (-reset forgets that scope's settings first)",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "keyword", "add"],
        usage: "<word>",
        desc: "also notify for messages containing this word (case-insensitive, whole words)",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "keyword", "remove"],
        usage: "<word>",
        desc: "stop notifying for a keyword",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "keyword", "list"],
        usage: "",
        desc: "show your notification keywords",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "ignore", "add"],
        usage: "<nick or nick!user@host mask>",
        desc: "never notify for messages from matching senders (* and ? wildcards)",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "ignore", "remove"],
        usage: "<mask>",
        desc: "stop ignoring a mask",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "ignore", "list"],
        usage: "",
        desc: "show your ignore masks",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "quiet"],
        usage: "<HH:MM-HH:MM> [UTC±HH:MM] | off",
        desc: "set the daily quiet hours (no notifications; UTC unless an offset is given; may cross midnight), or turn them off",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "webhook", "set"],
        usage: "<url> [-format json|ntfy|gotify] [-secret-header 'Name: value']",
        desc: "send your notifications to a webhook too (JSON, ntfy or Gotify); the header is added to every request",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["notify", "webhook", "clear"],
        usage: "",
        desc: "stop sending notifications to your webhook",
        admin: false,
        global: false,
    },
    CommandSpec {
        path: &["user", "create"],
        usage: "-username <username> -password <password> [-disable-password] [-admin true|false] [-nick <nick>] [-realname <realname>] [-enabled true|false] [-max-networks <n>]",
        desc: "create a user",
        admin: true,
        global: true,
    },
    CommandSpec {
        path: &["user", "update"],
        usage: "[username] [-password <password>] [-disable-password] [-admin true|false] [-nick <nick>] [-realname <realname>] [-enabled true|false] [-max-networks <n>]",
        desc: "change your account (-password, -nick, -realname), or as an administrator another user's (-password, -admin, -enabled, -max-networks)",
        admin: false,
        global: true,
    },
    CommandSpec {
        path: &["user", "status"],
        usage: "[username]",
        desc: "show users",
        admin: true,
        global: true,
    },
    CommandSpec {
        path: &["user", "delete"],
        usage: "<username> [confirmation token]",
        desc: "delete a user and everything they own (yourself, or anyone as an administrator)",
        admin: false,
        global: true,
    },
    CommandSpec {
        path: &["user", "run"],
        usage: "<username> <command...>",
        desc: "run a command as another user",
        admin: true,
        global: true,
    },
    CommandSpec {
        path: &["server", "status"],
        usage: "",
        desc: "show users, connections, networks and channels of the whole bouncer",
        admin: true,
        global: true,
    },
    CommandSpec {
        path: &["server", "notice"],
        usage: "<text>",
        desc: "send a notice to every connected client of every user",
        admin: true,
        global: true,
    },
    CommandSpec {
        path: &["server", "debug"],
        usage: "true|false",
        desc: "switch debug logging on or off while running",
        admin: true,
        global: true,
    },
];

/// Who runs a command.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user, or `None` on the admin socket.
    pub username: Option<String>,
    pub admin: bool,
}

/// Find the command named by the leading words; returns it with the
/// remaining words. Each word may be any unique prefix of a command name
/// at its level; commands the caller may not run are not candidates.
pub fn resolve<'a>(
    words: &'a [String],
    caller: &Caller,
) -> Result<(&'static CommandSpec, &'a [String]), String> {
    let visible: Vec<&'static CommandSpec> = COMMANDS
        .iter()
        .filter(|c| caller.admin || !c.admin)
        .collect();
    let mut depth = 0;
    let mut candidates = visible;
    loop {
        let Some(word) = words.get(depth) else {
            let names = level_names(&candidates, depth);
            let prefix = words.join(" ");
            return Err(if prefix.is_empty() {
                "no command given; try \"help\"".to_string()
            } else {
                format!("\"{prefix}\" needs a subcommand: {}", names.join(", "))
            });
        };
        let word = word.to_ascii_lowercase();
        let names = level_names(&candidates, depth);
        let chosen = if names.contains(&word.as_str()) {
            word.clone()
        } else {
            let matching: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| n.starts_with(&word))
                .collect();
            match matching.as_slice() {
                [one] => (*one).to_string(),
                [] => {
                    return Err(format!(
                        "unknown command \"{}\"; try \"help\"",
                        words[..=depth].join(" ")
                    ));
                }
                many => {
                    return Err(format!(
                        "command \"{word}\" is ambiguous: {}",
                        many.join(", ")
                    ));
                }
            }
        };
        candidates.retain(|c| c.path.get(depth) == Some(&chosen.as_str()));
        depth += 1;
        if let Some(spec) = candidates.iter().find(|c| c.path.len() == depth) {
            return Ok((spec, &words[depth..]));
        }
    }
}

fn level_names(candidates: &[&'static CommandSpec], depth: usize) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = candidates
        .iter()
        .filter_map(|c| c.path.get(depth).copied())
        .collect();
    names.dedup();
    names
}

/// Where the result of a command goes.
pub enum Responder {
    Client(ClientId),
    Oneshot(oneshot::Sender<ServiceResult>),
}

/// Run a global command (no user context needed).
pub async fn run_global(
    shared: Arc<Shared>,
    caller: Caller,
    spec: &'static CommandSpec,
    args: Vec<String>,
) -> ServiceResult {
    match spec.path {
        ["help"] => Ok(help(&caller, &args)),
        ["user", "create"] => user::create(&shared, &args).await,
        ["user", "status"] => user::status(&shared, &args).await,
        ["user", "delete"] => user::delete(&shared, &caller, &args).await,
        ["user", "update"] => user_update::update(&shared, &caller, &args).await,
        ["user", "run"] => user::run(&shared, &args).await,
        ["server", "status"] => server::status(&shared).await,
        ["server", "notice"] => server::notice(&shared, &args).await,
        ["server", "debug"] => server::debug(&args),
        _ => Err(format!(
            "\"{}\" acts on a user's networks: run it as a user, or use \"user run <username> {}\"",
            spec.path.join(" "),
            spec.path.join(" ")
        )),
    }
}

/// Run a command line from the admin socket.
pub async fn run_admin_line(shared: Arc<Shared>, line: &str) -> ServiceResult {
    let words = words::split_words(line).map_err(|e| e.to_string())?;
    let caller = Caller {
        username: None,
        admin: true,
    };
    let (spec, args) = resolve(&words, &caller)?;
    run_global(shared, caller, spec, args.to_vec()).await
}

fn help(caller: &Caller, args: &[String]) -> Vec<String> {
    let visible =
        |c: &&CommandSpec| (caller.admin || !c.admin) && (caller.username.is_some() || c.global);
    if args.is_empty() {
        // One entry per family ("network create|update|..."), so that the
        // list stays one line as commands are added.
        let mut families: Vec<(&str, Vec<String>)> = Vec::new();
        for c in COMMANDS.iter().filter(visible) {
            let (family, rest) = c.path.split_first().unwrap_or((&"", &[]));
            let rest = rest.join(" ");
            match families.iter_mut().find(|(f, _)| f == family) {
                Some((_, subs)) => subs.push(rest),
                None => families.push((family, vec![rest])),
            }
        }
        let names: Vec<String> = families
            .iter()
            .map(|(family, subs)| {
                let subs: Vec<&str> = subs
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !s.is_empty())
                    .collect();
                if subs.is_empty() {
                    family.to_string()
                } else {
                    format!("{family} {}", subs.join("|"))
                }
            })
            .collect();
        return vec![
            format!("available commands: {}", names.join(", ")),
            "send \"help <command>\" for details".to_string(),
        ];
    }
    let wanted = args.join(" ").to_ascii_lowercase();
    let matching: Vec<String> = COMMANDS
        .iter()
        .filter(visible)
        .filter(|c| c.path.join(" ").starts_with(&wanted))
        .map(|c| format!("{} {}: {}", c.path.join(" "), c.usage, c.desc).replace("  ", " "))
        .collect();
    if matching.is_empty() {
        vec![format!("no command matches \"{wanted}\"")]
    } else {
        matching
    }
}

impl UserActor {
    /// A `PRIVMSG BouncerServ` from a client.
    pub(crate) async fn on_service_message(&mut self, id: ClientId, text: &str) {
        let words = match words::split_words(text) {
            Ok(w) => w,
            Err(e) => {
                self.send_service_result(id, Err(e.to_string()));
                return;
            }
        };
        let context = self.clients.get(&id).and_then(|c| c.network);
        let admin = self.record.admin;
        self.dispatch_service(words, admin, context, Responder::Client(id))
            .await;
    }

    /// Run a command for this user; `admin` is the caller's privilege.
    pub(crate) async fn dispatch_service(
        &mut self,
        words: Vec<String>,
        admin: bool,
        context: Option<i64>,
        respond: Responder,
    ) {
        let caller = Caller {
            username: Some(self.record.username.clone()),
            admin,
        };
        let (spec, args) = match resolve(&words, &caller) {
            Ok((spec, args)) => (spec, args.to_vec()),
            Err(e) => {
                self.respond(respond, Err(e));
                return;
            }
        };
        if spec.global {
            let shared = self.shared.clone();
            let events = self.tx.clone();
            let label = match &respond {
                Responder::Client(client) => self.defer_label(*client),
                Responder::Oneshot(_) => None,
            };
            tokio::spawn(async move {
                let result = run_global(shared, caller, spec, args).await;
                match respond {
                    Responder::Client(client) => {
                        let _ = events
                            .send(UserEvent::ServiceReply {
                                client,
                                result: Box::new(result),
                                label,
                            })
                            .await;
                    }
                    Responder::Oneshot(tx) => {
                        let _ = tx.send(result);
                    }
                }
            });
            return;
        }
        let result = match spec.path {
            ["network", "create"] => self.service_network_create(&args).await,
            ["network", "update"] => self.service_network_update(&args).await,
            ["network", "delete"] => self.service_network_delete(&args).await,
            ["network", "status"] => Ok(self.service_network_status()),
            ["network", "quote"] => self.service_network_quote(&args, context),
            ["channel", "status"] => self.service_channel_status(&args, context),
            ["channel", "create"] => self.service_channel_create(&args, context),
            ["channel", "update"] => self.service_channel_update(&args, context),
            ["channel", "delete"] => self.service_channel_delete(&args, context),
            ["sasl", "status"] => self.service_sasl_status(&args, context),
            ["sasl", "set-plain"] => self.service_sasl_set_plain(&args, context).await,
            ["sasl", "reset"] => self.service_sasl_reset(&args, context).await,
            ["certfp", "generate"] => self.service_certfp_generate(&args, context).await,
            ["certfp", "fingerprint"] => self.service_certfp_fingerprint(&args, context),
            ["certfp", "delete"] => self.service_certfp_delete(&args, context).await,
            ["device-certificate", "status"] => self.service_device_cert_status().await,
            ["device-certificate", "create"] => {
                let current = match &respond {
                    Responder::Client(id) => self
                        .clients
                        .get(id)
                        .and_then(|c| c.client_cert.as_deref())
                        .map(str::to_string),
                    Responder::Oneshot(_) => None,
                };
                self.service_device_cert_create(&args, current.as_deref())
                    .await
            }
            ["device-certificate", "delete"] => self.service_device_cert_delete(&args).await,
            ["notify", "status"] => self.service_notify_status(),
            ["notify", "set"] => self.service_notify_set(&args, context).await,
            ["notify", "keyword", "add"] => self.service_notify_keyword_add(&args).await,
            ["notify", "keyword", "remove"] => self.service_notify_keyword_remove(&args).await,
            ["notify", "keyword", "list"] => self.service_notify_keyword_list(&args),
            ["notify", "ignore", "add"] => self.service_notify_ignore_add(&args).await,
            ["notify", "ignore", "remove"] => self.service_notify_ignore_remove(&args).await,
            ["notify", "ignore", "list"] => self.service_notify_ignore_list(&args),
            ["notify", "quiet"] => self.service_notify_quiet(&args).await,
            ["notify", "webhook", "set"] => self.service_notify_webhook_set(&args).await,
            ["notify", "webhook", "clear"] => self.service_notify_webhook_clear(&args).await,
            _ => Err(format!(
                "command \"{}\" is not available here",
                spec.path.join(" ")
            )),
        };
        self.respond(respond, result);
    }

    fn respond(&mut self, respond: Responder, result: ServiceResult) {
        match respond {
            Responder::Client(id) => self.send_service_result(id, result),
            Responder::Oneshot(tx) => {
                let _ = tx.send(result);
            }
        }
    }

    /// Show a command's output to a client, as PRIVMSGs from BouncerServ.
    pub(crate) fn send_service_result(&mut self, id: ClientId, result: ServiceResult) {
        let Some(nick) = self.clients.get(&id).map(|c| c.nick.clone()) else {
            return;
        };
        let lines = match result {
            Ok(lines) if lines.is_empty() => vec!["done".to_string()],
            Ok(lines) => lines,
            Err(e) => vec![format!("error: {e}")],
        };
        // What fits of the text in a 512-byte line after the prefix.
        let budget = 510 - format!(":{SERVICE_SOURCE} PRIVMSG {nick} :").len();
        for line in lines.iter().flat_map(|l| wrap_line(l, budget)) {
            let msg = Message::new("PRIVMSG", [nick.clone(), line]).with_source(SERVICE_SOURCE);
            self.send_to(id, &msg);
        }
    }
}

/// Split `line` into pieces of at most `max` bytes (at least one
/// character each), preferring to break after a space.
pub(crate) fn wrap_line(line: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = line;
    while rest.len() > max {
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // max is smaller than one character: take the character.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        } else if let Some(space) = rest[..end].rfind(' ').filter(|&i| i > 0) {
            end = space + 1;
        }
        pieces.push(rest[..end].trim_end().to_string());
        rest = &rest[end..];
    }
    pieces.push(rest.to_string());
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        words::split_words(s).expect("valid")
    }

    const ADMIN: Caller = Caller {
        username: None,
        admin: true,
    };

    #[test]
    fn long_lines_are_wrapped_at_spaces() {
        assert_eq!(wrap_line("short", 10), ["short"]);
        assert_eq!(wrap_line("aaaa bbbb cccc", 10), ["aaaa bbbb", "cccc"]);
        assert_eq!(wrap_line("abcdefghij12", 5), ["abcde", "fghij", "12"]);
        // Never inside a character.
        assert_eq!(wrap_line("ééé", 3), ["é", "é", "é"]);
        for piece in wrap_line(&"word ".repeat(300), 100) {
            assert!(!piece.is_empty() && piece.len() <= 100, "{piece:?}");
        }
    }

    #[test]
    fn help_groups_commands_by_family() {
        let root = Caller {
            username: Some("root".into()),
            admin: true,
        };
        let line = &help(&root, &[])[0];
        assert!(line.contains("notify status|set|keyword add|"), "{line}");
        assert!(line.contains("server status|notice|debug"), "{line}");
        assert!(line.len() < 450, "{} bytes: {line}", line.len());
    }

    #[test]
    fn resolves_unique_prefixes() {
        let w = words("net cr -addr x");
        let (spec, args) = resolve(&w, &ADMIN).expect("resolves");
        assert_eq!(spec.path, ["network", "create"]);
        assert_eq!(args, ["-addr", "x"]);
        let w = words("u s");
        assert_eq!(
            resolve(&w, &ADMIN).expect("unique").0.path,
            ["user", "status"]
        );
    }

    #[test]
    fn ambiguous_and_unknown_commands_are_errors() {
        let w = words("network");
        assert!(
            resolve(&w, &ADMIN)
                .unwrap_err()
                .contains("needs a subcommand")
        );
        let w = words("frobnicate");
        assert!(resolve(&w, &ADMIN).unwrap_err().contains("unknown command"));
    }

    #[test]
    fn non_admins_do_not_see_admin_commands() {
        let user = Caller {
            username: Some("bob".into()),
            admin: false,
        };
        let w = words("user create -username x -password y");
        assert!(resolve(&w, &user).unwrap_err().contains("unknown command"));
        let w = words("user delete bob");
        assert!(resolve(&w, &user).is_ok());
        let lines = help(&user, &[]);
        assert!(!lines[0].contains("user create"));
        assert!(help(&ADMIN, &[])[0].contains("user create"));
    }
}

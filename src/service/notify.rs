//! `notify status|set|keyword|ignore|quiet`: a user's notification rules
//! ([`crate::notify::rules`]). The commands run in the user's actor, write
//! the database and then reload the actor's copy of the rules from it, so
//! the copy that decides is always what is stored. A user only ever sees
//! and changes their own rules.

use crate::db::DbError;
use crate::notify::ignore;
use crate::notify::quiet::QuietHours;
use crate::notify::rules::{
    self, MAX_IGNORES, MAX_KEYWORDS, NotifyRules, Overrides, Scope, fold_target,
};
use crate::service::ServiceResult;
use crate::service::flags::{FlagKind, FlagSpec, parse_flags};
use crate::user::UserActor;

const SET_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "network",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "channel",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "highlights",
        kind: FlagKind::Bool,
    },
    FlagSpec {
        name: "direct-messages",
        kind: FlagKind::Bool,
    },
    FlagSpec {
        name: "all-messages",
        kind: FlagKind::Bool,
    },
    FlagSpec {
        name: "muted",
        kind: FlagKind::Bool,
    },
    FlagSpec {
        name: "reset",
        kind: FlagKind::Bool,
    },
];

fn db_error(e: DbError) -> String {
    e.to_string()
}

/// `highlights on, direct messages off` for the values `o` sets.
fn describe(o: &Overrides) -> String {
    let on = |b: bool| if b { "on" } else { "off" };
    [
        ("highlights", o.highlights),
        ("direct messages", o.direct_messages),
        ("all messages", o.all_messages),
        ("muted", o.muted),
    ]
    .iter()
    .filter_map(|(name, v)| v.map(|v| format!("{name} {}", on(v))))
    .collect::<Vec<_>>()
    .join(", ")
}

/// The single word argument of `keyword`/`ignore` subcommands.
fn one_arg<'a>(args: &'a [String], usage: &str) -> Result<&'a str, String> {
    match args {
        [one] => Ok(one),
        _ => Err(format!("usage: {usage}")),
    }
}

impl UserActor {
    /// Re-read the rules after a change.
    async fn reload_notify_rules(&mut self) -> Result<(), String> {
        self.notify_rules = self
            .shared
            .db
            .load_notify_rules(self.record.id)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Load the rules when the actor starts; on failure the defaults stay.
    pub(crate) async fn load_notify_rules(&mut self) {
        if let Err(e) = self.reload_notify_rules().await {
            tracing::warn!(error = %e, "could not load notification rules; using the defaults");
        }
    }

    fn network_label(&self, id: i64) -> String {
        self.networks
            .get(&id)
            .map_or_else(|| format!("#{id}"), |n| n.name().to_string())
    }

    pub(crate) fn service_notify_status(&self) -> ServiceResult {
        let r: &NotifyRules = &self.notify_rules;
        let user = rules::Effective::default().apply(&r.at(&Scope::User));
        let all = Overrides {
            highlights: Some(user.highlights),
            direct_messages: Some(user.direct_messages),
            all_messages: Some(user.all_messages),
            muted: Some(user.muted),
        };
        let mut lines = vec![format!("everywhere: {}", describe(&all))];
        let mut scoped: Vec<(String, String)> = r
            .scoped
            .iter()
            .filter_map(|(scope, o)| match scope {
                Scope::User => None,
                Scope::Network(n) => {
                    Some((format!("network {}", self.network_label(*n)), describe(o)))
                }
                Scope::Target { network, target } => Some((
                    format!("{target} on {}", self.network_label(*network)),
                    describe(o),
                )),
            })
            .collect();
        scoped.sort();
        lines.extend(scoped.into_iter().map(|(s, d)| format!("{s}: {d}")));
        lines.push(if r.keywords.is_empty() {
            "keywords: none".to_string()
        } else {
            format!("keywords: {}", r.keywords.join(", "))
        });
        lines.push(if r.ignores.is_empty() {
            "ignored: none".to_string()
        } else {
            format!("ignored: {}", r.ignores.join(", "))
        });
        lines.push(match &r.quiet {
            Some(q) => format!("quiet hours: {q}"),
            None => "quiet hours: off".to_string(),
        });
        lines.push(self.notify_webhook_status());
        Ok(lines)
    }

    pub(crate) async fn service_notify_set(
        &mut self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, SET_FLAGS).map_err(|e| e.to_string())?;
        if let Some(extra) = flags.positional.first() {
            return Err(format!("unexpected argument {extra:?}"));
        }
        let network = match flags.value("network") {
            Some(name) => Some(
                self.find_network(name)
                    .ok_or_else(|| format!("no network named \"{name}\""))?,
            ),
            None => None,
        };
        let scope = match (flags.value("channel"), network) {
            (None, None) => Scope::User,
            (None, Some(n)) => Scope::Network(n),
            (Some(target), net) => {
                let network = net
                    .or(context)
                    .ok_or("-channel needs -network (or a client connected to that network)")?;
                if target.is_empty() || target.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(format!("invalid channel or nick {target:?}"));
                }
                Scope::Target {
                    network,
                    target: fold_target(target),
                }
            }
        };
        let changes = Overrides {
            highlights: flags.bool("highlights"),
            direct_messages: flags.bool("direct-messages"),
            all_messages: flags.bool("all-messages"),
            muted: flags.bool("muted"),
        };
        let reset = flags.bool("reset").unwrap_or(false);
        if changes.is_empty() && !reset {
            return Err(
                "nothing to set: give -highlights, -direct-messages, -all-messages, -muted or -reset"
                    .to_string(),
            );
        }
        let now = self
            .shared
            .db
            .set_notify_overrides(self.record.id, scope.clone(), changes, reset)
            .await
            .map_err(db_error)?;
        self.reload_notify_rules().await?;
        let name = match &scope {
            Scope::User => "everywhere".to_string(),
            Scope::Network(n) => format!("network {}", self.network_label(*n)),
            Scope::Target { network, target } => {
                format!("{target} on {}", self.network_label(*network))
            }
        };
        Ok(vec![if now.is_empty() {
            format!("{name}: defaults")
        } else {
            format!("{name}: {}", describe(&now))
        }])
    }

    pub(crate) async fn service_notify_keyword_add(&mut self, args: &[String]) -> ServiceResult {
        let word = one_arg(args, "notify keyword add <word>")?;
        rules::validate_keyword(word)?;
        if self.notify_rules.keywords.len() >= MAX_KEYWORDS {
            return Err(format!(
                "you have {MAX_KEYWORDS} keywords, the most allowed"
            ));
        }
        self.shared
            .db
            .add_notify_keyword(self.record.id, word.to_string())
            .await
            .map_err(db_error)?;
        self.reload_notify_rules().await?;
        Ok(vec![format!("added keyword \"{word}\"")])
    }

    pub(crate) async fn service_notify_keyword_remove(&mut self, args: &[String]) -> ServiceResult {
        let word = one_arg(args, "notify keyword remove <word>")?;
        let removed = self
            .shared
            .db
            .remove_notify_keyword(self.record.id, word.to_string())
            .await
            .map_err(db_error)?;
        if !removed {
            return Err(format!("no keyword \"{word}\""));
        }
        self.reload_notify_rules().await?;
        Ok(vec![format!("removed keyword \"{word}\"")])
    }

    pub(crate) fn service_notify_keyword_list(&self, args: &[String]) -> ServiceResult {
        if let Some(extra) = args.first() {
            return Err(format!("unexpected argument {extra:?}"));
        }
        let words = &self.notify_rules.keywords;
        Ok(if words.is_empty() {
            vec!["no keywords".to_string()]
        } else {
            words.iter().map(|w| format!("keyword: {w}")).collect()
        })
    }

    pub(crate) async fn service_notify_ignore_add(&mut self, args: &[String]) -> ServiceResult {
        let mask = one_arg(args, "notify ignore add <nick or nick!user@host mask>")?;
        ignore::validate(mask).map_err(|e| e.to_string())?;
        if self.notify_rules.ignores.len() >= MAX_IGNORES {
            return Err(format!(
                "you have {MAX_IGNORES} ignore masks, the most allowed"
            ));
        }
        self.shared
            .db
            .add_notify_ignore(self.record.id, mask.to_string())
            .await
            .map_err(db_error)?;
        self.reload_notify_rules().await?;
        Ok(vec![format!("ignoring \"{mask}\"")])
    }

    pub(crate) async fn service_notify_ignore_remove(&mut self, args: &[String]) -> ServiceResult {
        let mask = one_arg(args, "notify ignore remove <mask>")?;
        let removed = self
            .shared
            .db
            .remove_notify_ignore(self.record.id, mask.to_string())
            .await
            .map_err(db_error)?;
        if !removed {
            return Err(format!("\"{mask}\" is not ignored"));
        }
        self.reload_notify_rules().await?;
        Ok(vec![format!("no longer ignoring \"{mask}\"")])
    }

    pub(crate) fn service_notify_ignore_list(&self, args: &[String]) -> ServiceResult {
        if let Some(extra) = args.first() {
            return Err(format!("unexpected argument {extra:?}"));
        }
        let masks = &self.notify_rules.ignores;
        Ok(if masks.is_empty() {
            vec!["nobody is ignored".to_string()]
        } else {
            masks.iter().map(|m| format!("ignored: {m}")).collect()
        })
    }

    pub(crate) async fn service_notify_quiet(&mut self, args: &[String]) -> ServiceResult {
        let quiet = match args {
            [off] if off.eq_ignore_ascii_case("off") => None,
            [window] => Some(QuietHours::parse(window, None).map_err(|e| e.to_string())?),
            [window, offset] => {
                Some(QuietHours::parse(window, Some(offset)).map_err(|e| e.to_string())?)
            }
            _ => return Err("usage: notify quiet <HH:MM-HH:MM> [UTC±HH:MM] | off".to_string()),
        };
        self.shared
            .db
            .set_notify_quiet(self.record.id, quiet)
            .await
            .map_err(db_error)?;
        self.reload_notify_rules().await?;
        Ok(vec![match quiet {
            Some(q) => format!("quiet hours: {q}"),
            None => "quiet hours: off".to_string(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_only_what_is_set() {
        assert_eq!(describe(&Overrides::default()), "");
        let o = Overrides {
            highlights: Some(false),
            muted: Some(true),
            ..Default::default()
        };
        assert_eq!(describe(&o), "highlights off, muted on");
    }
}

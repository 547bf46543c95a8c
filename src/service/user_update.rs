//! `user update [username] [flags]`: change an account. The rules follow
//! what soju users know:
//!
//! - on yourself, `-password`, `-disable-password`, `-nick` and
//!   `-realname`; `-admin` and `-enabled` are refused (nobody locks
//!   themselves out or promotes themselves), and `-max-networks` needs an
//!   administrator;
//! - on another user (administrators only), everything but `-nick` and
//!   `-realname`, which belong to the user (`user run <user> user update
//!   -nick …` does it on their behalf).
//!
//! The database is updated first, then the user's actor applies the change
//! ([`crate::user::record_change`]).

use std::sync::Arc;

use crate::server::Shared;
use crate::service::flags::{FlagKind, FlagSpec, ParsedFlags, parse_flags};
use crate::service::{Caller, ServiceResult};
use crate::user::UserEvent;
use crate::user::record_change::RecordChange;

/// The account settings, also taken by `user create`.
pub(super) const ACCOUNT_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "password",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "disable-password",
        kind: FlagKind::Bool,
    },
    FlagSpec {
        name: "admin",
        kind: FlagKind::Bool,
    },
    FlagSpec {
        name: "nick",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "realname",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "enabled",
        kind: FlagKind::Bool,
    },
    FlagSpec {
        name: "max-networks",
        kind: FlagKind::Value,
    },
];

/// `-max-networks`: a negative number means "the server's limit".
pub(super) fn parse_max_networks(v: &str) -> Result<Option<u32>, String> {
    match v.parse::<i64>() {
        Ok(n) if n < 0 => Ok(None),
        Ok(n) => Ok(Some(
            u32::try_from(n).map_err(|_| "-max-networks is too large")?,
        )),
        Err(_) => Err(format!("invalid -max-networks {v:?}")),
    }
}

/// Refuse the flags the caller may not use on this target.
fn check_permissions(flags: &ParsedFlags, caller: &Caller, is_self: bool) -> Result<(), String> {
    if is_self {
        for flag in ["admin", "enabled"] {
            if flags.has(flag) {
                return Err(format!("you cannot change -{flag} of your own account"));
            }
        }
        if flags.has("max-networks") && !caller.admin {
            return Err("only administrators may change -max-networks".to_string());
        }
    } else {
        if !caller.admin {
            return Err("only administrators may update other users".to_string());
        }
        for flag in ["nick", "realname"] {
            if flags.has(flag) {
                return Err(format!(
                    "-{flag} of another user is theirs to change (or use \"user run <username> user update -{flag} …\")"
                ));
            }
        }
    }
    if flags.has("password") && flags.bool("disable-password") == Some(true) {
        return Err("-password and -disable-password cannot be used together".to_string());
    }
    Ok(())
}

pub async fn update(shared: &Arc<Shared>, caller: &Caller, args: &[String]) -> ServiceResult {
    let flags = parse_flags(args, ACCOUNT_FLAGS).map_err(|e| e.to_string())?;
    let username = match (flags.positional.as_slice(), &caller.username) {
        ([name], _) => name.clone(),
        ([], Some(me)) => me.clone(),
        ([], None) => return Err("usage: user update <username> [flags]".to_string()),
        ([_, extra, ..], _) => return Err(format!("unexpected argument {extra:?}")),
    };
    let is_self = caller.username.as_deref() == Some(username.as_str());
    check_permissions(&flags, caller, is_self)?;
    let mut record = shared
        .db
        .get_user(&username)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named \"{username}\""))?;
    let mut changed = Vec::new();
    let mut password_changed = false;
    if let Some(password) = flags.value("password") {
        if password.is_empty() {
            return Err("the password must not be empty".to_string());
        }
        let hash = crate::auth::hash_password_async(password.to_string())
            .await
            .map_err(|e| e.to_string())?;
        record.password_hash = Some(hash);
        password_changed = true;
        changed.push("password");
    }
    if flags.bool("disable-password") == Some(true) {
        record.password_hash = None;
        password_changed = true;
        changed.push("password disabled");
    }
    if let Some(admin) = flags.bool("admin") {
        record.admin = admin;
        changed.push("admin");
    }
    if let Some(enabled) = flags.bool("enabled") {
        record.enabled = enabled;
        changed.push("enabled");
    }
    if let Some(nick) = flags.value("nick") {
        if !nick.is_empty() {
            crate::user::manage::check_nick(nick)?;
        }
        record.nick = Some(nick.to_string()).filter(|n| !n.is_empty());
        changed.push("nick");
    }
    if let Some(realname) = flags.value("realname") {
        record.realname = Some(realname.to_string()).filter(|r| !r.is_empty());
        changed.push("realname");
    }
    if let Some(v) = flags.value("max-networks") {
        record.max_networks = parse_max_networks(v)?;
        changed.push("max-networks");
    }
    if changed.is_empty() {
        return Err("nothing to change: give at least one flag".to_string());
    }
    shared
        .db
        .update_user(record.clone())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(handle) = shared.user(&username) {
        let close_clients = (password_changed && !is_self)
            .then(|| "Your password was changed by an administrator".to_string());
        let change = RecordChange {
            record,
            close_clients,
        };
        // Stored already: an actor that is stopping loads it next time.
        let _ = handle
            .send(UserEvent::RecordChanged(Box::new(change)))
            .await;
    }
    Ok(vec![format!(
        "updated user \"{username}\": {}",
        changed.join(", ")
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(words: &[&str]) -> ParsedFlags {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        parse_flags(&words, ACCOUNT_FLAGS).expect("parses")
    }

    fn caller(admin: bool) -> Caller {
        Caller {
            username: Some("me".into()),
            admin,
        }
    }

    #[test]
    fn nobody_promotes_or_disables_themselves() {
        for admin in [false, true] {
            assert!(check_permissions(&flags(&["-admin"]), &caller(admin), true).is_err());
            assert!(
                check_permissions(&flags(&["-enabled", "false"]), &caller(admin), true).is_err()
            );
            assert!(check_permissions(&flags(&["-nick", "x"]), &caller(admin), true).is_ok());
        }
    }

    #[test]
    fn other_users_need_an_administrator_and_keep_their_nick() {
        assert!(check_permissions(&flags(&["-password", "x"]), &caller(false), false).is_err());
        assert!(check_permissions(&flags(&["-password", "x"]), &caller(true), false).is_ok());
        assert!(check_permissions(&flags(&["-nick", "x"]), &caller(true), false).is_err());
        assert!(check_permissions(&flags(&["-max-networks", "3"]), &caller(false), true).is_err());
        assert!(check_permissions(&flags(&["-max-networks", "3"]), &caller(true), true).is_ok());
    }

    #[test]
    fn password_and_disable_password_exclude_each_other() {
        let f = flags(&["-password", "x", "-disable-password"]);
        assert!(check_permissions(&f, &caller(true), true).is_err());
    }
}

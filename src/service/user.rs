//! `user create|status|delete|run`: the bouncer's users. These are global
//! commands: they run in their own task with the shared server state.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::db::UserRecord;
use crate::server::Shared;
use crate::service::flags::{FlagKind, FlagSpec, parse_flags};
use crate::service::{Caller, ServiceResult};
use crate::user::UserEvent;

/// `user create` takes the account flags of `user update` and the name.
const USERNAME_FLAG: FlagSpec = FlagSpec {
    name: "username",
    kind: FlagKind::Value,
};

/// User names become part of login names, so the separators are excluded.
pub fn check_username(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid username {name:?}: use letters, digits, '_', '-' and '.'"
        ))
    }
}

pub async fn create(shared: &Arc<Shared>, args: &[String]) -> ServiceResult {
    let specs: Vec<FlagSpec> = std::iter::once(USERNAME_FLAG)
        .chain(super::user_update::ACCOUNT_FLAGS.iter().copied())
        .collect();
    let flags = parse_flags(args, &specs).map_err(|e| e.to_string())?;
    if let Some(extra) = flags.positional.first() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    let username = flags.value("username").ok_or("-username is required")?;
    check_username(username)?;
    let password_hash = match (flags.value("password"), flags.bool("disable-password")) {
        (Some(_), Some(true)) => {
            return Err("-password and -disable-password cannot be used together".to_string());
        }
        (None, Some(true)) => None,
        (None, _) => return Err("-password (or -disable-password) is required".to_string()),
        (Some(""), _) => return Err("the password must not be empty".to_string()),
        (Some(password), _) => Some(
            crate::auth::hash_password_async(password.to_string())
                .await
                .map_err(|e| e.to_string())?,
        ),
    };
    let max_networks = match flags.value("max-networks") {
        None => None,
        Some(v) => super::user_update::parse_max_networks(v)?,
    };
    let record = UserRecord {
        username: username.to_string(),
        password_hash,
        admin: flags.bool("admin").unwrap_or(false),
        enabled: flags.bool("enabled").unwrap_or(true),
        nick: flags
            .value("nick")
            .map(str::to_string)
            .filter(|n| !n.is_empty()),
        realname: flags
            .value("realname")
            .map(str::to_string)
            .filter(|n| !n.is_empty()),
        max_networks,
        ..UserRecord::default()
    };
    let record = shared
        .db
        .create_user(record)
        .await
        .map_err(|e| e.to_string())?;
    shared.start_user(record, Vec::new());
    Ok(vec![format!("created user \"{username}\"")])
}

pub async fn status(shared: &Arc<Shared>, args: &[String]) -> ServiceResult {
    let users = shared.db.list_users().await.map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for user in users {
        if let Some(only) = args.first()
            && *only != user.username
        {
            continue;
        }
        let networks = shared
            .db
            .list_networks(user.id)
            .await
            .map_err(|e| e.to_string())?
            .len();
        let mut attrs = Vec::new();
        if user.admin {
            attrs.push("admin");
        }
        if !user.enabled {
            attrs.push("disabled");
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" ({})", attrs.join(", "))
        };
        lines.push(format!("{}{attrs}: {networks} networks", user.username));
    }
    if lines.is_empty() {
        return match args.first() {
            Some(name) => Err(format!("no user named \"{name}\"")),
            None => Ok(vec!["no users".to_string()]),
        };
    }
    Ok(lines)
}

/// A short token derived from the name, so that deleting a user takes a
/// deliberate second command.
fn confirmation_token(username: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in format!("tether-delete:{username}").bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{:06x}", hash & 0x00ff_ffff)
}

pub async fn delete(shared: &Arc<Shared>, caller: &Caller, args: &[String]) -> ServiceResult {
    let (username, token) = match args {
        [u] => (u, None),
        [u, t] => (u, Some(t)),
        _ => return Err("usage: user delete <username> [confirmation token]".to_string()),
    };
    let is_self = caller.username.as_deref() == Some(username.as_str());
    if !caller.admin && !is_self {
        return Err("only administrators may delete other users".to_string());
    }
    let record = shared
        .db
        .get_user(username)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named \"{username}\""))?;
    let expected = confirmation_token(username);
    if token != Some(&expected) {
        return Ok(vec![format!(
            "To confirm, send \"user delete {username} {expected}\""
        )]);
    }
    shared
        .stop_user(username, "This account has been deleted")
        .await;
    shared
        .db
        .delete_user(record.id)
        .await
        .map_err(|e| e.to_string())?;
    shared.notify_activity.remove(record.id);
    Ok(vec![format!("deleted user \"{username}\"")])
}

pub async fn run(shared: &Arc<Shared>, args: &[String]) -> ServiceResult {
    let [username, words @ ..] = args else {
        return Err("usage: user run <username> <command...>".to_string());
    };
    if words.is_empty() {
        return Err("usage: user run <username> <command...>".to_string());
    }
    let handle = shared
        .user(username)
        .ok_or_else(|| format!("no user named \"{username}\""))?;
    let (reply, wait) = oneshot::channel();
    if !handle
        .send(UserEvent::Service {
            words: words.to_vec(),
            reply,
        })
        .await
    {
        return Err(format!("user \"{username}\" is shutting down"));
    }
    wait.await
        .map_err(|_| format!("user \"{username}\" stopped before answering"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_exclude_separators() {
        assert!(check_username("alice_1.x-y").is_ok());
        assert!(check_username("a/b").is_err());
        assert!(check_username("a@b").is_err());
        assert!(check_username("").is_err());
    }

    #[test]
    fn confirmation_token_is_stable_per_name() {
        assert_eq!(confirmation_token("bob"), confirmation_token("bob"));
        assert_ne!(confirmation_token("bob"), confirmation_token("alice"));
        assert_eq!(confirmation_token("bob").len(), 6);
    }
}

//! Writing a [`Source`] into tether's database through the [`Db`] API.
//!
//! Matching: users by name, networks by (user, name), channels by (network,
//! name under the default casemapping), read markers by (network, target).
//!
//! - A new user is created with the source's password ([`Password`]).
//!   An existing user keeps their password; their admin flag follows the
//!   source, and so do the enabled state, nick, realname and network limit
//!   when the source has them.
//! - A new network is created as the source describes it. An existing one
//!   takes every setting the source has (address, enabled state, and each
//!   optional setting that is present); settings the source lacks keep
//!   tether's value, so a client certificate made in tether survives a
//!   second import.
//! - Channels are upserted the same way; read markers only move forward.
//!
//! Anything tether would refuse (a username, network name, nick, address or
//! channel name it does not accept) is skipped or dropped with a note.

use crate::auth;
use crate::db::{ChannelRecord, Db, NetworkRecord, UserRecord};
use crate::proto::casemap::CaseMapping;
use crate::service::user::check_username;
use crate::upstream::UpstreamAddr;
use crate::user::manage::{check_network_name, check_nick};

use super::report::{Counts, Report};
use super::{ImportError, Password, Source, SourceChannel, SourceNetwork, SourceUser};

/// Whether a record already existed and, if so, whether it changed.
enum Outcome {
    Created,
    Updated,
    Unchanged,
}

impl Outcome {
    fn count(self, counts: &mut Counts) {
        match self {
            Outcome::Created => counts.created += 1,
            Outcome::Updated => counts.updated += 1,
            Outcome::Unchanged => counts.unchanged += 1,
        }
    }
}

/// Writes `source` into `db`. `progress` is called after each user with
/// the number of users done and the total. Stops at the first database
/// error (what was written until then stays; running the import again
/// completes it).
pub async fn apply(
    db: &Db,
    source: Source,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report, ImportError> {
    let mut report = Report {
        kind: source.kind,
        ..Report::default()
    };
    for note in source.notes {
        report.note(None, None, note);
    }
    let total = source.users.len();
    for (done, user) in source.users.into_iter().enumerate() {
        apply_user(db, user, &mut report).await?;
        progress(done + 1, total);
    }
    Ok(report)
}

async fn apply_user(db: &Db, mut user: SourceUser, report: &mut Report) -> Result<(), ImportError> {
    let name = user.username.clone();
    if let Err(why) = check_username(&name) {
        report.users.skipped += 1;
        report.networks.skipped += user.networks.len();
        report.channels.skipped += user
            .networks
            .iter()
            .map(|n| n.channels.len())
            .sum::<usize>();
        report.note(Some(&name), None, format!("not imported: {why}"));
        return Ok(());
    }
    if let Some(nick) = user.nick.as_deref()
        && let Err(why) = check_nick(nick)
    {
        user.notes.push(format!("nick dropped: {why}"));
        user.nick = None;
    }
    let user_id = match db.get_user(&name).await? {
        None => {
            let password_hash = match &user.password {
                Password::Hash(hash) => Some(hash.clone()),
                Password::Disabled => None,
                Password::Random => {
                    let password = auth::random_password();
                    let hash = auth::hash_password_async(password.clone()).await?;
                    report.passwords.push((name.clone(), password));
                    Some(hash)
                }
            };
            let created = db
                .create_user(UserRecord {
                    username: name.clone(),
                    password_hash,
                    admin: user.admin,
                    enabled: user.enabled.unwrap_or(true),
                    nick: user.nick.clone(),
                    realname: user.realname.clone(),
                    max_networks: user.max_networks,
                    ..UserRecord::default()
                })
                .await?;
            report.users.created += 1;
            created.id
        }
        Some(existing) => {
            let mut merged = UserRecord {
                admin: user.admin,
                enabled: user.enabled.unwrap_or(existing.enabled),
                ..existing.clone()
            };
            set_if_some(&mut merged.nick, &user.nick);
            set_if_some(&mut merged.realname, &user.realname);
            if user.max_networks.is_some() {
                merged.max_networks = user.max_networks;
            }
            if let Password::Hash(hash) = &user.password
                && existing.password_hash.as_ref() != Some(hash)
            {
                user.notes
                    .push("already in tether: kept tether's password, not the imported one".into());
            }
            if merged == existing {
                report.users.unchanged += 1;
            } else {
                db.update_user(merged).await?;
                report.users.updated += 1;
            }
            existing.id
        }
    };
    for note in std::mem::take(&mut user.notes) {
        report.note(Some(&name), None, note);
    }
    let mut existing = db.list_networks(user_id).await?;
    for net in user.networks {
        apply_network(db, &name, user_id, &mut existing, net, report).await?;
    }
    apply_device_certs(db, &name, user_id, &user.device_certs, report).await
}

/// Register the user's device certificates that tether does not know yet.
async fn apply_device_certs(
    db: &Db,
    name: &str,
    user_id: i64,
    certs: &[(String, String)],
    report: &mut Report,
) -> Result<(), ImportError> {
    if certs.is_empty() {
        return Ok(());
    }
    let known = db.list_device_certs(user_id).await?;
    for (fingerprint, label) in certs {
        if known.iter().any(|c| &c.fingerprint == fingerprint) {
            report.device_certs.unchanged += 1;
            continue;
        }
        match db
            .add_device_cert(user_id, fingerprint.clone(), label.clone())
            .await
        {
            Ok(()) => report.device_certs.created += 1,
            Err(crate::db::DbError::Conflict(_)) => {
                report.device_certs.skipped += 1;
                report.note(
                    Some(name),
                    None,
                    format!("device certificate {label:?} not carried: another tether user has it"),
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn set_if_some<T: Clone>(field: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        field.clone_from(value);
    }
}

/// Drops network settings tether would refuse, with a note each; `Err`
/// when the network cannot be imported at all.
fn check_network(net: &mut SourceNetwork) -> Result<(), String> {
    check_network_name(&net.record.name)?;
    if net.record.addr.is_empty() {
        return Err("no server address".to_string());
    }
    UpstreamAddr::parse(&net.record.addr)?;
    if let Some(nick) = net.record.nick.as_deref()
        && let Err(why) = check_nick(nick)
    {
        net.notes.push(format!("nick dropped: {why}"));
        net.record.nick = None;
    }
    if net
        .record
        .connect_commands
        .iter()
        .any(|c| c.contains(['\r', '\n']))
    {
        net.notes
            .push("connect commands containing line breaks dropped".into());
        net.record
            .connect_commands
            .retain(|c| !c.contains(['\r', '\n']));
    }
    Ok(())
}

/// The network `existing` updated with every setting `source` has.
fn merge_network(existing: &NetworkRecord, source: &NetworkRecord) -> NetworkRecord {
    let mut merged = NetworkRecord {
        addr: source.addr.clone(),
        enabled: source.enabled,
        ..existing.clone()
    };
    set_if_some(&mut merged.nick, &source.nick);
    set_if_some(&mut merged.username, &source.username);
    set_if_some(&mut merged.realname, &source.realname);
    set_if_some(&mut merged.pass, &source.pass);
    if source.sasl_mechanism.is_some() {
        merged.sasl_mechanism.clone_from(&source.sasl_mechanism);
        merged
            .sasl_plain_username
            .clone_from(&source.sasl_plain_username);
        merged
            .sasl_plain_password
            .clone_from(&source.sasl_plain_password);
    }
    if source.client_cert.is_some() && source.client_key.is_some() {
        merged.client_cert.clone_from(&source.client_cert);
        merged.client_key.clone_from(&source.client_key);
    }
    set_if_some(&mut merged.server_certfp, &source.server_certfp);
    if !source.connect_commands.is_empty() {
        merged.connect_commands.clone_from(&source.connect_commands);
    }
    merged
}

async fn apply_network(
    db: &Db,
    user: &str,
    user_id: i64,
    existing: &mut Vec<NetworkRecord>,
    mut net: SourceNetwork,
    report: &mut Report,
) -> Result<(), ImportError> {
    let name = net.record.name.clone();
    if let Err(why) = check_network(&mut net) {
        report.networks.skipped += 1;
        report.channels.skipped += net.channels.len();
        report.note(Some(user), Some(&name), format!("not imported: {why}"));
        return Ok(());
    }
    let (network_id, outcome) = match existing.iter_mut().find(|n| n.name == name) {
        None => {
            let created = db
                .create_network(NetworkRecord {
                    id: 0,
                    user_id,
                    ..net.record.clone()
                })
                .await?;
            let id = created.id;
            existing.push(created);
            (id, Outcome::Created)
        }
        Some(old) => {
            let merged = merge_network(old, &net.record);
            if merged == *old {
                (old.id, Outcome::Unchanged)
            } else {
                db.update_network(merged.clone()).await?;
                *old = merged;
                (old.id, Outcome::Updated)
            }
        }
    };
    outcome.count(&mut report.networks);
    for note in std::mem::take(&mut net.notes) {
        report.note(Some(user), Some(&name), note);
    }

    let mapping = CaseMapping::default();
    let mut channels = db.list_channels(network_id).await?;
    for ch in &net.channels {
        if let Err(why) = check_channel_name(&ch.name) {
            report.channels.skipped += 1;
            report.note(Some(user), Some(&name), why);
            continue;
        }
        let old = channels.iter().position(|c| mapping.eq(&c.name, &ch.name));
        let outcome = match old {
            None => {
                let base = ChannelRecord {
                    name: ch.name.clone(),
                    ..ChannelRecord::default()
                };
                let record = db
                    .upsert_channel(channel_record(network_id, base, ch))
                    .await?;
                channels.push(record);
                Outcome::Created
            }
            Some(i) => {
                let merged = channel_record(network_id, channels[i].clone(), ch);
                if merged == channels[i] {
                    Outcome::Unchanged
                } else {
                    channels[i] = db.upsert_channel(merged).await?;
                    Outcome::Updated
                }
            }
        };
        outcome.count(&mut report.channels);
    }

    let markers = db.load_read_markers(network_id).await?;
    for (target, time) in &net.read_markers {
        let key = mapping.fold(target);
        let before = markers.iter().find(|(t, _)| *t == key).map(|(_, t)| *t);
        let outcome = match before {
            None => Outcome::Created,
            Some(old) if *time > old => Outcome::Updated,
            Some(_) => {
                report.read_markers.unchanged += 1;
                continue;
            }
        };
        db.save_read_marker(network_id, &key, *time).await?;
        outcome.count(&mut report.read_markers);
    }
    Ok(())
}

/// A channel record for `network_id` from an imported channel, starting
/// from `base` (the existing row, or defaults).
fn channel_record(network_id: i64, base: ChannelRecord, ch: &SourceChannel) -> ChannelRecord {
    let mut record = ChannelRecord {
        network_id,
        detached: ch.detached,
        ..base
    };
    if ch.key.is_some() {
        record.key.clone_from(&ch.key);
    }
    if let Some(d) = ch.detach {
        record.relay_detached = d.relay_detached;
        record.reattach_on = d.reattach_on;
        record.detach_on = d.detach_on;
        record.detach_after_ms = d.detach_after_ms;
    }
    record
}

fn check_channel_name(name: &str) -> Result<(), String> {
    let valid = name.starts_with(['#', '&', '+', '!'])
        && name.len() > 1
        && !name.contains([' ', ',', '\x07'])
        && !name.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        Err(format!("channel {name:?} not imported: not a channel name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::MessageFilter;
    use crate::import::DetachSettings;

    fn source(users: Vec<SourceUser>) -> Source {
        Source {
            kind: "test",
            users,
            notes: vec!["global".into()],
        }
    }

    fn network(name: &str) -> SourceNetwork {
        SourceNetwork {
            record: NetworkRecord {
                name: name.into(),
                addr: "ircs://irc.example.org:6697".into(),
                enabled: true,
                ..NetworkRecord::default()
            },
            ..SourceNetwork::default()
        }
    }

    fn alice() -> SourceUser {
        let mut net = network("example");
        net.record.sasl_mechanism = Some("PLAIN".into());
        net.record.sasl_plain_username = Some("alice".into());
        net.record.sasl_plain_password = Some("s3cret".into());
        net.channels = vec![
            SourceChannel {
                name: "#Tether".into(),
                key: Some("k".into()),
                detached: true,
                detach: Some(DetachSettings {
                    relay_detached: MessageFilter::Message,
                    reattach_on: MessageFilter::Highlight,
                    detach_on: MessageFilter::None,
                    detach_after_ms: 3_600_000,
                }),
            },
            SourceChannel {
                name: "no channel".into(),
                ..SourceChannel::default()
            },
        ];
        net.read_markers = vec![("#Tether".into(), 1_000)];
        SourceUser {
            password: Password::Hash("$2a$04$abcdefghijklmnopqrstuv".into()),
            admin: true,
            nick: Some("al".into()),
            networks: vec![net, network("bad/name")],
            ..SourceUser::new("alice")
        }
    }

    #[tokio::test]
    async fn creates_then_second_run_changes_nothing() {
        let db = Db::open_in_memory().unwrap();
        let users = vec![alice(), SourceUser::new("bad name")];
        let mut seen = Vec::new();
        let report = apply(&db, source(users.clone()), &mut |d, t| seen.push((d, t)))
            .await
            .unwrap();
        assert_eq!(seen, vec![(1, 2), (2, 2)]);
        assert_eq!(
            report.users,
            Counts {
                created: 1,
                skipped: 1,
                ..Counts::default()
            }
        );
        assert_eq!(report.networks.created, 1);
        assert_eq!(report.networks.skipped, 1);
        assert_eq!(report.channels.created, 1);
        assert_eq!(report.channels.skipped, 1);
        assert_eq!(report.read_markers.created, 1);
        let text = report.to_string();
        assert!(text.contains("  global\n"), "{text}");
        assert!(text.contains("user bad name: not imported"), "{text}");
        assert!(
            text.contains("user alice, network bad/name: not imported"),
            "{text}"
        );

        let user = db.get_user("alice").await.unwrap().unwrap();
        assert!(user.admin);
        assert!(
            user.enabled,
            "a source without enabled state creates enabled users"
        );
        assert_eq!(user.nick.as_deref(), Some("al"));
        let nets = db.list_networks(user.id).await.unwrap();
        assert_eq!(nets.len(), 1);
        assert_eq!(nets[0].sasl_plain_password.as_deref(), Some("s3cret"));
        let chans = db.list_channels(nets[0].id).await.unwrap();
        assert_eq!(chans.len(), 1);
        assert_eq!(chans[0].name, "#Tether");
        assert_eq!(chans[0].detach_after_ms, 3_600_000);
        assert_eq!(
            db.load_read_markers(nets[0].id).await.unwrap(),
            vec![("#tether".to_string(), 1_000)]
        );

        let again = apply(&db, source(users), &mut |_, _| {}).await.unwrap();
        assert!(again.is_no_op(), "{again}");
        assert_eq!(again.users.unchanged, 1);
        assert_eq!(again.networks.unchanged, 1);
        assert_eq!(again.channels.unchanged, 1);
        assert_eq!(again.read_markers.unchanged, 1);
    }

    #[tokio::test]
    async fn existing_records_take_source_settings_and_keep_the_rest() {
        let db = Db::open_in_memory().unwrap();
        apply(&db, source(vec![alice()]), &mut |_, _| {})
            .await
            .unwrap();
        // Changes made in tether after the first import.
        let mut user = db.get_user("alice").await.unwrap().unwrap();
        user.password_hash = Some("$argon2id$changed".into());
        user.realname = Some("Alice".into());
        user.enabled = false;
        db.update_user(user.clone()).await.unwrap();
        let mut net = db.list_networks(user.id).await.unwrap().remove(0);
        net.client_cert = Some("cert".into());
        net.client_key = Some("key".into());
        db.update_network(net.clone()).await.unwrap();

        let mut changed = alice();
        changed.admin = false;
        changed.networks[0].record.nick = Some("alice2".into());
        changed.networks[0].channels[0].name = "#tether".into();
        changed.networks[0].channels[0].detached = false;
        changed.networks[0].read_markers = vec![("#TETHER".into(), 500), ("bob".into(), 7)];
        let report = apply(&db, source(vec![changed]), &mut |_, _| {})
            .await
            .unwrap();
        assert_eq!(report.users.updated, 1);
        assert_eq!(report.networks.updated, 1);
        assert_eq!(report.channels.updated, 1);
        assert_eq!(report.read_markers.unchanged, 1);
        assert_eq!(report.read_markers.created, 1);
        assert!(
            report.to_string().contains("kept tether's password"),
            "{report}"
        );

        let after = db.get_user("alice").await.unwrap().unwrap();
        assert!(!after.admin);
        assert_eq!(after.password_hash.as_deref(), Some("$argon2id$changed"));
        assert_eq!(after.realname.as_deref(), Some("Alice"));
        assert!(
            !after.enabled,
            "the source has no enabled state: tether's is kept"
        );
        let nets = db.list_networks(user.id).await.unwrap();
        assert_eq!(nets[0].nick.as_deref(), Some("alice2"));
        assert_eq!(nets[0].client_cert.as_deref(), Some("cert"));
        let chans = db.list_channels(nets[0].id).await.unwrap();
        assert_eq!(chans.len(), 1, "matched under casemapping: {chans:?}");
        assert!(!chans[0].detached);
        assert_eq!(
            db.load_read_markers(nets[0].id).await.unwrap(),
            vec![("#tether".to_string(), 1_000), ("bob".to_string(), 7)]
        );
    }

    #[tokio::test]
    async fn random_passwords_are_generated_once_and_verify() {
        let db = Db::open_in_memory().unwrap();
        let user = SourceUser {
            password: Password::Random,
            ..SourceUser::new("carol")
        };
        let report = apply(&db, source(vec![user.clone()]), &mut |_, _| {})
            .await
            .unwrap();
        let [(name, password)] = report.passwords.as_slice() else {
            panic!("one password expected: {report}");
        };
        assert_eq!(name, "carol");
        let stored = db.get_user("carol").await.unwrap().unwrap();
        assert!(auth::verify_password(
            password,
            stored.password_hash.as_deref().unwrap()
        ));
        let again = apply(&db, source(vec![user]), &mut |_, _| {})
            .await
            .unwrap();
        assert!(again.passwords.is_empty());
        assert_eq!(
            db.get_user("carol").await.unwrap().unwrap().password_hash,
            stored.password_hash
        );
    }

    #[tokio::test]
    async fn invalid_nicks_and_addresses_are_reported() {
        let db = Db::open_in_memory().unwrap();
        let mut bad_addr = network("unix");
        bad_addr.record.addr = "irc+unix:///run/ircd.sock".into();
        let mut bad_nick = network("nick");
        bad_nick.record.nick = Some("#chan".into());
        let user = SourceUser {
            nick: Some("a b".into()),
            networks: vec![bad_addr, bad_nick],
            ..SourceUser::new("dave")
        };
        let report = apply(&db, source(vec![user]), &mut |_, _| {})
            .await
            .unwrap();
        assert_eq!(report.networks.created, 1);
        assert_eq!(report.networks.skipped, 1);
        let text = report.to_string();
        assert!(text.contains("user dave: nick dropped"), "{text}");
        assert!(text.contains("network unix: not imported"), "{text}");
        assert!(text.contains("network nick: nick dropped"), "{text}");
        let dave = db.get_user("dave").await.unwrap().unwrap();
        assert_eq!(dave.nick, None);
    }
}

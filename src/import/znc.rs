//! Reading a ZNC configuration (`znc.conf`) into a [`Source`].
//!
//! Carried over, per `<User>`: `Admin`, `Nick`, `RealName`; `Ident` as the
//! username of networks that set none. Per `<Network>`: the first `Server =
//! host [+]port [password]` line (`+` is TLS), `Nick`, `Ident`, `RealName`,
//! `IRCConnectEnabled`, the first `TrustedServerFingerprint`, and `<Chan>`s
//! with `Key` and `Detached`. A configuration from before ZNC 1.0 keeps
//! `Server` lines and `<Chan>`s at the user level: they become one network
//! named `default`, as ZNC's own upgrade names it. SASL credentials and
//! client certificates live in module data next to the configuration
//! ([`super::znc_registry`]), and are carried when found there.
//!
//! ZNC password hashes (salted SHA-256 or MD5) cannot be verified by
//! tether, so every user is imported with [`Password::Random`]: a new user
//! gets a fresh random password, listed once in the report.
//!
//! Reported as not carried: further `Server` lines, `AltNick`, `BindHost`,
//! `Allow` host restrictions, a non-UTF-8 `Encoding`, disabled channels,
//! modules tether has no counterpart for, and ZNC's global settings.

use std::path::Path;

use crate::db::NetworkRecord;
use crate::upstream::UpstreamAddr;
use crate::upstream::tls::parse_sha256_fingerprint;

use super::pem::split_cert_and_key;
use super::znc_conf::{self, Section};
use super::znc_registry;
use super::{ImportError, Password, Source, SourceChannel, SourceNetwork, SourceUser};

/// Modules whose job tether does itself; loading them needs no note.
const NATIVE_MODULES: &[&str] = &[
    "sasl",
    "cert",
    "chansaver",
    "controlpanel",
    "webadmin",
    "clientbuffer",
    "route_replies",
    "playback",
    "keepnick",
    "simple_away",
    "savebuff",
];

/// Reads the ZNC configuration at `path` and the module data next to it.
/// Fails when the file cannot be read, has a syntax error, or holds no
/// `<User>`.
pub fn read(path: &Path) -> Result<Source, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let root = znc_conf::parse(&text).map_err(|e| ImportError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    if root.sections("User").next().is_none() {
        return Err(ImportError::NotSource {
            path: path.to_path_buf(),
            reason: "not a ZNC configuration: it has no <User> section".to_string(),
        });
    }
    let data = znc_registry::data_dir(path);
    let mut source = Source {
        kind: "ZNC",
        ..Source::default()
    };
    source.notes.push(
        "ZNC password hashes cannot be verified by tether: each new user gets a random password, shown once; existing users keep theirs"
            .to_string(),
    );
    if root.sections("Listener").next().is_some() || root.values("LoadModule").next().is_some() {
        source.notes.push(
            "ZNC's global settings (listeners, global modules) are not carried: use tether's own configuration"
                .to_string(),
        );
    }
    for user in root.sections("User") {
        source.users.push(read_user(user, &data));
    }
    Ok(source)
}

fn module_names(section: &Section) -> Vec<String> {
    section
        .values("LoadModule")
        .filter_map(|v| v.split_whitespace().next())
        .map(str::to_ascii_lowercase)
        .collect()
}

fn read_user(section: &Section, data: &Path) -> SourceUser {
    let mut user = SourceUser {
        password: Password::Random,
        admin: section.flag("Admin"),
        nick: section.value("Nick").map(str::to_string),
        realname: section.value("RealName").map(str::to_string),
        ..SourceUser::new(section.name.clone())
    };
    if let Some(alt) = section.value("AltNick") {
        user.notes.push(format!(
            "AltNick {alt} not carried: tether appends _ to a nick in use"
        ));
    }
    if let Some(host) = section.value("BindHost") {
        user.notes.push(format!("BindHost {host} not carried"));
    }
    let allowed: Vec<&str> = section.values("Allow").filter(|a| *a != "*").collect();
    if !allowed.is_empty() {
        user.notes.push(format!(
            "login restricted to {} in ZNC: not carried",
            allowed.join(", ")
        ));
    }
    let modules = module_names(section);
    let cert_module = modules.iter().any(|m| m == "cert");
    let ctx = UserContext {
        username: &section.name,
        ident: section.value("Ident"),
        data,
        user_cert: cert_module,
    };
    let mut other: Vec<&str> = modules
        .iter()
        .map(String::as_str)
        .filter(|m| !NATIVE_MODULES.contains(m))
        .collect();
    other.sort_unstable();
    other.dedup();
    if !other.is_empty() {
        user.notes
            .push(format!("user module(s) not carried: {}", other.join(", ")));
    }
    // Pre-1.0 configurations: servers and channels on the user itself.
    if section.values("Server").next().is_some() || section.sections("Chan").next().is_some() {
        user.networks.push(ctx.network("default", section, None));
    }
    for net in section.sections("Network") {
        user.networks
            .push(ctx.network(&net.name, net, Some(&net.name)));
    }
    user
}

/// What a network inherits from its user.
struct UserContext<'a> {
    username: &'a str,
    ident: Option<&'a str>,
    data: &'a Path,
    /// The `cert` module is loaded for the user.
    user_cert: bool,
}

impl UserContext<'_> {
    /// A network from a `<Network>` section (`dir` is its directory name)
    /// or, with `dir` `None`, from a pre-1.0 `<User>` section.
    fn network(&self, name: &str, section: &Section, dir: Option<&str>) -> SourceNetwork {
        let mut net = SourceNetwork {
            record: NetworkRecord {
                name: name.to_string(),
                enabled: section.value("IRCConnectEnabled").is_none()
                    || section.flag("IRCConnectEnabled"),
                ..NetworkRecord::default()
            },
            ..SourceNetwork::default()
        };
        server(section, &mut net);
        if dir.is_some() {
            // A user-level network's nick and realname are the user's.
            net.record.nick = section.value("Nick").map(str::to_string);
            net.record.realname = section.value("RealName").map(str::to_string);
            if let Some(alt) = section.value("AltNick") {
                net.notes.push(format!(
                    "AltNick {alt} not carried: tether appends _ to a nick in use"
                ));
            }
            if let Some(host) = section.value("BindHost") {
                net.notes.push(format!("BindHost {host} not carried"));
            }
        }
        net.record.username = section.value("Ident").or(self.ident).map(str::to_string);
        if let Some(enc) = section.value("Encoding")
            && !enc
                .trim_start_matches(['*', '^'])
                .eq_ignore_ascii_case("UTF-8")
        {
            net.notes.push(format!(
                "Encoding {enc} not carried: tether speaks UTF-8 upstream"
            ));
        }
        fingerprint(section, &mut net);
        let modules = module_names(section);
        let in_dir = |module: &str| znc_registry::module_dir(self.data, self.username, dir, module);
        let cert = if modules.iter().any(|m| m == "cert") {
            self.cert(&in_dir("cert"), &mut net)
        } else if self.user_cert {
            let user_dir = znc_registry::module_dir(self.data, self.username, None, "cert");
            self.cert(&user_dir, &mut net)
        } else {
            None
        };
        if modules.iter().any(|m| m == "sasl") {
            sasl(&in_dir("sasl"), cert.is_some(), &mut net);
        }
        if let Some((cert, key)) = cert {
            net.record.client_cert = Some(cert);
            net.record.client_key = Some(key);
        }
        let mut other: Vec<&str> = modules
            .iter()
            .map(String::as_str)
            .filter(|m| !NATIVE_MODULES.contains(m))
            .collect();
        other.sort_unstable();
        other.dedup();
        if !other.is_empty() {
            net.notes.push(format!(
                "network module(s) not carried: {}",
                other.join(", ")
            ));
        }
        for chan in section.sections("Chan") {
            if chan.flag("Disabled") {
                net.notes.push(format!(
                    "channel {} not carried: it is disabled in ZNC",
                    chan.name
                ));
                continue;
            }
            net.channels.push(SourceChannel {
                name: chan.name.clone(),
                key: chan.value("Key").map(str::to_string),
                detached: chan.flag("Detached"),
                detach: None,
            });
        }
        net
    }

    /// The `cert` module's `user.pem` in `dir`, split into certificate and
    /// key; a note when it is missing or unusable.
    fn cert(&self, dir: &Path, net: &mut SourceNetwork) -> Option<(String, String)> {
        let path = dir.join("user.pem");
        let Ok(text) = std::fs::read_to_string(&path) else {
            net.notes.push(format!(
                "client certificate (cert module) not carried: {} not found",
                path.display()
            ));
            return None;
        };
        let pair = split_cert_and_key(&text);
        if pair.is_none() {
            net.notes.push(format!(
                "client certificate not carried: {} lacks a certificate or a private key",
                path.display()
            ));
        }
        pair
    }
}

/// The first `Server` line becomes the address (and server password);
/// the others are reported.
fn server(section: &Section, net: &mut SourceNetwork) {
    let mut chosen = false;
    let mut others = Vec::new();
    for line in section.values("Server") {
        if chosen {
            others.push(
                line.split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            continue;
        }
        match parse_server(line) {
            Ok((addr, pass)) => {
                net.record.addr = addr.to_uri();
                net.record.pass = pass;
                chosen = true;
            }
            Err(why) => net.notes.push(why),
        }
    }
    if !others.is_empty() {
        net.notes.push(format!(
            "other servers not carried (tether connects to one address): {}",
            others.join(", ")
        ));
    }
}

/// `host [[+]port] [password]`; ZNC's default port is 6667.
fn parse_server(line: &str) -> Result<(UpstreamAddr, Option<String>), String> {
    let mut words = line.split_whitespace();
    let host = words
        .next()
        .ok_or_else(|| "empty Server line ignored".to_string())?;
    let (tls, port) = match words.next() {
        None => (false, 6667),
        Some(p) => {
            let (tls, digits) = match p.strip_prefix('+') {
                Some(d) => (true, d),
                None => (false, p),
            };
            let port = digits
                .parse::<u16>()
                .map_err(|_| format!("Server {line:?} ignored: invalid port {p:?}"))?;
            (tls, port)
        }
    };
    let pass = words.next().map(str::to_string);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((
        UpstreamAddr {
            host: host.to_string(),
            port,
            tls,
        },
        pass,
    ))
}

fn fingerprint(section: &Section, net: &mut SourceNetwork) {
    let mut pins = section.values("TrustedServerFingerprint");
    if let Some(first) = pins.next() {
        match parse_sha256_fingerprint(first) {
            Ok(fp) => net.record.server_certfp = Some(fp),
            Err(_) => net.notes.push(format!(
                "trusted server fingerprint {first} not carried: tether pins SHA-256 fingerprints only"
            )),
        }
    }
    let rest: Vec<&str> = pins.collect();
    if !rest.is_empty() {
        net.notes.push(format!(
            "further trusted fingerprints not carried (tether pins one): {}",
            rest.join(", ")
        ));
    }
}

/// The `sasl` module's registry in `dir`: PLAIN credentials, or EXTERNAL
/// when it comes first in `mechanisms` and a client certificate exists.
fn sasl(dir: &Path, have_cert: bool, net: &mut SourceNetwork) {
    let Some(reg) = znc_registry::read(dir) else {
        net.notes.push(format!(
            "SASL credentials not carried: the sasl module's data ({}) was not found",
            dir.join(".registry").display()
        ));
        return;
    };
    let mechanisms: Vec<String> = reg
        .get("mechanisms")
        .map_or("EXTERNAL PLAIN", String::as_str)
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    let user = reg.get("username").filter(|u| !u.is_empty());
    let pass = reg.get("password").filter(|p| !p.is_empty());
    for mechanism in &mechanisms {
        match mechanism.as_str() {
            "EXTERNAL" if have_cert => {
                net.record.sasl_mechanism = Some("EXTERNAL".into());
                return;
            }
            "PLAIN" => {
                if let (Some(user), Some(pass)) = (user, pass) {
                    net.record.sasl_mechanism = Some("PLAIN".into());
                    net.record.sasl_plain_username = Some(user.clone());
                    net.record.sasl_plain_password = Some(pass.clone());
                    return;
                }
            }
            _ => {}
        }
    }
    net.notes.push(format!(
        "SASL not carried: no usable mechanism among {}",
        mechanisms.join(" ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines() {
        let (addr, pass) = parse_server("irc.libera.chat +6697").unwrap();
        assert_eq!(addr.to_uri(), "ircs://irc.libera.chat:6697");
        assert_eq!(pass, None);
        let (addr, pass) = parse_server("irc.example.org 6667 secret").unwrap();
        assert_eq!(addr.to_uri(), "irc+insecure://irc.example.org:6667");
        assert_eq!(pass.as_deref(), Some("secret"));
        let (addr, _) = parse_server("irc.example.org").unwrap();
        assert_eq!(addr.port, 6667);
        let (addr, _) = parse_server("[2001:db8::1] +6697").unwrap();
        assert_eq!(addr.to_uri(), "ircs://[2001:db8::1]:6697");
        assert!(
            parse_server("host +x")
                .unwrap_err()
                .contains("invalid port")
        );
        assert!(parse_server("").is_err());
    }

    #[test]
    fn missing_sasl_registry_is_noted() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = SourceNetwork::default();
        sasl(dir.path(), false, &mut net);
        assert!(net.notes[0].contains("was not found"), "{:?}", net.notes);
        std::fs::write(
            dir.path().join(".registry"),
            "mechanisms EXTERNAL\nusername u\n",
        )
        .unwrap();
        let mut net = SourceNetwork::default();
        sasl(dir.path(), false, &mut net);
        assert_eq!(net.record.sasl_mechanism, None);
        assert!(
            net.notes[0].contains("no usable mechanism"),
            "{:?}",
            net.notes
        );
        let mut net = SourceNetwork::default();
        sasl(dir.path(), true, &mut net);
        assert_eq!(net.record.sasl_mechanism.as_deref(), Some("EXTERNAL"));
    }

    #[test]
    fn pre_network_config_becomes_a_default_network() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("znc.conf");
        std::fs::write(
            &conf,
            "<User old>\n\
             Pass = md5#abc#def#\n\
             Nick = oldie\n\
             AltNick = oldie_\n\
             Ident = ident\n\
             IRCConnectEnabled = false\n\
             Server = irc.example.org 6667\n\
             Server = irc2.example.org +6697\n\
             LoadModule = perform\n\
             <Chan #a>\n</Chan>\n\
             <Chan #off>\nDisabled = true\n</Chan>\n\
             </User>\n",
        )
        .unwrap();
        let source = read(&conf).unwrap();
        let user = &source.users[0];
        assert_eq!(user.password, Password::Random);
        assert_eq!(user.nick.as_deref(), Some("oldie"));
        assert!(user.notes.iter().any(|n| n.contains("AltNick")));
        assert!(user.notes.iter().any(|n| n.contains("perform")));
        let [net] = user.networks.as_slice() else {
            panic!("one network expected: {:?}", user.networks);
        };
        assert_eq!(net.record.name, "default");
        assert_eq!(net.record.addr, "irc+insecure://irc.example.org:6667");
        assert_eq!(net.record.username.as_deref(), Some("ident"));
        // The user's nick is the network's default already.
        assert_eq!(net.record.nick, None);
        assert!(!net.record.enabled);
        assert_eq!(net.channels.len(), 1);
        assert!(
            net.notes
                .iter()
                .any(|n| n.contains("irc2.example.org +6697")),
            "{:?}",
            net.notes
        );
        assert!(net.notes.iter().any(|n| n.contains("#off")));
    }

    #[test]
    fn not_a_znc_config() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("znc.conf");
        std::fs::write(&conf, "Version = 1.8\n").unwrap();
        let err = read(&conf).unwrap_err();
        assert!(err.to_string().contains("no <User> section"), "{err}");
        std::fs::write(&conf, "<User a>\n").unwrap();
        let err = read(&conf).unwrap_err();
        assert!(matches!(err, ImportError::Syntax { line: 1, .. }), "{err}");
        let err = read(&dir.path().join("missing.conf")).unwrap_err();
        assert!(matches!(err, ImportError::Read { .. }), "{err}");
    }
}

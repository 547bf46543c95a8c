//! `tether import soju|znc`: fixtures written by the tests themselves (a
//! soju schema created here, modelled on soju's tables; a `znc.conf` with
//! several users and module data next to it), imported twice, checked in
//! tether's database, then used for real: tether starts on the imported
//! database, dials the imported networks with the imported SASL settings
//! and channels, and the users log in over a socket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rusqlite::Connection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tether::db::{Db, MessageFilter};
use tether::import::{self, Report};
use tether::upstream::client_cert::{self, KeyType};
use tokio::time::timeout;

use crate::harness::*;
use crate::support::*;

/// Bound for one run of the `tether import` binary (it hashes passwords).
const IMPORT_TIMEOUT: Duration = Duration::from_secs(60);

/// A soju database schema in the shape of soju's SQLite tables (see
/// soju-behaviour.md §1.22), written for this test.
const SOJU_SCHEMA: &str = r#"
CREATE TABLE "User" (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password TEXT,
    admin INTEGER NOT NULL DEFAULT 0,
    realname TEXT,
    nick TEXT,
    created_at TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    downstream_interacted_at TEXT,
    max_networks INTEGER NOT NULL DEFAULT -1
);
CREATE TABLE "Network" (
    id INTEGER PRIMARY KEY,
    name TEXT,
    "user" INTEGER NOT NULL REFERENCES "User"(id),
    addr TEXT NOT NULL,
    nick TEXT,
    username TEXT,
    realname TEXT,
    certfp TEXT,
    pass TEXT,
    connect_commands TEXT,
    sasl_mechanism TEXT,
    sasl_plain_username TEXT,
    sasl_plain_password TEXT,
    sasl_external_cert BLOB,
    sasl_external_key BLOB,
    auto_away INTEGER NOT NULL DEFAULT 1,
    enabled INTEGER NOT NULL DEFAULT 1,
    UNIQUE("user", addr, nick),
    UNIQUE("user", name)
);
CREATE TABLE "Channel" (
    id INTEGER PRIMARY KEY,
    network INTEGER NOT NULL REFERENCES "Network"(id),
    name TEXT NOT NULL,
    key TEXT,
    detached INTEGER NOT NULL DEFAULT 0,
    detached_internal_msgid TEXT,
    relay_detached INTEGER NOT NULL DEFAULT 0,
    reattach_on INTEGER NOT NULL DEFAULT 0,
    detach_after INTEGER NOT NULL DEFAULT 0,
    detach_on INTEGER NOT NULL DEFAULT 0,
    UNIQUE(network, name)
);
CREATE TABLE "DeviceCertificate" (
    id INTEGER PRIMARY KEY,
    "user" INTEGER NOT NULL REFERENCES "User"(id),
    label TEXT NOT NULL,
    fingerprint BLOB NOT NULL UNIQUE,
    last_used TEXT,
    last_ip TEXT
);
CREATE TABLE "DeliveryReceipt" (
    id INTEGER PRIMARY KEY,
    network INTEGER NOT NULL REFERENCES "Network"(id),
    target TEXT NOT NULL,
    client TEXT,
    internal_msgid TEXT NOT NULL,
    UNIQUE(network, target, client)
);
CREATE TABLE "ReadReceipt" (
    id INTEGER PRIMARY KEY,
    network INTEGER NOT NULL REFERENCES "Network"(id),
    target TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    UNIQUE(network, target)
);
CREATE TABLE "MessageTarget" (
    id INTEGER PRIMARY KEY,
    network INTEGER NOT NULL REFERENCES "Network"(id),
    target TEXT NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    muted INTEGER NOT NULL DEFAULT 0,
    blocked INTEGER NOT NULL DEFAULT 0,
    UNIQUE(network, target)
);
CREATE TABLE "Message" (
    id INTEGER PRIMARY KEY,
    target INTEGER NOT NULL REFERENCES "MessageTarget"(id),
    raw TEXT NOT NULL,
    time TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT
);
"#;

/// A client certificate and key, PEM and DER.
struct Identity {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn identity() -> Identity {
    let generated = client_cert::generate(KeyType::Ecdsa, None).expect("generating a certificate");
    let cert_der = CertificateDer::from_pem_slice(generated.cert_pem.as_bytes())
        .expect("generated certificate parses")
        .to_vec();
    let key_der = PrivateKeyDer::from_pem_slice(generated.key_pem.as_bytes())
        .expect("generated key parses")
        .secret_der()
        .to_vec();
    Identity {
        cert_pem: generated.cert_pem,
        cert_der,
        key_der,
    }
}

const BOB_PASSWORD: &str = "bob's own password";
const SHA256_PIN: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

/// Writes a soju database at `path`: alice (admin, [`PASSWORD`]) with the
/// network `fake` at `fake_addr` (SASL PLAIN, two channels, read receipts)
/// and a disabled network `ext` (SASL EXTERNAL, a pinned certificate); bob
/// with a network pinned by a SHA-512 fingerprint and a device
/// certificate; carol, disabled, without password, with a unix-socket
/// network tether cannot dial.
fn write_soju_db(path: &Path, fake_addr: &str, id: &Identity) {
    let conn = Connection::open(path).expect("creating the soju database");
    conn.execute_batch(SOJU_SCHEMA).expect("soju schema");
    let alice_hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let bob_hash = bcrypt::hash(BOB_PASSWORD, 4).expect("bcrypt");
    let now = "2024-05-01T10:00:00.000Z";
    conn.execute(
        r#"INSERT INTO "User" (id, username, password, admin, realname, nick, created_at,
                               enabled, max_networks)
           VALUES (1, 'alice', ?1, 1, 'Alice Liddell', 'alicia', ?3, 1, -1),
                  (2, 'bob', ?2, 0, NULL, NULL, ?3, 1, 5),
                  (3, 'carol', NULL, 0, NULL, NULL, ?3, 0, -1)"#,
        rusqlite::params![alice_hash, bob_hash, now],
    )
    .expect("users");
    conn.execute(
        r#"INSERT INTO "Network" (id, name, "user", addr, nick, username, realname, certfp,
                                  pass, connect_commands, sasl_mechanism, sasl_plain_username,
                                  sasl_plain_password, sasl_external_cert, sasl_external_key,
                                  auto_away, enabled)
           VALUES (10, 'fake', 1, ?1, 'alice_nick', 'aliceident', 'Alice on fake', NULL,
                   'serverpass', 'MODE alice_nick +i' || char(10) || 'PRIVMSG NickServ :hi',
                   'PLAIN', 'alice', 'sasl secret', NULL, NULL, 1, 1),
                  (11, 'ext', 1, 'ircs://irc.example.net:6697', NULL, NULL, NULL, ?2,
                   NULL, NULL, 'EXTERNAL', NULL, NULL, ?3, ?4, 1, 0),
                  (20, NULL, 2, 'irc+insecure://127.0.0.1:1', NULL, NULL, NULL, ?5,
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0),
                  (30, 'sock', 3, 'irc+unix:///run/ircd.sock', NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, 1)"#,
        rusqlite::params![
            format!("irc+insecure://{fake_addr}"),
            SHA256_PIN.replace(':', "").to_lowercase(),
            id.cert_der,
            id.key_der,
            "ab".repeat(64),
        ],
    )
    .expect("networks");
    conn.execute_batch(
        r#"INSERT INTO "Channel" (network, name, key, detached, relay_detached, reattach_on,
                                  detach_after, detach_on)
           VALUES (10, '#tether', 'sekrit', 0, 0, 0, 0, 0),
                  (10, '#Quiet', NULL, 1, 3, 2, 3600, 1),
                  (11, '#ext', NULL, 0, 0, 0, 0, 0),
                  (30, '#lost', NULL, 0, 0, 0, 0, 0);
           INSERT INTO "ReadReceipt" (network, target, timestamp)
           VALUES (10, '#tether', '2024-05-01T12:00:00.000Z'),
                  (10, 'dan', '2024-05-02T00:00:00.500Z');
           INSERT INTO "DeviceCertificate" ("user", label, fingerprint)
           VALUES (2, 'laptop', x'0102'),
                  (2, 'phone', x'abababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababab');
           INSERT INTO "DeliveryReceipt" (network, target, client, internal_msgid)
           VALUES (10, '#tether', 'phone', '42');
           INSERT INTO "MessageTarget" (id, network, target, pinned) VALUES (1, 10, '#tether', 1);
           INSERT INTO "Message" (target, raw, time, sender, text)
           VALUES (1, ':a PRIVMSG #tether :hi', '2024-05-01T11:00:00.000Z', 'a', 'hi'),
                  (1, ':a PRIVMSG #tether :yo', '2024-05-01T11:00:01.000Z', 'a', 'yo');"#,
    )
    .expect("channels and the rest");
}

async fn import_soju(db_path: &Path, soju: &Path) -> Report {
    let source = import::soju::read(soju).expect("reading the soju database");
    let db = Db::open(db_path).expect("opening tether's database");
    let report = import::apply(&db, source, &mut |_, _| {})
        .await
        .expect("import");
    db.close().await;
    report
}

fn counts(created: usize, updated: usize, unchanged: usize, skipped: usize) -> import::Counts {
    import::Counts {
        created,
        updated,
        unchanged,
        skipped,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soju_database_is_imported_once_and_works() {
    let fake = FakeServer::bind(FakeServerOptions {
        caps: vec!["message-tags".into(), "sasl=PLAIN".into()],
        ..FakeServerOptions::default()
    })
    .await;
    let dir = temp_dir("tether-import-soju-");
    let soju = dir.path().join("soju.db");
    let id = identity();
    write_soju_db(&soju, &fake.addr.to_string(), &id);
    let db_path = dir.path().join("tether.db");

    let report = import_soju(&db_path, &soju).await;
    assert_eq!(report.users, counts(3, 0, 0, 0), "{report}");
    assert_eq!(report.networks, counts(3, 0, 0, 1), "{report}");
    assert_eq!(report.channels, counts(3, 0, 0, 1), "{report}");
    assert_eq!(report.read_markers, counts(2, 0, 0, 0), "{report}");
    assert_eq!(report.device_certs, counts(1, 0, 0, 0), "{report}");
    let text = report.to_string();
    for expected in [
        "2 message(s) of chat history",
        "1 delivery receipt(s)",
        "1 pinned, muted or blocked conversation(s)",
        "user bob: device certificate \"laptop\" not carried: not a SHA-512 fingerprint",
        "user bob, network 127.0.0.1: server certificate pin",
        "user bob, network 127.0.0.1: auto-away was off",
        "user carol, network sock: not imported: unsupported address scheme",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(report.passwords.is_empty(), "{report}");

    // tether's database holds what soju had.
    let db = Db::open(&db_path).unwrap();
    let alice = db.get_user("alice").await.unwrap().expect("alice imported");
    assert!(alice.admin && alice.enabled);
    assert!(
        alice
            .password_hash
            .as_deref()
            .is_some_and(|h| h.starts_with("$2")),
        "bcrypt hash kept: {alice:?}"
    );
    assert_eq!(alice.nick.as_deref(), Some("alicia"));
    assert_eq!(alice.realname.as_deref(), Some("Alice Liddell"));
    assert_eq!(alice.max_networks, None);
    let bob = db.get_user("bob").await.unwrap().expect("bob imported");
    assert_eq!(bob.max_networks, Some(5));
    let certs = db.list_device_certs(bob.id).await.unwrap();
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_eq!(certs[0].fingerprint, "ab".repeat(64));
    assert_eq!(certs[0].label, "phone");
    assert!(!bob.admin);
    let carol = db.get_user("carol").await.unwrap().expect("carol imported");
    assert_eq!(carol.password_hash, None);
    assert!(!carol.enabled);
    assert!(db.list_networks(carol.id).await.unwrap().is_empty());

    let nets = db.list_networks(alice.id).await.unwrap();
    let [fake_net, ext] = nets.as_slice() else {
        panic!("two networks expected: {nets:?}");
    };
    assert_eq!(fake_net.name, "fake");
    assert_eq!(fake_net.addr, format!("irc+insecure://{}", fake.addr));
    assert_eq!(fake_net.username.as_deref(), Some("aliceident"));
    assert_eq!(fake_net.pass.as_deref(), Some("serverpass"));
    assert_eq!(
        fake_net.connect_commands,
        vec!["MODE alice_nick +i", "PRIVMSG NickServ :hi"]
    );
    assert_eq!(fake_net.sasl_mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(fake_net.sasl_plain_password.as_deref(), Some("sasl secret"));
    assert!(fake_net.enabled);
    assert_eq!(ext.sasl_mechanism.as_deref(), Some("EXTERNAL"));
    assert!(!ext.enabled);
    assert_eq!(
        ext.server_certfp.as_deref(),
        Some(SHA256_PIN.replace(':', "").to_lowercase().as_str())
    );
    assert_eq!(
        client_cert::fingerprints(ext.client_cert.as_deref().unwrap()).unwrap(),
        client_cert::fingerprints(&id.cert_pem).unwrap(),
        "the DER certificate came through as the same PEM certificate"
    );
    let key = PrivateKeyDer::from_pem_slice(ext.client_key.as_deref().unwrap().as_bytes())
        .expect("imported key is PEM");
    assert_eq!(key.secret_der(), id.key_der.as_slice());
    let bob_nets = db.list_networks(bob.id).await.unwrap();
    assert_eq!(bob_nets.len(), 1);
    assert_eq!(
        bob_nets[0].name, "127.0.0.1",
        "unnamed network named after its host"
    );
    assert_eq!(
        bob_nets[0].server_certfp, None,
        "SHA-512 pins are not carried"
    );

    let chans = db.list_channels(fake_net.id).await.unwrap();
    assert_eq!(chans.len(), 2, "{chans:?}");
    assert_eq!(chans[0].name, "#tether");
    assert_eq!(chans[0].key.as_deref(), Some("sekrit"));
    assert!(!chans[0].detached);
    assert_eq!(chans[1].name, "#Quiet");
    assert!(chans[1].detached);
    assert_eq!(chans[1].relay_detached, MessageFilter::Message);
    assert_eq!(chans[1].reattach_on, MessageFilter::Highlight);
    assert_eq!(chans[1].detach_on, MessageFilter::None);
    assert_eq!(chans[1].detach_after_ms, 3_600_000);
    assert_eq!(
        db.load_read_markers(fake_net.id).await.unwrap(),
        vec![
            ("#tether".to_string(), 1_714_564_800_000),
            ("dan".to_string(), 1_714_608_000_500),
        ]
    );
    db.close().await;
    drop(db);

    // The second run creates nothing.
    let again = import_soju(&db_path, &soju).await;
    assert!(again.is_no_op(), "{again}");
    assert_eq!(again.users, counts(0, 0, 3, 0), "{again}");
    assert_eq!(again.networks, counts(0, 0, 3, 1), "{again}");
    assert_eq!(again.channels, counts(0, 0, 3, 1), "{again}");
    assert_eq!(again.read_markers, counts(0, 0, 2, 0), "{again}");
    assert_eq!(again.device_certs, counts(0, 0, 1, 0), "{again}");
    let db = Db::open(&db_path).unwrap();
    assert_eq!(db.count_users().await.unwrap(), 3);
    assert_eq!(db.list_networks(alice.id).await.unwrap().len(), 2);
    assert_eq!(db.list_channels(fake_net.id).await.unwrap().len(), 2);
    db.close().await;
    drop(db);

    // tether runs on the imported database: it dials the network with the
    // imported nick, ident, server password and SASL PLAIN, and joins the
    // channels (with the key; the detached one too, as detached channels
    // stay joined upstream).
    let t = Tether::start_in(dir).await;
    assert_eq!(
        t.first_run_password, None,
        "imported admin, no first-run admin"
    );
    let mut conn = fake.accept().await;
    assert_eq!(conn.nick, "alice_nick");
    assert_eq!(conn.user, "aliceident");
    assert_eq!(conn.pass.as_deref(), Some("serverpass"));
    assert_eq!(
        conn.sasl,
        Some(("alice".to_string(), "sasl secret".to_string()))
    );
    let join = conn.expect_join("#tether", None, &[]).await;
    assert_eq!(join.param(1), Some("sekrit"), "{join}");
    conn.expect_join("#Quiet", None, &[]).await;
    conn.sync().await;

    // alice logs in with her soju password (the bcrypt hash was kept).
    let mut c = TestClient::register_pass(t.addr, "alice/fake", PASSWORD, "alicia", &[]).await;
    c.sync().await;
    let status = t.admin_ok("user status").await;
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("alice") && l.contains("2 networks")),
        "{status:?}"
    );
}

/// Writes a ZNC data directory: `configs/znc.conf` with alice (admin,
/// network `fake` at `fake_addr` with SASL PLAIN in the sasl module's
/// registry), bob (a user-level cert module and SASL EXTERNAL, a pinned
/// server, not connecting) and carol (an old configuration without
/// networks); returns the path of `znc.conf`.
fn write_znc(dir: &Path, fake_addr: &str, id_pem: &(String, String)) -> PathBuf {
    let (ip, port) = fake_addr.rsplit_once(':').expect("ip:port");
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    let conf = configs.join("znc.conf");
    std::fs::write(
        &conf,
        format!(
            "// WARNING\n\
             Version = 1.8.2\n\
             <Listener listener0>\n\
             \tPort = 6697\n\
             \tSSL = true\n\
             </Listener>\n\
             LoadModule = webadmin\n\
             \n\
             <User alice>\n\
             \tAdmin = true\n\
             \tNick = alicia\n\
             \tAltNick = alicia_\n\
             \tIdent = aliceident\n\
             \tRealName = Alice Liddell\n\
             \tLoadModule = chansaver\n\
             \t<Pass password>\n\
             \t\tHash = 0123abcd\n\
             \t\tMethod = SHA256\n\
             \t\tSalt = salt\n\
             \t</Pass>\n\
             \t<Network fake>\n\
             \t\tNick = alice_nick\n\
             \t\tServer = {ip} {port} serverpass\n\
             \t\tServer = backup.example.org +6697\n\
             \t\tLoadModule = sasl\n\
             \t\tLoadModule = perform\n\
             \t\t<Chan #znc>\n\
             \t\t\tKey = sekrit\n\
             \t\t</Chan>\n\
             \t\t<Chan #idle>\n\
             \t\t\tDetached = true\n\
             \t\t</Chan>\n\
             \t\t<Chan #off>\n\
             \t\t\tDisabled = true\n\
             \t\t</Chan>\n\
             \t</Network>\n\
             </User>\n\
             <User bob>\n\
             \tPass = sha256#abc#def#\n\
             \tLoadModule = cert\n\
             \t<Network libera>\n\
             \t\tServer = irc.libera.chat +6697\n\
             \t\tIRCConnectEnabled = false\n\
             \t\tTrustedServerFingerprint = {SHA256_PIN}\n\
             \t\tLoadModule = sasl\n\
             \t\t<Chan #rust>\n\
             \t\t</Chan>\n\
             \t</Network>\n\
             </User>\n\
             <User carol>\n\
             \tNick = carol\n\
             \tIRCConnectEnabled = false\n\
             \tServer = irc.example.org 6667\n\
             \t<Chan #old>\n\
             \t</Chan>\n\
             </User>\n"
        ),
    )
    .unwrap();
    let sasl = dir.join("users/alice/networks/fake/moddata/sasl");
    std::fs::create_dir_all(&sasl).unwrap();
    // The registry escapes every byte that is not a letter or digit.
    std::fs::write(
        sasl.join(".registry"),
        "mechanisms PLAIN\nusername alice\npassword sasl%20;secret\n",
    )
    .unwrap();
    let bob_sasl = dir.join("users/bob/networks/libera/moddata/sasl");
    std::fs::create_dir_all(&bob_sasl).unwrap();
    std::fs::write(bob_sasl.join(".registry"), "mechanisms EXTERNAL%20;PLAIN\n").unwrap();
    let cert = dir.join("users/bob/moddata/cert");
    std::fs::create_dir_all(&cert).unwrap();
    std::fs::write(cert.join("user.pem"), format!("{}{}", id_pem.1, id_pem.0)).unwrap();
    conf
}

/// Output of a finished `tether import` run.
#[derive(Debug)]
struct ImportRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the `tether` binary with `args`, bounded by [`IMPORT_TIMEOUT`].
async fn tether_cli(args: &[&std::ffi::OsStr]) -> ImportRun {
    let child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning tether");
    let pid = child.id();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread so that a hung child cannot stall the runtime.
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match timeout(IMPORT_TIMEOUT, rx).await {
        Ok(Ok(Ok(out))) => ImportRun {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Ok(Ok(Err(e))) => panic!("waiting for tether {args:?}: {e}"),
        Ok(Err(_)) => panic!("tether {args:?}: waiter thread vanished"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("tether {args:?} did not exit within {IMPORT_TIMEOUT:?}")
        }
    }
}

/// `tether import <kind> <path> --config <config>`.
async fn run_import(kind: &str, path: &Path, config: &Path) -> ImportRun {
    tether_cli(&[
        "import".as_ref(),
        kind.as_ref(),
        path.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ])
    .await
}

/// The password the report printed for `user`.
fn printed_password(stdout: &str, user: &str) -> String {
    let after = stdout
        .split_once("New passwords")
        .unwrap_or_else(|| panic!("no password list in:\n{stdout}"))
        .1;
    after
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{user}: ")))
        .unwrap_or_else(|| panic!("no password for {user} in:\n{stdout}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn znc_config_is_imported_by_the_binary_once_and_works() {
    let fake = FakeServer::bind(FakeServerOptions {
        caps: vec!["message-tags".into(), "sasl=PLAIN".into()],
        ..FakeServerOptions::default()
    })
    .await;
    let dir = temp_dir("tether-import-znc-");
    let generated = client_cert::generate(KeyType::Ed25519, None).unwrap();
    let pem = (generated.cert_pem.clone(), generated.key_pem.clone());
    let znc = write_znc(&dir.path().join("znc"), &fake.addr.to_string(), &pem);
    let config = dir.path().join("tether.conf");
    std::fs::write(&config, config_text(dir.path())).unwrap();

    let first = run_import("znc", &znc, &config).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let out = &first.stdout;
    for expected in [
        "Imported from ZNC:",
        "users:        3 created, 0 updated, 0 unchanged, 0 skipped",
        "networks:     3 created, 0 updated, 0 unchanged, 0 skipped",
        "channels:     4 created, 0 updated, 0 unchanged, 0 skipped",
        "ZNC password hashes cannot be verified",
        "global settings (listeners, global modules) are not carried",
        "user alice: AltNick alicia_ not carried",
        "user alice, network fake: other servers not carried (tether connects to one address): backup.example.org +6697",
        "user alice, network fake: network module(s) not carried: perform",
        "user alice, network fake: channel #off not carried: it is disabled in ZNC",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        first.stderr.contains("importing 3 user(s) from ZNC"),
        "{first:?}"
    );
    let alice_password = printed_password(out, "alice");
    let bob_password = printed_password(out, "bob");
    assert_ne!(alice_password, bob_password);

    // The second run creates nothing and prints no password.
    let second = run_import("znc", &znc, &config).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    for expected in [
        "users:        0 created, 0 updated, 3 unchanged, 0 skipped",
        "networks:     0 created, 0 updated, 3 unchanged, 0 skipped",
        "channels:     0 created, 0 updated, 4 unchanged, 0 skipped",
    ] {
        assert!(
            second.stdout.contains(expected),
            "missing {expected:?} in:\n{}",
            second.stdout
        );
    }
    assert!(!second.stdout.contains("New passwords"), "{second:?}");

    let db = Db::open(&dir.path().join("tether.db")).unwrap();
    assert_eq!(db.count_users().await.unwrap(), 3);
    let alice = db.get_user("alice").await.unwrap().unwrap();
    assert!(alice.admin);
    assert_eq!(alice.nick.as_deref(), Some("alicia"));
    assert_eq!(alice.realname.as_deref(), Some("Alice Liddell"));
    let nets = db.list_networks(alice.id).await.unwrap();
    assert_eq!(nets.len(), 1, "{nets:?}");
    assert_eq!(nets[0].addr, format!("irc+insecure://{}", fake.addr));
    assert_eq!(nets[0].username.as_deref(), Some("aliceident"));
    assert_eq!(nets[0].sasl_plain_password.as_deref(), Some("sasl secret"));
    let chans = db.list_channels(nets[0].id).await.unwrap();
    let names: Vec<(&str, Option<&str>, bool)> = chans
        .iter()
        .map(|c| (c.name.as_str(), c.key.as_deref(), c.detached))
        .collect();
    assert_eq!(
        names,
        vec![("#znc", Some("sekrit"), false), ("#idle", None, true)]
    );
    let bob = db.get_user("bob").await.unwrap().unwrap();
    assert!(!bob.admin);
    let bob_nets = db.list_networks(bob.id).await.unwrap();
    assert_eq!(bob_nets[0].addr, "ircs://irc.libera.chat:6697");
    assert!(!bob_nets[0].enabled);
    assert_eq!(bob_nets[0].sasl_mechanism.as_deref(), Some("EXTERNAL"));
    assert_eq!(
        client_cert::fingerprints(bob_nets[0].client_cert.as_deref().unwrap()).unwrap(),
        client_cert::fingerprints(&pem.0).unwrap()
    );
    assert_eq!(
        bob_nets[0].server_certfp.as_deref(),
        Some(SHA256_PIN.replace(':', "").to_lowercase().as_str())
    );
    let carol = db.get_user("carol").await.unwrap().unwrap();
    let carol_nets = db.list_networks(carol.id).await.unwrap();
    assert_eq!(carol_nets.len(), 1);
    assert_eq!(carol_nets[0].name, "default");
    assert_eq!(carol_nets[0].addr, "irc+insecure://irc.example.org:6667");
    assert!(!carol_nets[0].enabled);
    assert_eq!(db.list_channels(carol_nets[0].id).await.unwrap().len(), 1);
    db.close().await;
    drop(db);

    // tether on the imported database: alice's network connects with the
    // ZNC settings and SASL from the module registry; she logs in with the
    // printed password.
    let t = Tether::start_in(dir).await;
    let mut conn = fake.accept().await;
    assert_eq!(conn.nick, "alice_nick");
    assert_eq!(conn.user, "aliceident");
    assert_eq!(conn.pass.as_deref(), Some("serverpass"));
    assert_eq!(
        conn.sasl,
        Some(("alice".to_string(), "sasl secret".to_string()))
    );
    let join = conn.expect_join("#znc", None, &[]).await;
    assert_eq!(join.param(1), Some("sekrit"), "{join}");
    conn.expect_join("#idle", None, &[]).await;
    conn.sync().await;
    let mut c =
        TestClient::register_pass(t.addr, "alice/fake", &alice_password, "alicia", &[]).await;
    c.sync().await;
    let mut b = TestClient::register_pass(t.addr, "bob", &bob_password, "bob", &[]).await;
    b.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_unreadable_and_foreign_files() {
    let (dir, config) = config_dir("tether-import-bad-");

    let missing = run_import("soju", &dir.path().join("nope.db"), &config).await;
    assert_ne!(missing.code, Some(0), "{missing:?}");
    assert!(missing.stderr.contains("cannot read"), "{missing:?}");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just some text, not a database at all\n").unwrap();
    let foreign = run_import("soju", &text, &config).await;
    assert_ne!(foreign.code, Some(0), "{foreign:?}");
    assert!(
        foreign.stderr.contains("not a soju database"),
        "{foreign:?}"
    );

    let broken = dir.path().join("znc.conf");
    std::fs::write(&broken, "<User alice>\nNick = a\n</Network>\n").unwrap();
    let syntax = run_import("znc", &broken, &config).await;
    assert_ne!(syntax.code, Some(0), "{syntax:?}");
    assert!(
        syntax
            .stderr
            .contains("znc.conf:3: </Network> closes <User>"),
        "{syntax:?}"
    );

    // Nothing was written: a fatal error stops before tether's database
    // is created.
    assert!(!dir.path().join("tether.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_warns_when_tether_has_the_database_open() {
    let t = Tether::start().await;
    t.create_user("zed").await;
    let soju = t.dir.path().join("soju.db");
    write_soju_db(&soju, "127.0.0.1:1", &identity());
    let config = t.dir.path().join("tether.conf");

    let run = run_import("soju", &soju, &config).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains("is open in another process"),
        "no warning while tether runs: {run:?}"
    );
    assert!(
        run.stdout
            .contains("Restart tether to load the imported users."),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("users:        3 created, 0 updated, 0 unchanged, 0 skipped"),
        "{run:?}"
    );
    // The running tether is unaffected and its own user is still there.
    let status = t.admin_ok("user status").await;
    assert!(status.iter().any(|l| l.starts_with("zed")), "{status:?}");
    let dir = t.shutdown().await;

    // Stopped: no warning, and the second run changes nothing.
    let run = run_import("soju", &soju, &dir.path().join("tether.conf")).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stderr.contains("another process"), "{run:?}");
    assert!(
        run.stdout
            .contains("users:        0 created, 0 updated, 3 unchanged, 0 skipped"),
        "{run:?}"
    );
}

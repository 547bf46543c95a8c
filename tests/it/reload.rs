//! `Server::reload` in process: listeners added and removed, limits that
//! change at run time, directives that need a restart, and a refused
//! configuration that leaves everything as it was. (SIGHUP in the daemon
//! is in `systemd.rs`.)

use std::net::SocketAddr;

use tether::config::{Config, Listener};
use tether::proto::Message;
use tether::server::Bound;

use crate::harness::*;
use crate::support::*;

/// The configuration an in-process bouncer in `t` would read, with
/// `extra` appended.
fn config_with(t: &Tether, extra: &str) -> Config {
    let text = config_text(t.dir.path()) + extra;
    Config::parse_str(&text).unwrap_or_else(|e| panic!("test config rejected:\n{e}\n{text}"))
}

/// The bound address of the first TCP listener configured as `uri`.
fn addr_of(t: &Tether, scheme: &str) -> SocketAddr {
    t.server()
        .bound()
        .iter()
        .find_map(|b| match b {
            Bound::Tcp { listener, addr } if listener.scheme() == scheme => Some(*addr),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {scheme} listener in {:?}", t.server().bound()))
}

/// A connection that answers a PING before registration.
async fn answering(addr: SocketAddr) -> IrcStream {
    let mut irc = IrcStream::connect_tcp(addr).await;
    irc.send("PING probe").await;
    irc.expect("PONG probe", |m| m.command == "PONG").await;
    irc
}

#[tokio::test]
async fn reload_adds_and_removes_listeners_and_resizes_the_connection_limit() {
    let mut t = Tether::start_with(
        temp_dir("tether-reload-"),
        "listen irc://127.0.0.1:0\nmax-connections 100\n",
    )
    .await;
    t.create_user("alice").await;
    let doomed = addr_of(&t, "irc");
    let irc = IrcStream::connect_tcp(doomed).await;
    let mut alice = TestClient::register_pass_on(irc, "alice", PASSWORD, "alice", &[]).await;

    let new = config_with(
        &t,
        "listen irc+insecure://localhost:0\nmax-connections 3\ntitle Renamed\n\
         history-ring-size 10\n",
    );
    let report = t.server_mut().reload(new).await.expect("reload");
    let added = t
        .server()
        .bound()
        .iter()
        .find_map(|b| match b {
            Bound::Tcp {
                listener: Listener::IrcInsecure { addr: cfg },
                addr,
            } if cfg.starts_with("localhost") => Some(*addr),
            _ => None,
        })
        .expect("the added listener is bound");
    for want in [
        format!("listener removed irc://{doomed}"),
        format!("listener added irc+insecure://{added}"),
        "max-connections changed to 3".to_string(),
        "title changed".to_string(),
    ] {
        assert!(report.changes.contains(&want), "{want:?} in {report:?}");
    }
    assert_eq!(report.restart_needed, vec!["history-ring-size"]);
    assert!(report.failures.is_empty(), "{report:?}");

    // The removed listener refuses; its client stays connected.
    let refused = tokio::net::TcpStream::connect(doomed).await;
    assert!(
        refused.is_err(),
        "the removed listener {doomed} still accepts"
    );
    alice.sync().await;

    // Three connections allowed: alice, and two more. The second, a new
    // client, gets the new title as the bouncer's NETWORK name.
    let irc = IrcStream::connect_tcp(added).await;
    let mut second = TestClient::register_pass_on(irc, "alice", PASSWORD, "alice", &[]).await;
    let burst = second.sync().await;
    assert!(
        burst
            .iter()
            .any(|m| m.command == "005" && m.params.iter().any(|p| p == "NETWORK=Renamed")),
        "{}",
        second.transcript()
    );
    let _third = answering(t.addr).await;
    let mut fourth = IrcStream::connect_tcp(added).await;
    let seen = fourth.expect_eof().await;
    assert!(
        seen.iter()
            .any(|m| m.command == "ERROR" && m.params[0].contains("Too many connections")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn reload_changes_login_limits_and_a_refused_config_changes_nothing() {
    let mut t = Tether::start_with(temp_dir("tether-reload-"), "title Before\n").await;
    t.create_user("alice").await;
    let before = t.server().bound().len();

    // An ircs listener whose certificate does not exist: refused as a whole,
    // although the title and login limits in it are fine.
    let dir = t.dir.path().display().to_string();
    let broken = config_with(
        &t,
        &format!(
            "title After\nlogin-limit-user-failures 1\nlisten ircs://127.0.0.1:0\n\
             tls {dir}/missing.pem {dir}/missing.key\n"
        ),
    );
    let err = t
        .server_mut()
        .reload(broken)
        .await
        .expect_err("a missing certificate must refuse the reload");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    assert_eq!(t.server().shared().live().title.as_deref(), Some("Before"));
    assert_eq!(t.server().bound().len(), before);
    assert_eq!(t.server().shared().logins.limit().user_failures, 5);

    let good = config_with(&t, "title After\nlogin-limit-user-failures 1\n");
    let report = t.server_mut().reload(good).await.expect("reload");
    assert!(
        report.changes.contains(&"login limits changed".to_string()),
        "{report:?}"
    );
    assert_eq!(t.server().shared().live().title.as_deref(), Some("After"));

    // One failure is enough now: then even the right password is refused.
    let mut c = TestClient::connect(t.addr).await;
    c.send_msg(&Message::new("PASS", ["wrong"])).await;
    c.send("NICK alice").await;
    c.send("USER alice 0 * :alice").await;
    c.expect_eof().await;
    let mut c = TestClient::connect(t.addr).await;
    c.send_msg(&Message::new("PASS", [PASSWORD])).await;
    c.send("NICK alice").await;
    c.send("USER alice 0 * :alice").await;
    let seen = c.expect_eof().await;
    assert!(
        seen.iter()
            .any(|m| m.command == "ERROR" && m.params[0].contains("Too many failed logins")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn reload_adds_an_ircs_listener_then_switches_to_a_certificate_at_new_paths() {
    let mut t = Tether::start_in(temp_dir("tether-reload-")).await;
    let dir = t.dir.path().to_path_buf();
    let (cert_a, key_a, der_a) = self_signed();
    let (cert_b, key_b, der_b) = self_signed();
    for (name, text) in [
        ("a.pem", &cert_a),
        ("a.key", &key_a),
        ("b.pem", &cert_b),
        ("b.key", &key_b),
    ] {
        std::fs::write(dir.join(name), text).expect("writing a PEM file");
    }
    let d = dir.display();

    // No TLS at startup: the first ircs listener brings the certificate.
    let with_a = config_with(
        &t,
        &format!("listen ircs://127.0.0.1:0\ntls {d}/a.pem {d}/a.key\n"),
    );
    let report = t.server_mut().reload(with_a).await.expect("reload");
    assert!(
        report
            .changes
            .contains(&format!("TLS certificate reloaded from {d}/a.pem")),
        "{report:?}"
    );
    let addr = t.server().tls_addr().expect("the ircs listener is bound");
    let (_irc, cert) = tls_connect(addr).await;
    assert!(cert == der_a, "expected certificate A");

    // Same listener, other files.
    let with_b = config_with(
        &t,
        &format!("listen ircs://127.0.0.1:0\ntls {d}/b.pem {d}/b.key\n"),
    );
    let report = t.server_mut().reload(with_b).await.expect("reload");
    assert!(
        !report.changes.iter().any(|c| c.starts_with("listener")),
        "{report:?}"
    );
    assert_eq!(t.server().tls_addr(), Some(addr));
    let (irc, cert) = tls_connect(addr).await;
    assert!(cert == der_b, "expected certificate B from the new paths");
    t.create_user("alice").await;
    let mut alice = TestClient::register_pass_on(irc, "alice", PASSWORD, "alice", &[]).await;
    alice.sync().await;
}

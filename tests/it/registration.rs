//! Client registration: PASS and SASL PLAIN logins, bound to a network or
//! to the bouncer itself, and refused logins.

use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

/// The client asked for another nick: the bouncer must have welcomed it
/// with the nick it has on the network, and go on serving it.
async fn assert_welcomed_with_upstream_nick(c: &mut TestClient, s: &Setup) {
    assert!(
        irc_eq(&c.nick, &s.conn.nick),
        "001 should carry the upstream nick {:?}, got {:?}\n{}",
        s.conn.nick,
        c.nick,
        c.transcript()
    );
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_login_binds_client_to_network_with_upstream_nick() {
    let s = Setup::new().await;
    let mut c = TestClient::register_pass(
        s.tether.addr,
        "alice/fake@phone",
        PASSWORD,
        "somebodyelse",
        &[],
    )
    .await;
    assert_welcomed_with_upstream_nick(&mut c, &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_login_binds_client_to_network_with_upstream_nick() {
    let s = Setup::new().await;
    let mut c = TestClient::register_sasl(
        s.tether.addr,
        "alice/fake@laptop",
        PASSWORD,
        "somebodyelse",
        &[],
    )
    .await;
    assert_welcomed_with_upstream_nick(&mut c, &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_login_without_network_is_the_bouncer_connection() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let mut c = TestClient::register_sasl(t.addr, "alice", PASSWORD, "alice", &[]).await;
    c.sync().await;
    // Only BouncerServ is reachable there; it answers.
    service_command(&mut c, "help").await;
    expect_service_line(&mut c, "available commands:", |l| {
        l.contains("available commands:")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_login_without_network_is_the_bouncer_connection() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let mut c = TestClient::register_pass(t.addr, "alice", PASSWORD, "alice", &[]).await;
    c.sync().await;
    service_command(&mut c, "help").await;
    expect_service_line(&mut c, "available commands:", |l| {
        l.contains("available commands:")
    })
    .await;
}

/// Registers with PASS and expects 464 + `ERROR :Invalid credentials` and
/// the connection to be closed, without any 001.
async fn expect_pass_refused(addr: std::net::SocketAddr, user: &str, password: &str) {
    let mut c = TestClient::connect(addr).await;
    c.send_msg(&Message::new("PASS", [password])).await;
    c.send("NICK alice").await;
    c.send(&format!("USER {user} 0 * :Alice")).await;
    let all = c.expect_eof().await;
    let pos_464 = all
        .iter()
        .position(|m| m.command == "464")
        .unwrap_or_else(|| panic!("no 464 for a wrong PASS as {user:?}\n{}", c.transcript()));
    assert_eq!(
        all[pos_464].params.last().map(String::as_str),
        Some("Invalid credentials"),
        "464 text\n{}",
        c.transcript()
    );
    let pos_error = all
        .iter()
        .position(|m| m.command == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR before close\n{}", c.transcript()));
    assert!(
        pos_error > pos_464,
        "ERROR must follow 464\n{}",
        c.transcript()
    );
    assert_eq!(
        all[pos_error].param(0),
        Some("Invalid credentials"),
        "ERROR text\n{}",
        c.transcript()
    );
    assert!(
        !all.iter().any(|m| m.command == "001"),
        "a refused client must not be welcomed\n{}",
        c.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pass_is_refused_with_464_error_and_close() {
    let s = Setup::new().await;
    expect_pass_refused(s.tether.addr, "alice/fake@phone", "not the password").await;
    // Bouncer connection too.
    expect_pass_refused(s.tether.addr, "alice", "not the password").await;
    // The right password still works afterwards.
    let mut c = s.client("phone", &[]).await;
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_is_refused_like_a_wrong_password() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    expect_pass_refused(t.addr, "nobody", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sasl_password_is_refused_with_904() {
    let s = Setup::new().await;
    let mut c = TestClient::connect(s.tether.addr).await;
    c.send("CAP LS 302").await;
    let ls = collect_until(&mut c, "CAP LS (last line)", |m| {
        m.command == "CAP" && m.param(1) == Some("LS") && m.param(2) != Some("*")
    })
    .await;
    let offered: Vec<String> = ls
        .iter()
        .filter_map(|m| m.params.last())
        .flat_map(|l| l.split_whitespace().map(str::to_string))
        .collect();
    assert!(
        offered
            .iter()
            .any(|c| c == "sasl" || c.starts_with("sasl=")),
        "sasl not offered: {offered:?}"
    );
    c.send("NICK alice").await;
    c.send("USER alice/fake@phone 0 * :Alice").await;
    c.request_caps(&["sasl"]).await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect("AUTHENTICATE +", |m| {
        m.command == "AUTHENTICATE" && m.param(0) == Some("+")
    })
    .await;
    c.authenticate_plain("", "alice/fake@phone", "not the password")
        .await;
    let m = c
        .expect("SASL result", |m| {
            matches!(
                m.command.as_str(),
                "001" | "902" | "903" | "904" | "905" | "906"
            )
        })
        .await;
    assert_eq!(
        m.command,
        "904",
        "expected 904 for a wrong SASL password\n{}",
        c.transcript()
    );
}

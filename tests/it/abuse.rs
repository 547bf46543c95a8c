//! Abusive clients: command floods, endless lines, connection storms and
//! password guessing. Each test runs in a few seconds with limits tuned
//! down through [`Tether::start_adjusted`] or the `client-flood-*` and
//! `login-limit-*` directives; the production values are in
//! the README ("Abuse and faults").

use std::time::Duration;

use tether::config::{ClientFlood, Config, LoginLimit};
use tether::conn::FloodControl;
use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

/// Upstream pacing out of the way, so that what the fake server sees is
/// paced by the client limit alone.
fn fast_upstream(c: &mut Config) {
    c.upstream_flood = FloodControl {
        burst: 100_000,
        interval: Duration::from_micros(1),
    };
}

/// A bouncer with users alice and bob, each on their own connection to the
/// same fake server.
async fn two_users(adjust: impl FnOnce(&mut Config)) -> (Tether, FakeServer, FakeConn, FakeConn) {
    let dir = temp_dir("tether-it-");
    let tether = Tether::start_adjusted(dir, "", |c| {
        fast_upstream(c);
        adjust(c);
    })
    .await;
    tether.create_user("alice").await;
    tether.create_user("bob").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let alice_up = tether.create_network("alice", "fake", &fake).await;
    let bob_up = tether.create_network("bob", "fake", &fake).await;
    (tether, fake, alice_up, bob_up)
}

fn flood_lines(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(format!("PRIVMSG #flood :{i}\r\n").as_bytes());
    }
    out
}

/// Read the flood's PRIVMSGs from the upstream until `upto` have arrived
/// or the connection has nothing more; returns their texts in order.
async fn upstream_flood_texts(conn: &mut FakeConn, upto: usize) -> Vec<String> {
    let mut texts = Vec::new();
    while texts.len() < upto {
        let m = conn
            .expect("flood PRIVMSG", |m| m.command == "PRIVMSG")
            .await;
        texts.push(m.params[1].clone());
    }
    texts
}

#[tokio::test]
async fn command_flood_is_paced_in_order_and_others_are_unaffected() {
    let (tether, _fake, mut alice_up, _bob_up) = two_users(|c| {
        c.client_flood = ClientFlood {
            burst: 20,
            per_second: 150.0,
            excess_after: Duration::from_secs(30),
        };
    })
    .await;
    let mut flooder = tether
        .connect_client("alice", Some("fake"), Some("flood"), "alice", &[])
        .await;
    let mut other = tether
        .connect_client("bob", Some("fake"), Some("pc"), "bob", &[])
        .await;
    const N: usize = 300;
    flooder.send_raw(&flood_lines(N)).await;
    // About two seconds of paced input are queued in alice's socket; bob's
    // round trip does not wait for them.
    other.sync().await;
    let texts = upstream_flood_texts(&mut alice_up, N).await;
    let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(texts, want, "every flooded line arrives, in order");
    // Held back, not disconnected: the flooder still gets its PONG.
    flooder.sync().await;
    other.sync().await;
}

#[tokio::test]
async fn endless_flood_gets_excess_flood_and_only_that_client_goes() {
    let (tether, _fake, mut alice_up, _bob_up) = two_users(|c| {
        c.client_flood = ClientFlood {
            burst: 10,
            per_second: 50.0,
            excess_after: Duration::from_millis(300),
        };
    })
    .await;
    let mut flooder = tether
        .connect_client("alice", Some("fake"), Some("flood"), "alice", &[])
        .await;
    let mut sibling = tether
        .connect_client("alice", Some("fake"), Some("phone"), "alice", &[])
        .await;
    let mut other = tether
        .connect_client("bob", Some("fake"), Some("pc"), "bob", &[])
        .await;
    const N: usize = 2000;
    flooder.send_raw(&flood_lines(N)).await;
    let seen = flooder.expect_eof().await;
    assert!(
        seen.iter()
            .any(|m| m.command == "ERROR" && m.params[0] == "Excess flood"),
        "{}",
        flooder.transcript()
    );
    // What was let through before the cut reached the server in order.
    let mark = "after-flood";
    sibling.send(&format!("PRIVMSG #flood :{mark}")).await;
    let mut texts = Vec::new();
    loop {
        let m = alice_up.expect("PRIVMSG", |m| m.command == "PRIVMSG").await;
        if m.params[1] == mark {
            break;
        }
        texts.push(m.params[1].clone());
    }
    assert!(
        texts.len() >= 10 && texts.len() < N,
        "{} lines",
        texts.len()
    );
    let want: Vec<String> = (0..texts.len()).map(|i| i.to_string()).collect();
    assert_eq!(texts, want);
    sibling.sync().await;
    other.sync().await;
}

#[tokio::test]
async fn ten_megabytes_without_a_newline_then_a_real_line() {
    let mut s = Setup::new().await;
    let mut c = s.client("pc", &[]).await;
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..160 {
        c.send_raw(&chunk).await;
    }
    c.send_raw(b"\r\n").await;
    c.expect("417", |m| m.command == "417").await;
    // The next line is read normally.
    c.send("PRIVMSG #chan :still here").await;
    s.conn
        .expect("the PRIVMSG", |m| {
            m.command == "PRIVMSG" && m.param(1) == Some("still here")
        })
        .await;
    c.sync().await;
}

/// Let this process hold a few thousand sockets (the default soft limit
/// may be 1024).
fn raise_fd_limit(want: u64) {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[tokio::test]
async fn a_thousand_unregistered_connections() {
    raise_fd_limit(8192);
    let dir = temp_dir("tether-it-");
    let tether = Tether::start_with(dir, "max-connections 200\nregistration-timeout 1\n").await;
    tether.create_user("alice").await;
    tether.create_user("bob").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let _up = tether.create_network("bob", "fake", &fake).await;
    let mut bob = tether
        .connect_client("bob", Some("fake"), None, "bob", &[])
        .await;
    const N: usize = 1000;
    let mut lurkers = Vec::with_capacity(N);
    for _ in 0..N {
        lurkers.push(TestClient::connect(tether.addr).await);
    }
    // The registered client is served while the storm is on.
    bob.sync().await;
    let (mut refused, mut timed_out) = (0, 0);
    for c in &mut lurkers {
        let seen = c.expect_eof().await;
        let error = seen.iter().find(|m| m.command == "ERROR");
        match error.map(|m| m.params[0].as_str()) {
            Some(e) if e.contains("Too many connections") => refused += 1,
            Some(e) if e.contains("registration timed out") => timed_out += 1,
            _ => panic!("unexpected end: {}", c.transcript()),
        }
    }
    assert_eq!(refused + timed_out, N);
    // 200 permits, one held by bob.
    assert!(
        refused >= N - 199,
        "{refused} refused, {timed_out} timed out"
    );
    assert!(timed_out > 0);
    drop(lurkers);
    bob.sync().await;
    // Their permits are back: a new registration succeeds.
    let mut alice = tether
        .connect_client("alice", None, None, "alice", &[])
        .await;
    alice.sync().await;
}

/// Register with a password and return how the connection ended.
async fn try_login(tether: &Tether, user: &str, password: &str) -> Vec<Message> {
    let mut c = TestClient::connect(tether.addr).await;
    c.send_msg(&Message::new("PASS", [password])).await;
    c.send(&format!("NICK {user}")).await;
    c.send(&format!("USER {user} 0 * :{user}")).await;
    c.expect_eof().await
}

fn error_text(seen: &[Message]) -> String {
    seen.iter()
        .find(|m| m.command == "ERROR")
        .map(|m| m.params[0].clone())
        .unwrap_or_default()
}

const THROTTLED: &str = "Too many failed logins, try again later";

#[tokio::test]
async fn password_guessing_is_throttled_per_user() {
    let dir = temp_dir("tether-it-");
    // The default limits (5 per user, 20 per address, in a minute).
    let tether = Tether::start_in(dir).await;
    tether.create_user("alice").await;
    tether.create_user("bob").await;
    let mut ends = Vec::new();
    for _ in 0..10 {
        ends.push(error_text(&try_login(&tether, "alice", "wrong").await));
    }
    assert!(
        ends[..5].iter().all(|e| e == "Invalid credentials"),
        "{ends:?}"
    );
    assert!(ends[5..].iter().all(|e| e == THROTTLED), "{ends:?}");
    // Even the right password is refused for alice now.
    let seen = try_login(&tether, "alice", PASSWORD).await;
    assert_eq!(error_text(&seen), THROTTLED);
    // Bob, from the same address, is not affected.
    let mut bob = tether.connect_client("bob", None, None, "bob", &[]).await;
    bob.sync().await;
}

#[tokio::test]
async fn password_guessing_is_throttled_per_address_and_over_sasl() {
    let dir = temp_dir("tether-it-");
    let tether = Tether::start_adjusted(dir, "", |c| {
        c.login_limit = LoginLimit {
            user_failures: 100,
            ip_failures: 4,
            ..LoginLimit::default()
        };
    })
    .await;
    tether.create_user("bob").await;
    for n in 0..4 {
        let seen = try_login(&tether, &format!("guess{n}"), "wrong").await;
        assert_eq!(error_text(&seen), "Invalid credentials");
    }
    // The address is locked for everyone, SASL included.
    let mut c = TestClient::connect(tether.addr).await;
    c.request_caps(&["sasl"]).await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect("AUTHENTICATE +", |m| m.command == "AUTHENTICATE")
        .await;
    c.authenticate_plain("", "bob", PASSWORD).await;
    let seen = c.expect_eof().await;
    assert!(
        seen.iter().any(|m| m.command == "904"),
        "{}",
        c.transcript()
    );
    assert_eq!(error_text(&seen), THROTTLED);
}

#[tokio::test]
async fn login_limits_from_the_config_file_take_effect() {
    let dir = temp_dir("tether-it-");
    // Two failures instead of the default five.
    let tether = Tether::start_with(
        dir,
        "login-limit-user-failures 2\nlogin-limit-lockout 10m\nlogin-limit-max-lockout 1h\n",
    )
    .await;
    tether.create_user("alice").await;
    for _ in 0..2 {
        let seen = try_login(&tether, "alice", "wrong").await;
        assert_eq!(error_text(&seen), "Invalid credentials");
    }
    let seen = try_login(&tether, "alice", PASSWORD).await;
    assert_eq!(error_text(&seen), THROTTLED);
}

#[tokio::test]
async fn client_flood_limits_from_the_config_file_take_effect() {
    let dir = temp_dir("tether-it-");
    // Under the defaults (a burst of 100) these 50 lines would all pass at
    // once; here the sixth waits half a second and the eighth goes over the
    // one second of excess.
    let tether = Tether::start_with(
        dir,
        "client-flood-burst 5\nclient-flood-rate 2\nclient-flood-excess-after 1s\n",
    )
    .await;
    tether.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let _up = tether.create_network("alice", "fake", &fake).await;
    let mut flooder = tether
        .connect_client("alice", Some("fake"), Some("flood"), "alice", &[])
        .await;
    flooder.send_raw(&flood_lines(50)).await;
    let seen = flooder.expect_eof().await;
    assert!(
        seen.iter()
            .any(|m| m.command == "ERROR" && m.params[0] == "Excess flood"),
        "{}",
        flooder.transcript()
    );
}

//! Device certificates: with `client-cert-auth true`, a user registers the
//! TLS client certificate of a device (`device-certificate create`) and
//! that device logs in with SASL EXTERNAL, without a password.

use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

/// A bouncer with an ircs:// listener, `client-cert-auth` as given, and the
/// users alice and bob.
async fn start(client_cert_auth: bool) -> (Tether, std::net::SocketAddr) {
    let dir = temp_dir("tether-it-devcert-");
    let (cert, key, _) = self_signed();
    install_cert(dir.path(), &cert, &key);
    let extra = format!(
        "{}client-cert-auth {client_cert_auth}\n",
        tls_config_lines(dir.path())
    );
    let t = Tether::start_with(dir, &extra).await;
    t.create_user("alice").await;
    t.create_user("bob").await;
    let addr = t.server().tls_addr().expect("an ircs listener");
    (t, addr)
}

/// A PASS login over TLS, presenting `id` if given.
async fn pass_login(
    addr: std::net::SocketAddr,
    id: Option<&ClientIdentity>,
    user: &str,
) -> TestClient {
    let (irc, _) = tls_connect_as(addr, id).await;
    TestClient::register_pass_on(irc, user, PASSWORD, user, &[]).await
}

/// Start registering over TLS up to the SASL mechanism choice; returns the
/// client and the `sasl` value of its CAP LS.
async fn begin_sasl(
    addr: std::net::SocketAddr,
    id: Option<&ClientIdentity>,
    login: &str,
) -> (TestClient, String) {
    let (irc, _) = tls_connect_as(addr, id).await;
    let mut c = TestClient {
        irc,
        nick: "dev".to_string(),
    };
    c.send("CAP LS 302").await;
    // The list may span several lines (`CAP * LS * :...`).
    let mut sasl = String::new();
    loop {
        let ls = c
            .expect("CAP LS", |m| m.command == "CAP" && m.param(1) == Some("LS"))
            .await;
        if let Some(found) = ls
            .params
            .last()
            .and_then(|caps| caps.split(' ').find(|c| c.starts_with("sasl")))
        {
            sasl = found.to_string();
        }
        if ls.param(2) != Some("*") {
            break;
        }
    }
    c.send("NICK dev").await;
    c.send(&format!("USER {login} 0 * :dev")).await;
    c.request_caps(&["sasl"]).await;
    (c, sasl)
}

/// `AUTHENTICATE EXTERNAL` with `authzid`; returns the final SASL numeric.
async fn external(c: &mut TestClient, authzid: &str) -> Message {
    c.send("AUTHENTICATE EXTERNAL").await;
    let m = c
        .expect("AUTHENTICATE + or a failure", |m| {
            (m.command == "AUTHENTICATE" && m.param(0) == Some("+")) || m.command == "904"
        })
        .await;
    if m.command == "904" {
        return m;
    }
    if authzid.is_empty() {
        c.send("AUTHENTICATE +").await;
    } else {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(authzid);
        c.send(&format!("AUTHENTICATE {encoded}")).await;
    }
    c.expect("SASL result", |m| {
        matches!(m.command.as_str(), "902" | "903" | "904" | "905" | "906")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_device_logs_in_with_sasl_external() {
    let (t, addr) = start(true).await;
    let (laptop, fp) = client_identity();

    // Registered from a password login of the device itself.
    let mut c = pass_login(addr, Some(&laptop), "alice").await;
    service_command(&mut c, "device-certificate create -label laptop").await;
    let added = expect_service_line(&mut c, "added", |l| l.starts_with("added")).await;
    let short: String = fp.as_bytes()[..12]
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(added, format!("added device certificate {short}"));
    service_command(&mut c, "device-certificate status").await;
    let status = expect_service_line(&mut c, "status", |l| l.starts_with(&short)).await;
    assert!(
        status.contains("\"laptop\"") && status.contains("never used"),
        "{status:?}"
    );

    // The device now logs in without a password, network suffix included.
    let (mut d, sasl) = begin_sasl(addr, Some(&laptop), "alice@laptop").await;
    assert_eq!(sasl, "sasl=PLAIN,EXTERNAL");
    let result = external(&mut d, "").await;
    assert_eq!(result.command, "903", "{}", d.transcript());
    d.send("CAP END").await;
    d.expect_welcome().await;
    service_command(&mut d, "device-certificate status").await;
    let status = expect_service_line(&mut d, "status", |l| l.starts_with(&short)).await;
    assert!(status.contains("last used"), "{status:?}");

    // An authzid naming the owner works; one naming someone else does not.
    let (mut d, _) = begin_sasl(addr, Some(&laptop), "alice").await;
    assert_eq!(external(&mut d, "alice").await.command, "903");
    let (mut d, _) = begin_sasl(addr, Some(&laptop), "bob").await;
    assert_eq!(external(&mut d, "bob").await.command, "904");
    drop(t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_needs_a_registered_certificate() {
    let (t, addr) = start(true).await;
    // No certificate: EXTERNAL is neither offered nor accepted.
    let (mut d, sasl) = begin_sasl(addr, None, "alice").await;
    assert_eq!(sasl, "sasl=PLAIN");
    d.send("AUTHENTICATE EXTERNAL").await;
    let mechs = d.expect_cmd("908").await;
    assert_eq!(mechs.param(1), Some("PLAIN"));
    d.expect_cmd("904").await;

    // A certificate nobody registered.
    let (stranger, _) = client_identity();
    let (mut d, sasl) = begin_sasl(addr, Some(&stranger), "alice").await;
    assert_eq!(sasl, "sasl=PLAIN,EXTERNAL");
    assert_eq!(external(&mut d, "").await.command, "904");
    // The same connection can still log in with a password.
    d.send("AUTHENTICATE PLAIN").await;
    d.expect("AUTHENTICATE +", |m| m.command == "AUTHENTICATE")
        .await;
    d.authenticate_plain("", "alice", PASSWORD).await;
    d.expect_cmd("903").await;
    drop(t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_certificates_belong_to_their_user() {
    let (t, addr) = start(true).await;
    let (phone, fp) = client_identity();
    let mut alice = pass_login(addr, None, "alice").await;
    service_command(
        &mut alice,
        &format!("device-certificate create -fingerprint {fp} -label phone"),
    )
    .await;
    expect_service_line(&mut alice, "added", |l| l.starts_with("added")).await;

    // Bob neither sees nor deletes it, nor registers it again.
    let mut bob = pass_login(addr, None, "bob").await;
    service_command(&mut bob, "device-certificate status").await;
    expect_service_line(&mut bob, "none", |l| l == "no device certificates").await;
    service_command(
        &mut bob,
        &format!("device-certificate delete {}", &fp[..12]),
    )
    .await;
    let refused = expect_service_line(&mut bob, "error", |l| l.starts_with("error:")).await;
    assert!(
        refused.contains("no device certificate matches"),
        "{refused:?}"
    );
    service_command(
        &mut bob,
        &format!("device-certificate create -fingerprint {fp}"),
    )
    .await;
    let refused = expect_service_line(&mut bob, "error", |l| l.starts_with("error:")).await;
    assert!(refused.contains("registered already"), "{refused:?}");

    // Bad input is refused with a reason.
    for (command, why) in [
        (
            "device-certificate create",
            "presented no client certificate",
        ),
        (
            "device-certificate create -fingerprint abcd",
            "invalid -fingerprint",
        ),
        ("device-certificate delete abc", "at least its first 12"),
    ] {
        service_command(&mut alice, command).await;
        let e = expect_service_line(&mut alice, "error", |l| l.starts_with("error:")).await;
        assert!(e.contains(why), "{command}: {e:?}");
    }

    // After alice deletes it (by an uppercase, colon-separated prefix), the
    // phone cannot log in with it any more.
    let (mut d, _) = begin_sasl(addr, Some(&phone), "alice").await;
    assert_eq!(external(&mut d, "").await.command, "903");
    let prefix = fp.as_bytes()[..16]
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    service_command(&mut alice, &format!("device-certificate delete {prefix}")).await;
    expect_service_line(&mut alice, "deleted", |l| l.starts_with("deleted")).await;
    let (mut d, _) = begin_sasl(addr, Some(&phone), "alice").await;
    assert_eq!(external(&mut d, "").await.command, "904");
    drop(t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_cert_auth_certificates_are_ignored() {
    let (t, addr) = start(false).await;
    let (laptop, fp) = client_identity();
    let mut c = pass_login(addr, Some(&laptop), "alice").await;
    service_command(
        &mut c,
        &format!("device-certificate create -fingerprint {fp}"),
    )
    .await;
    let e = expect_service_line(&mut c, "error", |l| l.starts_with("error:")).await;
    assert!(e.contains("client-cert-auth"), "{e:?}");
    let (mut d, sasl) = begin_sasl(addr, Some(&laptop), "alice").await;
    assert_eq!(sasl, "sasl=PLAIN");
    d.send("AUTHENTICATE EXTERNAL").await;
    d.expect_cmd("904").await;
    drop(t);
}

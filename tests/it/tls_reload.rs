//! Reloading the TLS certificate: on SIGHUP in the daemon, and with
//! `Server::reload_tls` in process. New connections get the new
//! certificate; established ones keep working.

use std::net::SocketAddr;

use crate::harness::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_tls_certificate_for_new_connections() {
    let dir = temp_dir("tether-tls-");
    let (cert_a, key_a, der_a) = self_signed();
    let (cert_b, key_b, der_b) = self_signed();
    assert_ne!(der_a, der_b);
    install_cert(dir.path(), &cert_a, &key_a);
    let config = dir.path().join("tether.conf");
    std::fs::write(
        &config,
        format!(
            "listen ircs://127.0.0.1:0\n\
             tls {d}/cert.pem {d}/key.pem\n\
             db sqlite3 {d}/tether.db\n\
             hostname tether.test\n",
            d = dir.path().display()
        ),
    )
    .expect("writing config");

    let mut tether = TetherProcess::spawn(&config, dir.path());
    let (addrs, password) = tether.wait_startup(&["ircs"], true).await;
    let addr: SocketAddr = addrs[0]
        .parse()
        .unwrap_or_else(|e| panic!("ircs listener address {:?}: {e}", addrs[0]));
    let password = password.expect("first-run password");

    let (irc, cert) = tls_connect(addr).await;
    assert!(
        cert == der_a,
        "the first connection did not get certificate A"
    );
    let mut first = TestClient::register_pass_on(irc, "admin", &password, "admin", &[]).await;
    first.sync().await;

    install_cert(dir.path(), &cert_b, &key_b);
    tether.signal("HUP");
    tether
        .wait_for_line("\"TLS certificate reloaded\"", |l| {
            l.contains("TLS certificate reloaded")
        })
        .await;

    let (irc, cert) = tls_connect(addr).await;
    assert!(
        cert == der_b,
        "a connection after SIGHUP did not get certificate B"
    );
    let mut second = TestClient::register_pass_on(irc, "admin", &password, "admin", &[]).await;
    second.sync().await;

    // The connection made before the reload is unaffected.
    first.sync().await;

    // SIGINT is a graceful shutdown too.
    tether.signal("INT");
    first.expect_cmd("ERROR").await;
    let status = tether.wait_exit().await;
    assert!(
        status.success(),
        "tether exited with {status}\n{:#?}",
        tether.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_tls_in_process_switches_certificate_and_keeps_old_on_error() {
    let dir = temp_dir("tether-tls-");
    let (cert_a, key_a, der_a) = self_signed();
    let (cert_b, key_b, der_b) = self_signed();
    install_cert(dir.path(), &cert_a, &key_a);
    let extra = tls_config_lines(dir.path());
    let path = dir.path().to_path_buf();
    let t = Tether::start_with(dir, &extra).await;
    let addr = t
        .server()
        .tls_addr()
        .expect("tls_addr() with an ircs listener");
    assert_ne!(addr.port(), 0);

    let (irc, cert) = tls_connect(addr).await;
    assert!(cert == der_a, "expected certificate A");
    t.create_user("alice").await;
    let mut first = TestClient::register_pass_on(irc, "alice", PASSWORD, "alice", &[]).await;

    // A broken certificate file: the reload fails, A is still served.
    std::fs::write(path.join("cert.pem"), "not a certificate").expect("write");
    assert!(
        t.server().reload_tls().is_err(),
        "reload_tls accepted a broken certificate"
    );
    let (_irc, cert) = tls_connect(addr).await;
    assert!(cert == der_a, "a failed reload must keep certificate A");

    install_cert(&path, &cert_b, &key_b);
    t.server()
        .reload_tls()
        .expect("reload_tls with certificate B");
    let (irc, cert) = tls_connect(addr).await;
    assert!(cert == der_b, "expected certificate B after reload_tls");
    let mut second = TestClient::register_pass_on(irc, "alice", PASSWORD, "alice", &[]).await;
    second.sync().await;
    first.sync().await;
}

//! Interop with a real IRC server (InspIRCd): a client through tether and
//! a client directly on the server talk in a channel.

use crate::harness::*;
use crate::inspircd::Inspircd;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_flow_both_ways_through_tether_on_inspircd() {
    let started = tokio::task::spawn_blocking(Inspircd::start)
        .await
        .expect("inspircd start task");
    let Some(ircd) = started.expect("start inspircd") else {
        println!("skipped: inspircd not installed");
        return;
    };
    let t = Tether::start().await;
    t.create_user("alice").await;

    // The direct client registers (InspIRCd needs ~1 s) and watches for
    // tether's upstream connection with MONITOR, so that no polling is
    // needed to know when tether is registered on the server.
    let mut direct = TestClient::connect(ircd.addr()).await;
    direct.set_label("direct client on inspircd");
    direct.set_auto_pong(true);
    direct.send("NICK direct").await;
    direct.send("USER direct 0 * :Direct client").await;
    direct.expect_welcome().await;
    direct.send("MONITOR + tetheralice").await;
    direct
        .expect("tetheralice offline (731) before tether connects", |m| {
            m.command == "731"
        })
        .await;

    let uri = format!("irc+insecure://{}", ircd.addr());
    let lines = t
        .create_network_at("alice", "insp", &uri, &["-nick", "tetheralice"])
        .await
        .expect("creating the network");
    assert!(
        lines.iter().any(|l| l == "created network \"insp\""),
        "{lines:?}"
    );
    direct
        .expect("tetheralice online (730)", |m| {
            m.command == "730"
                && m.params
                    .last()
                    .is_some_and(|l| l.split(',').any(|t| t.starts_with("tetheralice")))
        })
        .await;

    direct.send("JOIN #interop").await;
    direct
        .expect("366 #interop", |m| {
            m.command == "366" && m.param(1) == Some("#interop")
        })
        .await;

    let mut c = t
        .connect_client("alice", Some("insp"), Some("phone"), "phone", &[])
        .await;
    c.set_auto_pong(true);
    assert!(
        irc_eq(&c.nick, "tetheralice"),
        "001 should carry the upstream nick tetheralice, got {}",
        c.nick
    );
    c.send("JOIN #interop").await;
    expect_own_join(&mut c, "tetheralice", "#interop").await;
    direct
        .expect("tetheralice joins #interop", |m| {
            m.command == "JOIN"
                && m.source_nick() == Some("tetheralice")
                && m.param(0) == Some("#interop")
        })
        .await;

    // tether client -> direct client.
    c.send("PRIVMSG #interop :hello from tether").await;
    let m = direct
        .expect("message from tether", |m| {
            is_privmsg(m, "#interop", "hello from tether")
        })
        .await;
    assert_eq!(m.source_nick(), Some("tetheralice"), "{m}");

    // direct client -> tether client.
    direct.send("PRIVMSG #interop :hello from direct").await;
    let m = c
        .expect("message from the direct client", |m| {
            is_privmsg(m, "#interop", "hello from direct")
        })
        .await;
    assert_eq!(m.source_nick(), Some("direct"), "{m}");

    // A private message too.
    direct.send("PRIVMSG tetheralice :psst").await;
    let m = c
        .expect("private message", |m| is_privmsg(m, "tetheralice", "psst"))
        .await;
    assert_eq!(m.source_nick(), Some("direct"), "{m}");

    c.sync().await;
    let status = t.network_status("alice").await;
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("insp (") && l.ends_with("connected as tetheralice")),
        "{status:?}"
    );
    drop(ircd);
}

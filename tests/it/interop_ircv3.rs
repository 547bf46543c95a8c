//! IRCv3 through tether against a real server (InspIRCd 3 with its ircv3
//! modules): the capabilities tether negotiates and passes on,
//! labeled-response end to end, the server's echo-message, and AWAY,
//! SETNAME and CHGHOST from another user relayed to tether's clients.

use crate::harness::*;
use crate::inspircd::{Inspircd, OPER_NAME, OPER_PASSWORD};
use crate::support::*;

/// Caps the direct client asks InspIRCd for.
const DIRECT_CAPS: &[&str] = &["setname", "message-tags", "echo-message"];

/// Caps InspIRCd (with the test modules) offers that tether passes on to
/// its clients while the network has them.
const EXPECTED_PASSTHROUGH: &[&str] = &[
    "account-notify",
    "account-tag",
    "away-notify",
    "chghost",
    "extended-join",
    "labeled-response",
    "message-tags",
    "multi-prefix",
];

/// A running InspIRCd, tether with alice's network `insp` registered on
/// it as `tetheralice`, and a client `direct` on InspIRCd in `#interop`.
struct Interop {
    ircd: Inspircd,
    tether: Tether,
    direct: TestClient,
}

impl Interop {
    /// `None` when InspIRCd is not installed (outside CI).
    async fn start() -> Option<Interop> {
        let started = tokio::task::spawn_blocking(Inspircd::start)
            .await
            .expect("inspircd start task");
        let ircd = started.expect("start inspircd")?;
        let tether = Tether::start().await;
        tether.create_user("alice").await;

        let mut direct = TestClient::connect(ircd.addr()).await;
        direct.set_label("direct client on inspircd");
        direct.set_auto_pong(true);
        direct.send("CAP LS 302").await;
        direct.send("NICK direct").await;
        direct.send("USER direct 0 * :Direct client").await;
        direct.request_caps(DIRECT_CAPS).await;
        direct.send("CAP END").await;
        direct.expect_welcome().await;
        // MONITOR says when tether has registered, without polling.
        direct.send("MONITOR + tetheralice").await;
        direct
            .expect("tetheralice offline (731)", |m| m.command == "731")
            .await;
        let uri = format!("irc+insecure://{}", ircd.addr());
        tether
            .create_network_at("alice", "insp", &uri, &["-nick", "tetheralice"])
            .await
            .expect("creating the network");
        direct
            .expect("tetheralice online (730)", |m| m.command == "730")
            .await;
        direct.send("JOIN #interop").await;
        direct
            .expect("366 #interop", |m| {
                m.command == "366" && m.param(1) == Some("#interop")
            })
            .await;
        Some(Interop {
            ircd,
            tether,
            direct,
        })
    }

    /// A client of alice on `insp` with `caps`, joined to `#interop`.
    async fn client(&mut self, name: &str, caps: &[&str]) -> TestClient {
        let mut c = self
            .tether
            .connect_client("alice", Some("insp"), Some(name), name, caps)
            .await;
        c.set_label(format!("tether client {name}"));
        c.set_auto_pong(true);
        c.send("JOIN #interop").await;
        c.expect("366 #interop or an already joined channel", |m| {
            (m.command == "366" && m.param(1) == Some("#interop"))
                || (m.command == "JOIN" && m.param(0) == Some("#interop"))
        })
        .await;
        c.sync().await;
        c
    }
}

/// The passthrough caps a registered client is offered (`CAP LS 302`).
async fn offered_caps(c: &mut TestClient) -> Vec<String> {
    c.send("CAP LS 302").await;
    let mut caps = Vec::new();
    loop {
        let m = c.expect("CAP LS", |m| m.command == "CAP").await;
        let more = m.param(2) == Some("*");
        caps.extend(
            m.params
                .last()
                .map(|l| {
                    l.split(' ')
                        .map(|t| t.split('=').next().unwrap_or(t).to_string())
                })
                .into_iter()
                .flatten(),
        );
        if !more {
            return caps;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiated_caps_labels_and_echo_on_inspircd() {
    let Some(mut it) = Interop::start().await else {
        println!("skipped: inspircd not installed");
        return;
    };
    let mut c = it
        .client(
            "phone",
            &[
                "batch",
                "echo-message",
                "labeled-response",
                "message-tags",
                "server-time",
            ],
        )
        .await;
    let mut other = it.client("laptop", &["message-tags", "server-time"]).await;

    // What tether negotiated with InspIRCd shows in what it passes on.
    let offered = offered_caps(&mut c).await;
    for cap in EXPECTED_PASSTHROUGH {
        assert!(
            offered.iter().any(|o| o == cap),
            "{cap} missing from {offered:?}"
        );
    }

    // labeled-response through the server: a WHOIS is a multi-line
    // answer, so it comes back as a labeled-response batch.
    c.send("@label=who1 WHOIS direct").await;
    let start = c
        .expect("labeled batch start", |m| {
            m.command == "BATCH" && m.tag("label") == Some("who1")
        })
        .await;
    assert_eq!(start.param(1), Some("labeled-response"), "{start}");
    let reference = start
        .param(0)
        .unwrap_or("")
        .trim_start_matches('+')
        .to_string();
    let whois = c
        .expect("311 inside the batch", |m| m.command == "311")
        .await;
    assert_eq!(whois.tag("batch"), Some(reference.as_str()), "{whois}");
    c.expect("318 inside the batch", |m| m.command == "318")
        .await;
    c.expect("batch end", |m| {
        m.command == "BATCH" && m.param(0) == Some(&format!("-{reference}"))
    })
    .await;
    // Only the asker gets the answer.
    other
        .sync_expect_none("the other client's copy of WHOIS", |m| {
            m.command == "311" || m.command == "318"
        })
        .await;

    // echo-message: the server's echo (with its msgid) carries the label
    // to the sender; the other client sees the message; the direct client
    // got it from the server.
    c.send("@label=msg1 PRIVMSG #interop :hello labeled").await;
    let echo = c
        .expect("labeled echo", |m| {
            is_privmsg(m, "#interop", "hello labeled") && m.tag("label") == Some("msg1")
        })
        .await;
    let msgid = echo.tag("msgid").expect("echo msgid").to_string();
    assert!(
        msgid.contains('~'),
        "the echo should be InspIRCd's (msgid like 051~...), got {echo}"
    );
    let seen = other
        .expect("the message on the other client", |m| {
            is_privmsg(m, "#interop", "hello labeled")
        })
        .await;
    assert_eq!(seen.tag("msgid"), Some(msgid.as_str()), "{seen}");
    assert_eq!(seen.tag("label"), None, "{seen}");
    it.direct
        .expect("the message on the server", |m| {
            is_privmsg(m, "#interop", "hello labeled")
        })
        .await;

    // A locally answered command is labeled too.
    c.send("@label=ping1 PING local").await;
    c.expect("labeled PONG", |m| {
        m.command == "PONG" && m.tag("label") == Some("ping1")
    })
    .await;
    drop(it.ircd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn away_setname_and_chghost_relayed_from_inspircd() {
    let Some(mut it) = Interop::start().await else {
        println!("skipped: inspircd not installed");
        return;
    };
    let mut with = it
        .client("phone", &["away-notify", "setname", "chghost"])
        .await;
    let mut without = it.client("laptop", &[]).await;

    it.direct.send("AWAY :lunch").await;
    let m = with
        .expect("AWAY from direct", |m| m.command == "AWAY")
        .await;
    assert_eq!(m.source_nick(), Some("direct"), "{m}");
    assert_eq!(m.param(0), Some("lunch"), "{m}");

    it.direct.send("SETNAME :Renamed Direct").await;
    let m = with
        .expect("SETNAME from direct", |m| m.command == "SETNAME")
        .await;
    assert_eq!(m.param(0), Some("Renamed Direct"), "{m}");

    it.direct
        .send(&format!("OPER {OPER_NAME} {OPER_PASSWORD}"))
        .await;
    it.direct
        .expect("381 you are an operator", |m| m.command == "381")
        .await;
    it.direct.send("CHGHOST direct new.host.example").await;
    let m = with
        .expect("CHGHOST from direct", |m| m.command == "CHGHOST")
        .await;
    assert_eq!(m.source_nick(), Some("direct"), "{m}");
    assert_eq!(m.param(1), Some("new.host.example"), "{m}");

    without
        .sync_expect_none("AWAY/SETNAME/CHGHOST without the caps", |m| {
            matches!(m.command.as_str(), "AWAY" | "SETNAME" | "CHGHOST")
        })
        .await;

    // SETNAME from a tether client goes to the server, which tells the
    // direct client (it has setname).
    with.send("SETNAME :Alice Through Tether").await;
    let m = it
        .direct
        .expect("SETNAME from tetheralice", |m| {
            m.command == "SETNAME" && m.source_nick() == Some("tetheralice")
        })
        .await;
    assert_eq!(m.param(0), Some("Alice Through Tether"), "{m}");
    let m = with
        .expect("own SETNAME echoed", |m| m.command == "SETNAME")
        .await;
    assert_eq!(m.param(0), Some("Alice Through Tether"), "{m}");
    drop(it.ircd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_through_tether_on_inspircd() {
    let Some(mut it) = Interop::start().await else {
        println!("skipped: inspircd not installed");
        return;
    };
    let mut c = it.client("phone", &[]).await;
    c.send("MONITOR + direct,nobodyhere").await;
    let online = c.expect("730 for direct", |m| m.command == "730").await;
    // The user@host part of a 730 target is optional (InspIRCd omits it).
    assert!(
        online
            .params
            .last()
            .is_some_and(|l| l == "direct" || l.starts_with("direct!")),
        "{online}"
    );
    let offline = c.expect("731 for nobodyhere", |m| m.command == "731").await;
    assert_eq!(
        offline.params.last().map(String::as_str),
        Some("nobodyhere")
    );

    c.send("MONITOR L").await;
    let list = c.expect("732", |m| m.command == "732").await;
    let mut nicks: Vec<&str> = list
        .params
        .last()
        .map(|l| l.split(',').collect())
        .unwrap_or_default();
    nicks.sort_unstable();
    assert_eq!(nicks, ["direct", "nobodyhere"], "{list}");
    c.expect("733", |m| m.command == "733").await;

    it.direct.send("QUIT :bye").await;
    let gone = c
        .expect("731 for direct after its QUIT", |m| {
            m.command == "731" && m.params.last().is_some_and(|l| l == "direct")
        })
        .await;
    assert_eq!(gone.command, "731");
    drop(it.ircd);
}

//! The welcome burst a bound client gets: 001-005 with the upstream's
//! ISUPPORT, MOTD (or 422), and the state of every joined channel.

use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

fn position(msgs: &[Message], what: &str, pred: impl Fn(&Message) -> bool) -> usize {
    msgs.iter().position(pred).unwrap_or_else(|| {
        let all: Vec<String> = msgs.iter().map(ToString::to_string).collect();
        panic!("welcome burst has no {what}:\n{}", all.join("\n"))
    })
}

fn dump(msgs: &[Message]) -> String {
    msgs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_burst_has_numerics_isupport_and_motd() {
    let s = Setup::new().await;
    let mut c = TestClient::connect(s.tether.addr).await;
    c.send(&format!("PASS :{PASSWORD}")).await;
    c.send("NICK phone").await;
    c.send("USER alice/fake@phone 0 * :Alice").await;
    let burst = collect_until(&mut c, "end of MOTD (376) or 422", |m| {
        matches!(m.command.as_str(), "376" | "422")
    })
    .await;

    let i001 = position(&burst, "001", |m| m.command == "001");
    let i002 = position(&burst, "002", |m| m.command == "002");
    let i003 = position(&burst, "003", |m| m.command == "003");
    let i004 = position(&burst, "004", |m| m.command == "004");
    let i005 = position(&burst, "005", |m| m.command == "005");
    let end = burst.len() - 1;
    assert!(
        i001 < i002 && i002 < i003 && i003 < i004 && i004 < i005 && i005 < end,
        "001..005 then MOTD out of order:\n{}",
        dump(&burst)
    );
    assert!(
        irc_eq(burst[i001].param(0).unwrap_or_default(), &s.conn.nick),
        "001 should be addressed to the upstream nick {}:\n{}",
        s.conn.nick,
        dump(&burst)
    );
    // Every numeric is addressed to the same nick.
    for m in burst.iter().filter(|m| m.is_numeric()) {
        assert!(
            m.param(0).is_some_and(|n| irc_eq(n, &s.conn.nick)),
            "numeric not addressed to {}: {m}",
            s.conn.nick
        );
    }
    let tokens: Vec<&str> = burst
        .iter()
        .filter(|m| m.command == "005")
        .flat_map(|m| {
            // Skip the nick and the trailing "are supported" text.
            let n = m.params.len();
            m.params[1..n.saturating_sub(1)].iter().map(String::as_str)
        })
        .collect();
    assert!(
        tokens.contains(&"NETWORK=FakeNet"),
        "005 lacks the upstream's NETWORK=FakeNet: {tokens:?}\n{}",
        dump(&burst)
    );
    if burst[end].command == "376" {
        position(&burst, "375 (start of MOTD)", |m| m.command == "375");
    }
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_client_gets_joined_channel_with_topic_and_names() {
    let mut s = Setup::new().await;
    let mut first = s.client("phone", &[]).await;
    s.join(
        &mut first,
        "#chan",
        Some("the topic of #chan"),
        &["bob", "+carol"],
    )
    .await;
    // The bouncer has processed everything up to here.
    s.conn.sync().await;

    let mut c = TestClient::connect(s.tether.addr).await;
    c.set_label("client alice/fake@laptop");
    c.send(&format!("PASS :{PASSWORD}")).await;
    c.send("NICK laptop").await;
    c.send("USER alice/fake@laptop 0 * :Alice").await;
    let burst = collect_until(&mut c, "366 for #chan", |m| {
        m.command == "366" && m.param(1).is_some_and(|ch| irc_eq(ch, "#chan"))
    })
    .await;

    let i001 = position(&burst, "001", |m| m.command == "001");
    let motd_end = position(&burst, "376 or 422", |m| {
        matches!(m.command.as_str(), "376" | "422")
    });
    let nick = s.conn.nick.clone();
    let ijoin = position(&burst, "JOIN #chan", |m| {
        m.command == "JOIN"
            && m.param(0).is_some_and(|ch| irc_eq(ch, "#chan"))
            && m.source_nick().is_some_and(|n| irc_eq(n, &nick))
    });
    let i332 = position(&burst, "332 for #chan", |m| {
        m.command == "332" && m.param(1).is_some_and(|ch| irc_eq(ch, "#chan"))
    });
    let i353 = position(&burst, "353 for #chan", |m| {
        m.command == "353" && m.param(2).is_some_and(|ch| irc_eq(ch, "#chan"))
    });
    let i366 = burst.len() - 1;
    assert!(
        i001 < motd_end && motd_end < ijoin && ijoin < i332 && i332 < i353 && i353 < i366,
        "expected 001, MOTD, JOIN, 332, 353, 366 in this order:\n{}",
        dump(&burst)
    );
    assert_eq!(
        burst[i332].param(2),
        Some("the topic of #chan"),
        "332 topic:\n{}",
        dump(&burst)
    );
    let names: Vec<&str> = burst
        .iter()
        .filter(|m| m.command == "353" && m.param(2).is_some_and(|ch| irc_eq(ch, "#chan")))
        .filter_map(|m| m.params.last())
        .flat_map(|l| l.split_whitespace())
        .collect();
    let bare: Vec<&str> = names
        .iter()
        .map(|n| n.trim_start_matches(['@', '+']))
        .map(|n| n.split('!').next().unwrap_or(n))
        .collect();
    for want in ["bob", "carol", nick.as_str()] {
        assert!(
            bare.iter().any(|n| irc_eq(n, want)),
            "353 lacks {want}: {names:?}\n{}",
            dump(&burst)
        );
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with('+') && n.contains("carol")),
        "carol's voice prefix lost: {names:?}"
    );
    c.sync().await;
    first.sync().await;
}

/// Regression: NAMESX/UHNAMES invite PROTOCTL, which would change the
/// NAMES format of the upstream connection shared by all clients.
#[tokio::test]
async fn protoctl_tokens_are_hidden_and_protoctl_is_not_relayed() {
    let opts = FakeServerOptions {
        isupport: vec![
            "CASEMAPPING=rfc1459".to_string(),
            "CHANTYPES=#".to_string(),
            "PREFIX=(ov)@+".to_string(),
            "NETWORK=FakeNet".to_string(),
            "NAMESX".to_string(),
            "UHNAMES".to_string(),
        ],
        ..FakeServerOptions::default()
    };
    let mut setup = Setup::with_options(opts).await;
    let mut client = setup.client("phone", &[]).await;
    client.sync().await;
    let transcript = client.transcript();
    assert!(transcript.contains("NETWORK=FakeNet"), "{transcript}");
    assert!(
        !transcript.contains("NAMESX") && !transcript.contains("UHNAMES"),
        "{transcript}"
    );
    client.send("PROTOCTL NAMESX").await;
    client.sync().await;
    setup
        .conn
        .sync_expect_none("PROTOCTL relayed upstream", |m| m.command == "PROTOCTL")
        .await;
}

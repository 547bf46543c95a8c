//! Notification rules over BouncerServ: `notify status|set|keyword|ignore|
//! quiet` change and show a user's rules, keep them across a restart, and
//! never show or touch another user's.

use crate::harness::*;
use crate::support::*;

/// Send a command and return every BouncerServ line of its reply.
async fn lines(c: &mut TestClient, command_line: &str) -> Vec<String> {
    service_command(c, command_line).await;
    c.sync()
        .await
        .iter()
        .filter(|m| is_from_service(m))
        .filter_map(|m| m.param(1).map(str::to_string))
        .collect()
}

/// The one reply line of a command.
async fn reply(c: &mut TestClient, command_line: &str) -> String {
    let got = lines(c, command_line).await;
    assert_eq!(got.len(), 1, "{command_line:?}: {got:?}");
    got[0].clone()
}

/// The error text of a command that must fail.
async fn refused(c: &mut TestClient, command_line: &str) -> String {
    let line = reply(c, command_line).await;
    line.strip_prefix("error: ")
        .unwrap_or_else(|| panic!("{command_line:?} succeeded: {line:?}"))
        .to_string()
}

const DEFAULT_STATUS: [&str; 5] = [
    "everywhere: highlights on, direct messages on, all messages off, muted off",
    "keywords: none",
    "ignored: none",
    "quiet hours: off",
    "webhook: none",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keywords_are_added_listed_and_removed() {
    let s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    assert_eq!(lines(&mut c, "notify status").await, DEFAULT_STATUS);
    assert_eq!(reply(&mut c, "notify keyword list").await, "no keywords");
    assert_eq!(
        reply(&mut c, "notify keyword add Rust").await,
        "added keyword \"Rust\""
    );
    assert_eq!(
        reply(&mut c, "notify keyword add tether").await,
        "added keyword \"tether\""
    );
    assert!(
        refused(&mut c, "notify keyword add RUST")
            .await
            .contains("there already")
    );
    assert!(
        refused(&mut c, "notify keyword add 'two words'")
            .await
            .contains("one word")
    );
    assert!(
        refused(&mut c, "notify keyword add")
            .await
            .contains("usage: notify keyword add <word>")
    );
    assert_eq!(
        lines(&mut c, "notify keyword list").await,
        ["keyword: Rust", "keyword: tether"]
    );
    // Unique prefixes work for subcommands too.
    assert_eq!(
        reply(&mut c, "notify key rem rust").await,
        "removed keyword \"rust\""
    );
    assert_eq!(
        refused(&mut c, "notify keyword remove rust").await,
        "no keyword \"rust\""
    );
    assert!(
        lines(&mut c, "notify status")
            .await
            .contains(&"keywords: tether".to_string())
    );
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_apply_per_user_network_and_channel() {
    let s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    assert_eq!(
        reply(&mut c, "notify set -direct-messages false").await,
        "everywhere: direct messages off"
    );
    // A bound client names channels of its own network.
    assert_eq!(
        reply(&mut c, "notify set -channel #Rust -all-messages true").await,
        "#rust on fake: all messages on"
    );
    assert_eq!(
        reply(
            &mut c,
            "notify set -network fake -muted=true -highlights false"
        )
        .await,
        "network fake: highlights off, muted on"
    );
    assert_eq!(
        reply(&mut c, "notify set -network fake -channel bob -muted true").await,
        "bob on fake: muted on"
    );
    assert_eq!(
        lines(&mut c, "notify status").await,
        [
            "everywhere: highlights on, direct messages off, all messages off, muted off",
            "#rust on fake: all messages on",
            "bob on fake: muted on",
            "network fake: highlights off, muted on",
            "keywords: none",
            "ignored: none",
            "quiet hours: off",
            "webhook: none",
        ]
    );
    // -reset forgets a scope.
    assert_eq!(
        reply(&mut c, "notify set -network fake -reset").await,
        "network fake: defaults"
    );
    assert_eq!(
        reply(&mut c, "notify set -channel #rust -reset -muted true").await,
        "#rust on fake: muted on"
    );

    assert!(
        refused(&mut c, "notify set")
            .await
            .starts_with("nothing to set")
    );
    assert_eq!(
        refused(&mut c, "notify set -network nope -muted true").await,
        "no network named \"nope\""
    );
    assert!(
        refused(&mut c, "notify set -muted maybe")
            .await
            .contains("unexpected argument")
    );
    // On the bouncer connection a channel needs its network.
    let mut b = s
        .tether
        .connect_client("alice", None, None, "alice", &[])
        .await;
    assert!(
        refused(&mut b, "notify set -channel #rust -muted true")
            .await
            .contains("-channel needs -network")
    );
    assert_eq!(
        reply(&mut b, "notify set -network fake -channel #go -muted true").await,
        "#go on fake: muted on"
    );
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignores_and_quiet_hours() {
    let s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    assert_eq!(
        reply(&mut c, "notify ignore list").await,
        "nobody is ignored"
    );
    assert_eq!(
        reply(&mut c, "notify ignore add *!*@spam.example").await,
        "ignoring \"*!*@spam.example\""
    );
    assert_eq!(
        reply(&mut c, "notify ignore add annoying").await,
        "ignoring \"annoying\""
    );
    assert!(
        refused(&mut c, "notify ignore add *!*@SPAM.example")
            .await
            .contains("ignored already")
    );
    assert!(
        refused(&mut c, "notify ignore add 'a b'")
            .await
            .contains("spaces")
    );
    assert_eq!(
        lines(&mut c, "notify ignore list").await,
        ["ignored: *!*@spam.example", "ignored: annoying"]
    );
    assert_eq!(
        reply(&mut c, "notify ignore remove annoying").await,
        "no longer ignoring \"annoying\""
    );
    assert_eq!(
        refused(&mut c, "notify ignore remove annoying").await,
        "\"annoying\" is not ignored"
    );

    assert_eq!(
        reply(&mut c, "notify quiet 22:00-7:00").await,
        "quiet hours: 22:00-07:00 UTC"
    );
    assert_eq!(
        reply(&mut c, "notify quiet 23:30-06:00 UTC+05:30").await,
        "quiet hours: 23:30-06:00 UTC+05:30"
    );
    for bad in [
        "notify quiet 25:00-01:00",
        "notify quiet 10:00-10:00",
        "notify quiet 22:00-07:00 CET",
        "notify quiet",
    ] {
        refused(&mut c, bad).await;
    }
    assert!(
        lines(&mut c, "notify status")
            .await
            .contains(&"quiet hours: 23:30-06:00 UTC+05:30".to_string())
    );
    assert_eq!(reply(&mut c, "notify quiet off").await, "quiet hours: off");
    assert!(
        lines(&mut c, "notify status")
            .await
            .contains(&"quiet hours: off".to_string())
    );
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_survive_a_restart_and_stay_private() {
    let s = Setup::new().await;
    s.tether.create_user("bob").await;
    let mut c = s.client("phone", &[]).await;
    for cmd in [
        "notify keyword add rust",
        "notify ignore add spammer",
        "notify quiet 22:00-07:00 UTC-02:00",
        "notify set -channel #rust -all-messages true",
        "notify set -highlights false",
        "notify webhook set https://hooks.example/t -format ntfy -secret-header 'X-Key: s3cret'",
    ] {
        let line = reply(&mut c, cmd).await;
        assert!(!line.starts_with("error"), "{cmd:?}: {line:?}");
    }
    let before = lines(&mut c, "notify status").await;
    assert_eq!(
        before,
        [
            "everywhere: highlights off, direct messages on, all messages off, muted off",
            "#rust on fake: all messages on",
            "keywords: rust",
            "ignored: spammer",
            "quiet hours: 22:00-07:00 UTC-02:00",
            "webhook: https://hooks.example/t (format ntfy, header X-Key: ****)",
        ]
    );

    // bob sees his own (default) rules and cannot remove alice's.
    let mut bob = s.tether.connect_client("bob", None, None, "bob", &[]).await;
    assert_eq!(lines(&mut bob, "notify status").await, DEFAULT_STATUS);
    assert_eq!(
        refused(&mut bob, "notify keyword remove rust").await,
        "no keyword \"rust\""
    );
    assert_eq!(
        refused(&mut bob, "notify ignore remove spammer").await,
        "\"spammer\" is not ignored"
    );
    assert_eq!(
        reply(&mut bob, "notify keyword add rust").await,
        "added keyword \"rust\""
    );
    drop(bob);
    drop(c);

    let s = s.restart_with("").await;
    let mut c = s.client("laptop", &[]).await;
    assert_eq!(lines(&mut c, "notify status").await, before);
    let mut bob = s.tether.connect_client("bob", None, None, "bob", &[]).await;
    let bob_status = lines(&mut bob, "notify status").await;
    assert!(
        bob_status.contains(&"keywords: rust".to_string()),
        "{bob_status:?}"
    );
    assert!(
        bob_status.contains(&"ignored: none".to_string()),
        "{bob_status:?}"
    );
    assert!(
        bob_status.contains(&"webhook: none".to_string()),
        "{bob_status:?}"
    );
    assert_eq!(
        reply(&mut c, "notify webhook clear").await,
        "webhook removed"
    );
    assert_eq!(
        reply(&mut c, "notify webhook clear").await,
        "no webhook was set"
    );
    assert_eq!(
        refused(&mut c, "notify webhook set http://hooks.example/t").await,
        "the webhook must be an https:// URL"
    );
    assert!(
        lines(&mut c, "notify status")
            .await
            .contains(&"webhook: none".to_string())
    );
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_network_takes_its_rules_along() {
    let s = Setup::new().await;
    let fake2 = FakeServer::bind(FakeServerOptions::default()).await;
    let _other = s.tether.create_network("alice", "other", &fake2).await;
    let mut b = s
        .tether
        .connect_client("alice", None, None, "alice", &[])
        .await;
    assert_eq!(
        reply(&mut b, "notify set -network other -muted true").await,
        "network other: muted on"
    );
    assert_eq!(
        reply(
            &mut b,
            "notify set -network other -channel #x -all-messages true"
        )
        .await,
        "#x on other: all messages on"
    );
    assert!(lines(&mut b, "network delete other").await[0].contains("deleted"));
    // A new network, which may get the deleted one's id, starts clean.
    let fake3 = FakeServer::bind(FakeServerOptions::default()).await;
    let _newer = s.tether.create_network("alice", "newer", &fake3).await;
    let mut b = s
        .tether
        .connect_client("alice", None, None, "alice", &[])
        .await;
    assert_eq!(lines(&mut b, "notify status").await, DEFAULT_STATUS);
    drop(s);
}

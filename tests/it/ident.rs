//! The `ident://` listener (RFC 1413) answering for tether's upstream
//! connections, and `upstream-user-ip` source addresses. The "IRC server"
//! here is a bare listener, so the test sees the connection's addresses
//! and can ask ident about it the moment it arrives, as a real server
//! does.

use std::net::{IpAddr, SocketAddr};

use tether::proto::message::unescape_tag_value;
use tether::server::ident::ident_for_user;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::harness::*;
use crate::support::*;

async fn user_id(tether: &Tether, name: &str) -> i64 {
    tether
        .server()
        .shared()
        .db
        .get_user(name)
        .await
        .expect("db")
        .unwrap_or_else(|| panic!("no user {name}"))
        .id
}

/// Create a network for `user` at the bare listener `server` and accept
/// the connection tether opens: the stream and tether's address.
async fn dialed(
    tether: &Tether,
    server: &TcpListener,
    user: &str,
    name: &str,
) -> (IrcStream, SocketAddr) {
    let uri = format!("irc+insecure://{}", server.local_addr().expect("addr"));
    let create = tether.create_network_at(user, name, &uri, &[]);
    let accept = async {
        timeout(TIMEOUT, server.accept())
            .await
            .expect("tether connects in time")
            .expect("accept")
    };
    let (created, (stream, peer)) = tokio::join!(create, accept);
    created.unwrap_or_else(|e| panic!("network create: {e}"));
    (IrcStream::from_tcp(stream), peer)
}

/// An ident client connected to tether's ident listener.
async fn ident_client(tether: &Tether) -> IrcStream {
    let addr = tether.server().ident_addr().expect("ident listener");
    let stream = timeout(TIMEOUT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut irc = IrcStream::from_tcp(stream);
    irc.set_label("ident client");
    irc
}

async fn ask(ident: &mut IrcStream, query: &str) -> String {
    ident.send(query).await;
    ident
        .recv_line()
        .await
        .unwrap_or_else(|| panic!("no ident reply to {query:?}\n{}", ident.transcript()))
}

#[tokio::test]
async fn the_upstream_server_learns_the_users_ident() {
    let tether = Tether::start_with(temp_dir("tether-it-"), "listen ident://127.0.0.1:0\n").await;
    tether.create_user("alice").await;
    tether.create_user("bob").await;
    let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = server.local_addr().expect("addr").port();
    let (mut alice_conn, alice_peer) = dialed(&tether, &server, "alice", "net").await;
    // Ask at once, before reading what tether sends.
    let mut ident = ident_client(&tether).await;
    let alice_ident = ident_for_user(user_id(&tether, "alice").await);
    assert_eq!(
        ask(&mut ident, &format!("{}, {port}", alice_peer.port())).await,
        format!(
            "{} , {port} : USERID : UNKNOWN : {alice_ident}",
            alice_peer.port()
        )
    );
    // Several queries on one connection: unknown ports, nonsense.
    let other = if alice_peer.port() == 65535 {
        1
    } else {
        alice_peer.port() + 1
    };
    assert_eq!(
        ask(&mut ident, &format!("{other} , {port}")).await,
        format!("{other} , {port} : ERROR : NO-USER")
    );
    assert_eq!(
        ask(&mut ident, &format!("{} , 1", alice_peer.port())).await,
        format!("{} , 1 : ERROR : NO-USER", alice_peer.port())
    );
    assert_eq!(
        ask(&mut ident, "hello").await,
        "hello : ERROR : INVALID-PORT"
    );
    assert_eq!(
        ask(&mut ident, "0 , 70000").await,
        "0 , 70000 : ERROR : INVALID-PORT"
    );
    // Another user's connection has another ident, which does not show
    // the user name.
    let (_bob_conn, bob_peer) = dialed(&tether, &server, "bob", "net").await;
    let bob_reply = ask(&mut ident, &format!("{} , {port}", bob_peer.port())).await;
    let bob_ident = ident_for_user(user_id(&tether, "bob").await);
    assert_ne!(bob_ident, alice_ident);
    assert!(!bob_ident.contains("bob"));
    assert_eq!(
        bob_reply,
        format!(
            "{} , {port} : USERID : UNKNOWN : {bob_ident}",
            bob_peer.port()
        )
    );
    // The connection the server asked about is tether speaking IRC.
    let first = alice_conn.recv_line().await.expect("tether speaks first");
    assert!(first.starts_with("CAP LS"), "{first}");
    tether.shutdown().await;
}

#[tokio::test]
async fn upstream_connections_come_from_the_users_address() {
    let extra = "upstream-user-ip 127.0.0.0/8\nlisten ident://127.0.0.1:0\n";
    let tether = Tether::start_with(temp_dir("tether-it-"), extra).await;
    tether.create_user("alice").await;
    let id = user_id(&tether, "alice").await;
    let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = server.local_addr().expect("addr").port();
    let (conn, peer) = dialed(&tether, &server, "alice", "net").await;
    let want = IpAddr::from([127, 0, 0, u8::try_from(id + 1).expect("small id")]);
    assert_eq!(peer.ip(), want);
    // Ident still finds the connection, asked from 127.0.0.1.
    let mut ident = ident_client(&tether).await;
    assert_eq!(
        ask(&mut ident, &format!("{} , {port}", peer.port())).await,
        format!(
            "{} , {port} : USERID : UNKNOWN : {}",
            peer.port(),
            ident_for_user(id)
        )
    );
    // And the link works as any other.
    let mut conn = register_fake_conn(&FakeServerOptions::default(), conn).await;
    conn.sync().await;
    let mut client = tether
        .connect_client("alice", Some("net"), None, "alice", &[])
        .await;
    client.sync().await;
    tether.shutdown().await;
}

#[tokio::test]
async fn a_source_address_outside_the_network_is_the_connection_error() {
    // base + id + 1 is outside a /31 for every user id above 0.
    let extra = "upstream-user-ip 127.0.0.0/31\n";
    let tether = Tether::start_with(temp_dir("tether-it-"), extra).await;
    tether.create_user("alice").await;
    let mut manager = tether
        .connect_client(
            "alice",
            None,
            None,
            "mgr",
            &[
                "soju.im/bouncer-networks",
                "soju.im/bouncer-networks-notify",
            ],
        )
        .await;
    manager.sync().await;
    let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let uri = format!("irc+insecure://{}", server.local_addr().expect("addr"));
    tether
        .create_network_at("alice", "net", &uri, &[])
        .await
        .expect("network create");
    let line = manager
        .expect("BOUNCER NETWORK with an error", |m| {
            m.command == "BOUNCER"
                && m.param(0) == Some("NETWORK")
                && m.param(2)
                    .is_some_and(|a| unescape_tag_value(a).contains("upstream-user-ip"))
        })
        .await;
    let attrs = unescape_tag_value(line.param(2).unwrap_or_default());
    assert!(
        attrs.contains("upstream-user-ip 127.0.0.0/31 has no address for user"),
        "{attrs}"
    );
    tether.shutdown().await;
}

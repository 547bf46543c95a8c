//! The ident server (RFC 1413) of `ident://` listeners and the registry it
//! answers from.
//!
//! Every upstream TCP connection registers (local port, server address,
//! server port) with its user's ident right after the TCP connect, before
//! any TLS or IRC byte is sent, so the server can ask as soon as it sees
//! the connection; the entry goes when the connection closes
//! ([`IdentGuard`]). A query `<our port> , <server's port>` from the
//! server's address is answered `<ports> : USERID : UNKNOWN : <ident>`,
//! else `<ports> : ERROR : NO-USER` (or `INVALID-PORT` for a query that
//! is not two ports). Lines are at most [`MAX_LINE`] bytes; a connection
//! may ask several times and is closed after [`IDLE_TIMEOUT`] of silence.
//!
//! The ident of a user ([`ident_for_user`]) is 10 hex digits of a SHA-256
//! hash of the user's id: stable for as long as the user exists (renames
//! do not change it), distinct between users, and it does not show IRC
//! networks the bouncer account name, which is also its login name. Ten
//! characters is the longest user name common servers keep (USERLEN).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::conn::{BoxRead, LineReader, WRITE_TIMEOUT};
use crate::proto::Frame;

/// Longest query line, line ending included.
pub const MAX_LINE: usize = 512;
/// Silence after which an ident connection is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ident string of the user with this id.
pub fn ident_for_user(user_id: i64) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("tether ident {user_id}").as_bytes(),
    );
    digest.as_ref()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// (our port, server address, server port) of an upstream connection.
type Key = (u16, IpAddr, u16);

/// One registered connection: our address (which several connections to
/// the same server port may share a port number on, when they come from
/// different source addresses) and whose it is.
#[derive(Debug)]
struct Entry {
    serial: u64,
    local_ip: IpAddr,
    ident: Arc<str>,
}

/// The upstream connections open right now, for the ident server.
#[derive(Debug, Default)]
pub struct IdentRegistry {
    entries: Mutex<(u64, HashMap<Key, Vec<Entry>>)>,
}

impl IdentRegistry {
    pub fn new() -> Arc<IdentRegistry> {
        Arc::new(IdentRegistry::default())
    }

    /// Register the connection from `local` to `remote` as `ident`'s,
    /// until the returned guard is dropped.
    pub fn register(
        self: &Arc<Self>,
        local: SocketAddr,
        remote: SocketAddr,
        ident: Arc<str>,
    ) -> IdentGuard {
        let key = (local.port(), remote.ip().to_canonical(), remote.port());
        let mut serial = 0;
        if let Ok(mut guard) = self.entries.lock() {
            let (next, map) = &mut *guard;
            *next += 1;
            serial = *next;
            map.entry(key).or_default().push(Entry {
                serial,
                local_ip: local.ip().to_canonical(),
                ident,
            });
        }
        IdentGuard {
            registry: self.clone(),
            key,
            serial,
        }
    }

    /// The ident of the connection from our `local_port` to
    /// `remote:remote_port`. `local_ip` is the address the query came in
    /// on, when known; it decides between connections that share the
    /// ports but not the source address.
    pub fn lookup(
        &self,
        local_port: u16,
        remote: IpAddr,
        remote_port: u16,
        local_ip: Option<IpAddr>,
    ) -> Option<Arc<str>> {
        let guard = self.entries.lock().ok()?;
        let entries = guard
            .1
            .get(&(local_port, remote.to_canonical(), remote_port))?;
        let local_ip = local_ip.map(|ip| ip.to_canonical());
        match entries.as_slice() {
            [only] => Some(only.ident.clone()),
            several => several
                .iter()
                .find(|e| Some(e.local_ip) == local_ip)
                .map(|e| e.ident.clone()),
        }
    }

    /// How many connections are registered.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .map(|g| g.1.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    /// Whether no connection is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps a connection registered; dropping it removes the entry.
pub struct IdentGuard {
    registry: Arc<IdentRegistry>,
    key: Key,
    serial: u64,
}

impl Drop for IdentGuard {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.registry.entries.lock() {
            let map = &mut guard.1;
            if let Some(entries) = map.get_mut(&self.key) {
                entries.retain(|e| e.serial != self.serial);
                if entries.is_empty() {
                    map.remove(&self.key);
                }
            }
        }
    }
}

/// A port number of a query: decimal, 1 to 65535, surrounded by any
/// spaces or tabs.
fn parse_port(s: &str) -> Option<u16> {
    let s = s.trim_matches([' ', '\t']);
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|&p| p != 0)
}

/// The reply to one query line. `lookup` finds the ident of (our port,
/// the asker's port).
pub fn answer(query: &str, lookup: impl FnOnce(u16, u16) -> Option<Arc<str>>) -> String {
    let ports = query
        .split_once(',')
        .and_then(|(l, r)| Some((parse_port(l)?, parse_port(r)?)));
    let Some((ours, theirs)) = ports else {
        // Echo the query only when it is short and printable.
        let shown = query.trim();
        let echo = if shown.len() <= 32 && shown.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            shown
        } else {
            "0 , 0"
        };
        return format!("{echo} : ERROR : INVALID-PORT");
    };
    match lookup(ours, theirs) {
        Some(ident) => format!("{ours} , {theirs} : USERID : UNKNOWN : {ident}"),
        None => format!("{ours} , {theirs} : ERROR : NO-USER"),
    }
}

/// Serve one ident connection. `remote` is the asker's address (after any
/// PROXY header; `None` for a unix peer, which owns no connection of
/// ours), `local` the address the query came in on, when known.
pub async fn serve<R, W>(
    registry: Arc<IdentRegistry>,
    read: R,
    mut write: W,
    remote: Option<IpAddr>,
    local: Option<IpAddr>,
) where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Unpin,
{
    let mut reader = LineReader::new(Box::new(read) as BoxRead, MAX_LINE);
    loop {
        let text = match tokio::time::timeout(IDLE_TIMEOUT, reader.next_frame()).await {
            Ok(Ok(Some(Frame::Line { text, .. }))) => text,
            Ok(Ok(Some(Frame::TooLong))) => {
                tracing::debug!(?remote, "ident query too long; closing");
                return;
            }
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return,
        };
        if text.trim().is_empty() {
            continue;
        }
        let reply = answer(&text, |ours, theirs| {
            registry.lookup(ours, remote?, theirs, local)
        });
        tracing::debug!(?remote, query = %text.trim(), %reply, "ident query");
        let sent = tokio::time::timeout(WRITE_TIMEOUT, async {
            write.write_all(reply.as_bytes()).await?;
            write.write_all(b"\r\n").await?;
            write.flush().await
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn idents_are_stable_distinct_and_short() {
        let a = ident_for_user(1);
        assert_eq!(a, ident_for_user(1));
        assert_ne!(a, ident_for_user(2));
        assert_eq!(a.len(), 10);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn answers() {
        let found = |_: u16, _: u16| Some(Arc::<str>::from("abc"));
        let none = |_: u16, _: u16| None;
        assert_eq!(
            answer("6193, 23", found),
            "6193 , 23 : USERID : UNKNOWN : abc"
        );
        assert_eq!(
            answer(" 6193 ,\t23 ", found),
            "6193 , 23 : USERID : UNKNOWN : abc"
        );
        assert_eq!(answer("6193,23", none), "6193 , 23 : ERROR : NO-USER");
        let mut asked = None;
        answer("1,65535", |a, b| {
            asked = Some((a, b));
            None
        });
        assert_eq!(asked, Some((1, 65535)));
        for bad in [
            "0, 23",
            "70000, 23",
            "a, b",
            "6193",
            "-1, 5",
            "1.5, 2",
            "+1, 2",
            "1, 2, 3",
        ] {
            let reply = answer(bad, found);
            assert!(reply.ends_with(" : ERROR : INVALID-PORT"), "{bad}: {reply}");
        }
        assert_eq!(answer("x\x01y", found), "0 , 0 : ERROR : INVALID-PORT");
        assert_eq!(
            answer(&"9".repeat(400), found),
            "0 , 0 : ERROR : INVALID-PORT"
        );
    }

    #[test]
    fn registry_keys_and_guards() {
        let reg = IdentRegistry::new();
        let server = sa("192.0.2.1:6697");
        let a = reg.register(sa("10.0.0.2:40000"), server, "aaa".into());
        let ip = server.ip();
        assert_eq!(reg.lookup(40000, ip, 6697, None).as_deref(), Some("aaa"));
        assert_eq!(reg.lookup(40001, ip, 6697, None), None);
        assert_eq!(reg.lookup(40000, ip, 6698, None), None);
        assert_eq!(
            reg.lookup(40000, "192.0.2.2".parse().expect("ip"), 6697, None),
            None
        );
        // An IPv4-mapped asker is the same IPv4 server.
        assert_eq!(
            reg.lookup(40000, "::ffff:192.0.2.1".parse().expect("ip"), 6697, None)
                .as_deref(),
            Some("aaa")
        );
        // Same ports from another source address: the local address decides.
        let b = reg.register(sa("10.0.0.3:40000"), server, "bbb".into());
        let local = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert_eq!(
            reg.lookup(40000, ip, 6697, local("10.0.0.3")).as_deref(),
            Some("bbb")
        );
        assert_eq!(
            reg.lookup(40000, ip, 6697, local("10.0.0.2")).as_deref(),
            Some("aaa")
        );
        assert_eq!(reg.lookup(40000, ip, 6697, None), None);
        assert_eq!(reg.len(), 2);
        drop(a);
        assert_eq!(reg.lookup(40000, ip, 6697, None).as_deref(), Some("bbb"));
        drop(b);
        assert!(reg.is_empty());
    }

    #[tokio::test]
    async fn several_queries_on_one_connection() {
        let reg = IdentRegistry::new();
        let _g = reg.register(sa("127.0.0.1:5000"), sa("127.0.0.1:6667"), "id1".into());
        let (client, server) = tokio::io::duplex(1024);
        let (sr, sw) = tokio::io::split(server);
        let task = tokio::spawn(serve(
            reg.clone(),
            sr,
            sw,
            Some("127.0.0.1".parse().expect("ip")),
            None,
        ));
        let (cr, mut cw) = tokio::io::split(client);
        let mut lines = BufReader::new(cr).lines();
        cw.write_all(b"5000 , 6667\r\n5001, 6667\n\r\nnonsense\r\n")
            .await
            .expect("write");
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(lines.next_line().await.expect("read").expect("line"));
        }
        assert_eq!(
            got,
            [
                "5000 , 6667 : USERID : UNKNOWN : id1",
                "5001 , 6667 : ERROR : NO-USER",
                "nonsense : ERROR : INVALID-PORT"
            ]
        );
        // An over-long line closes the connection.
        cw.write_all(&[b'1'; 600]).await.expect("write");
        cw.write_all(b"\r\n").await.expect("write");
        assert_eq!(lines.next_line().await.expect("read"), None);
        task.await.expect("served");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_close() {
        let reg = IdentRegistry::new();
        let (client, server) = tokio::io::duplex(64);
        let (sr, sw) = tokio::io::split(server);
        let started = tokio::time::Instant::now();
        serve(reg, sr, sw, None, None).await;
        assert_eq!(started.elapsed(), IDLE_TIMEOUT);
        drop(client);
    }
}

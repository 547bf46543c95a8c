//! A fake IRC server built for load: accepts any number of clients,
//! registers them as soon as NICK and USER are in, and relays channel
//! PRIVMSGs (and JOINs) between its clients like a real server.
//!
//! It keeps only what relaying needs (channel member lists) and counts
//! registrations and joins so that scenarios can wait for tether's
//! upstream links without scripting each one. Each connection has a
//! writer task fed by an unbounded queue: a slow reader costs memory
//! here rather than stalling the publisher, which is what a real server
//! does up to its send queue limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use tether::proto::Message;

/// Server name announced by the load server.
const NAME: &str = "load.bench";

/// One queued chunk of output; shared between the members a line is
/// relayed to.
type Out = Arc<str>;

/// A channel member: connection id, nick and output queue.
struct Member {
    id: u64,
    nick: String,
    tx: mpsc::UnboundedSender<Out>,
}

#[derive(Default)]
struct State {
    /// Channel name (lowercased) to members.
    channels: Mutex<HashMap<String, Vec<Member>>>,
    registered: AtomicUsize,
    joins: AtomicUsize,
    next_id: AtomicU64,
}

/// A running load server.
pub struct LoadServer {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl LoadServer {
    pub async fn start() -> Result<LoadServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let accept_state = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, accept_state.clone()));
            }
        });
        Ok(LoadServer { addr, state })
    }

    /// Connections that completed registration so far.
    pub fn registered(&self) -> usize {
        self.state.registered.load(Ordering::Relaxed)
    }

    /// Channel joins so far (one per channel per connection).
    pub fn joins(&self) -> usize {
        self.state.joins.load(Ordering::Relaxed)
    }
}

async fn serve(stream: TcpStream, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Out>();
    tokio::spawn(writer(write, rx));
    let mut reader = BufReader::with_capacity(16 * 1024, read);
    let mut line = String::new();
    let mut nick: Option<String> = None;
    let (mut user, mut cap_open, mut registered) = (false, false, false);
    let mut joined: Vec<String> = Vec::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(msg) = line.trim_end().parse::<Message>() else {
            continue;
        };
        let reply = |text: String| tx.send(Arc::from(text)).is_ok();
        match msg.command.as_str() {
            "CAP" if msg.param(0) == Some("LS") => {
                cap_open = true;
                reply(format!(":{NAME} CAP * LS :\r\n"));
            }
            "CAP" if msg.param(0) == Some("END") => cap_open = false,
            "NICK" => nick = msg.param(0).map(str::to_string),
            "USER" => user = true,
            "PING" => {
                let token = msg.params.last().map(String::as_str).unwrap_or("");
                reply(format!(":{NAME} PONG {NAME} :{token}\r\n"));
            }
            "JOIN" if registered => {
                let me = nick.clone().unwrap_or_default();
                for chan in msg.param(0).unwrap_or("").split(',') {
                    let key = chan.to_ascii_lowercase();
                    if chan.is_empty() || joined.contains(&key) {
                        continue;
                    }
                    join(&state, id, &me, chan, &tx);
                    joined.push(key);
                }
            }
            "PRIVMSG" | "NOTICE" if registered => {
                if let (Some(target), Some(text), Some(me)) =
                    (msg.param(0), msg.param(1), nick.as_deref())
                {
                    let out: Out = Arc::from(format!(
                        ":{me}!{me}@load.host {} {target} :{text}\r\n",
                        msg.command
                    ));
                    broadcast(&state, id, target, &out);
                }
            }
            "QUIT" => break,
            _ => {}
        }
        if !registered
            && user
            && !cap_open
            && let Some(n) = &nick
        {
            registered = true;
            reply(format!(
                ":{NAME} 001 {n} :Welcome\r\n\
                 :{NAME} 005 {n} CASEMAPPING=ascii CHANTYPES=# :are supported\r\n\
                 :{NAME} 422 {n} :MOTD File is missing\r\n"
            ));
            state.registered.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Ok(mut channels) = state.channels.lock() {
        for chan in joined {
            if let Some(members) = channels.get_mut(&chan) {
                members.retain(|m| m.id != id);
            }
        }
    }
}

/// Add connection `id` to `chan`, tell the other members and answer the
/// joiner with the JOIN echo and the names list.
fn join(state: &State, id: u64, nick: &str, chan: &str, tx: &mpsc::UnboundedSender<Out>) {
    let echo: Out = Arc::from(format!(":{nick}!{nick}@load.host JOIN {chan}\r\n"));
    let names = {
        let Ok(mut channels) = state.channels.lock() else {
            return;
        };
        let members = channels.entry(chan.to_ascii_lowercase()).or_default();
        for m in members.iter() {
            let _ = m.tx.send(echo.clone());
        }
        members.push(Member {
            id,
            nick: nick.to_string(),
            tx: tx.clone(),
        });
        members
            .iter()
            .map(|m| m.nick.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = tx.send(echo);
    let _ = tx.send(Arc::from(format!(
        ":{NAME} 353 {nick} = {chan} :{names}\r\n:{NAME} 366 {nick} {chan} :End of /NAMES list.\r\n"
    )));
    state.joins.fetch_add(1, Ordering::Relaxed);
}

/// Relay `out` to every member of channel `target` except the sender.
fn broadcast(state: &State, from: u64, target: &str, out: &Out) {
    let Ok(channels) = state.channels.lock() else {
        return;
    };
    if let Some(members) = channels.get(&target.to_ascii_lowercase()) {
        for m in members.iter().filter(|m| m.id != from) {
            let _ = m.tx.send(out.clone());
        }
    }
}

async fn writer(write: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Out>) {
    let mut write = BufWriter::with_capacity(16 * 1024, write);
    while let Some(chunk) = rx.recv().await {
        if write.write_all(chunk.as_bytes()).await.is_err() {
            return;
        }
        // Coalesce what is already queued into one flush.
        while let Ok(more) = rx.try_recv() {
            if write.write_all(more.as_bytes()).await.is_err() {
                return;
            }
        }
        if write.flush().await.is_err() {
            return;
        }
    }
}

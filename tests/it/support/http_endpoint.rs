//! A scripted HTTP endpoint on loopback for the notification tests: it
//! answers each request with the next scripted status (then a default)
//! and hands every request it saw to the test.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `POST /path?query`.
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Seen {
    /// The request's path (with its query).
    pub fn path(&self) -> &str {
        self.request_line.split(' ').nth(1).unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Answers each connection with the next scripted status, then with the
/// default; the status is chosen when the connection arrives.
pub struct HttpEndpoint {
    port: u16,
    script: Arc<Mutex<VecDeque<u16>>>,
    default: Arc<Mutex<u16>>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl HttpEndpoint {
    pub async fn start(script: &[u16], default: u16) -> HttpEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let default = Arc::new(Mutex::new(default));
        let (tx, seen) = mpsc::unbounded_channel();
        let (s, d) = (Arc::clone(&script), Arc::clone(&default));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let status = s
                    .lock()
                    .expect("lock")
                    .pop_front()
                    .unwrap_or(*d.lock().expect("lock"));
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Some(mut seen) = read_request(&mut stream).await else {
                        return;
                    };
                    seen.status = status;
                    let response =
                        format!("HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\n\r\n");
                    if stream.write_all(response.as_bytes()).await.is_ok() {
                        let _ = tx.send(seen);
                    }
                });
            }
        });
        HttpEndpoint {
            port,
            script,
            default,
            seen,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `http://127.0.0.1:<port>`, the audience of a VAPID token for it.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_default(&self, status: u16) {
        *self.default.lock().expect("lock") = status;
        assert!(self.script.lock().expect("lock").is_empty());
    }

    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(20), self.seen.recv())
            .await
            .expect("a request within 20 s")
            .expect("server running")
    }

    /// Requests seen so far and not yet taken.
    pub fn drain(&mut self) -> Vec<Seen> {
        let mut all = Vec::new();
        while let Ok(s) = self.seen.try_recv() {
            all.push(s);
        }
        all
    }
}

/// Reads a request head and its `Content-Length` body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let mut lines = head.split("\r\n");
            let request_line = lines.next()?.to_string();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(Seen {
                    request_line,
                    headers,
                    body: data[end + 4..end + 4 + length].to_vec(),
                    status: 0,
                });
            }
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    }
}

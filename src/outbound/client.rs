//! One outgoing POST from start to end: parse the URL, build the request
//! (so bad input fails before any network traffic), resolve the host,
//! keep only the addresses the [`AddressPolicy`] permits, connect to one
//! of exactly those, TLS with the URL's host as SNI, write the request and
//! read the response, all under [`PostOptions::timeout`].

use std::net::SocketAddr;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::guard::AddressPolicy;
use super::response::{self, Limits, Response};
use super::target::{Host, Target};
use super::{OutboundError, PostOptions, request, tls};

/// POSTs `body` with `headers` to `url`, and returns the response
/// whatever its status. Redirects are not followed.
pub async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    policy: &AddressPolicy,
    opts: &PostOptions,
) -> Result<Response, OutboundError> {
    let target = Target::parse(url)?;
    if !target.tls && !opts.allow_plain_http {
        return Err(OutboundError::PlainHttp);
    }
    let request = request::serialize(&target, headers, body)?;
    match tokio::time::timeout(opts.timeout, exchange(&target, &request, policy, opts)).await {
        Ok(result) => result,
        Err(_) => Err(OutboundError::Timeout(opts.timeout)),
    }
}

async fn exchange(
    target: &Target,
    request: &[u8],
    policy: &AddressPolicy,
    opts: &PostOptions,
) -> Result<Response, OutboundError> {
    let resolved = resolve(target).await?;
    let allowed = permitted(&target.host, resolved, policy)?;
    let (stream, addr) = connect(&target.host, &allowed, opts).await?;
    tracing::debug!(host = %target.host, %addr, "outgoing request connected");
    let limits = Limits {
        max_head: opts.max_head,
        max_body: opts.max_body,
    };
    if !target.tls {
        return send(stream, request, limits).await;
    }
    let name = match &target.host {
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Host::Name(name) => ServerName::try_from(name.clone())
            .map_err(|_| OutboundError::InvalidUrl(format!("{name:?} is not a valid TLS name")))?,
    };
    let tls_error = |source| OutboundError::Tls {
        host: target.host.to_string(),
        source,
    };
    let config = tls::client_config(&opts.extra_roots).map_err(tls_error)?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(tls_error)?;
    send(stream, request, limits).await
}

/// Every address of the host (no resolution for an IP literal).
async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, OutboundError> {
    match &target.host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, target.port)]),
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), target.port))
            .await
            .map(Iterator::collect)
            .map_err(|source| OutboundError::Dns {
                host: name.clone(),
                source,
            }),
    }
}

/// The resolved addresses the policy permits, in resolver order without
/// duplicates; if there are none, why the first one was refused.
pub fn permitted(
    host: &Host,
    resolved: Vec<SocketAddr>,
    policy: &AddressPolicy,
) -> Result<Vec<SocketAddr>, OutboundError> {
    let mut allowed: Vec<SocketAddr> = Vec::new();
    let mut first_refusal = None;
    for addr in resolved {
        match policy.check(addr.ip()) {
            Ok(()) if !allowed.contains(&addr) => allowed.push(addr),
            Ok(()) => {}
            Err(why) => {
                tracing::debug!(%host, %addr, %why, "outgoing request: address refused");
                first_refusal.get_or_insert((addr.ip(), why));
            }
        }
    }
    match (allowed.is_empty(), first_refusal) {
        (false, _) => Ok(allowed),
        (true, Some((addr, why))) => Err(OutboundError::Refused {
            host: host.to_string(),
            addr,
            why,
        }),
        (true, None) => Err(OutboundError::NoAddress {
            host: host.to_string(),
        }),
    }
}

/// Connects to the first address that answers, trying them in order.
async fn connect(
    host: &Host,
    addrs: &[SocketAddr],
    opts: &PostOptions,
) -> Result<(TcpStream, SocketAddr), OutboundError> {
    let mut last = None;
    for &addr in addrs {
        let error = match tokio::time::timeout(opts.connect_timeout, TcpStream::connect(addr)).await
        {
            Ok(Ok(stream)) => return Ok((stream, addr)),
            Ok(Err(e)) => e,
            Err(_) => std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {:?}", opts.connect_timeout),
            ),
        };
        tracing::debug!(%addr, %error, "outgoing request: connect failed");
        last = Some(OutboundError::Connect {
            addr,
            source: error,
        });
    }
    Err(last.unwrap_or(OutboundError::NoAddress {
        host: host.to_string(),
    }))
}

/// Writes the request and reads the response.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    limits: Limits,
) -> Result<Response, OutboundError> {
    stream.write_all(request).await.map_err(OutboundError::Io)?;
    stream.flush().await.map_err(OutboundError::Io)?;
    response::read_response(&mut stream, limits).await
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    use super::*;
    use crate::config::Cidr;
    use crate::outbound::Reserved;

    fn loopback_allowed() -> AddressPolicy {
        AddressPolicy::with_allowed(vec![Cidr::parse("127.0.0.0/8").expect("cidr")])
    }

    fn plain() -> PostOptions {
        PostOptions {
            allow_plain_http: true,
            ..PostOptions::default()
        }
    }

    /// What the test server saw of one request.
    struct Seen {
        request: Vec<u8>,
        sni: Option<String>,
    }

    /// Reads one request: head, then a `Content-Length` body.
    async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
        let mut data = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    return data;
                }
            }
            let n = stream.read(&mut chunk).await.expect("reading the request");
            assert!(
                n > 0,
                "request cut short: {:?}",
                String::from_utf8_lossy(&data)
            );
            data.extend_from_slice(&chunk[..n]);
        }
    }

    /// Serves one plain connection with a canned response.
    async fn plain_server(response: impl Into<Vec<u8>>) -> (u16, oneshot::Receiver<Seen>) {
        let response = response.into();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let request = read_request(&mut stream).await;
            stream.write_all(&response).await.expect("write");
            let _ = tx.send(Seen { request, sni: None });
        });
        (port, rx)
    }

    /// A listener that must never see a connection.
    fn untouched_listener() -> (std::net::TcpListener, u16) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        (listener, port)
    }

    fn assert_untouched(listener: &std::net::TcpListener) {
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a connection was made: {other:?}"),
        }
    }

    #[tokio::test]
    async fn loopback_is_refused_without_an_allowlist() {
        let (listener, port) = untouched_listener();
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
        ] {
            let e = post(&url, &[], b"x", &AddressPolicy::default(), &plain())
                .await
                .expect_err(&url);
            match &e {
                OutboundError::Refused { why, .. } => {
                    assert_eq!(why.range, Reserved::Loopback, "{url}: {e}");
                }
                other => panic!("{url}: {other}"),
            }
            assert!(e.to_string().contains("refusing to connect"), "{e}");
        }
        assert_untouched(&listener);
    }

    #[tokio::test]
    async fn allowed_loopback_gets_the_request_and_returns_the_response() {
        let (port, seen) =
            plain_server(b"HTTP/1.1 201 Created\r\nLocation: /m/1\r\nContent-Length: 2\r\n\r\nok")
                .await;
        let url = format!("http://127.0.0.1:{port}/push/abc?x=1");
        let response = post(
            &url,
            &[("Content-Type", "text/plain"), ("TTL", "60")],
            b"hello",
            &loopback_allowed(),
            &plain(),
        )
        .await
        .expect("post");
        assert_eq!(response.status, 201);
        assert_eq!(response.header("location"), Some("/m/1"));
        assert_eq!(response.body, b"ok");
        let request = seen.await.expect("the server saw a request").request;
        assert_eq!(
            String::from_utf8(request).expect("utf8"),
            format!(
                "POST /push/abc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 5\r\n\
                 Content-Type: text/plain\r\nTTL: 60\r\nConnection: close\r\n\r\nhello"
            )
        );
    }

    #[tokio::test]
    async fn a_name_connects_only_to_a_permitted_address() {
        // localhost may resolve to ::1 too: only 127.0.0.1 is allowed, and
        // the server listens there only.
        let (port, seen) = plain_server(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        )
        .await;
        let url = format!("http://localhost:{port}/");
        let response = post(&url, &[], b"", &loopback_allowed(), &plain())
            .await
            .expect("post");
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"hi"[..])
        );
        let request = seen.await.expect("request").request;
        assert!(
            request
                .starts_with(format!("POST / HTTP/1.1\r\nHost: localhost:{port}\r\n").as_bytes())
        );
    }

    #[test]
    fn permitted_filters_and_dedupes() {
        let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let host = Host::Name("example.com".into());
        let got = permitted(
            &host,
            vec![
                a("10.0.0.1:443"),
                a("8.8.8.8:443"),
                a("[::1]:443"),
                a("8.8.8.8:443"),
                a("[2001:4860::1]:443"),
            ],
            &AddressPolicy::default(),
        )
        .expect("some allowed");
        assert_eq!(got, vec![a("8.8.8.8:443"), a("[2001:4860::1]:443")]);
        match permitted(
            &host,
            vec![a("[fe80::1]:443"), a("10.0.0.1:443")],
            &AddressPolicy::default(),
        ) {
            Err(OutboundError::Refused { addr, why, host }) => {
                assert_eq!(addr, "fe80::1".parse::<IpAddr>().expect("ip"));
                assert_eq!(why.range, Reserved::LinkLocal);
                assert_eq!(host, "example.com");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            permitted(&host, vec![], &AddressPolicy::default()),
            Err(OutboundError::NoAddress { .. })
        ));
    }

    #[tokio::test]
    async fn bad_input_fails_before_any_connection() {
        let (listener, port) = untouched_listener();
        let policy = loopback_allowed();
        let url = format!("http://127.0.0.1:{port}/");
        let e = post(&url, &[], b"", &policy, &PostOptions::default())
            .await
            .expect_err("plain http");
        assert!(matches!(e, OutboundError::PlainHttp), "{e}");
        let e = post(&url, &[("X", "a\r\nInjected: 1")], b"", &policy, &plain())
            .await
            .expect_err("header injection");
        assert!(matches!(e, OutboundError::InvalidHeader { .. }), "{e}");
        let e = post("https://a@127.0.0.1/", &[], b"", &policy, &plain())
            .await
            .expect_err("userinfo");
        assert!(matches!(e, OutboundError::InvalidUrl(_)), "{e}");
        assert_untouched(&listener);
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let (other, other_port) = untouched_listener();
        let response = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{other_port}/\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let (port, _seen) = plain_server(response.into_bytes()).await;
        let url = format!("http://127.0.0.1:{port}/");
        let r = post(&url, &[], b"", &loopback_allowed(), &plain())
            .await
            .expect("post");
        assert_eq!(r.status, 307);
        assert_untouched(&other);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let port = {
            let (listener, port) = untouched_listener();
            drop(listener);
            port
        };
        let url = format!("http://127.0.0.1:{port}/");
        let e = post(&url, &[], b"", &loopback_allowed(), &plain())
            .await
            .expect_err("closed");
        match e {
            OutboundError::Connect { addr, .. } => assert_eq!(addr.port(), port),
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (got_request, request_read) = oneshot::channel();
        let (done, finish) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request(&mut stream).await;
            let _ = got_request.send(());
            // Holds the connection open without answering.
            let _ = finish.await;
        });
        let opts = PostOptions {
            timeout: Duration::from_millis(300),
            ..plain()
        };
        let url = format!("http://127.0.0.1:{port}/");
        let e = post(&url, &[], b"", &loopback_allowed(), &opts)
            .await
            .expect_err("silent");
        assert!(
            matches!(e, OutboundError::Timeout(d) if d == opts.timeout),
            "{e}"
        );
        request_read
            .await
            .expect("the request arrived before the timeout");
        let _ = done.send(());
    }

    /// Serves one TLS connection for `localhost` with a fresh self-signed
    /// certificate, returned for the client to trust.
    async fn tls_server(
        response: &'static [u8],
    ) -> (u16, CertificateDer<'static>, oneshot::Receiver<Seen>) {
        let ck =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        let cert = CertificateDer::from(ck.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            // A client that refuses the certificate ends the handshake.
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            let sni = tls.get_ref().1.server_name().map(str::to_string);
            let request = read_request(&mut tls).await;
            tls.write_all(response).await.expect("write");
            tls.shutdown().await.expect("close_notify");
            let _ = tx.send(Seen { request, sni });
        });
        (port, cert, rx)
    }

    #[tokio::test]
    async fn https_with_a_trusted_root() {
        let (port, cert, seen) =
            tls_server(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsecure body").await;
        let opts = PostOptions {
            extra_roots: vec![cert],
            ..PostOptions::default()
        };
        let url = format!("https://localhost:{port}/wpush");
        let r = post(
            &url,
            &[("TTL", "0")],
            b"payload",
            &loopback_allowed(),
            &opts,
        )
        .await
        .expect("post");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"secure body");
        let seen = seen.await.expect("request");
        assert_eq!(seen.sni.as_deref(), Some("localhost"));
        assert!(seen.request.starts_with(b"POST /wpush HTTP/1.1\r\n"));
        assert!(seen.request.ends_with(b"\r\n\r\npayload"));
    }

    #[tokio::test]
    async fn https_with_an_untrusted_certificate_fails() {
        let (port, _cert, _seen) = tls_server(b"HTTP/1.1 200 OK\r\n\r\n").await;
        let url = format!("https://localhost:{port}/");
        let e = post(&url, &[], b"", &loopback_allowed(), &PostOptions::default())
            .await
            .expect_err("untrusted");
        assert!(matches!(e, OutboundError::Tls { .. }), "{e}");
        assert!(e.to_string().contains("TLS with localhost failed"), "{e}");
    }
}

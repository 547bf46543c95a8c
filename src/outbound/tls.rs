//! The rustls client configuration of outgoing requests: the ring
//! provider (as everywhere in tether), the Mozilla roots from webpki-roots
//! plus any extra roots the caller trusts, and ALPN `http/1.1`.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;

fn build(extra_roots: &[CertificateDer<'static>]) -> Result<ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for root in extra_roots {
        roots.add(root.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The configuration trusting the Mozilla roots and `extra_roots`. The
/// one without extra roots is built once and shared.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, io::Error> {
    static DEFAULT: OnceLock<Result<Arc<ClientConfig>, rustls::Error>> = OnceLock::new();
    let config = if extra_roots.is_empty() {
        DEFAULT.get_or_init(|| build(&[]).map(Arc::new)).clone()
    } else {
        build(extra_roots).map(Arc::new)
    };
    config.map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_shares_the_default() {
        let a = client_config(&[]).expect("config");
        let b = client_config(&[]).expect("config");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn refuses_a_garbage_root() {
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x02, 0x03]);
        assert!(client_config(&[garbage]).is_err());
    }
}

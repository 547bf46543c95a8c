//! PEM text for the DER certificates and keys other bouncers store (soju
//! keeps SASL EXTERNAL credentials as DER; tether stores PEM), and the
//! split of a combined PEM file (ZNC's `cert` module keeps certificate and
//! key in one file).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// `der` as a PEM block with the given label (`CERTIFICATE`, `PRIVATE
/// KEY`): base64 in lines of 64 characters.
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 output is ASCII, so any byte index is a char boundary.
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Splits a PEM text into its certificates and its private key (the
/// first block whose label ends in `PRIVATE KEY`), each as PEM text.
/// `None` when either is missing.
pub fn split_cert_and_key(text: &str) -> Option<(String, String)> {
    let mut certs = String::new();
    let mut key: Option<String> = None;
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((label.to_string(), format!("{line}\n")));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if let Some((open, mut block)) = current.take()
                && open == label
            {
                block.push_str(line);
                block.push('\n');
                if label == "CERTIFICATE" {
                    certs.push_str(&block);
                } else if label.ends_with("PRIVATE KEY") && key.is_none() {
                    key = Some(block);
                }
            }
        } else if let Some((_, block)) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    match key {
        Some(key) if !certs.is_empty() => Some((certs, key)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    #[test]
    fn der_round_trips_through_pem() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let pem = der_to_pem("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let parsed = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(parsed.as_ref(), der.as_slice());
        assert_eq!(der_to_pem("X", &[]), "-----BEGIN X-----\n-----END X-----\n");
    }

    #[test]
    fn combined_file_is_split() {
        let cert = der_to_pem("CERTIFICATE", b"cert bytes");
        let key = der_to_pem("PRIVATE KEY", b"key bytes");
        let combined = format!("{key}junk\n{cert}");
        let (c, k) = split_cert_and_key(&combined).unwrap();
        assert_eq!(c, cert);
        assert_eq!(k, key);
        let parsed = PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap();
        assert_eq!(parsed.secret_der(), b"key bytes");
        assert_eq!(split_cert_and_key(&cert), None);
        assert_eq!(split_cert_and_key(""), None);
        // An unterminated block is ignored.
        assert_eq!(
            split_cert_and_key("-----BEGIN CERTIFICATE-----\nAAAA\n"),
            None
        );
    }
}

//! Self-signed client certificates that tether presents to a network
//! (CertFP and SASL EXTERNAL), generated with rcgen on the ring backend,
//! and their fingerprints.

use chrono::{Datelike, Duration, Utc};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SignatureAlgorithm,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::upstream::tls::{sha256_hex, sha512_hex};

/// How long a generated certificate is valid.
const VALID_YEARS: i32 = 20;

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA on P-256 (the default) or P-384.
    Ecdsa,
    Ed25519,
    Rsa,
}

impl KeyType {
    pub fn parse(s: &str) -> Result<KeyType, String> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsa" => Ok(KeyType::Ecdsa),
            "ed25519" => Ok(KeyType::Ed25519),
            "rsa" => Ok(KeyType::Rsa),
            _ => Err(format!("unknown key type {s:?} (use ecdsa or ed25519)")),
        }
    }
}

/// Why a certificate could not be generated or read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CertError {
    #[error("{0}")]
    Unsupported(String),
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("the stored certificate is unreadable: {0}")]
    Parse(String),
}

/// A generated certificate and its key, both PEM.
#[derive(Debug, Clone)]
pub struct GeneratedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

fn algorithm(
    key_type: KeyType,
    bits: Option<u32>,
) -> Result<&'static SignatureAlgorithm, CertError> {
    match (key_type, bits) {
        (KeyType::Ecdsa, None | Some(256)) => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
        (KeyType::Ecdsa, Some(384)) => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
        (KeyType::Ecdsa, Some(n)) => Err(CertError::Unsupported(format!(
            "ECDSA keys are 256 or 384 bits, not {n}"
        ))),
        (KeyType::Ed25519, None | Some(256)) => Ok(&rcgen::PKCS_ED25519),
        (KeyType::Ed25519, Some(n)) => Err(CertError::Unsupported(format!(
            "Ed25519 keys are 256 bits, not {n}"
        ))),
        // ring, tether's only crypto backend, cannot generate RSA keys.
        (KeyType::Rsa, _) => Err(CertError::Unsupported(
            "RSA key generation is not available in tether; use -key-type ecdsa or ed25519"
                .to_string(),
        )),
    }
}

/// Generate a self-signed client certificate (extended key usage: TLS
/// client authentication), valid from yesterday for 20 years.
pub fn generate(key_type: KeyType, bits: Option<u32>) -> Result<GeneratedCert, CertError> {
    let alg = algorithm(key_type, bits)?;
    let key = KeyPair::generate_for(alg).map_err(|e| CertError::Generate(e.to_string()))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "tether auto-generated certificate");
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let start = Utc::now().date_naive() - Duration::days(1);
    let (year, month, day) = checked_date(start.year(), start.month(), start.day())?;
    params.not_before = rcgen::date_time_ymd(year, month, day);
    let (year, month, day) = checked_date(start.year() + VALID_YEARS, start.month(), 1)?;
    params.not_after = rcgen::date_time_ymd(year, month, day);
    let cert = params
        .self_signed(&key)
        .map_err(|e| CertError::Generate(e.to_string()))?;
    Ok(GeneratedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A calendar date in the form `rcgen::date_time_ymd` takes, checked
/// first because that helper panics on an invalid date.
fn checked_date(year: i32, month: u32, day: u32) -> Result<(i32, u8, u8), CertError> {
    let valid = chrono::NaiveDate::from_ymd_opt(year, month, day).is_some();
    match (valid, u8::try_from(month), u8::try_from(day)) {
        (true, Ok(m), Ok(d)) => Ok((year, m, d)),
        _ => Err(CertError::Generate(format!(
            "invalid date {year}-{month}-{day}"
        ))),
    }
}

/// The SHA-256 and SHA-512 fingerprints (lowercase hex) of the first
/// certificate in a PEM text.
pub fn fingerprints(cert_pem: &str) -> Result<(String, String), CertError> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| CertError::Parse(e.to_string()))?;
    Ok((sha256_hex(der.as_ref()), sha512_hex(der.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::tls::{TlsOptions, client_setup};

    #[test]
    fn generated_certificates_are_usable_client_identities() {
        for (key_type, bits) in [
            (KeyType::Ecdsa, None),
            (KeyType::Ecdsa, Some(384)),
            (KeyType::Ed25519, None),
        ] {
            let cert = generate(key_type, bits).expect("generates");
            assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            let (sha256, sha512) = fingerprints(&cert.cert_pem).expect("readable");
            assert_eq!((sha256.len(), sha512.len()), (64, 128));
            let setup = client_setup(&TlsOptions {
                client_identity: Some((cert.cert_pem.clone(), cert.key_pem.clone())),
                pinned_sha256: None,
            });
            assert!(setup.is_ok(), "{key_type:?} {bits:?}");
            // Every certificate is new.
            let again = generate(key_type, bits).expect("generates");
            assert_ne!(fingerprints(&again.cert_pem).expect("readable").0, sha256);
        }
    }

    #[test]
    fn unsupported_keys_are_refused_with_a_reason() {
        let rsa = generate(KeyType::Rsa, Some(3072)).unwrap_err();
        assert!(rsa.to_string().contains("RSA"), "{rsa}");
        assert!(generate(KeyType::Ecdsa, Some(521)).is_err());
        assert!(generate(KeyType::Ed25519, Some(448)).is_err());
        assert!(KeyType::parse("dsa").is_err());
        assert_eq!(KeyType::parse("ED25519"), Ok(KeyType::Ed25519));
        assert!(matches!(fingerprints("garbage"), Err(CertError::Parse(_))));
    }
}

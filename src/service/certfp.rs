//! `certfp generate|fingerprint|delete`: the client certificate tether
//! presents to a network in the TLS handshake (for CertFP, and as the
//! identity of SASL EXTERNAL). The certificate and key are stored with the
//! network; changes apply from the next connection.

use crate::service::ServiceResult;
use crate::service::flags::{FlagKind, FlagSpec, parse_flags};
use crate::upstream::client_cert::{self, KeyType};
use crate::user::UserActor;

const GENERATE_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "network",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "key-type",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "bits",
        kind: FlagKind::Value,
    },
];

const NETWORK_FLAG: &[FlagSpec] = &[FlagSpec {
    name: "network",
    kind: FlagKind::Value,
}];

fn no_positional(positional: &[String]) -> Result<(), String> {
    match positional.first() {
        Some(extra) => Err(format!("unexpected argument {extra:?}")),
        None => Ok(()),
    }
}

/// The lines showing a PEM certificate's fingerprints.
fn fingerprint_lines(cert_pem: &str) -> ServiceResult {
    let (sha256, sha512) = client_cert::fingerprints(cert_pem).map_err(|e| e.to_string())?;
    Ok(vec![
        format!("SHA-256 fingerprint: {sha256}"),
        format!("SHA-512 fingerprint: {sha512}"),
    ])
}

impl UserActor {
    pub(crate) async fn service_certfp_generate(
        &mut self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, GENERATE_FLAGS).map_err(|e| e.to_string())?;
        no_positional(&flags.positional)?;
        let key_type = match flags.value("key-type") {
            Some(t) => KeyType::parse(t)?,
            None => KeyType::Ecdsa,
        };
        let bits = match flags.value("bits") {
            Some(b) => Some(
                b.parse::<u32>()
                    .map_err(|_| format!("-bits must be a number, not {b:?}"))?,
            ),
            None => None,
        };
        let (id, mut record) = self.service_target_record(flags.value("network"), context)?;
        let cert = client_cert::generate(key_type, bits).map_err(|e| e.to_string())?;
        let mut lines = fingerprint_lines(&cert.cert_pem)?;
        record.client_cert = Some(cert.cert_pem);
        record.client_key = Some(cert.key_pem);
        record.sasl_mechanism = Some("EXTERNAL".to_string());
        let name = record.name.clone();
        self.store_network_record(id, record).await?;
        lines.insert(
            0,
            format!("generated a client certificate for {name}; SASL EXTERNAL is now enabled"),
        );
        lines.push(format!(
            "it is presented from the next connection (\"network update {name}\" reconnects now)"
        ));
        Ok(lines)
    }

    pub(crate) fn service_certfp_fingerprint(
        &self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, NETWORK_FLAG).map_err(|e| e.to_string())?;
        no_positional(&flags.positional)?;
        let id = self.service_target_network(flags.value("network"), context)?;
        let net = self.networks.get(&id).ok_or("network vanished")?;
        let cert = net.record.client_cert.as_deref().ok_or_else(|| {
            format!(
                "no client certificate for {}; create one with \"certfp generate\"",
                net.name()
            )
        })?;
        fingerprint_lines(cert)
    }

    pub(crate) async fn service_certfp_delete(
        &mut self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, NETWORK_FLAG).map_err(|e| e.to_string())?;
        no_positional(&flags.positional)?;
        let (id, mut record) = self.service_target_record(flags.value("network"), context)?;
        if record.client_cert.is_none() {
            return Err(format!("no client certificate for {}", record.name));
        }
        record.client_cert = None;
        record.client_key = None;
        if record
            .sasl_mechanism
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("EXTERNAL"))
        {
            record.sasl_mechanism = None;
        }
        let name = record.name.clone();
        self.store_network_record(id, record).await?;
        Ok(vec![format!(
            "deleted the client certificate of {name}; this applies from the next connection"
        )])
    }
}

//! SASL EXTERNAL for clients: log in with a TLS client certificate that the
//! user registered as a device certificate (`device-certificate create`,
//! `client-cert-auth true`). The SASL response is the authorization
//! identity: empty, or a login name (`user`, `user/network@client`) whose
//! user must be the certificate's owner; its suffixes choose the network
//! and client like a PASS login's username does.
//!
//! Unknown certificates count as failed logins from the client's address,
//! like wrong passwords do.

use crate::downstream::registration::{LoginError, LoginName};
use crate::server::Shared;

/// Who the certificate with `fingerprint` logs in, given the client's SASL
/// response `authzid`.
pub(crate) async fn login(
    shared: &Shared,
    fingerprint: String,
    authzid: &[u8],
    remote: &str,
) -> Result<(LoginName, i64), LoginError> {
    let Ok(authzid) = std::str::from_utf8(authzid) else {
        return Err(LoginError::Invalid);
    };
    let wanted = LoginName::parse(authzid);
    let ip = crate::server::login_limit::remote_ip(remote);
    // The throttle keys on a name as well: the one asked for, or a fixed
    // one for certificate logins that name nobody.
    let throttle_name = if wanted.user.is_empty() {
        "*certificate*"
    } else {
        wanted.user.as_str()
    };
    if !shared.logins.allowed(throttle_name, ip) {
        tracing::info!(%remote, "certificate login refused: too many failures");
        return Err(LoginError::Throttled);
    }
    let owner = match shared
        .db
        .device_cert_login(fingerprint, remote.to_string())
        .await
    {
        Ok(owner) => owner,
        Err(e) => {
            tracing::warn!(error = %e, "device certificate lookup failed");
            return Err(LoginError::Internal);
        }
    };
    let Some(owner) = owner else {
        tracing::info!(%remote, "certificate login failed: unknown certificate");
        tokio::time::sleep(shared.logins.failed(throttle_name, ip)).await;
        return Err(LoginError::Invalid);
    };
    if !wanted.user.is_empty() && wanted.user != owner.username {
        tracing::info!(%remote, user = %owner.username, asked = %wanted.user, "certificate login failed: certificate of another user");
        tokio::time::sleep(shared.logins.failed(throttle_name, ip)).await;
        return Err(LoginError::Invalid);
    }
    if !owner.enabled {
        return Err(LoginError::Disabled);
    }
    shared.logins.succeeded(&owner.username);
    tracing::info!(user = %owner.username, %remote, "logged in with a device certificate");
    Ok((
        LoginName {
            user: owner.username,
            ..wanted
        },
        owner.user_id,
    ))
}

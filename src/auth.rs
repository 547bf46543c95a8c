//! Password hashing and verification.
//!
//! New passwords are hashed with argon2id (the `argon2` crate's default
//! parameters) into PHC strings (`$argon2id$v=19$m=...`). Verification also
//! accepts bcrypt hashes (`$2a$`, `$2b$`, `$2y$`), e.g. imported from other
//! bouncers; [`needs_rehash`] tells the caller to replace those with a fresh
//! argon2id hash after a successful login.
//!
//! Hashing is deliberately slow and memory-hard. The async wrappers run it
//! on tokio's blocking pool behind a global semaphore, so a burst of logins
//! cannot exhaust memory or starve the runtime.

use argon2::password_hash::phc::PasswordHash;
use argon2::{ARGON2ID_IDENT, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::Semaphore;

/// Errors from password hashing.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The RNG or the hash function failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// At most this many hashes are computed at once by the async wrappers.
const MAX_CONCURRENT_HASHES: usize = 2;

static HASH_PERMITS: Semaphore = Semaphore::const_new(MAX_CONCURRENT_HASHES);

/// Length of the random argon2 salt, in bytes.
const SALT_LEN: usize = 16;

/// Upper bounds on the argon2 parameters accepted when verifying, so a
/// tampered hash cannot make a login allocate gigabytes or spin for
/// minutes. Far above anything tether produces.
const MAX_VERIFY_M_COST: u32 = 1024 * 1024; // KiB, i.e. 1 GiB
const MAX_VERIFY_T_COST: u32 = 64;
const MAX_VERIFY_P_COST: u32 = 16;

/// Hashes `password` with argon2id using the argon2 crate's default
/// parameters and a random 16-byte salt; returns a PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|err| AuthError::Hash(err.to_string()))?;
    let hash: PasswordHash = Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|err| AuthError::Hash(err.to_string()))?;
    Ok(hash.to_string())
}

/// Checks `password` against `hash`, an argon2 PHC string (`$argon2id$`,
/// `$argon2i$`, `$argon2d$`) or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`).
/// Anything else, malformed hashes, and argon2 hashes with absurd
/// parameters yield false. Never panics.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if is_bcrypt(hash) {
        bcrypt::verify(password, hash).unwrap_or(false)
    } else if hash.starts_with("$argon2") {
        verify_argon2(password, hash)
    } else {
        false
    }
}

fn verify_argon2(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_M_COST
        || params.t_cost() > MAX_VERIFY_T_COST
        || params.p_cost() > MAX_VERIFY_P_COST
    {
        tracing::warn!(
            m_cost = params.m_cost(),
            t_cost = params.t_cost(),
            p_cost = params.p_cost(),
            "refusing to verify an argon2 hash with excessive parameters"
        );
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

/// Whether a hash that just verified successfully should be replaced by a
/// fresh [`hash_password`] result: true for bcrypt, for argon2 variants
/// other than argon2id or older versions, and for argon2id weaker than the
/// current defaults. False for current argon2id hashes and for strings that
/// are not recognised at all.
pub fn needs_rehash(hash: &str) -> bool {
    if is_bcrypt(hash) {
        return true;
    }
    if !hash.starts_with("$argon2") {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    parsed.algorithm != ARGON2ID_IDENT
        || parsed.version != Some(u32::from(Version::V0x13))
        || params.m_cost() < Params::DEFAULT_M_COST
        || params.t_cost() < Params::DEFAULT_T_COST
}

/// A random 20-character password (15 random bytes, base64url without
/// padding), for the first-run admin account.
pub fn random_password() -> String {
    let mut bytes = [0u8; 15];
    if let Err(err) = getrandom::fill(&mut bytes) {
        // The OS RNG essentially never fails; if it does, fall back to the
        // standard library's randomly keyed hasher rather than panicking.
        tracing::warn!(error = %err, "getrandom failed; using fallback randomness");
        fallback_fill(&mut bytes);
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn fallback_fill(buf: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    use std::time::{SystemTime, UNIX_EPOCH};

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_usize(i);
        let word = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// [`hash_password`] on the blocking pool, at most
/// `MAX_CONCURRENT_HASHES` (2) at a time process-wide.
pub async fn hash_password_async(password: String) -> Result<String, AuthError> {
    // The semaphore is never closed, so acquiring cannot fail. The permit
    // moves into the blocking task so it is held for as long as the work
    // runs, even if this future is dropped early.
    let permit = HASH_PERMITS
        .acquire()
        .await
        .map_err(|err| AuthError::Hash(err.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        hash_password(&password)
    })
    .await
    .map_err(|err| AuthError::Hash(err.to_string()))?
}

/// [`verify_password`] on the blocking pool, sharing the concurrency limit
/// of [`hash_password_async`].
pub async fn verify_password_async(password: String, hash: String) -> bool {
    let Ok(permit) = HASH_PERMITS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        verify_password(&password, &hash)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let hash = hash_password("hunter2").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password("hunter2", &hash));
        assert!(!verify_password("hunter3", &hash));
        assert!(!verify_password("", &hash));
        assert!(!needs_rehash(&hash));
        // Salted: hashing again gives a different string.
        assert_ne!(hash, hash_password("hunter2").unwrap());
    }

    #[test]
    fn bcrypt_verifies_and_needs_rehash() {
        let hash = bcrypt::hash("correct horse", 4).unwrap();
        assert!(hash.starts_with("$2b$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(needs_rehash(&hash));
        // The other prefixes denote the same algorithm.
        for prefix in ["$2a$", "$2y$"] {
            let other = format!("{prefix}{}", &hash[4..]);
            assert!(verify_password("correct horse", &other), "{other}");
            assert!(needs_rehash(&other));
        }
    }

    #[test]
    fn older_argon2_variants_need_rehash() {
        let argon2i = Argon2::new(
            argon2::Algorithm::Argon2i,
            Version::V0x13,
            Params::default(),
        );
        let hash: PasswordHash = argon2i
            .hash_password_with_salt(b"pw", b"0123456789abcdef")
            .unwrap();
        let hash = hash.to_string();
        assert!(hash.starts_with("$argon2i$"), "{hash}");
        assert!(verify_password("pw", &hash));
        assert!(needs_rehash(&hash));

        let weak = Argon2::new(
            argon2::Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let hash: PasswordHash = weak
            .hash_password_with_salt(b"pw", b"0123456789abcdef")
            .unwrap();
        let hash = hash.to_string();
        assert!(verify_password("pw", &hash));
        assert!(needs_rehash(&hash));
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        let good = hash_password("pw").unwrap();
        let bcrypt_good = bcrypt::hash("pw", 4).unwrap();
        let cases = [
            "",
            "pw",
            "$",
            "$argon2id$",
            "$argon2id$v=19$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$",
            "$argon2id$v=19$m=99999999999,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
            "$argon2x$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
            "$2b$",
            "$2b$04$",
            "$2b$99$abcdefghijklmnopqrstuvabcdefghijklmnopqrstuvwxyzABC",
            "$2b$04$ééééééééééééééééééééééééééééééééééééééééééééééééééééé",
            "$2x$04$abcdefghijklmnopqrstuvabcdefghijklmnopqrstuvwxyzABC",
            "$1$salt$hash",
            "plain text password",
            &good[..good.len() - 5],
            &bcrypt_good[..bcrypt_good.len() - 1],
        ];
        for case in cases {
            assert!(!verify_password("pw", case), "{case:?}");
            assert!(!verify_password("", case), "{case:?}");
            let _ = needs_rehash(case);
        }
        assert!(!needs_rehash("plain text password"));
        assert!(!needs_rehash(""));
    }

    #[test]
    fn excessive_argon2_parameters_are_refused() {
        // A structurally valid hash asking for 4 GiB of memory.
        let hash = "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA\
                    $aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(!verify_password("pw", hash));
    }

    #[test]
    fn random_passwords() {
        let a = random_password();
        let b = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{a}"
        );
        let mut buf = [0u8; 15];
        fallback_fill(&mut buf);
        assert_ne!(buf, [0u8; 15]);
    }

    #[tokio::test]
    async fn async_wrappers() {
        let hash = hash_password_async("secret".into()).await.unwrap();
        assert!(verify_password_async("secret".into(), hash.clone()).await);
        assert!(!verify_password_async("Secret".into(), hash).await);
        assert!(!verify_password_async("secret".into(), "junk".into()).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_hashes_are_limited() {
        let tasks: Vec<_> = (0..6)
            .map(|i| tokio::spawn(hash_password_async(format!("pw{i}"))))
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let hash = task.await.unwrap().unwrap();
            assert!(verify_password(&format!("pw{i}"), &hash));
        }
    }
}

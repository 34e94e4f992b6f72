//! Loading the signing keys from the database, and making the first one.

use std::sync::Once;

use aws_lc_rs::signature::RsaKeyPair;
use lanyard_store::Timestamp;
use rsa::pkcs8::EncodePrivateKey;

use super::{Jwk, KeyRing, SigningKey};
use crate::db::{Db, DbError, StoredKey};

/// Why keys could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A stored key does not parse.
    #[error("signing key {kid} is not a usable RSA key")]
    Corrupt {
        /// Which.
        kid: String,
    },
    /// Making or using a key failed.
    #[error("{0}")]
    Sign(String),
}

/// jsonwebtoken picks its crypto backend at run time; naming it here makes a missing feature
/// a compile error instead of a panic at the first verification.
fn install_jwt_backend() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}

/// Loads every key that may still verify a live token; on a first start, makes a 2048-bit
/// RSA key (with the `rsa` crate), stores it as active, and uses it.
pub async fn load_or_create(db: &Db, now: Timestamp) -> Result<KeyRing, KeyError> {
    install_jwt_backend();
    let mut stored = db.signing_keys(now).await?;
    if !stored.iter().any(|k| k.state == ACTIVE) {
        // Other nodes may be starting on this empty database too: one first key wins.
        let key = new_key(ACTIVE, now).await?;
        match db.insert_first_signing_key(&key).await {
            Ok(true) => tracing::info!(kid = %key.kid, "made a signing key"),
            Ok(false) => {}
            // SQLite refuses a writer whose snapshot another process changed meanwhile
            // (the CLI, another node on the file): if that writer stored a key, use it.
            Err(e) => {
                stored = db.signing_keys(now).await?;
                if !stored.iter().any(|k| k.state == ACTIVE) {
                    return Err(e.into());
                }
            }
        }
        stored = db.signing_keys(now).await?;
    }
    let mut signer = None;
    let mut all = Vec::new();
    // Newest first: the newest active key signs.
    for key in stored {
        let pair = RsaKeyPair::from_pkcs8(&key.private_key).map_err(|_| KeyError::Corrupt {
            kid: key.kid.clone(),
        })?;
        if key.state == ACTIVE && signer.is_none() {
            signer = Some(SigningKey {
                kid: Jwk::rsa(&pair).kid,
                pair,
            });
        } else {
            all.push(pair);
        }
    }
    let signer = signer.ok_or_else(|| KeyError::Sign("no active signing key".to_owned()))?;
    Ok(KeyRing::new(signer, all))
}

/// A key published and signing.
pub(crate) const ACTIVE: &str = "active";
/// A key published ahead of signing.
pub(crate) const NEXT: &str = "next";
/// A key that no longer signs, published until the tokens it signed have expired.
pub(crate) const RETIRED: &str = "retired";

/// Makes a 2048-bit RSA key (with the `rsa` crate, off the async workers) and stores it in
/// `state`; returns its `kid` (the RFC 7638 thumbprint).
pub(crate) async fn make_key(db: &Db, state: &str, now: Timestamp) -> Result<String, KeyError> {
    let key = new_key(state, now).await?;
    db.insert_signing_key(&key).await?;
    Ok(key.kid)
}

/// A fresh 2048-bit RSA key in `state`, not stored yet.
async fn new_key(state: &str, now: Timestamp) -> Result<StoredKey, KeyError> {
    let der = tokio::task::spawn_blocking(generate_rsa_2048)
        .await
        .map_err(|_| KeyError::Sign("key generation was interrupted".to_owned()))??;
    let pair = RsaKeyPair::from_pkcs8(&der)
        .map_err(|_| KeyError::Sign("a fresh key did not parse".to_owned()))?;
    Ok(StoredKey {
        kid: Jwk::rsa(&pair).kid,
        alg: "RS256".to_owned(),
        private_key: der,
        state: state.to_owned(),
        created_at: now,
        usable_until: None,
    })
}

fn generate_rsa_2048() -> Result<Vec<u8>, KeyError> {
    #[allow(deprecated)] // `RsaPrivateKey` is the name every rsa 0.10 release accepts.
    let key = rsa::RsaPrivateKey::new(&mut rand::rng(), 2048)
        .map_err(|e| KeyError::Sign(format!("RSA key generation failed: {e}")))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Sign(format!("PKCS#8 encoding failed: {e}")))?;
    Ok(der.as_bytes().to_vec())
}

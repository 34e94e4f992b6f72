//! Loading the signing keys from the database, and making the first one.

use std::collections::HashMap;
use std::sync::Once;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use lanyard_store::Timestamp;

use super::{KeyRing, Pair, SigningAlg, SigningKey};
use crate::db::{Db, DbError};
use crate::model::StoredKey;

/// Why keys could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A stored key does not parse.
    #[error("signing key {kid} is not a usable {alg} key")]
    Corrupt {
        /// Which.
        kid: String,
        /// For which algorithm it was stored.
        alg: String,
    },
    /// Making or using a key failed.
    #[error("{0}")]
    Sign(String),
}

/// jsonwebtoken picks its crypto backend at run time; naming it here makes a missing feature
/// a compile error instead of a panic at the first verification.
pub(super) fn install_jwt_backend() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}

/// Loads every key that may still verify a live token; for each algorithm in use (RS256, and
/// `access`, the access-token algorithm) without an active key, makes one, stores it as active,
/// and uses it.
pub async fn load_or_create(
    db: &Db,
    now: Timestamp,
    access: SigningAlg,
) -> Result<KeyRing, KeyError> {
    install_jwt_backend();
    let mut stored = db.keys().published(now).await?;
    for alg in SigningAlg::in_use(access) {
        if stored
            .iter()
            .any(|k| k.state == ACTIVE && k.alg == alg.name())
        {
            continue;
        }
        // Other nodes may be starting on this empty database too: one first key wins.
        let key = new_key(alg, ACTIVE, now).await?;
        match db.keys().insert_first(&key).await {
            Ok(true) => tracing::info!(kid = %key.kid, alg = alg.name(), "made a signing key"),
            Ok(false) => {}
            // SQLite refuses a writer whose snapshot another process changed meanwhile
            // (the CLI, another node on the file): if that writer stored a key, use it.
            Err(e) => {
                stored = db.keys().published(now).await?;
                if !stored
                    .iter()
                    .any(|k| k.state == ACTIVE && k.alg == alg.name())
                {
                    return Err(e.into());
                }
            }
        }
        stored = db.keys().published(now).await?;
    }
    let mut signers = HashMap::new();
    let mut others = Vec::new();
    // Newest first: the newest active key of each algorithm signs.
    for key in stored {
        let corrupt = || KeyError::Corrupt {
            kid: key.kid.clone(),
            alg: key.alg.clone(),
        };
        let alg = SigningAlg::from_name(&key.alg).ok_or_else(corrupt)?;
        let pair = Pair::from_pkcs8(alg, &key.private_key).ok_or_else(corrupt)?;
        if key.state == ACTIVE && !signers.contains_key(&alg) {
            signers.insert(alg, pair);
        } else {
            others.push(pair);
        }
    }
    KeyRing::new(signers, access, others)
}

/// A key published and signing.
pub(crate) const ACTIVE: &str = "active";
/// A key published ahead of signing.
pub(crate) const NEXT: &str = "next";
/// A key that no longer signs, published until the tokens it signed have expired.
pub(crate) const RETIRED: &str = "retired";

/// Makes a key for `alg` and stores it in `state`; returns its `kid` (the RFC 7638
/// thumbprint).
pub(crate) async fn make_key(
    db: &Db,
    alg: SigningAlg,
    state: &str,
    now: Timestamp,
) -> Result<String, KeyError> {
    let key = new_key(alg, state, now).await?;
    db.keys().insert(&key).await?;
    Ok(key.kid)
}

/// A fresh key for `alg` in `state`, not stored yet: RSA 2048 (made with the `rsa` crate, off
/// the async workers), P-256 or Ed25519 (aws-lc-rs), as PKCS#8.
async fn new_key(alg: SigningAlg, state: &str, now: Timestamp) -> Result<StoredKey, KeyError> {
    let failed =
        |what: &str| KeyError::Sign(format!("{} key generation failed: {what}", alg.name()));
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der = match alg {
        SigningAlg::Rs256 => tokio::task::spawn_blocking(generate_rsa_2048)
            .await
            .map_err(|_| failed("interrupted"))??,
        SigningAlg::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| failed("aws-lc"))?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| failed("aws-lc"))?
            .as_ref()
            .to_vec(),
    };
    let pair = Pair::from_pkcs8(alg, &der).ok_or_else(|| failed("the key did not parse"))?;
    Ok(StoredKey {
        kid: SigningKey::new(pair).kid,
        alg: alg.name().to_owned(),
        private_key: der,
        state: state.to_owned(),
        created_at: now,
        usable_until: None,
    })
}

/// A new RSA 2048 key as PKCS#8 DER, made by aws-lc-rs (which also signs with it).
pub(super) fn generate_rsa_2048() -> Result<Vec<u8>, KeyError> {
    use aws_lc_rs::encoding::AsDer;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|e| KeyError::Sign(format!("RSA key generation failed: {e}")))?;
    let der = key
        .as_der()
        .map_err(|e| KeyError::Sign(format!("PKCS#8 encoding failed: {e}")))?;
    Ok(der.as_ref().to_vec())
}

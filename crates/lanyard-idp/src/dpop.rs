//! DPoP proofs at Lanyard's own endpoints (RFC 9449): the token endpoint binds tokens to the
//! proof's key; UserInfo and the admin API take bound tokens only with a proof.
//!
//! What a proof says about itself is checked by `lanyard_rp::dpop::verify` (one
//! implementation for Lanyard and every app's guard). What depends on shared state is
//! checked here: its `jti` is claimed once in the token store (every node sees it), and
//! with `dpop_nonce` its `nonce` must be one Lanyard gave out.

use std::time::Duration;

use lanyard_rp::dpop::{self, Expected, Proof};
use lanyard_store::StoreError;

use lanyard_core::Core;

/// Why a proof was not taken.
#[derive(Debug)]
pub enum DpopError {
    /// `invalid_dpop_proof`, saying why.
    Invalid(String),
    /// `use_dpop_nonce`: send it again with the current nonce.
    UseNonce,
    /// The store could not tell whether the proof was used before: 503.
    Unavailable(StoreError),
}

/// The nonce to send in `DPoP-Nonce`, when nonces are required.
pub fn nonce(state: &Core) -> Option<String> {
    state
        .config
        .dpop_nonce
        .then(|| nonces(state).current(state.clock.now().as_secs()))
}

/// Lanyard's nonces: the same on every node (from the server keys).
fn nonces(state: &Core) -> dpop::Nonces {
    dpop::Nonces::new(&state.server_keys.dpop_nonce_secret())
}

/// Checks the proofs sent with a request (`proofs`: every `DPoP` header's value) for a
/// request of `method` to `url`, carrying `access_token` if given. `None` when no proof was
/// sent.
pub async fn check(
    state: &Core,
    proofs: &[&str],
    method: &str,
    url: &str,
    access_token: Option<&str>,
) -> Result<Option<Proof>, DpopError> {
    let proof = match proofs {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(DpopError::Invalid(
                "send one DPoP header, not several".to_owned(),
            ));
        }
    };
    let now = state.clock.now().as_secs();
    let expected = Expected {
        method,
        url,
        access_token,
        now,
    };
    let proof = dpop::verify(proof, &expected).map_err(|e| DpopError::Invalid(e.0))?;
    if state.config.dpop_nonce
        && !proof
            .nonce
            .as_deref()
            .is_some_and(|n| nonces(state).is_fresh(n, now))
    {
        return Err(DpopError::UseNonce);
    }
    // Kept as long as the proof could be taken; keyed by key and jti (hashed by the store).
    let ttl = Duration::from_secs(
        u64::try_from(dpop::MAX_AGE_SECS + dpop::FUTURE_SKEW_SECS).unwrap_or(70) + 1,
    );
    let key = format!("dpop\0{}\0{}", proof.jkt, proof.jti);
    match state.store.claim_once(&key, ttl).await {
        Ok(true) => Ok(Some(proof)),
        Ok(false) => Err(DpopError::Invalid(
            "this DPoP proof was used before: make a fresh proof for each request".to_owned(),
        )),
        Err(e) => Err(DpopError::Unavailable(e)),
    }
}

/// An access token as a request presented it at one of Lanyard's APIs.
#[derive(Debug)]
pub struct Presented<'a> {
    /// The token.
    pub token: &'a str,
    /// Sent with the `DPoP` scheme (RFC 9449 §7.1) rather than `Bearer`.
    pub dpop_scheme: bool,
    /// Every `DPoP` header's value.
    pub proofs: Vec<&'a str>,
    /// The request's method.
    pub method: &'a str,
    /// The request's URL as the client addressed it (under the issuer).
    pub url: String,
}

/// Why a token was refused for how it was presented.
#[derive(Debug)]
pub enum SenderError {
    /// 401 `invalid_token`.
    InvalidToken(String),
    /// 401 `invalid_dpop_proof`.
    InvalidProof(String),
    /// 401 `use_dpop_nonce`.
    UseNonce,
    /// 503.
    Unavailable(StoreError),
}

/// Checks that a live token was presented as its binding requires (RFC 9449 §7): a bound
/// token only with the `DPoP` scheme and a proof by its key for this request (with `ath`);
/// an unbound one only as `Bearer`.
pub async fn check_sender(
    state: &Core,
    cnf: Option<&lanyard_core::tokens::Confirmation>,
    presented: &Presented<'_>,
) -> Result<(), SenderError> {
    match (cnf, presented.dpop_scheme) {
        (None, false) => Ok(()),
        (Some(_), false) => Err(SenderError::InvalidToken(
            "this access token is bound to a key (DPoP): send it with the DPoP scheme and a proof, not as Bearer"
                .to_owned(),
        )),
        (None, true) => Err(SenderError::InvalidToken(
            "this access token is not bound to a key: send it as Bearer".to_owned(),
        )),
        (Some(cnf), true) => {
            let proof = check(
                state,
                &presented.proofs,
                presented.method,
                &presented.url,
                Some(presented.token),
            )
            .await
            .map_err(|e| match e {
                DpopError::Invalid(why) => SenderError::InvalidProof(why),
                DpopError::UseNonce => SenderError::UseNonce,
                DpopError::Unavailable(e) => SenderError::Unavailable(e),
            })?
            .ok_or_else(|| {
                SenderError::InvalidProof("send a DPoP proof with a DPoP-bound token".to_owned())
            })?;
            if lanyard_core::crypto::same_secret(&proof.jkt, &cnf.jkt) {
                Ok(())
            } else {
                Err(SenderError::InvalidProof(
                    "the DPoP proof is signed by another key than the one the token is bound to"
                        .to_owned(),
                ))
            }
        }
    }
}

//! PKCE (RFC 7636) with `S256` only: `plain` is refused (RFC 9700 §2.1.1; ASVS 5.0 10.4.6).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Checks a `code_challenge` and its method at the authorization endpoint.
pub fn check_challenge(challenge: &str, method: Option<&str>) -> Result<(), &'static str> {
    match method {
        Some("S256") => {}
        Some("plain") | None => {
            return Err("code_challenge_method must be S256 (plain is not supported)");
        }
        Some(_) => return Err("unsupported code_challenge_method; use S256"),
    }
    // BASE64URL(SHA-256(verifier)): always 43 characters.
    let ok = challenge.len() == 43
        && URL_SAFE_NO_PAD
            .decode(challenge)
            .is_ok_and(|b| b.len() == 32);
    if ok {
        Ok(())
    } else {
        Err("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
    }
}

/// Whether `verifier` (RFC 7636 §4.1: 43 to 128 unreserved characters) hashes to `challenge`.
/// Compared in constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_example_verifies() {
        assert_eq!(check_challenge(CHALLENGE, Some("S256")), Ok(()));
        assert!(verify(VERIFIER, CHALLENGE));
    }

    #[test]
    fn plain_and_malformed_are_refused() {
        assert!(check_challenge(CHALLENGE, Some("plain")).is_err());
        assert!(check_challenge(CHALLENGE, None).is_err());
        assert!(check_challenge("short", Some("S256")).is_err());
        assert!(
            !verify(&VERIFIER[..42], CHALLENGE),
            "42 characters is too short"
        );
        assert!(
            !verify(&"a".repeat(129), CHALLENGE),
            "129 characters is too long"
        );
        assert!(!verify(&format!("{}x", &VERIFIER[..42]), CHALLENGE));
        assert!(!verify(&format!("{VERIFIER}!"), CHALLENGE));
    }
}

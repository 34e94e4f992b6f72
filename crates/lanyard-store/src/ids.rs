//! Identifiers and secrets the store hands out, and the hashing that keeps secrets off disk.
//!
//! Identifiers ([`SessionId`], [`FamilyId`], [`GrantId`]) are not secret. Secrets
//! ([`AuthorizationCode`], [`RefreshToken`]) print as `[redacted]` and are stored only as
//! SHA-256 hashes; a secret's value is reachable only through `.secret()`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes of CSPRNG output in an identifier (128 bits).
const ID_BYTES: usize = 16;
/// Characters of an identifier: base64url of 16 bytes, unpadded.
const ID_CHARS: usize = 22;
/// Bytes of CSPRNG output in a secret (256 bits).
pub(crate) const SECRET_BYTES: usize = 32;
/// Characters of a secret: base64url of 32 bytes, unpadded.
const SECRET_CHARS: usize = 43;

/// `n` bytes from the thread-local CSPRNG (ChaCha, seeded from the OS).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    buf
}

/// An id for a single-use value (`put_once`): 256 random bits, as a bearer secret.
pub(crate) fn once_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>())
}

fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<ID_BYTES>())
}

fn is_id(s: &str) -> bool {
    s.len() == ID_CHARS
        && URL_SAFE_NO_PAD
            .decode(s)
            .is_ok_and(|bytes| bytes.len() == ID_BYTES)
}

/// Lower-case hex SHA-256 of a secret: how secrets are keyed and compared at rest.
pub(crate) fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

pub(crate) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        let digit = |c: u8| char::from(c).to_digit(16);
        let hi = digit(pair[0])?;
        let lo = digit(pair[1])?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A fresh identifier: 128 bits from a CSPRNG, base64url.
            pub fn generate() -> Self {
                Self(random_id())
            }

            /// Accepts only what [`generate`](Self::generate) produces; anything else
            /// (attacker-controlled cookies and parameters included) is `None`.
            pub fn parse(s: &str) -> Option<Self> {
                is_id(s).then(|| Self(s.to_owned()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                if is_id(&s) {
                    Ok(Self(s))
                } else {
                    Err(format!("not a {}", stringify!($name)))
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// Names an SSO session (the `sid` claim). Every client signed in through one session
    /// gets the same `sid`.
    SessionId
);

id_type!(
    /// Names one authorization grant: the link from an authorization code to everything
    /// issued from it.
    GrantId
);

/// Names a refresh-token family: one grant of one client, in one session or offline.
///
/// A family bound to a session carries its [`SessionId`], so the store keeps the family beside
/// its session (one Redis hash slot) and ends both in one atomic step.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FamilyId(String);

impl FamilyId {
    /// A fresh family id, bound to `session` when given (the family then ends with it).
    pub fn generate(session: Option<&SessionId>) -> Self {
        match session {
            Some(sid) => Self(format!("s{}{}", sid.as_str(), random_id())),
            None => Self(format!("o{}", random_id())),
        }
    }

    /// Accepts only what [`generate`](Self::generate) produces.
    pub fn parse(s: &str) -> Option<Self> {
        // Byte-slicing below is safe only on ASCII; ids are base64url.
        let ok = s.is_ascii()
            && match s.as_bytes().first() {
                Some(b's') => {
                    s.len() == 1 + 2 * ID_CHARS
                        && is_id(&s[1..=ID_CHARS])
                        && is_id(&s[1 + ID_CHARS..])
                }
                Some(b'o') => s.len() == 1 + ID_CHARS && is_id(&s[1..]),
                _ => false,
            };
        ok.then(|| Self(s.to_owned()))
    }

    /// The session this family ends with, if it is session-bound.
    pub fn session(&self) -> Option<SessionId> {
        match self.0.as_bytes().first() {
            Some(b's') => Some(SessionId(self.0[1..=ID_CHARS].to_owned())),
            _ => None,
        }
    }

    /// The family id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FamilyId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| "not a FamilyId".to_owned())
    }
}

impl From<FamilyId> for String {
    fn from(id: FamilyId) -> String {
        id.0
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FamilyId({})", self.0)
    }
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            /// The secret value. Never log it.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}([redacted])", stringify!($name))
            }
        }
    };
}

secret_type!(
    /// An authorization code (RFC 6749 §4.1.2): 256 bits from a CSPRNG, base64url. The store
    /// keeps only its hash.
    AuthorizationCode
);

impl AuthorizationCode {
    pub(crate) fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>()))
    }
}

secret_type!(
    /// A refresh token: `<family id>.<256-bit secret>`, opaque to clients. The store keeps
    /// only its hash; the family id in front tells the store where the family lives.
    RefreshToken
);

impl RefreshToken {
    pub(crate) fn from_parts(family: &FamilyId, secret: &[u8; SECRET_BYTES]) -> Self {
        Self(format!(
            "{}.{}",
            family.as_str(),
            URL_SAFE_NO_PAD.encode(secret)
        ))
    }

    /// Splits a presented token into its family and checks the shape of its secret.
    /// Anything malformed is `None`: the caller answers `invalid_grant`.
    pub(crate) fn parse_family(presented: &str) -> Option<FamilyId> {
        let (family, secret) = presented.split_once('.')?;
        let secret_ok = secret.len() == SECRET_CHARS
            && URL_SAFE_NO_PAD
                .decode(secret)
                .is_ok_and(|b| b.len() == SECRET_BYTES);
        if secret_ok {
            FamilyId::parse(family)
        } else {
            None
        }
    }
}

/// A refresh token's successor, sealed so that only the holder of the token it replaces can
/// open it: XOR with SHA-256 of a domain label and the old token. Each old token seals exactly
/// one successor, so the pad is never reused. What is stored therefore reveals nothing
/// without the old token, which is itself stored only as a hash.
pub(crate) fn seal_successor(old_token: &str, successor: &[u8; SECRET_BYTES]) -> String {
    let pad = successor_pad(old_token);
    let mut sealed = [0u8; SECRET_BYTES];
    for (i, byte) in sealed.iter_mut().enumerate() {
        *byte = successor[i] ^ pad[i];
    }
    hex(&sealed)
}

/// Opens what [`seal_successor`] sealed; `None` if the stored value is not a sealed secret.
pub(crate) fn open_successor(old_token: &str, sealed: &str) -> Option<[u8; SECRET_BYTES]> {
    let mut bytes = unhex::<SECRET_BYTES>(sealed)?;
    let pad = successor_pad(old_token);
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte ^= pad[i];
    }
    Some(bytes)
}

fn successor_pad(old_token: &str) -> [u8; SECRET_BYTES] {
    let mut h = Sha256::new();
    h.update(b"lanyard refresh successor v1\0");
    h.update(old_token.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_what_generate_makes() {
        let sid = SessionId::generate();
        assert_eq!(SessionId::parse(sid.as_str()), Some(sid.clone()));
        for bad in [
            "",
            "short",
            "../../etc/passwd",
            "{tag}",
            &"A".repeat(23),
            "ab+/cdefghijklmnopqrstu",
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
        let bound = FamilyId::generate(Some(&sid));
        assert_eq!(bound.session(), Some(sid));
        assert_eq!(FamilyId::parse(bound.as_str()), Some(bound.clone()));
        let offline = FamilyId::generate(None);
        assert_eq!(offline.session(), None);
        assert_eq!(FamilyId::parse(offline.as_str()), Some(offline));
        assert_eq!(FamilyId::parse("x"), None);
        assert_eq!(FamilyId::parse(&bound.as_str()[..30]), None);
        // Multi-byte characters must not make the parser slice inside a character.
        assert_eq!(FamilyId::parse(&format!("s{}", "é".repeat(22))), None);
    }

    #[test]
    fn refresh_tokens_parse_back_to_their_family() {
        let family = FamilyId::generate(None);
        let token = RefreshToken::from_parts(&family, &random_bytes());
        assert_eq!(
            RefreshToken::parse_family(token.secret()),
            Some(family.clone())
        );
        assert_eq!(RefreshToken::parse_family(family.as_str()), None);
        assert_eq!(
            RefreshToken::parse_family(&format!("{family}.tooshort")),
            None
        );
        assert_eq!(RefreshToken::parse_family("é.é"), None);
    }

    #[test]
    fn secrets_do_not_print() {
        let code = AuthorizationCode::generate();
        assert_eq!(format!("{code:?}"), "AuthorizationCode([redacted])");
        assert_eq!(code.secret().len(), SECRET_CHARS);
    }

    #[test]
    fn sealed_successor_opens_only_with_the_old_token() {
        let next = random_bytes::<SECRET_BYTES>();
        let sealed = seal_successor("old-token", &next);
        assert_eq!(open_successor("old-token", &sealed), Some(next));
        assert_ne!(open_successor("other-token", &sealed), Some(next));
        assert_eq!(open_successor("old-token", "zz"), None);
    }

    #[test]
    fn hex_round_trips() {
        let bytes = random_bytes::<4>();
        assert_eq!(unhex::<4>(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex::<1>("g0"), None);
    }
}

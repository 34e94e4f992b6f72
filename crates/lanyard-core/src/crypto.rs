//! Secrets at rest and in cookies: argon2id for passwords (off the async workers, with a
//! limit on how many run at once), keyed hashes for client secrets, MACs for cookies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::{Argon2, PasswordHasher as _};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;

/// `n` bytes from the CSPRNG, base64url.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The key-encryption key (envelope encryption): signing keys, the client-secret pepper and
/// the cookie key are stored sealed under it (AES-256-GCM, a random 96-bit nonce each time,
/// the row's name as associated data so that no sealed value can be moved to another row).
/// It lives outside the database (`master_key_file`), so a copy of the database alone cannot
/// forge a token or a cookie.
///
/// A sealed value is `LKE1` ‖ the key's id (8 bytes of SHA-256 of the key) ‖ nonce ‖
/// ciphertext and tag; anything else is a value stored before sealing existed.
pub struct MasterKey {
    key: aws_lc_rs::aead::LessSafeKey,
    id: [u8; 8],
}

const SEALED: &[u8; 4] = b"LKE1";
const NONCE: usize = 12;

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &URL_SAFE_NO_PAD.encode(self.id))
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A new random key and its text form (what a key file holds).
    pub fn generate() -> (Self, String) {
        let text = random_token(32);
        let key = Self::parse(&text).unwrap_or_else(|_| unreachable!("32 random bytes"));
        (key, text)
    }

    /// The key from its text form: 32 bytes, base64url (43 characters; spaces and newlines
    /// around it are ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or("a master key is 32 bytes in base64url (43 characters; `lanyard keys master-key` makes one)")?;
        let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &bytes)
            .map_err(|_| "the master key was refused by AES-256-GCM".to_owned())?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest.as_ref()[..8]);
        Ok(Self {
            key: aws_lc_rs::aead::LessSafeKey::new(unbound),
            id,
        })
    }

    /// Whether `stored` is sealed (by any master key).
    pub fn is_sealed(stored: &[u8]) -> bool {
        stored.starts_with(SEALED)
    }

    /// Whether `stored` is sealed under this key.
    pub fn sealed_here(&self, stored: &[u8]) -> bool {
        Self::is_sealed(stored) && stored.get(4..12) == Some(&self.id[..])
    }

    /// Seals `plain` for the row `name`.
    pub fn seal(&self, name: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(name.as_bytes()),
                &mut body,
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM seals any length we store"));
        let mut out = Vec::with_capacity(4 + 8 + NONCE + body.len());
        out.extend_from_slice(SEALED);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        out
    }

    /// Opens what [`seal`](Self::seal) made for the row `name`.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if !self.sealed_here(sealed) {
            return Err(format!(
                "{name} is sealed under another master key (this one's id is {})",
                URL_SAFE_NO_PAD.encode(self.id)
            ));
        }
        let nonce: [u8; NONCE] = sealed
            .get(12..12 + NONCE)
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| format!("{name}: the sealed value is cut short"))?;
        let mut body = sealed.get(12 + NONCE..).unwrap_or_default().to_vec();
        let plain = self
            .key
            .open_in_place(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(name.as_bytes()),
                &mut body,
            )
            .map_err(|_| {
                format!(
                    "{name}: the sealed value does not open (altered, or moved from another row)"
                )
            })?;
        Ok(plain.to_vec())
    }
}

/// Hashes and verifies passwords with argon2id (OWASP parameters: m=19 MiB, t=2, p=1).
///
/// Each hash takes ~14–23 ms of one core, so hashing runs on threads of its own, one per
/// core; a request beyond that waits its turn instead of starving the runtime. Their number
/// is fixed because each keeps the 19 MiB of its last hash (the allocator holds a freed block
/// that large for the thread's next use): on Tokio's blocking pool, which grows to hundreds
/// of threads, sign-ins under load held 420–944 MiB (issue 26's `bench/run --scenarios
/// signin`); on these, cores × 19 MiB.
#[derive(Clone)]
pub struct Passwords {
    threads: Arc<HashThreads>,
    /// argon2 verifications run so far (unknown users included): tests read it to check that
    /// every sign-in does the same work.
    verified: Arc<AtomicU64>,
    /// Verified against when the user does not exist, so that "no such user" takes as long
    /// as "wrong password".
    dummy: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The hasher failed (should not happen with sane input).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The hashing threads are gone (shutting down), or a hash panicked.
    #[error("password hashing was interrupted")]
    Interrupted,
}

/// A job for the hashing threads.
type HashJob = Box<dyn FnOnce() + Send>;

/// The threads that run argon2, one per core, fed through one queue; they end when the last
/// [`Passwords`] is dropped.
struct HashThreads {
    jobs: std::sync::mpsc::Sender<HashJob>,
}

impl HashThreads {
    fn start(count: usize) -> Result<Self, PasswordError> {
        let (jobs, queue) = std::sync::mpsc::channel::<HashJob>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..count {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(job) = job else { return };
                        // A panic ends the job (its caller hears "interrupted"), not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| PasswordError::Hash(format!("no hashing thread: {e}")))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a hashing thread when one is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| PasswordError::Interrupted)?;
        result.await.map_err(|_| PasswordError::Interrupted)
    }
}

impl Passwords {
    /// A hasher; computes the dummy hash once.
    pub fn new() -> Result<Self, PasswordError> {
        let dummy = hash_now(&random_token(16))?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            threads: Arc::new(HashThreads::start(cores)?),
            verified: Arc::new(AtomicU64::new(0)),
            dummy: dummy.into(),
        })
    }

    /// How many argon2 verifications have run.
    pub fn verifications(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    /// An argon2id PHC string for `password`, salted.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_owned();
        self.threads.run(move || hash_now(&password)).await?
    }

    /// Whether `password` matches `stored`; with `None` (no such user) or an empty hash (a
    /// person without a password yet, provisioned over SCIM) the same work is done against a
    /// dummy hash and the answer is `false`: the time tells nobody which it was.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let stored = stored.filter(|h| !h.is_empty());
        let known = stored.is_some();
        let hash = stored.map_or_else(|| self.dummy.to_string(), str::to_owned);
        let password = password.to_owned();
        let verified = self.verified.clone();
        let matched = self
            .threads
            .run(move || {
                verified.fetch_add(1, Ordering::Relaxed);
                HASH_MEMORY.with_borrow_mut(|memory| verify_in(memory, &password, &hash))
            })
            .await?;
        Ok(known && matched)
    }
}

thread_local! {
    /// A hashing thread's argon2 memory (19 MiB with Lanyard's parameters), kept for its
    /// next verification rather than allocated and freed each time.
    static HASH_MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `password` matches the PHC string `stored`, computed in `memory` (grown to what
/// the stored parameters need, and kept). What `Argon2::verify_password` does, without its
/// allocation per call; compared in constant time.
fn verify_in(memory: &mut Vec<argon2::Block>, password: &str, stored: &str) -> bool {
    use argon2::{Algorithm, Params, PasswordHash, Version};
    let Ok(phc) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(phc.algorithm.as_str());
    let version = phc
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&phc))
    else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::new());
    }
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut computed,
            &mut memory[..blocks],
        )
        .is_ok()
        && aws_lc_rs::constant_time::verify_slices_are_equal(&computed, expected.as_ref()).is_ok()
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Keys the server holds for itself (kept in the database, one per purpose, made at first
/// start): a pepper for client-secret hashes and a MAC key for cookies.
#[derive(Clone)]
pub struct ServerKeys {
    client_secret: hmac::Key,
    cookie: hmac::Key,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys([redacted])")
    }
}

/// Stored client-secret hashes start with this, so the scheme can change later.
const CLIENT_SECRET_SCHEME: &str = "hmac-sha256$";

impl ServerKeys {
    /// From the raw key bytes.
    pub fn new(client_secret_key: &[u8], cookie_key: &[u8]) -> Self {
        Self {
            client_secret: hmac::Key::new(hmac::HMAC_SHA256, client_secret_key),
            cookie: hmac::Key::new(hmac::HMAC_SHA256, cookie_key),
        }
    }

    /// The stored form of a client secret: HMAC-SHA-256 under the server's pepper. Secrets are
    /// ≥ 256-bit random (or ≥ 32 characters when supplied), so a fast keyed hash is enough and
    /// client authentication costs microseconds, not an argon2 run.
    pub fn hash_client_secret(&self, secret: &str) -> String {
        let tag = hmac::sign(&self.client_secret, secret.as_bytes());
        format!(
            "{CLIENT_SECRET_SCHEME}{}",
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// Whether `secret` matches `stored`, compared in constant time.
    pub fn verify_client_secret(&self, secret: &str, stored: &str) -> bool {
        let Some(encoded) = stored.strip_prefix(CLIENT_SECRET_SCHEME) else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(encoded) else {
            return false;
        };
        hmac::verify(&self.client_secret, secret.as_bytes(), &tag).is_ok()
    }

    /// The stored form of a recovery code (normalised by the caller): HMAC-SHA-256 under the
    /// server's pepper, apart from client secrets. The codes are 50-bit random, used once and
    /// throttled, so a keyed hash is enough; a copy of the database alone cannot test guesses.
    pub fn hash_recovery_code(&self, code: &str) -> String {
        let tag = hmac::sign(
            &self.client_secret,
            format!("recovery-code\0{code}").as_bytes(),
        );
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// The secret DPoP nonces are derived from (RFC 9449 §8): the same on every node, kept
    /// nowhere, not guessable from the nonces.
    pub fn dpop_nonce_secret(&self) -> [u8; 32] {
        let mut secret = [0u8; 32];
        secret.copy_from_slice(hmac::sign(&self.cookie, b"dpop-nonce-secret").as_ref());
        secret
    }

    /// `value.MAC`: a cookie value the browser cannot forge. `purpose` separates cookies.
    pub fn seal_cookie(&self, purpose: &str, value: &str) -> String {
        let tag = hmac::sign(&self.cookie, format!("{purpose}\0{value}").as_bytes());
        format!("{value}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The value inside a sealed cookie, if its MAC is right.
    pub fn open_cookie<'a>(&self, purpose: &str, sealed: &'a str) -> Option<&'a str> {
        let (value, mac) = sealed.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(mac).ok()?;
        hmac::verify(&self.cookie, format!("{purpose}\0{value}").as_bytes(), &tag)
            .ok()
            .map(|()| value)
    }
}

/// Compares two secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_kept_as_keyed_hashes_apart_from_client_secrets() {
        let keys = ServerKeys::new(b"pepper", b"cookie");
        let hash = keys.hash_recovery_code("abcde23456");
        assert_eq!(
            hash,
            keys.hash_recovery_code("abcde23456"),
            "looked up by hash"
        );
        assert!(!hash.contains("abcde23456"));
        assert_ne!(hash, keys.hash_recovery_code("abcde23457"));
        let other = ServerKeys::new(b"another pepper", b"cookie");
        assert_ne!(hash, other.hash_recovery_code("abcde23456"), "keyed");
        assert!(
            !keys.hash_client_secret("abcde23456").ends_with(&hash),
            "apart from client secrets"
        );
    }

    #[test]
    fn sealed_secrets_open_only_under_their_key_and_row() {
        let (key, text) = MasterKey::generate();
        assert_eq!(text.len(), 43);
        let again = MasterKey::parse(&format!(" {text}\n")).unwrap();
        let sealed = key.seal("server_key:cookie_mac", b"the secret");
        assert!(MasterKey::is_sealed(&sealed) && key.sealed_here(&sealed));
        assert!(
            !sealed.windows(10).any(|w| w == b"the secret"),
            "not in the clear"
        );
        assert_eq!(
            again.open("server_key:cookie_mac", &sealed).unwrap(),
            b"the secret"
        );
        assert_ne!(
            sealed,
            key.seal("server_key:cookie_mac", b"the secret"),
            "fresh nonces"
        );
        assert!(
            key.open("server_key:client_secret_pepper", &sealed)
                .is_err(),
            "another row"
        );
        let (other, _) = MasterKey::generate();
        assert!(!other.sealed_here(&sealed));
        assert!(other.open("server_key:cookie_mac", &sealed).is_err());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open("server_key:cookie_mac", &altered).is_err());
        assert!(!MasterKey::is_sealed(b"plain pkcs8"));
        for bad in ["", "short", &"A".repeat(44)] {
            assert!(MasterKey::parse(bad).is_err(), "{bad}");
        }
    }

    /// However many hashes are asked for at once, they run on the fixed hashing threads,
    /// as many at a time as there are threads; a panicking job does not take its thread.
    #[tokio::test]
    async fn hashes_run_on_the_fixed_threads_only() {
        use std::sync::atomic::AtomicUsize;
        let threads = Arc::new(HashThreads::start(2).unwrap());
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..16)
            .map(|_| {
                let (threads, running, most) = (threads.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    threads
                        .run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            running.fetch_sub(1, Ordering::SeqCst);
                            std::thread::current().name().map(str::to_owned)
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut names = std::collections::BTreeSet::new();
        for job in jobs {
            names.insert(job.await.unwrap().unwrap_or_default());
        }
        assert!(
            names.iter().all(|n| n == "argon2-0" || n == "argon2-1"),
            "{names:?}"
        );
        assert!(most.load(Ordering::SeqCst) <= 2);

        let one = HashThreads::start(1).unwrap();
        assert!(matches!(
            one.run(|| panic!("a bad hash")).await,
            Err(PasswordError::Interrupted)
        ));
        assert_eq!(one.run(|| 7).await.unwrap(), 7, "the thread lives on");
    }

    /// The verification in kept memory agrees with argon2's own, for Lanyard's hashes and
    /// for hashes made with other parameters, variants and versions; and keeps its memory.
    #[test]
    fn verifying_in_kept_memory_agrees_with_argon2() {
        use argon2::{Algorithm, Params, PasswordHasher, PasswordVerifier, Version};
        let others = [
            Argon2::new(
                Algorithm::Argon2i,
                Version::V0x13,
                Params::new(4096, 3, 1, None).unwrap(),
            ),
            Argon2::new(
                Algorithm::Argon2id,
                Version::V0x10,
                Params::new(8192, 1, 2, Some(16)).unwrap(),
            ),
        ];
        let mut stored = vec![hash_now("right").unwrap()];
        for argon in &others {
            let salt = random_token(16);
            stored.push(
                argon
                    .hash_password_with_salt(b"right", salt.as_bytes())
                    .unwrap()
                    .to_string(),
            );
        }
        let mut memory = Vec::new();
        for hash in &stored {
            for password in ["right", "wrong", ""] {
                let theirs = Argon2::default()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok();
                assert_eq!(
                    verify_in(&mut memory, password, hash),
                    theirs,
                    "{hash} {password}"
                );
                assert_eq!(theirs, password == "right");
            }
        }
        assert_eq!(memory.len(), 19_456, "grown to the largest need, kept");
        for malformed in [
            "",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "not a hash",
            &stored[0][..20],
        ] {
            assert!(!verify_in(&mut memory, "right", malformed), "{malformed}");
        }
    }

    #[tokio::test]
    async fn passwords_hash_with_salt_and_verify() {
        let p = Passwords::new().unwrap();
        let a = p.hash("correct horse battery staple").await.unwrap();
        let b = p.hash("correct horse battery staple").await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(
            p.verify("correct horse battery staple", Some(&a))
                .await
                .unwrap()
        );
        assert!(!p.verify("wrong", Some(&a)).await.unwrap());
        assert!(
            !p.verify("correct horse battery staple", None)
                .await
                .unwrap()
        );
        assert!(!p.verify("x", Some("not a hash")).await.unwrap());
        assert!(
            !p.verify("", Some("")).await.unwrap(),
            "no password matches none"
        );
    }

    #[test]
    fn client_secrets_and_cookies() {
        let keys = ServerKeys::new(b"pepper", b"cookie-key");
        let stored = keys.hash_client_secret("s3cret-s3cret-s3cret-s3cret-s3cret");
        assert!(stored.starts_with("hmac-sha256$"));
        assert!(!stored.contains("s3cret"));
        assert!(keys.verify_client_secret("s3cret-s3cret-s3cret-s3cret-s3cret", &stored));
        assert!(!keys.verify_client_secret("s3cret-s3cret-s3cret-s3cret-s3cre", &stored));
        assert!(!keys.verify_client_secret("x", "plaintext"));
        let other = ServerKeys::new(b"other pepper", b"cookie-key");
        assert!(!other.verify_client_secret("s3cret-s3cret-s3cret-s3cret-s3cret", &stored));

        let sealed = keys.seal_cookie("session", "sid-123");
        assert_eq!(keys.open_cookie("session", &sealed), Some("sid-123"));
        assert_eq!(
            keys.open_cookie("csrf", &sealed),
            None,
            "purposes are separate"
        );
        assert_eq!(keys.open_cookie("session", "sid-123.AAAA"), None);
        assert_eq!(keys.open_cookie("session", "sid-124"), None);
        assert!(same_secret("a", "a") && !same_secret("a", "b"));
    }
}

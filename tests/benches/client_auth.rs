//! The token endpoint with `private_key_jwt` against with a client secret (issue 24): Lanyard
//! on its embedded defaults (SQLite, in-process store) in this process, `TASKS` clients
//! asking for `client_credentials` tokens over HTTP as fast as they can for `SECONDS`, each
//! authenticating with its secret (HTTP Basic) or with a fresh ES256 or EdDSA assertion it
//! signs itself (a new `jti` each time), or with its secret and a fresh ES256 DPoP proof
//! (RFC 9449: the token bound to the client's key). The four alternate, twice. Prints tokens per second
//! and the process's CPU time per token (server and clients: a client's ES256 signature is
//! tens of microseconds of it).
//!
//! `cargo bench -p lanyard-e2e --bench client_auth`. Figures are recorded in
//! `docs/performance.md`.
//!
//! With `PEER_DIR` (where `bench/run` installs oidc-provider with `bench/peer/provider.mjs`,
//! `~/.cache/lanyard-peers/oidc-provider`), the same callers then run against the peer
//! started with `BENCH_CLIENT_JWKS` (a `private_key_jwt` client and DPoP turned on): its
//! `bench` client with a secret, with ES256 assertions, and with a secret and DPoP proofs
//! (the peer's EdDSA client authentication is not set up).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod common;
use common::cpu;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::clients::{NewClient, add_client};
use lanyard_core::config::Config;
use lanyard_core::model::{AuthMethod, ClientSettings, GrantType};
use lanyard_idp::state::AppState;
use lanyard_store::{Clock, SystemClock};
use serde_json::json;

const TASKS: usize = 16;
const SECONDS: u64 = 10;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum How {
    Secret,
    Es256,
    EdDsa,
    Dpop,
}

/// The four ways, in the order they run.
const HOWS: [How; 4] = [How::Secret, How::Es256, How::EdDsa, How::Dpop];

/// A client's way to authenticate.
enum Credential {
    Secret(String),
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    /// A secret, and a key that signs a DPoP proof for each request.
    Dpop(String, lanyard_rp::dpop::DpopKey),
}

struct Caller {
    http: reqwest::Client,
    issuer: String,
    /// Where tokens are asked for (`{issuer}/token`).
    token_endpoint: String,
    client_id: String,
    credential: Credential,
    /// Extra form fields (the peer's `scope`).
    extra: Vec<(&'static str, &'static str)>,
    /// With `n`, makes each assertion's `jti` unique, also among callers sharing a client.
    nonce: u64,
    n: u64,
}

impl Caller {
    fn assertion(&mut self) -> String {
        self.n += 1;
        let now = SystemClock.now().as_secs();
        let alg = match self.credential {
            Credential::Es256(_) => "ES256",
            _ => "EdDSA",
        };
        let header = json!({"alg": alg, "typ": "JWT"});
        let claims = json!({"iss": self.client_id, "sub": self.client_id, "aud": self.issuer,
                            "iat": now, "exp": now + 60, "jti": format!("{}-{}-{}", self.client_id, self.n, self.nonce)});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match &self.credential {
            Credential::Es256(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Credential::EdDsa(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            Credential::Secret(_) | Credential::Dpop(..) => unreachable!(),
        };
        format!("{input}.{}", b64(&signature))
    }

    async fn token(&mut self) {
        let url = self.token_endpoint.clone();
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(self.extra.iter().copied());
        let request = match &self.credential {
            Credential::Secret(secret) => self
                .http
                .post(url)
                .basic_auth(&self.client_id, Some(secret))
                .form(&form),
            Credential::Dpop(secret, key) => {
                let proof = key.proof("POST", &url, None, None, SystemClock.now().as_secs());
                self.http
                    .post(url)
                    .basic_auth(&self.client_id, Some(secret))
                    .header("DPoP", proof)
                    .form(&form)
            }
            _ => {
                let assertion = self.assertion();
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", assertion.as_str()));
                self.http.post(url).form(&form)
            }
        };
        let r = request.send().await.unwrap();
        let status = r.status();
        assert_eq!(
            status,
            200,
            "{} at {}: {}",
            self.client_id,
            self.token_endpoint,
            r.text().await.unwrap_or_default()
        );
    }
}

async fn load(
    callers: &mut Vec<Caller>,
    how: How,
    cpu_of: &dyn Fn() -> Duration,
) -> (f64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let cpu_before = cpu_of();
    let mut tasks = tokio::task::JoinSet::new();
    let (mine, others): (Vec<Caller>, Vec<Caller>) =
        callers.drain(..).partition(|c| c.how() == how);
    callers.extend(others);
    for mut caller in mine {
        let done = done.clone();
        tasks.spawn(async move {
            while Instant::now() < deadline {
                caller.token().await;
                done.fetch_add(1, Ordering::Relaxed);
            }
            caller
        });
    }
    callers.extend(tasks.join_all().await);
    let elapsed = started.elapsed();
    let count = done.load(Ordering::Relaxed);
    let cpu_each = (cpu_of() - cpu_before) / u32::try_from(count.max(1)).unwrap();
    (count as f64 / elapsed.as_secs_f64(), cpu_each)
}

impl Caller {
    fn how(&self) -> How {
        match self.credential {
            Credential::Secret(_) => How::Secret,
            Credential::Es256(_) => How::Es256,
            Credential::EdDsa(_) => How::EdDsa,
            Credential::Dpop(..) => How::Dpop,
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir =
            std::env::temp_dir().join(format!("lanyard-bench-client-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let config = Config {
            issuer: issuer.clone(),
            listen: listener.local_addr().unwrap(),
            database_url: format!("sqlite://{}/lanyard.db", dir.display()),
            ..Config::default()
        };
        let state = AppState::build(config).await.unwrap();
        let mut callers = Vec::new();
        for t in 0..TASKS {
            for how in HOWS {
                let client_id = format!("{how:?}-{t}").to_lowercase();
                let (credential, jwk) = match how {
                    How::Secret | How::Dpop => (None, None),
                    How::Es256 => {
                        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
                            &ECDSA_P256_SHA256_FIXED_SIGNING,
                            &SystemRandom::new(),
                        )
                        .unwrap();
                        let k = EcdsaKeyPair::from_pkcs8(
                            &ECDSA_P256_SHA256_FIXED_SIGNING,
                            pkcs8.as_ref(),
                        )
                        .unwrap();
                        let p = k.public_key().as_ref().to_vec();
                        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])});
                        (Some(Credential::Es256(k)), Some(jwk))
                    }
                    How::EdDsa => {
                        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
                        let k = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
                        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())});
                        (Some(Credential::EdDsa(k)), Some(jwk))
                    }
                };
                let (_, secret) = add_client(
                    &state.db,
                    &state.server_keys,
                    NewClient {
                        settings: ClientSettings {
                            grant_types: vec![GrantType::ClientCredentials],
                            token_endpoint_auth_method: jwk
                                .is_some()
                                .then_some(AuthMethod::PrivateKeyJwt),
                            jwks: jwk.map(|k| json!({ "keys": [k] })),
                            ..ClientSettings::new(client_id.clone())
                        },
                        secret: None,
                    },
                    SystemClock.now(),
                )
                .await
                .unwrap();
                callers.push(Caller {
                    http: reqwest::Client::new(),
                    issuer: issuer.clone(),
                    token_endpoint: format!("{issuer}/token"),
                    extra: Vec::new(),
                    nonce: random_u64(),
                    client_id,
                    credential: credential.unwrap_or_else(|| match how {
                        How::Dpop => Credential::Dpop(
                            secret.unwrap(),
                            lanyard_rp::dpop::DpopKey::generate().unwrap(),
                        ),
                        _ => Credential::Secret(secret.unwrap()),
                    }),
                    n: 0,
                });
            }
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(lanyard_idp::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        println!(
            "Lanyard: {TASKS} clients, {SECONDS} s per run, client_credentials tokens (RS256 access tokens)"
        );
        measure(&mut callers, &HOWS, &cpu).await;
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        std::fs::remove_dir_all(&dir).ok();
        if let Ok(peer_dir) = std::env::var("PEER_DIR") {
            peer(&peer_dir).await;
        }
    });
}

/// Warms up, then runs each way twice, printing tokens per second and the CPU time per
/// token that `cpu_of` reads.
async fn measure(callers: &mut Vec<Caller>, hows: &[How], cpu_of: &dyn Fn() -> Duration) {
    for how in hows {
        load(callers, *how, cpu_of).await; // warm-up
    }
    for pass in 1..=2 {
        for how in hows {
            let (rate, cpu_each) = load(callers, *how, cpu_of).await;
            println!(
                "pass {pass}: {:<28} {rate:>8.0} tokens/s   {:>6} µs CPU per token",
                match how {
                    How::Secret => "client_secret_basic",
                    How::Es256 => "private_key_jwt (ES256)",
                    How::EdDsa => "private_key_jwt (EdDSA)",
                    How::Dpop => "secret + DPoP proof (ES256)",
                },
                cpu_each.as_micros()
            );
        }
    }
}

/// The same callers against oidc-provider (see the module docs); CPU per token is the
/// peer process's.
async fn peer(peer_dir: &str) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let public = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "x": b64(&public[1..33]), "y": b64(&public[33..65])});
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new("node")
        .arg(format!("{peer_dir}/provider.mjs"))
        .current_dir(peer_dir)
        .env("PORT", port.to_string())
        .env("AT_FORMAT", "jwt")
        .env("NODE_ENV", "production")
        .env("BENCH_CLIENT_JWKS", json!({ "keys": [jwk] }).to_string())
        .kill_on_drop(true)
        .spawn()
        .expect("node and the peer (bench/run installs it into PEER_DIR)");
    let pid = child.id().unwrap();
    let http = reqwest::Client::new();
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    let ready = Instant::now() + Duration::from_secs(20);
    while http.get(&discovery).send().await.is_err() {
        assert!(Instant::now() < ready, "the peer did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metadata: serde_json::Value = http
        .get(&discovery)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token_endpoint = metadata["token_endpoint"].as_str().unwrap().to_owned();
    let mut callers = Vec::new();
    for _ in 0..TASKS {
        for how in [How::Secret, How::Es256, How::Dpop] {
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
            let (client_id, credential) = match how {
                How::Secret => ("bench", Credential::Secret("bench-secret".to_owned())),
                How::Es256 => ("bench-jwt", Credential::Es256(key)),
                _ => (
                    "bench",
                    Credential::Dpop(
                        "bench-secret".to_owned(),
                        lanyard_rp::dpop::DpopKey::generate().unwrap(),
                    ),
                ),
            };
            callers.push(Caller {
                http: reqwest::Client::new(),
                issuer: issuer.clone(),
                token_endpoint: token_endpoint.clone(),
                client_id: client_id.to_owned(),
                credential,
                extra: vec![("scope", "api:read")],
                nonce: random_u64(),
                n: 0,
            });
        }
    }
    println!("oidc-provider (peer, JWT access tokens RS256): {TASKS} clients, {SECONDS} s per run");
    let peer_cpu = move || common::process_cpu(&pid.to_string());
    measure(
        &mut callers,
        &[How::Secret, How::Es256, How::Dpop],
        &peer_cpu,
    )
    .await;
    child.kill().await.ok();
}

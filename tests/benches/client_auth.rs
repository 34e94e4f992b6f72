//! The token endpoint with `private_key_jwt` against with a client secret (issue 24): Lanyard
//! on its embedded defaults (SQLite, in-process store) in this process, `TASKS` clients
//! asking for `client_credentials` tokens over HTTP as fast as they can for `SECONDS`, each
//! authenticating with its secret (HTTP Basic) or with a fresh ES256 or EdDSA assertion it
//! signs itself (a new `jti` each time). The three alternate, twice. Prints tokens per second
//! and the process's CPU time per token (server and clients: a client's ES256 signature is
//! tens of microseconds of it).
//!
//! `cargo bench -p lanyard-e2e --bench client_auth`. Figures are recorded in
//! `docs/performance.md`.
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

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum How {
    Secret,
    Es256,
    EdDsa,
}

/// A client's way to authenticate.
enum Credential {
    Secret(String),
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

struct Caller {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    credential: Credential,
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
                            "iat": now, "exp": now + 60, "jti": format!("{}-{}-{now}", self.client_id, self.n)});
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
            Credential::Secret(_) => unreachable!(),
        };
        format!("{input}.{}", b64(&signature))
    }

    async fn token(&mut self) {
        let url = format!("{}/token", self.issuer);
        let request = match &self.credential {
            Credential::Secret(secret) => self
                .http
                .post(url)
                .basic_auth(&self.client_id, Some(secret))
                .form(&[("grant_type", "client_credentials")]),
            _ => {
                let assertion = self.assertion();
                self.http.post(url).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.as_str()),
                ])
            }
        };
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }
}

async fn load(callers: &mut Vec<Caller>, how: How) -> (f64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let cpu_before = cpu();
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
    let cpu_each = (cpu() - cpu_before) / u32::try_from(count.max(1)).unwrap();
    (count as f64 / elapsed.as_secs_f64(), cpu_each)
}

impl Caller {
    fn how(&self) -> How {
        match self.credential {
            Credential::Secret(_) => How::Secret,
            Credential::Es256(_) => How::Es256,
            Credential::EdDsa(_) => How::EdDsa,
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
            for how in [How::Secret, How::Es256, How::EdDsa] {
                let client_id = format!("{how:?}-{t}").to_lowercase();
                let (credential, jwk) = match how {
                    How::Secret => (None, None),
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
                    client_id,
                    credential: credential.unwrap_or_else(|| Credential::Secret(secret.unwrap())),
                    n: 0,
                });
            }
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(lanyard_idp::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        for how in [How::Secret, How::Es256, How::EdDsa] {
            load(&mut callers, how).await; // warm-up
        }
        println!(
            "{TASKS} clients, {SECONDS} s per run, client_credentials tokens (RS256 access tokens)"
        );
        for pass in 1..=2 {
            for how in [How::Secret, How::Es256, How::EdDsa] {
                let (rate, cpu_each) = load(&mut callers, how).await;
                println!(
                    "pass {pass}: {:<28} {rate:>8.0} tokens/s   {:>6} µs CPU per token",
                    match how {
                        How::Secret => "client_secret_basic",
                        How::Es256 => "private_key_jwt (ES256)",
                        How::EdDsa => "private_key_jwt (EdDSA)",
                    },
                    cpu_each.as_micros()
                );
            }
        }
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        std::fs::remove_dir_all(&dir).ok();
    });
}

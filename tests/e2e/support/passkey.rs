//! A software passkey for the tests that run without a browser: an ES256 key made by
//! aws-lc-rs that answers WebAuthn ceremonies as an authenticator and its client would —
//! `clientDataJSON`, authenticator data, a `none` attestation in CBOR, an assertion signed
//! over both — written here from the WebAuthn Level 3 text, independently of the library the
//! server checks them with. It keeps discoverable credentials (it returns the user handle)
//! and counts signatures; tests may make it lie (another origin, no user verification).

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// One credential on the software authenticator.
pub(crate) struct SoftPasskey {
    key: EcdsaKeyPair,
    /// The credential id.
    pub(crate) id: Vec<u8>,
    /// The user handle it was registered for.
    user: Vec<u8>,
    /// The relying party it was registered for.
    rp_id: String,
    /// The signature counter (starts at 0; each assertion adds one).
    pub(crate) counter: u32,
    /// Whether it claims user verification (a real passkey always verifies).
    pub(crate) verifies_user: bool,
    /// Whether it says it can be synced (backup eligible).
    pub(crate) synced: bool,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s.as_str().expect("a base64url string"))
        .unwrap()
}

/// CBOR (RFC 8949): the few shapes a `none` attestation needs.
enum Cbor<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    Text(&'a str),
    Map(Vec<(Cbor<'a>, Cbor<'a>)>),
}

impl Cbor<'_> {
    fn head(out: &mut Vec<u8>, major: u8, n: u64) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | u8::try_from(n).unwrap()),
            24..=0xff => out.extend([m | 24, u8::try_from(n).unwrap()]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend(u16::try_from(n).unwrap().to_be_bytes());
            }
            _ => {
                out.push(m | 26);
                out.extend(u32::try_from(n).unwrap().to_be_bytes());
            }
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Int(i) if *i >= 0 => Self::head(out, 0, i.unsigned_abs()),
            Cbor::Int(i) => Self::head(out, 1, (-1 - i).unsigned_abs()),
            Cbor::Bytes(b) => {
                Self::head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Cbor::Text(t) => {
                Self::head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
            Cbor::Map(entries) => {
                Self::head(out, 5, entries.len() as u64);
                for (k, v) in entries {
                    k.encode(out);
                    v.encode(out);
                }
            }
        }
    }
}

impl SoftPasskey {
    /// The answer to `navigator.credentials.create(options)` from `origin`: a new credential.
    /// `options` is what the server sent (`{"publicKey": {...}}`).
    pub(crate) fn register(options: &Value, origin: &str) -> (Self, Value) {
        Self::register_with(options, origin, true)
    }

    /// [`SoftPasskey::register`] by an authenticator that does not verify the user.
    pub(crate) fn register_unverified(options: &Value, origin: &str) -> (Self, Value) {
        Self::register_with(options, origin, false)
    }

    fn register_with(options: &Value, origin: &str, verifies_user: bool) -> (Self, Value) {
        let o = &options["publicKey"];
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let mut id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut id).unwrap();
        let passkey = Self {
            key,
            id,
            user: unb64(&o["user"]["id"]),
            rp_id: o["rp"]["id"].as_str().unwrap().to_owned(),
            counter: 0,
            verifies_user,
            synced: true,
        };
        let client_data = passkey.client_data("webauthn.create", &o["challenge"], origin);
        // The public key as COSE_Key: EC2, ES256, P-256, x, y.
        let point = passkey.key.public_key().as_ref().to_vec();
        let cose = {
            let mut out = Vec::new();
            Cbor::Map(vec![
                (Cbor::Int(1), Cbor::Int(2)),
                (Cbor::Int(3), Cbor::Int(-7)),
                (Cbor::Int(-1), Cbor::Int(1)),
                (Cbor::Int(-2), Cbor::Bytes(&point[1..33])),
                (Cbor::Int(-3), Cbor::Bytes(&point[33..65])),
            ])
            .encode(&mut out);
            out
        };
        let mut auth_data = passkey.auth_data(0x40);
        auth_data.extend([0u8; 16]); // AAGUID: none
        auth_data.extend(u16::try_from(passkey.id.len()).unwrap().to_be_bytes());
        auth_data.extend(&passkey.id);
        auth_data.extend(cose);
        let mut attestation = Vec::new();
        Cbor::Map(vec![
            (Cbor::Text("fmt"), Cbor::Text("none")),
            (Cbor::Text("attStmt"), Cbor::Map(vec![])),
            (Cbor::Text("authData"), Cbor::Bytes(&auth_data)),
        ])
        .encode(&mut attestation);
        let answer = json!({
            "id": b64(&passkey.id),
            "rawId": b64(&passkey.id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(client_data.as_bytes()),
                "transports": ["internal"],
            },
            "extensions": {},
        });
        (passkey, answer)
    }

    /// The answer to `navigator.credentials.get(options)` from `origin`, signed for
    /// `rp_id` (the one the server named, unless a test says otherwise).
    pub(crate) fn assert(&mut self, options: &Value, origin: &str, rp_id: Option<&str>) -> Value {
        let o = &options["publicKey"];
        self.counter += 1;
        let client_data = self.client_data("webauthn.get", &o["challenge"], origin);
        let rp = rp_id
            .map(str::to_owned)
            .or_else(|| o["rpId"].as_str().map(str::to_owned))
            .unwrap_or_else(|| self.rp_id.clone());
        let auth_data = self.auth_data_for(&rp, 0);
        let mut signed = auth_data.clone();
        signed.extend(digest(&SHA256, client_data.as_bytes()).as_ref());
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": b64(&self.id),
            "rawId": b64(&self.id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(client_data.as_bytes()),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&self.user),
            },
            "extensions": {},
        })
    }

    fn client_data(&self, kind: &str, challenge: &Value, origin: &str) -> String {
        json!({
            "type": kind,
            "challenge": challenge.as_str().unwrap(),
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string()
    }

    fn auth_data(&self, extra_flags: u8) -> Vec<u8> {
        self.auth_data_for(&self.rp_id.clone(), extra_flags)
    }

    /// rpIdHash ‖ flags (UP, UV, BE, BS, and `extra`) ‖ signCount.
    fn auth_data_for(&self, rp_id: &str, extra_flags: u8) -> Vec<u8> {
        let mut flags = 0x01 | extra_flags;
        if self.verifies_user {
            flags |= 0x04;
        }
        if self.synced {
            flags |= 0x08 | 0x10;
        }
        let mut out = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        out.push(flags);
        out.extend(self.counter.to_be_bytes());
        out
    }
}

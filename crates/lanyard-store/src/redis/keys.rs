//! Key names. Everything lives under the configured prefix; keys that one script touches
//! together share a hash tag (`{...}`), so every script also runs on Redis Cluster.
//!
//! | slot (hash tag)   | keys                                                           |
//! |-------------------|----------------------------------------------------------------|
//! | none              | `code:<sha256>` (one key per authorization code)              |
//! | `{s:<sid>}`       | `sess`, `clients`, `fams`, and `fam:<id>[:old|:ats|:revoked]` of every family bound to the session |
//! | `{f:<family id>}` | `fam:<id>[:old|:ats|:revoked]` of an offline family          |
//! | `{u:<sub>}`       | `sids`, `fams`: the user's sessions and families by deadline |
//! | `{c:<client id>}` | `fams`: the client's families by deadline                     |
//! | `{rev}`           | `epoch`, `seq`, `events` (stream), `drop`, `jti`, `sid`, `sub`, `cli`, `grt` |
//! | none              | `bf:<sha256 of the key>`: a failed-attempt counter (usernames and IPs are not kept in the clear) |
//! | none              | `dev:<sha256 of the user code>`: a device grant (RFC 8628), found by the user code and by the device code that starts with it |
//! | none              | `seen:<sha256 of the key>`: a key claimed once (`claim_once`: a client assertion's `jti`), until its ttl ends |
//! | none              | `once:<sha256 of the id>`: a single-use value (`put_once`), with its deadline |

use crate::revocation::Kind;
use crate::{FamilyId, SessionId, StoreError};

#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

pub(super) struct SessionKeys {
    pub(super) session: String,
    pub(super) clients: String,
    pub(super) families: String,
    /// `fam:` in this slot; a family's key is this plus its id.
    pub(super) family_prefix: String,
}

/// The six keys every family script takes, in order.
pub(super) struct FamilyKeys(pub(super) [String; 6]);

impl Keys {
    pub(super) fn new(prefix: &str) -> Result<Self, StoreError> {
        if prefix.contains(['{', '}']) {
            return Err(StoreError::InvalidRequest(
                "the Redis key prefix must not contain '{' or '}' (they pick the hash slot)",
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    fn slot(&self, tag: &str) -> String {
        format!("{}{{{tag}}}:", self.prefix)
    }

    pub(super) fn code(&self, hash: &str) -> String {
        format!("{}code:{hash}", self.prefix)
    }

    /// A counter's key: its name hashed (names hold usernames and addresses); a name with a
    /// `{tag}` keeps a tag of its own, so the counters of one group share a slot.
    /// A key claimed once (`claim_once`), hashed.
    pub(super) fn claimed(&self, key: &str) -> String {
        format!("{}seen:{}", self.prefix, crate::ids::secret_hash(key))
    }

    /// A device grant's key: its user code, hashed.
    pub(super) fn device(&self, user_code: &crate::UserCode) -> String {
        format!(
            "{}dev:{}",
            self.prefix,
            crate::ids::secret_hash(user_code.as_str())
        )
    }

    /// A single-use value's key (`put_once`): its id, hashed (ids are bearer secrets).
    pub(super) fn once(&self, id: &str) -> String {
        format!("{}once:{}", self.prefix, crate::ids::secret_hash(id))
    }

    pub(super) fn throttle(&self, key: &str) -> String {
        let hashed = crate::ids::secret_hash(key);
        match tag(key) {
            Some(t) => {
                let t = crate::ids::secret_hash(t);
                format!("{}bf:{{{}}}:{hashed}", self.prefix, &t[..t.len().min(16)])
            }
            None => format!("{}bf:{hashed}", self.prefix),
        }
    }

    pub(super) fn session(&self, sid: &SessionId) -> SessionKeys {
        let slot = self.slot(&format!("s:{sid}"));
        SessionKeys {
            session: format!("{slot}sess"),
            clients: format!("{slot}clients"),
            families: format!("{slot}fams"),
            family_prefix: format!("{slot}fam:"),
        }
    }

    /// Family, retired list, access tokens, session, session's families, revoked-id
    /// tombstone. An offline family gets placeholder session keys in its own slot; its
    /// scripts never read them.
    pub(super) fn family(&self, id: &FamilyId) -> FamilyKeys {
        let (family_prefix, session, families) = match id.session() {
            Some(sid) => {
                let s = self.session(&sid);
                (s.family_prefix, s.session, s.families)
            }
            None => {
                let slot = self.slot(&format!("f:{id}"));
                (
                    format!("{slot}fam:"),
                    format!("{slot}unbound"),
                    format!("{slot}unbound"),
                )
            }
        };
        let family = format!("{family_prefix}{id}");
        FamilyKeys([
            family.clone(),
            format!("{family}:old"),
            format!("{family}:ats"),
            session,
            families,
            format!("{family}:revoked"),
        ])
    }

    /// The user's session index and family index.
    pub(super) fn user(&self, sub: &str) -> (String, String) {
        let slot = self.slot(&format!("u:{sub}"));
        (format!("{slot}sids"), format!("{slot}fams"))
    }

    pub(super) fn client_families(&self, client_id: &str) -> String {
        format!("{}fams", self.slot(&format!("c:{client_id}")))
    }

    /// Epoch, seq, events, drop-out index, then one list per `Kind::ALL`, in its order (the
    /// lists are named by `Kind::code`).
    pub(super) fn revocation(&self) -> [String; 10] {
        let slot = self.slot("rev");
        let [jti, sid, sub, cli, grt, kid] = Kind::ALL.map(Kind::code);
        [
            "epoch", "seq", "events", "drop", jti, sid, sub, cli, grt, kid,
        ]
        .map(|k| format!("{slot}{k}"))
    }
}

/// The hash tag of a key as Redis Cluster reads it: the part between the first `{` and the
/// next `}`, if not empty.
fn tag(key: &str) -> Option<&str> {
    key.find('{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.find('}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    })
}

/// What Redis Cluster hashes for `key`: its tag, or all of it.
#[cfg(test)]
fn hash_tag(key: &str) -> &str {
    tag(key).unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new("test:").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keys_of_one_script_share_a_slot() {
        let k = keys();
        let sid = SessionId::generate();
        let s = k.session(&sid);
        let tag = hash_tag(&s.session);
        assert_eq!(tag, format!("s:{sid}"));
        assert_eq!(hash_tag(&s.clients), tag);
        assert_eq!(hash_tag(&s.families), tag);
        for id in [FamilyId::generate(Some(&sid)), FamilyId::generate(None)] {
            let FamilyKeys(fk) = k.family(&id);
            let tag = hash_tag(&fk[0]);
            assert!(fk.iter().all(|key| hash_tag(key) == tag), "{fk:?}");
            assert!(fk.iter().all(|key| key.starts_with("test:")));
        }
        let bound = k.family(&FamilyId::generate(Some(&sid)));
        assert_eq!(
            hash_tag(&bound.0[0]),
            tag,
            "a bound family lives beside its session"
        );
        assert!(bound.0[0].starts_with(&s.family_prefix));
        let rev = k.revocation();
        assert!(rev.iter().all(|key| hash_tag(key) == "rev"));
        let (sids, fams) = k.user("alice");
        assert_eq!(hash_tag(&sids), hash_tag(&fams));
    }

    #[test]
    fn counters_of_one_group_share_a_slot_and_hide_their_names() {
        let k = keys();
        let account = k.throttle("signin:{user:alice}");
        let pair = k.throttle("signin:{user:alice}:ip:192.0.2.1");
        assert_eq!(hash_tag(&account), hash_tag(&pair));
        assert_ne!(account, pair);
        assert_ne!(
            hash_tag(&account),
            hash_tag(&k.throttle("signin:{user:bob}"))
        );
        assert!(
            !pair.contains("alice") && !pair.contains("192.0.2.1"),
            "{pair}"
        );
        let plain = k.throttle("client:wiki");
        assert!(plain.starts_with("test:bf:") && !plain.contains('{'));
    }

    #[test]
    fn prefix_may_not_pick_the_slot() {
        assert!(Keys::new("a{b}:").is_err());
        assert!(Keys::new("lanyard:").is_ok());
    }
}

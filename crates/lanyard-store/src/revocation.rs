//! Revocation lists, the one rule that judges a token against them, and the event feed.
//!
//! Five lists, one [`Target`] each:
//! - `jti`: one access token, until that token's `exp`;
//! - `sid`: every token carrying that session id;
//! - `sub`, `client_id` and `grant`: watermarks: every token of that subject (or client, or
//!   subject at one client) issued at or before the watermark (`iat <= at`);
//! - `kid`: a signing key withdrawn in an emergency. It judges no token here (a token signed
//!   with a key the issuer no longer publishes fails its signature check); it tells every
//!   mirror that the keys changed, so relying parties fetch them again at once.
//!
//! Every entry carries `until`, the instant after which no token it covers can still be
//! valid; it then drops out, so the lists stay bounded. [`RevocationSet`] is the in-memory
//! form, used by the memory backend and by relying parties that mirror the lists.
//!
//! A note on resolution: JWT `iat` has whole seconds, watermarks have milliseconds. A
//! token's `iat` is never after the moment it was issued, so every token issued before a
//! watermark is revoked; a token issued in the same second just after it is revoked too.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{StoreConfig, Timestamp};

/// An access token by `jti` and expiry, as recorded where it may need revoking later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessTokenRef {
    /// The token's `jti`.
    pub jti: String,
    /// The token's `exp`.
    pub expires_at: Timestamp,
}

/// What a revocation covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// One access token.
    Jti(String),
    /// Every token of one SSO session.
    Sid(String),
    /// Every token of one subject issued at or before the watermark.
    Sub(String),
    /// Every token of one client issued at or before the watermark.
    ClientId(String),
    /// Every token of one subject at one client issued at or before the watermark (consent
    /// withdrawn, or a role or group taken away). The value is `<client_id> <sub>`: build it with [`Target::grant`].
    Grant(String),
    /// A signing key withdrawn (by `kid`): relying parties fetch the keys again.
    Kid(String),
}

impl Target {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Target::Jti(_) => Kind::Jti,
            Target::Sid(_) => Kind::Sid,
            Target::Sub(_) => Kind::Sub,
            Target::ClientId(_) => Kind::ClientId,
            Target::Grant(_) => Kind::Grant,
            Target::Kid(_) => Kind::Kid,
        }
    }

    /// Every token of user `sub` at client `client_id`. Neither a client id nor a `sub`
    /// holds a space, so the pair is one unambiguous key.
    pub fn grant(sub: &str, client_id: &str) -> Self {
        Target::Grant(grant_key(sub, client_id))
    }

    /// The jti, sid, sub, client id or grant key.
    pub fn value(&self) -> &str {
        match self {
            Target::Jti(v)
            | Target::Sid(v)
            | Target::Sub(v)
            | Target::ClientId(v)
            | Target::Grant(v)
            | Target::Kid(v) => v,
        }
    }

    pub(crate) fn from_kind(kind: Kind, value: String) -> Self {
        match kind {
            Kind::Jti => Target::Jti(value),
            Kind::Sid => Target::Sid(value),
            Kind::Sub => Target::Sub(value),
            Kind::ClientId => Target::ClientId(value),
            Kind::Grant => Target::Grant(value),
            Kind::Kid => Target::Kid(value),
        }
    }
}

fn grant_key(sub: &str, client_id: &str) -> String {
    format!("{client_id} {sub}")
}

/// The five lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Jti,
    Sid,
    Sub,
    ClientId,
    Grant,
    Kid,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Jti,
        Kind::Sid,
        Kind::Sub,
        Kind::ClientId,
        Kind::Grant,
        Kind::Kid,
    ];

    /// Short name used in Redis keys and stream fields.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn code(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Sid => "sid",
            Kind::Sub => "sub",
            Kind::ClientId => "cli",
            Kind::Grant => "grt",
            Kind::Kid => "kid",
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn from_code(code: &str) -> Option<Self> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Kind::Jti => 0,
            Kind::Sid => 1,
            Kind::Sub => 2,
            Kind::ClientId => 3,
            Kind::Grant => 4,
            Kind::Kid => 5,
        }
    }
}

/// One entry of the revocation lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// What is revoked.
    #[serde(flatten)]
    pub target: Target,
    /// `Jti`: the token's `exp`. `Sid`: when the session was revoked. `Sub`, `ClientId`,
    /// `Grant`: the watermark: tokens issued at or before it are revoked.
    pub at: Timestamp,
    /// The entry drops out at this instant: no token it covers can be valid after it.
    pub until: Timestamp,
}

impl Revocation {
    /// The entry for revoking `target` at `at`, with its drop-out time from `config`.
    pub fn new(target: Target, at: Timestamp, config: &StoreConfig) -> Self {
        let until = match target {
            // The token itself expires at `at`; resource servers may accept it `leeway` longer.
            Target::Jti(_) => at.plus(config.leeway),
            // Covers tokens issued up to `at`, each living at most the longest lifetime.
            // A withdrawn key: as long as any token it signed could be valid.
            Target::Sid(_)
            | Target::Sub(_)
            | Target::ClientId(_)
            | Target::Grant(_)
            | Target::Kid(_) => at
                .plus(config.max_access_token_lifetime)
                .plus(config.leeway),
        };
        Self { target, at, until }
    }
}

/// The `act` claim of an exchanged token (RFC 8693 §4.1): the client acting on the person's
/// behalf (`sub`, a client id), and the one that acted before it (`act`, nested for a chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting client's id.
    pub sub: String,
    /// The actor before it, if the token it exchanged was itself exchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// Where an exchanged token's authority began: the person's first token, which was issued
/// to `client_id` and carried `jti` (the `origin` claim). Revoking that token (or the
/// refresh family that produced it), or the person's grant at that client, revokes every
/// token exchanged from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The client the first token was issued to.
    pub client_id: String,
    /// The first token's `jti`.
    pub jti: String,
}

impl Actor {
    /// The actors' client ids, the current one first.
    pub fn chain(&self) -> impl Iterator<Item = &str> {
        std::iter::successors(Some(self), |a| a.act.as_deref()).map(|a| a.sub.as_str())
    }
}

/// The facts of an access token that revocation is judged on.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    /// `jti`.
    pub jti: &'a str,
    /// `sid`, when the token was issued in an SSO session.
    pub sid: Option<&'a str>,
    /// `sub`.
    pub sub: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// For an exchanged token (RFC 8693): the person's first token (the `origin` claim).
    pub origin: Option<&'a Origin>,
    /// For an exchanged token: its `act` claim.
    pub act: Option<&'a Actor>,
    /// `iat`.
    pub iat: Timestamp,
    /// `exp`.
    pub exp: Timestamp,
}

impl<'a> TokenFacts<'a> {
    /// The clients through which the token holds the person's authority: its own client,
    /// and for an exchanged token the origin client and every actor of the chain. Revoking
    /// any of them (its client watermark, or its grant for this person) revokes the token.
    pub fn clients(&self) -> impl Iterator<Item = &'a str> {
        let own = self.client_id;
        // The current actor is the token's own client: not judged twice.
        std::iter::once(own)
            .chain(self.origin.map(|o| o.client_id.as_str()))
            .chain(
                self.act
                    .into_iter()
                    .flat_map(Actor::chain)
                    .filter(move |c| *c != own),
            )
    }

    /// Every (list, key) the token is judged on: what a backend reads before it judges.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn lookups(&self) -> Vec<(Kind, std::borrow::Cow<'a, str>)> {
        let mut keys: Vec<(Kind, std::borrow::Cow<'a, str>)> =
            [(Kind::Jti, self.jti), (Kind::Sub, self.sub)]
                .into_iter()
                .chain(self.origin.map(|o| (Kind::Jti, o.jti.as_str())))
                .chain(self.sid.map(|sid| (Kind::Sid, sid)))
                .map(|(kind, key)| (kind, key.into()))
                .collect();
        for client in self.clients() {
            keys.push((Kind::ClientId, client.into()));
            keys.push((Kind::Grant, grant_key(self.sub, client).into()));
        }
        keys
    }
}

/// A key looked up in one list. A grant key is only built if the list is read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'k> {
    /// A jti, sid, sub or client id.
    Plain(&'k str),
    /// The grant of `sub` at `client`.
    Grant { sub: &'k str, client: &'k str },
}

impl Key<'_> {
    /// The key as the list holds it.
    pub(crate) fn text(&self) -> std::borrow::Cow<'_, str> {
        match *self {
            Key::Plain(key) => key.into(),
            Key::Grant { sub, client } => grant_key(sub, client).into(),
        }
    }
}

/// The answer of a revocation check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// No list covers the token.
    NotRevoked,
    /// The token is revoked, for this reason.
    Revoked(RevokedBy),
}

/// Which list revoked a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedBy {
    /// The token itself, by `jti`.
    Token,
    /// The token it was exchanged from (RFC 8693), by that token's `jti`.
    Origin,
    /// Its SSO session, by `sid`.
    Session,
    /// Its subject's watermark.
    Subject,
    /// Its client's watermark.
    Client,
    /// The watermark of its subject at its client: the person withdrew the app's access, or
    /// lost a role or group the token carried.
    Grant,
    /// The token lives longer than the lists are kept (`exp - iat` beyond
    /// `max_access_token_lifetime`), so they cannot vouch for it.
    LifetimeNotCovered,
}

impl RevokedBy {
    /// A sentence for an `error_description` (RFC 6750 §3).
    pub fn description(self) -> &'static str {
        match self {
            RevokedBy::Token => "the access token has been revoked",
            RevokedBy::Origin => "the access token this one was exchanged from has been revoked",
            RevokedBy::Session => "the sign-in session of this access token has ended",
            RevokedBy::Subject => "access for this user has been revoked; sign in again",
            RevokedBy::Client => "access for this application has been revoked",
            RevokedBy::Grant => {
                "the access token was revoked: what this user may do here changed (a role or group taken away, or the user withdrew this application's access); get a new token"
            }
            RevokedBy::LifetimeNotCovered => {
                "the access token lives longer than revocation can be checked for"
            }
        }
    }
}

/// The one rule, shared by every backend and every mirror. `lookup` returns the entry of
/// a key in a list, if any (the keys are those of [`TokenFacts::lookups`]); entries past
/// their `until` are ignored. An exchanged token is judged on every client of its chain
/// ([`TokenFacts::clients`]).
pub(crate) fn judge(
    facts: &TokenFacts<'_>,
    now: Timestamp,
    max_lifetime: Duration,
    lookup: impl Fn(Kind, Key<'_>) -> Option<Entry>,
) -> Verdict {
    let find = |kind, key| lookup(kind, key).filter(|e| e.until > now);
    let watermark = |kind, key| find(kind, key).is_some_and(|e: Entry| facts.iat <= e.at);
    if facts.exp > facts.iat.plus(max_lifetime) {
        return Verdict::Revoked(RevokedBy::LifetimeNotCovered);
    }
    if find(Kind::Jti, Key::Plain(facts.jti)).is_some() {
        return Verdict::Revoked(RevokedBy::Token);
    }
    if facts
        .origin
        .is_some_and(|o| find(Kind::Jti, Key::Plain(&o.jti)).is_some())
    {
        return Verdict::Revoked(RevokedBy::Origin);
    }
    if facts
        .sid
        .is_some_and(|sid| find(Kind::Sid, Key::Plain(sid)).is_some())
    {
        return Verdict::Revoked(RevokedBy::Session);
    }
    if watermark(Kind::Sub, Key::Plain(facts.sub)) {
        return Verdict::Revoked(RevokedBy::Subject);
    }
    if facts
        .clients()
        .any(|c| watermark(Kind::ClientId, Key::Plain(c)))
    {
        return Verdict::Revoked(RevokedBy::Client);
    }
    if facts.clients().any(|client| {
        let key = Key::Grant {
            sub: facts.sub,
            client,
        };
        watermark(Kind::Grant, key)
    }) {
        return Verdict::Revoked(RevokedBy::Grant);
    }
    Verdict::NotRevoked
}

/// An entry without its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) at: Timestamp,
    pub(crate) until: Timestamp,
}

impl Entry {
    /// Two revocations of one target keep the later watermark and the later drop-out.
    pub(crate) fn merge(self, other: Entry) -> Entry {
        Entry {
            at: self.at.max(other.at),
            until: self.until.max(other.until),
        }
    }
}

/// The revocation lists in memory.
#[derive(Debug, Clone, Default)]
pub struct RevocationSet {
    lists: [HashMap<String, Entry>; 6],
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry (merging with an existing one for the same target) and returns the
    /// entry now in force.
    pub fn apply(&mut self, revocation: &Revocation) -> Revocation {
        let kind = revocation.target.kind();
        let incoming = Entry {
            at: revocation.at,
            until: revocation.until,
        };
        let list = &mut self.lists[kind.index()];
        let merged = match list.get(revocation.target.value()) {
            Some(existing) => existing.merge(incoming),
            None => incoming,
        };
        list.insert(revocation.target.value().to_owned(), merged);
        Revocation {
            target: revocation.target.clone(),
            at: merged.at,
            until: merged.until,
        }
    }

    /// Judges a token (see the module docs).
    pub fn check(&self, facts: &TokenFacts<'_>, now: Timestamp, max_lifetime: Duration) -> Verdict {
        judge(facts, now, max_lifetime, |kind, key| {
            // An empty list needs no key (a grant key is built, the others are borrowed).
            let list = &self.lists[kind.index()];
            if list.is_empty() {
                return None;
            }
            list.get(key.text().as_ref()).copied()
        })
    }

    /// Drops every entry whose `until` has passed.
    pub fn prune(&mut self, now: Timestamp) {
        for list in &mut self.lists {
            list.retain(|_, e| e.until > now);
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = Revocation> + '_ {
        Kind::ALL.into_iter().flat_map(move |kind| {
            self.lists[kind.index()]
                .iter()
                .map(move |(key, e)| Revocation {
                    target: Target::from_kind(kind, key.clone()),
                    at: e.at,
                    until: e.until,
                })
        })
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.lists.iter().map(HashMap::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A position in the revocation event stream. `epoch` changes when the backend's lists were
/// rebuilt (a re-seed): a cursor of another epoch must take a new snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// Names one incarnation of the lists.
    pub epoch: String,
    /// The number of the last event seen; events are numbered 1, 2, 3, ... within an epoch.
    pub seq: u64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.seq)
    }
}

impl FromStr for Cursor {
    type Err = &'static str;

    /// Parses what `Display` printed: `<epoch>-<seq>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (epoch, seq) = s.rsplit_once('-').ok_or("a cursor is <epoch>-<seq>")?;
        let seq = seq.parse().map_err(|_| "a cursor's seq is a number")?;
        if epoch.is_empty() {
            return Err("a cursor's epoch is not empty");
        }
        Ok(Cursor {
            epoch: epoch.to_owned(),
            seq,
        })
    }
}

/// One published revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEvent {
    /// The position of this event; resume after it.
    pub cursor: Cursor,
    /// The entry now in force for its target (after merging with earlier ones).
    pub revocation: Revocation,
}

/// The whole current lists, and where their event stream stands. (Serialized as the HTTP
/// revocation feed's snapshot.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Follow events after this cursor.
    pub cursor: Cursor,
    /// Every entry in force.
    pub revocations: Vec<Revocation>,
    /// How long, in seconds, entries outlive the tokens they cover
    /// ([`StoreConfig::leeway`](crate::StoreConfig::leeway)): a guard that accepted a token
    /// longer than this past its expiry could accept a revoked one whose entry had gone, so
    /// guards cap their leeway to it. Absent from an older issuer's snapshot: 60.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
}

fn default_leeway_secs() -> u64 {
    60
}

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Feed {
    /// Events after the subscription's cursor, in order (empty when none came in time).
    Events(Vec<RevocationEvent>),
    /// The subscriber fell too far behind, or the lists were rebuilt: take a new
    /// [`snapshot`](crate::TokenStore::snapshot) and subscribe from its cursor.
    Resnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn facts(iat: i64) -> TokenFacts<'static> {
        TokenFacts {
            jti: "j1",
            sid: Some("s1"),
            sub: "u1",
            client_id: "c1",
            origin: None,
            act: None,
            iat: Timestamp::from_secs(iat),
            exp: Timestamp::from_secs(iat + 600),
        }
    }

    fn entry(target: Target, at_secs: i64) -> Revocation {
        Revocation::new(
            target,
            Timestamp::from_secs(at_secs),
            &StoreConfig::default(),
        )
    }

    #[test]
    fn watermark_covers_tokens_issued_at_or_before_it() {
        let mut set = RevocationSet::new();
        set.apply(&entry(Target::Sub("u1".into()), 1_000));
        let now = Timestamp::from_secs(1_001);
        assert_eq!(
            set.check(&facts(999), now, HOUR),
            Verdict::Revoked(RevokedBy::Subject)
        );
        assert_eq!(
            set.check(&facts(1_000), now, HOUR),
            Verdict::Revoked(RevokedBy::Subject)
        );
        assert_eq!(set.check(&facts(1_001), now, HOUR), Verdict::NotRevoked);
    }

    #[test]
    fn a_grant_watermark_covers_one_user_at_one_client() {
        let mut set = RevocationSet::new();
        set.apply(&entry(Target::grant("u1", "c1"), 1_000));
        let now = Timestamp::from_secs(1_001);
        assert_eq!(
            set.check(&facts(1_000), now, HOUR),
            Verdict::Revoked(RevokedBy::Grant)
        );
        assert_eq!(set.check(&facts(1_001), now, HOUR), Verdict::NotRevoked);
        let other_client = TokenFacts {
            client_id: "c2",
            ..facts(900)
        };
        let other_user = TokenFacts {
            sub: "u2",
            ..facts(900)
        };
        assert_eq!(set.check(&other_client, now, HOUR), Verdict::NotRevoked);
        assert_eq!(set.check(&other_user, now, HOUR), Verdict::NotRevoked);
    }

    #[test]
    fn an_exchanged_token_is_revoked_with_every_client_of_its_chain() {
        // c3 exchanged a token c2 had exchanged, from the person's token at web.
        let chain = Actor {
            sub: "c3".into(),
            act: Some(Box::new(Actor {
                sub: "c2".into(),
                act: None,
            })),
        };
        let origin = Origin {
            client_id: "web".into(),
            jti: "j0".into(),
        };
        let exchanged = TokenFacts {
            client_id: "c3",
            origin: Some(&origin),
            act: Some(&chain),
            ..facts(1_000)
        };
        assert_eq!(exchanged.clients().collect::<Vec<_>>(), ["c3", "web", "c2"]);
        let now = Timestamp::from_secs(1_001);
        for client in ["web", "c2", "c3"] {
            let mut set = RevocationSet::new();
            set.apply(&entry(Target::grant("u1", client), 1_000));
            assert_eq!(
                set.check(&exchanged, now, HOUR),
                Verdict::Revoked(RevokedBy::Grant),
                "the grant at {client}"
            );
            let mut set = RevocationSet::new();
            set.apply(&entry(Target::ClientId(client.into()), 1_000));
            assert_eq!(
                set.check(&exchanged, now, HOUR),
                Verdict::Revoked(RevokedBy::Client),
                "the client {client}"
            );
        }
        // Another person's grant at the same clients, or a client outside the chain: not it.
        let mut set = RevocationSet::new();
        set.apply(&entry(Target::grant("u2", "web"), 1_000));
        set.apply(&entry(Target::ClientId("c4".into()), 1_000));
        set.apply(&entry(Target::Jti("j9".into()), 1_600));
        assert_eq!(set.check(&exchanged, now, HOUR), Verdict::NotRevoked);
        // The person's first token revoked (alone, or with its refresh family).
        set.apply(&entry(Target::Jti("j0".into()), 1_600));
        assert_eq!(
            set.check(&exchanged, now, HOUR),
            Verdict::Revoked(RevokedBy::Origin)
        );
    }

    #[test]
    fn watermarks_only_move_forward() {
        let mut set = RevocationSet::new();
        set.apply(&entry(Target::ClientId("c1".into()), 2_000));
        let merged = set.apply(&entry(Target::ClientId("c1".into()), 1_000));
        assert_eq!(merged.at, Timestamp::from_secs(2_000));
        assert_eq!(
            set.check(&facts(1_500), Timestamp::from_secs(2_001), HOUR),
            Verdict::Revoked(RevokedBy::Client)
        );
    }

    #[test]
    fn entries_past_until_are_ignored_and_pruned() {
        let mut set = RevocationSet::new();
        let e = set.apply(&entry(Target::Jti("j1".into()), 1_600));
        assert_eq!(
            set.check(&facts(1_000), e.until.minus(Duration::from_millis(1)), HOUR),
            Verdict::Revoked(RevokedBy::Token)
        );
        assert_eq!(set.check(&facts(1_000), e.until, HOUR), Verdict::NotRevoked);
        set.prune(e.until);
        assert!(set.is_empty());
    }

    #[test]
    fn a_token_outliving_the_lists_is_refused() {
        let set = RevocationSet::new();
        let mut f = facts(1_000);
        f.exp = f.iat.plus(HOUR).plus(Duration::from_secs(1));
        assert_eq!(
            set.check(&f, Timestamp::from_secs(1_000), HOUR),
            Verdict::Revoked(RevokedBy::LifetimeNotCovered)
        );
    }

    #[test]
    fn cursor_round_trips_through_text() {
        let c = Cursor {
            epoch: "ab-cd".into(),
            seq: 42,
        };
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        assert!("nope".parse::<Cursor>().is_err());
        assert!("-5".parse::<Cursor>().is_err());
        assert!("e-x".parse::<Cursor>().is_err());
    }

    #[test]
    fn revocations_serialize_flat() {
        let r = entry(Target::Sid("s1".into()), 10);
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["kind"], "sid");
        assert_eq!(json["value"], "s1");
        assert_eq!(json["at"], 10_000);
    }
}

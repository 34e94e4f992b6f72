//! The conformance suite: every rule of the store, written once, run against every backend
//! (`tests/memory.rs`, `tests/redis.rs`).
//!
//! A backend plugs in a [`Harness`]; [`conformance_suite!`](crate::conformance_suite) turns
//! every function below into a test of its own. Durations are short and real on Redis
//! (the harness sleeps) and instant on memory (the harness moves a [`ManualClock`]).
//! Margins are at least 300 ms either side of every deadline.
//!
//! [`ManualClock`]: crate::ManualClock
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::task::JoinSet;

use crate::{
    AccessTokenRef, Actor, Attempt, CodeGrant, Cursor, FamilyId, Feed, GrantId, Issuance,
    NewFamily, NewSession, Origin, Redemption, RevocationEvent, RevokedBy, Rotation, StoreConfig,
    StoreError, Target, ThrottlePolicy, Timestamp, TokenFacts, TokenStore, Verdict,
};

/// What a backend provides to the suite.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A store on this harness's state. The first call creates fresh, empty state with its
    /// revocation lists initialised; later calls return further nodes on the same state
    /// (their `config` is ignored).
    async fn store(&self, config: StoreConfig) -> Arc<dyn TokenStore>;

    /// Lets `d` pass for every store of this harness.
    async fn advance(&self, d: Duration);

    /// Lets `d` pass where expiry is the backend's own: Redis drops a code's key when its
    /// TTL ends, on Redis's clock, so real time must pass there too (the suite keeps such
    /// TTLs short). Elsewhere the same as [`Harness::advance`].
    async fn expire(&self, d: Duration) {
        self.advance(d).await;
    }

    /// What the stores of this harness read as "now".
    fn now(&self) -> Timestamp;
}

/// Generates one `#[tokio::test]` per suite function. `$harness` is an expression giving a
/// future of a [`Harness`], evaluated afresh in every test.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@tests $harness;
            ping_answers_with_the_backends_clock,
            code_redeems_once_and_remembers_the_issuance,
            device_grant_is_pending_then_approved_once,
            polling_too_fast_slows_down_for_good,
            a_device_request_is_decided_once,
            a_denied_device_hears_so_on_every_poll,
            a_device_grant_expires,
            device_codes_of_others_and_garbage_are_not_found,
            a_key_is_claimed_once_until_its_ttl_ends,
            another_clients_attempt_leaves_the_code_alone,
            unknown_and_malformed_codes_are_not_found,
            code_expires_after_its_ttl,
            peek_shows_a_live_code_without_spending_it,
            redeemed_code_is_remembered_then_forgotten,
            concurrent_redemptions_have_exactly_one_winner,
            codes_are_unguessable,
            session_round_trips,
            touch_extends_the_idle_deadline_and_records_clients,
            idle_session_reads_as_absent,
            absolute_lifetime_wins_over_activity,
            ending_a_session,
            strengthening_a_session_keeps_everything_else,
            a_single_use_value_is_taken_once_before_it_expires,
            ending_all_sessions_of_a_user,
            malformed_session_ids_read_as_absent,
            refresh_rotates_and_retires,
            reuse_of_a_retired_token_revokes_the_family,
            grace_retry_gets_the_same_successor,
            grace_window_closes,
            concurrent_rotation_has_one_winner_and_reuse_revokes,
            concurrent_rotation_within_grace_shares_one_successor,
            session_bound_family_ends_with_its_session,
            session_bound_family_ends_when_the_session_expires,
            family_never_outlives_its_session,
            no_family_for_an_ended_session,
            family_expires_at_its_absolute_lifetime,
            revoking_a_family_names_its_live_access_tokens,
            revoking_families_by_user_and_by_client,
            garbage_refresh_tokens_are_invalid_and_harmless,
            family_ids_are_single_use,
            refresh_tokens_are_unguessable,
            find_refresh_does_not_rotate,
            inspect_refresh_tells_current_from_retired_and_names_access_tokens,
            another_clients_refresh_token_is_invalid_and_untouched,
            family_revoked_before_it_is_issued_never_lives,
            a_reused_family_id_does_not_leak_to_another_owner,
            a_token_retired_long_ago_is_refused_without_revoking,
            listings_are_oldest_first,
            revoke_by_jti,
            revoke_by_sid,
            exchanged_token_chain,
            subject_watermark,
            client_watermark,
            grant_watermark,
            watermarks_never_move_back,
            entries_drop_out_when_nothing_they_cover_can_be_valid,
            token_outliving_the_lists_is_refused,
            snapshot_then_events_in_order,
            resume_from_a_cursor,
            fallen_behind_subscriber_resnapshots,
            reseed_starts_a_new_epoch,
            waiting_subscriber_is_woken_by_a_revocation,
            subscriber_ahead_of_the_stream_resnapshots,
            shared_feed_gives_every_follower_every_event,
            shared_feed_says_nothing_new_only_after_the_store_did,
            shared_feed_follower_left_behind_reads_alone_then_rejoins,
            shared_feed_passes_on_resnapshot,
            shared_feed_follower_ahead_of_the_leader_waits_for_it,
            out_of_range_times_are_clamped_alike,
            two_nodes_see_each_other,
            failures_block_as_the_policy_says,
            a_counter_is_forgotten_after_its_window,
            counters_are_shared_by_nodes_and_exact_under_concurrency,
            attempts_are_counted_before_they_are_checked,
            concurrent_attempts_get_no_more_checks_than_the_policy_allows,
        );
    };
    (@tests $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let harness = $harness.await;
                $crate::testsuite::$name(&harness).await;
            }
        )*
    };
}

const SECOND: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_millis(300);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn grant(client_id: &str) -> CodeGrant {
    CodeGrant {
        grant_id: GrantId::generate(),
        client_id: client_id.to_owned(),
        sub: "alice".to_owned(),
        sid: None,
        issuance: Issuance {
            access_token: Some(access_token(Timestamp::from_secs(4_000_000_000))),
            family: Some(FamilyId::generate(None)),
        },
        payload: json!({"redirect_uri": "https://wiki.example/cb", "nonce": "n-0S6_WzA2Mj"}),
    }
}

fn access_token(expires_at: Timestamp) -> AccessTokenRef {
    AccessTokenRef {
        jti: GrantId::generate().to_string(),
        expires_at,
    }
}

fn new_session(sub: &str, idle: Duration, absolute: Duration) -> NewSession {
    NewSession {
        sub: sub.to_owned(),
        auth_time: Timestamp::from_millis(1_700_000_000_000),
        amr: vec!["pwd".to_owned()],
        remember_me: true,
        idle_timeout: idle,
        absolute_lifetime: absolute,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".to_owned()),
        ip: Some("192.0.2.7".to_owned()),
    }
}

fn new_family(id: FamilyId, sub: &str, client_id: &str, lifetime: Duration) -> NewFamily {
    NewFamily {
        id,
        grant_id: GrantId::generate(),
        client_id: client_id.to_owned(),
        sub: sub.to_owned(),
        scope: vec!["openid".to_owned(), "offline_access".to_owned()],
        lifetime,
        payload: json!({"auth_time": 1_700_000_000}),
        access_token: None,
    }
}

/// A session-bound family for alice at wiki, one hour long.
fn bound_family(sid: &crate::SessionId) -> NewFamily {
    new_family(
        FamilyId::generate(Some(sid)),
        "alice",
        "wiki",
        3600 * SECOND,
    )
}

async fn start(
    store: &dyn TokenStore,
    sub: &str,
    idle: Duration,
    absolute: Duration,
) -> crate::Session {
    store
        .create_session(new_session(sub, idle, absolute))
        .await
        .unwrap()
}

fn config() -> StoreConfig {
    StoreConfig::default()
}

async fn offline_token(store: &dyn TokenStore, sub: &str, client: &str) -> String {
    let issued = store
        .issue_refresh(new_family(
            FamilyId::generate(None),
            sub,
            client,
            3600 * SECOND,
        ))
        .await
        .unwrap()
        .expect("an offline family is always issued");
    issued.token.secret().to_owned()
}

fn rotated(r: Rotation) -> String {
    match r {
        Rotation::Rotated { token, .. } => token.secret().to_owned(),
        other => panic!("expected Rotated, got {other:?}"),
    }
}

// ---------------------------------------------------------------- device grants

fn device_request(client: &str, lifetime: Duration, interval: Duration) -> crate::NewDeviceGrant {
    crate::NewDeviceGrant {
        client_id: client.to_owned(),
        user_code: crate::UserCode::generate(),
        lifetime,
        interval,
        payload: json!({"scope": ["openid"]}),
    }
}

async fn put_device(store: &dyn TokenStore, new: &crate::NewDeviceGrant) -> String {
    let code = store
        .put_device(new)
        .await
        .unwrap()
        .expect("a fresh user code");
    code.secret().to_owned()
}

pub async fn device_grant_is_pending_then_approved_once(h: &dyn Harness) {
    use crate::{DeviceDecision, DevicePoll};
    let store = h.store(config()).await;
    let new = device_request("tv", 60 * SECOND, Duration::ZERO);
    let device = put_device(&*store, &new).await;
    assert!(
        device.starts_with(new.user_code.as_str()),
        "the device code names its user code"
    );
    assert_eq!(
        store.poll_device(&device, "tv").await.unwrap(),
        DevicePoll::Pending
    );
    // The person types the code as they see it, in any case.
    let typed = new.user_code.display().to_lowercase();
    let pending = store
        .pending_device(&typed)
        .await
        .unwrap()
        .expect("pending");
    assert_eq!(pending.client_id, "tv");
    assert_eq!(pending.payload, new.payload);
    assert_eq!(pending.expires_at, h.now().plus(60 * SECOND));
    let g = grant("tv");
    assert!(
        store
            .decide_device(&typed, &DeviceDecision::Approve(g.clone()))
            .await
            .unwrap()
    );
    assert_eq!(store.pending_device(&typed).await.unwrap(), None, "decided");
    assert_eq!(
        store.poll_device(&device, "tv").await.unwrap(),
        DevicePoll::Approved(g)
    );
    assert_eq!(
        store.poll_device(&device, "tv").await.unwrap(),
        DevicePoll::NotFound,
        "the tokens are taken once"
    );
}

pub async fn polling_too_fast_slows_down_for_good(h: &dyn Harness) {
    use crate::DevicePoll;
    let store = h.store(config()).await;
    let device = put_device(&*store, &device_request("tv", 60 * SECOND, ms(500))).await;
    assert_eq!(
        store.poll_device(&device, "tv").await.unwrap(),
        DevicePoll::Pending
    );
    h.advance(ms(450)).await;
    // 450 ms after the last poll, with 500 ms asked: within the fifth allowed for jitter.
    assert_eq!(
        store.poll_device(&device, "tv").await.unwrap(),
        DevicePoll::Pending
    );
    assert_eq!(
        store.poll_device(&device, "tv").await.unwrap(),
        DevicePoll::SlowDown {
            interval: ms(5_500)
        }
    );
    h.advance(ms(600)).await;
    // Slowed down for good: 600 ms is too soon for the new interval, which grows again.
    assert_eq!(
        store.poll_device(&device, "tv").await.unwrap(),
        DevicePoll::SlowDown {
            interval: ms(10_500)
        }
    );
}

pub async fn a_device_request_is_decided_once(h: &dyn Harness) {
    use crate::{DeviceDecision, DevicePoll};
    let store = h.store(config()).await;
    let new = device_request("tv", 60 * SECOND, Duration::ZERO);
    let device = put_device(&*store, &new).await;
    let code = new.user_code.as_str().to_owned();
    let mut racers = JoinSet::new();
    for i in 0..8 {
        let (store, code) = (store.clone(), code.clone());
        racers.spawn(async move {
            let decision = if i % 2 == 0 {
                DeviceDecision::Approve(grant("tv"))
            } else {
                DeviceDecision::Deny
            };
            store.decide_device(&code, &decision).await.unwrap()
        });
    }
    let won = racers.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1, "exactly one decision stands");
    assert!(
        !store
            .decide_device(&code, &DeviceDecision::Deny)
            .await
            .unwrap(),
        "a decided request cannot be decided again"
    );
    let first = store.poll_device(&device, "tv").await.unwrap();
    assert!(
        matches!(first, DevicePoll::Approved(_) | DevicePoll::Denied),
        "{first:?}"
    );
}

pub async fn a_denied_device_hears_so_on_every_poll(h: &dyn Harness) {
    use crate::{DeviceDecision, DevicePoll};
    let store = h.store(config()).await;
    let new = device_request("tv", 60 * SECOND, Duration::ZERO);
    let device = put_device(&*store, &new).await;
    assert!(
        store
            .decide_device(new.user_code.as_str(), &DeviceDecision::Deny)
            .await
            .unwrap()
    );
    for _ in 0..2 {
        assert_eq!(
            store.poll_device(&device, "tv").await.unwrap(),
            DevicePoll::Denied
        );
    }
    assert!(
        !store
            .decide_device(
                new.user_code.as_str(),
                &DeviceDecision::Approve(grant("tv"))
            )
            .await
            .unwrap(),
        "a denial is not overturned"
    );
}

pub async fn a_device_grant_expires(h: &dyn Harness) {
    use crate::{DeviceDecision, DevicePoll};
    let store = h.store(config()).await;
    let pending = device_request("tv", SECOND, Duration::ZERO);
    let approved = device_request("tv", SECOND, Duration::ZERO);
    let pending_code = put_device(&*store, &pending).await;
    let approved_code = put_device(&*store, &approved).await;
    assert!(
        store
            .decide_device(
                approved.user_code.as_str(),
                &DeviceDecision::Approve(grant("tv"))
            )
            .await
            .unwrap()
    );
    h.advance(SECOND + MARGIN).await;
    let code = pending.user_code.as_str();
    assert_eq!(store.pending_device(code).await.unwrap(), None);
    assert!(
        !store
            .decide_device(code, &DeviceDecision::Approve(grant("tv")))
            .await
            .unwrap(),
        "too late to approve"
    );
    assert_eq!(
        store.poll_device(&pending_code, "tv").await.unwrap(),
        DevicePoll::Expired
    );
    assert_eq!(
        store.poll_device(&approved_code, "tv").await.unwrap(),
        DevicePoll::Expired,
        "tokens not collected in time are not handed out"
    );
}

pub async fn device_codes_of_others_and_garbage_are_not_found(h: &dyn Harness) {
    use crate::{DeviceDecision, DevicePoll};
    let store = h.store(config()).await;
    let new = device_request("tv", 60 * SECOND, Duration::ZERO);
    let device = put_device(&*store, &new).await;
    assert_eq!(
        store
            .put_device(&new)
            .await
            .unwrap()
            .map(|c| c.secret().to_owned()),
        None,
        "a user code in use is refused"
    );
    assert_eq!(
        store.poll_device(&device, "another").await.unwrap(),
        DevicePoll::NotFound,
        "another client's device code"
    );
    let (user, _) = device.split_once('.').unwrap();
    let forged = format!("{user}.{}", "A".repeat(43));
    for garbage in [forged.as_str(), user, "", "BCDFGHJK.x", "not a code"] {
        assert_eq!(
            store.poll_device(garbage, "tv").await.unwrap(),
            DevicePoll::NotFound,
            "{garbage}"
        );
    }
    for typed in ["", "AAAA-AAAA", "BCDF"] {
        assert_eq!(store.pending_device(typed).await.unwrap(), None);
        assert!(
            !store
                .decide_device(typed, &DeviceDecision::Deny)
                .await
                .unwrap()
        );
    }
    assert_eq!(
        store.poll_device(&device, "tv").await.unwrap(),
        DevicePoll::Pending,
        "what others tried left the grant alone"
    );
}

pub async fn a_key_is_claimed_once_until_its_ttl_ends(h: &dyn Harness) {
    let store = h.store(config()).await;
    let mut racers = JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        racers.spawn(async move { store.claim_once("jti:wiki:abc", SECOND).await.unwrap() });
    }
    let won = racers.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1, "exactly one claim stands");
    assert!(
        store.claim_once("jti:wiki:abd", SECOND).await.unwrap(),
        "another key is its own"
    );
    h.expire(SECOND + MARGIN).await;
    assert!(
        store.claim_once("jti:wiki:abc", SECOND).await.unwrap(),
        "forgotten after its ttl"
    );
}

// ---------------------------------------------------------------- codes

pub async fn ping_answers_with_the_backends_clock(h: &dyn Harness) {
    let store = h.store(config()).await;
    // Redis answers with its own clock (the readiness check compares it with the node's);
    // the in-process store shares the node's clock and has none to give.
    if let Some(theirs) = store.ping().await.unwrap() {
        let ours = crate::Clock::now(&crate::SystemClock);
        let skew = (theirs.as_millis() - ours.as_millis()).abs();
        assert!(skew < 5_000, "Redis TIME is {skew} ms from ours");
    }
}

pub async fn code_redeems_once_and_remembers_the_issuance(h: &dyn Harness) {
    let store = h.store(config()).await;
    let g = grant("wiki");
    assert!(g.issuance.access_token.is_some() && g.issuance.family.is_some());
    let code = store.put_code(&g).await.unwrap();
    match store.redeem_code(code.secret(), "wiki").await.unwrap() {
        Redemption::Redeemed(got) => assert_eq!(got, g),
        other => panic!("first redemption: {other:?}"),
    }
    match store.redeem_code(code.secret(), "wiki").await.unwrap() {
        Redemption::AlreadyRedeemed(spent) => {
            assert_eq!(spent.grant_id, g.grant_id);
            assert_eq!(spent.client_id, "wiki");
            assert_eq!(spent.issued, g.issuance, "names what the redemption issued");
        }
        other => panic!("second redemption: {other:?}"),
    }
}

pub async fn another_clients_attempt_leaves_the_code_alone(h: &dyn Harness) {
    let store = h.store(config()).await;
    let g = grant("wiki");
    let code = store.put_code(&g).await.unwrap();
    for _ in 0..3 {
        let got = store.redeem_code(code.secret(), "billing").await.unwrap();
        assert_eq!(got, Redemption::NotFound);
    }
    match store.redeem_code(code.secret(), "wiki").await.unwrap() {
        Redemption::Redeemed(got) => assert_eq!(got, g),
        other => panic!("the owner's redemption: {other:?}"),
    }
    let replay = store.redeem_code(code.secret(), "billing").await.unwrap();
    assert!(
        matches!(replay, Redemption::AlreadyRedeemed(_)),
        "a spent code shown by anyone has leaked: {replay:?}"
    );
}

pub async fn unknown_and_malformed_codes_are_not_found(h: &dyn Harness) {
    let store = h.store(config()).await;
    let real = store.put_code(&grant("wiki")).await.unwrap();
    let long = "A".repeat(10_000);
    let mut near = real.secret().to_owned();
    near.pop();
    near.push('x');
    for code in ["", "nope", "{rev}:epoch", "é\u{0}\u{202e}", &long, &near] {
        let got = store.redeem_code(code, "wiki").await.unwrap();
        assert_eq!(
            got,
            Redemption::NotFound,
            "{:?}",
            &code[..code.len().min(20)]
        );
    }
    let got = store.redeem_code(real.secret(), "wiki").await.unwrap();
    assert!(
        matches!(got, Redemption::Redeemed(_)),
        "the real code still works"
    );
}

/// A code's lifetime in the tests of code expiry: short, since on Redis it is a key's TTL
/// and real time passes.
const CODE_TTL: Duration = Duration::from_millis(150);

pub async fn code_expires_after_its_ttl(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            code_ttl: CODE_TTL,
            ..config()
        })
        .await;
    let fresh = store.put_code(&grant("wiki")).await.unwrap();
    let stale = store.put_code(&grant("wiki")).await.unwrap();
    let got = store.redeem_code(fresh.secret(), "wiki").await.unwrap();
    assert!(matches!(got, Redemption::Redeemed(_)));
    h.expire(CODE_TTL + ms(30)).await;
    let seen = store.peek_code(stale.secret(), "wiki").await.unwrap();
    assert_eq!(seen, None, "an expired code shows nothing");
    let got = store.redeem_code(stale.secret(), "wiki").await.unwrap();
    assert_eq!(got, Redemption::NotFound);
}

pub async fn peek_shows_a_live_code_without_spending_it(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            code_ttl: SECOND,
            ..config()
        })
        .await;
    let g = grant("wiki");
    let code = store.put_code(&g).await.unwrap();
    for _ in 0..2 {
        let seen = store.peek_code(code.secret(), "wiki").await.unwrap();
        assert_eq!(
            seen.as_ref(),
            Some(&g),
            "the owner sees the grant, again and again"
        );
    }
    let seen = store.peek_code(code.secret(), "billing").await.unwrap();
    assert_eq!(seen, None, "another client sees nothing");
    for garbage in ["", "nope", "{rev}:epoch", "é\u{0}"] {
        assert_eq!(store.peek_code(garbage, "wiki").await.unwrap(), None);
    }
    match store.redeem_code(code.secret(), "wiki").await.unwrap() {
        Redemption::Redeemed(got) => assert_eq!(got, g, "peeking did not spend the code"),
        other => panic!("redemption after peeks: {other:?}"),
    }
    let seen = store.peek_code(code.secret(), "wiki").await.unwrap();
    assert_eq!(seen, None, "a spent code shows nothing");
    // An expired code shows nothing either: `code_expires_after_its_ttl`.
}

pub async fn redeemed_code_is_remembered_then_forgotten(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            code_ttl: CODE_TTL,
            redeemed_code_retention: 2 * CODE_TTL,
            ..config()
        })
        .await;
    let code = store.put_code(&grant("wiki")).await.unwrap();
    let got = store.redeem_code(code.secret(), "wiki").await.unwrap();
    assert!(matches!(got, Redemption::Redeemed(_)));
    h.expire(CODE_TTL + ms(30)).await;
    let got = store.redeem_code(code.secret(), "wiki").await.unwrap();
    assert!(
        matches!(got, Redemption::AlreadyRedeemed(_)),
        "a replay after the code's own TTL is still recognised: {got:?}"
    );
    h.expire(CODE_TTL).await;
    let got = store.redeem_code(code.secret(), "wiki").await.unwrap();
    assert_eq!(got, Redemption::NotFound, "forgotten after the retention");
}

pub async fn concurrent_redemptions_have_exactly_one_winner(h: &dyn Harness) {
    let store = h.store(config()).await;
    let g = grant("wiki");
    let code = store.put_code(&g).await.unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..50 {
        let (store, code) = (store.clone(), code.secret().to_owned());
        tasks.spawn(async move { store.redeem_code(&code, "wiki").await });
    }
    let (mut won, mut refused) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap().unwrap() {
            Redemption::Redeemed(got) => {
                assert_eq!(got, g);
                won += 1;
            }
            Redemption::AlreadyRedeemed(spent) => {
                assert_eq!(
                    spent.issued, g.issuance,
                    "every loser learns what to revoke"
                );
                refused += 1;
            }
            Redemption::NotFound => panic!("a live code read as not found"),
        }
    }
    assert_eq!((won, refused), (1, 49));
}

pub async fn codes_are_unguessable(h: &dyn Harness) {
    let store = h.store(config()).await;
    let mut seen = HashSet::new();
    for _ in 0..500 {
        let code = store.put_code(&grant("wiki")).await.unwrap();
        let secret = code.secret().to_owned();
        assert_eq!(secret.len(), 43, "256 bits, base64url");
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(seen.insert(secret), "a code repeated");
    }
}

// ---------------------------------------------------------------- sessions

pub async fn session_round_trips(h: &dyn Harness) {
    let store = h.store(config()).await;
    let created = start(store.as_ref(), "alice", 60 * SECOND, 3600 * SECOND).await;
    assert_eq!(created.sid.as_str().len(), 22);
    assert_eq!(created.idle_deadline, created.created_at.plus(60 * SECOND));
    assert_eq!(
        created.absolute_deadline,
        created.created_at.plus(3600 * SECOND)
    );
    let read = store.session(created.sid.as_str()).await.unwrap().unwrap();
    assert_eq!(read, created);
    assert_eq!(read.amr, ["pwd"]);
    assert!(read.remember_me);
    assert_eq!(read.ip.as_deref(), Some("192.0.2.7"));
    assert!(read.clients.is_empty());
}

pub async fn touch_extends_the_idle_deadline_and_records_clients(h: &dyn Harness) {
    let store = h.store(config()).await;
    let s = start(store.as_ref(), "alice", SECOND, 60 * SECOND).await;
    h.advance(ms(600)).await;
    let touched = store
        .touch_session(s.sid.as_str(), Some("wiki"))
        .await
        .unwrap()
        .unwrap();
    assert!(touched.idle_deadline > s.idle_deadline);
    assert!(touched.last_seen > s.last_seen);
    assert!(touched.clients.contains("wiki"));
    h.advance(ms(600)).await;
    // 1.2 s after creation: past the first idle deadline, within the extended one.
    let touched = store
        .touch_session(s.sid.as_str(), Some("billing"))
        .await
        .unwrap()
        .expect("activity kept the session alive");
    let clients: Vec<&str> = touched.clients.iter().map(String::as_str).collect();
    assert_eq!(clients, ["billing", "wiki"]);
    let touched = store
        .touch_session(s.sid.as_str(), Some(""))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.clients.len(), 2, "an empty client id is no client");
    let read = store.session(s.sid.as_str()).await.unwrap().unwrap();
    assert_eq!(read.clients, touched.clients);
    assert_eq!(read.idle_deadline, touched.idle_deadline);
}

pub async fn idle_session_reads_as_absent(h: &dyn Harness) {
    let store = h.store(config()).await;
    let s = start(store.as_ref(), "alice", SECOND, 60 * SECOND).await;
    h.advance(SECOND + MARGIN).await;
    let sid = s.sid.as_str();
    assert_eq!(store.session(sid).await.unwrap(), None);
    assert_eq!(store.touch_session(sid, Some("wiki")).await.unwrap(), None);
    assert_eq!(store.end_session(sid).await.unwrap(), None);
    assert!(store.user_sessions("alice").await.unwrap().is_empty());
}

pub async fn absolute_lifetime_wins_over_activity(h: &dyn Harness) {
    let store = h.store(config()).await;
    let s = start(store.as_ref(), "alice", SECOND, 2 * SECOND).await;
    for _ in 0..2 {
        h.advance(ms(700)).await;
        let t = store
            .touch_session(s.sid.as_str(), None)
            .await
            .unwrap()
            .unwrap();
        assert!(t.idle_deadline <= s.absolute_deadline);
    }
    h.advance(ms(600) + MARGIN).await;
    assert_eq!(store.session(s.sid.as_str()).await.unwrap(), None);
}

pub async fn strengthening_a_session_keeps_everything_else(h: &dyn Harness) {
    let store = h.store(config()).await;
    let s = start(store.as_ref(), "alice", 60 * SECOND, 3600 * SECOND).await;
    store
        .touch_session(s.sid.as_str(), Some("wiki"))
        .await
        .unwrap();
    h.advance(SECOND).await;
    let amr = vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
    let at = Timestamp::from_millis(1_700_000_100_000);
    let strong = store
        .strengthen_session(s.sid.as_str(), amr.clone(), at)
        .await
        .unwrap()
        .expect("a live session is strengthened");
    assert_eq!((strong.amr.clone(), strong.auth_time), (amr.clone(), at));
    let read = store.session(s.sid.as_str()).await.unwrap().unwrap();
    assert_eq!(read, strong, "what the store keeps is what it answered");
    assert_eq!(read.sid, s.sid);
    assert_eq!(read.created_at, s.created_at);
    assert_eq!(read.absolute_deadline, s.absolute_deadline);
    assert!(read.clients.contains("wiki"), "the apps stay");
    assert_eq!(
        store
            .strengthen_session("not-a-session", amr.clone(), at)
            .await
            .unwrap(),
        None
    );
    store.end_session(s.sid.as_str()).await.unwrap();
    assert_eq!(
        store
            .strengthen_session(s.sid.as_str(), amr, at)
            .await
            .unwrap(),
        None,
        "an ended session stays ended"
    );
}

pub async fn a_single_use_value_is_taken_once_before_it_expires(h: &dyn Harness) {
    let store = h.store(config()).await;
    let a = store
        .put_once(r#"{"challenge":"a|b"}"#, 60 * SECOND)
        .await
        .unwrap();
    let b = store.put_once("second", SECOND).await.unwrap();
    assert_ne!(a, b);
    assert!(a.len() >= 43, "a bearer secret: {a}");
    assert_eq!(
        store.take_once(&a).await.unwrap().as_deref(),
        Some(r#"{"challenge":"a|b"}"#)
    );
    assert_eq!(store.take_once(&a).await.unwrap(), None, "once");
    assert_eq!(store.take_once("never-made").await.unwrap(), None);
    h.advance(SECOND + MARGIN).await;
    assert_eq!(store.take_once(&b).await.unwrap(), None, "expired");
    // Many at once: exactly one gets it.
    let c = store.put_once("contested", 60 * SECOND).await.unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (store, c) = (store.clone(), c.clone());
        tasks.spawn(async move { store.take_once(&c).await.unwrap() });
    }
    let got = tasks
        .join_all()
        .await
        .iter()
        .filter(|t| t.is_some())
        .count();
    assert_eq!(got, 1);
}

pub async fn ending_a_session(h: &dyn Harness) {
    let store = h.store(config()).await;
    let a = start(store.as_ref(), "alice", 60 * SECOND, 3600 * SECOND).await;
    let b = start(store.as_ref(), "alice", 60 * SECOND, 3600 * SECOND).await;
    store
        .touch_session(a.sid.as_str(), Some("wiki"))
        .await
        .unwrap();
    let ended = store.end_session(a.sid.as_str()).await.unwrap().unwrap();
    assert_eq!(ended.sid, a.sid);
    assert!(
        ended.clients.contains("wiki"),
        "the caller learns whom to notify"
    );
    assert_eq!(store.session(a.sid.as_str()).await.unwrap(), None);
    assert_eq!(store.end_session(a.sid.as_str()).await.unwrap(), None);
    let left: Vec<_> = store
        .user_sessions("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(left, [b.sid]);
}

pub async fn ending_all_sessions_of_a_user(h: &dyn Harness) {
    let store = h.store(config()).await;
    let mut alice = Vec::new();
    for _ in 0..3 {
        let s = store
            .create_session(new_session("alice", 60 * SECOND, 3600 * SECOND))
            .await
            .unwrap();
        alice.push(s.sid);
    }
    let bob = store
        .create_session(new_session("bob", 60 * SECOND, 3600 * SECOND))
        .await
        .unwrap();
    let listed: HashSet<_> = store
        .user_sessions("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(listed, alice.iter().cloned().collect());
    let ended = store.end_user_sessions("alice").await.unwrap();
    assert_eq!(ended.len(), 3);
    for sid in &alice {
        assert_eq!(store.session(sid.as_str()).await.unwrap(), None);
    }
    assert!(store.user_sessions("alice").await.unwrap().is_empty());
    assert!(store.session(bob.sid.as_str()).await.unwrap().is_some());
    assert!(store.end_user_sessions("nobody").await.unwrap().is_empty());
}

pub async fn malformed_session_ids_read_as_absent(h: &dyn Harness) {
    let store = h.store(config()).await;
    let real = start(store.as_ref(), "alice", 60 * SECOND, 3600 * SECOND).await;
    let padded = format!("{} ", real.sid);
    for sid in [
        "",
        "x",
        "{rev}",
        "../../etc/passwd",
        &"é".repeat(11),
        &padded,
    ] {
        assert_eq!(store.session(sid).await.unwrap(), None, "{sid:?}");
        assert_eq!(store.touch_session(sid, Some("x")).await.unwrap(), None);
        assert_eq!(store.end_session(sid).await.unwrap(), None);
    }
    assert!(store.session(real.sid.as_str()).await.unwrap().is_some());
}

// ---------------------------------------------------------------- refresh tokens

pub async fn refresh_rotates_and_retires(h: &dyn Harness) {
    let store = h.store(config()).await;
    let issued = store
        .issue_refresh(new_family(
            FamilyId::generate(None),
            "alice",
            "wiki",
            3600 * SECOND,
        ))
        .await
        .unwrap()
        .unwrap();
    let t1 = issued.token.secret().to_owned();
    let family = issued.family;
    let (t2, got) = match store.rotate_refresh(&t1, "wiki", None).await.unwrap() {
        Rotation::Rotated { token, family } => (token.secret().to_owned(), family),
        other => panic!("{other:?}"),
    };
    assert_ne!(t1, t2);
    assert_eq!(got, family, "rotation keeps the family as issued");
    let t3 = rotated(store.rotate_refresh(&t2, "wiki", None).await.unwrap());
    assert_ne!(t3, t2);
    assert_eq!(store.find_refresh(&t3).await.unwrap(), Some(family));
}

pub async fn reuse_of_a_retired_token_revokes_the_family(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            refresh_grace: Duration::ZERO,
            ..config()
        })
        .await;
    let now = h.now();
    let first_at = access_token(now.plus(600 * SECOND));
    let second_at = access_token(now.plus(600 * SECOND));
    let mut new = new_family(FamilyId::generate(None), "alice", "wiki", 3600 * SECOND);
    new.access_token = Some(first_at.clone());
    let t1 = store.issue_refresh(new).await.unwrap().unwrap();
    let t1 = t1.token.secret().to_owned();
    let t2 = rotated(
        store
            .rotate_refresh(&t1, "wiki", Some(&second_at))
            .await
            .unwrap(),
    );
    match store.rotate_refresh(&t1, "wiki", None).await.unwrap() {
        Rotation::Reused(revoked) => {
            assert_eq!(revoked.family.sub, "alice");
            let got: HashSet<_> = revoked.access_tokens.into_iter().collect();
            assert_eq!(got, HashSet::from([first_at, second_at]));
        }
        other => panic!("expected Reused, got {other:?}"),
    }
    assert!(matches!(
        store.rotate_refresh(&t2, "wiki", None).await.unwrap(),
        Rotation::Invalid
    ));
    assert_eq!(store.find_refresh(&t2).await.unwrap(), None);
}

pub async fn grace_retry_gets_the_same_successor(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            refresh_grace: 5 * SECOND,
            ..config()
        })
        .await;
    let t1 = offline_token(store.as_ref(), "alice", "wiki").await;
    let t2 = rotated(store.rotate_refresh(&t1, "wiki", None).await.unwrap());
    match store.rotate_refresh(&t1, "wiki", None).await.unwrap() {
        Rotation::Replayed { token, .. } => assert_eq!(token.secret(), t2),
        other => panic!("expected Replayed, got {other:?}"),
    }
    let t3 = rotated(store.rotate_refresh(&t2, "wiki", None).await.unwrap());
    match store.rotate_refresh(&t2, "wiki", None).await.unwrap() {
        Rotation::Replayed { token, .. } => assert_eq!(token.secret(), t3),
        other => panic!("expected Replayed, got {other:?}"),
    }
    // t1's successor t2 is no longer live: handing it out again would make two live tokens.
    assert!(matches!(
        store.rotate_refresh(&t1, "wiki", None).await.unwrap(),
        Rotation::Reused(_)
    ));
    assert!(matches!(
        store.rotate_refresh(&t3, "wiki", None).await.unwrap(),
        Rotation::Invalid
    ));
}

pub async fn grace_window_closes(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            refresh_grace: SECOND,
            ..config()
        })
        .await;
    let t1 = offline_token(store.as_ref(), "alice", "wiki").await;
    let t2 = rotated(store.rotate_refresh(&t1, "wiki", None).await.unwrap());
    h.advance(SECOND + MARGIN).await;
    assert!(matches!(
        store.rotate_refresh(&t1, "wiki", None).await.unwrap(),
        Rotation::Reused(_)
    ));
    assert!(matches!(
        store.rotate_refresh(&t2, "wiki", None).await.unwrap(),
        Rotation::Invalid
    ));
}

async fn rotate_concurrently(store: &Arc<dyn TokenStore>, token: &str, n: usize) -> Vec<Rotation> {
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let (store, token) = (store.clone(), token.to_owned());
        tasks.spawn(async move { store.rotate_refresh(&token, "wiki", None).await });
    }
    let mut out = Vec::new();
    while let Some(result) = tasks.join_next().await {
        out.push(result.unwrap().unwrap());
    }
    out
}

pub async fn concurrent_rotation_has_one_winner_and_reuse_revokes(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            refresh_grace: Duration::ZERO,
            ..config()
        })
        .await;
    let t1 = offline_token(store.as_ref(), "alice", "wiki").await;
    let results = rotate_concurrently(&store, &t1, 50).await;
    let winners: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Rotation::Rotated { token, .. } => Some(token.secret().to_owned()),
            _ => None,
        })
        .collect();
    let reused = results
        .iter()
        .filter(|r| matches!(r, Rotation::Reused(_)))
        .count();
    let replayed = results
        .iter()
        .filter(|r| matches!(r, Rotation::Replayed { .. }))
        .count();
    assert_eq!(winners.len(), 1, "exactly one rotation wins");
    assert_eq!(replayed, 0, "no grace window is configured");
    assert!(reused >= 1, "the losers' reuse is detected");
    assert!(
        matches!(
            store
                .rotate_refresh(&winners[0], "wiki", None)
                .await
                .unwrap(),
            Rotation::Invalid
        ),
        "the family is revoked, winner's successor included"
    );
}

pub async fn concurrent_rotation_within_grace_shares_one_successor(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            refresh_grace: 30 * SECOND,
            ..config()
        })
        .await;
    let t1 = offline_token(store.as_ref(), "alice", "wiki").await;
    let results = rotate_concurrently(&store, &t1, 50).await;
    let mut rotated_n = 0;
    let mut successors = HashSet::new();
    for r in results {
        match r {
            Rotation::Rotated { token, .. } => {
                rotated_n += 1;
                successors.insert(token.secret().to_owned());
            }
            Rotation::Replayed { token, .. } => {
                successors.insert(token.secret().to_owned());
            }
            other => panic!("within the grace window: {other:?}"),
        }
    }
    assert_eq!(rotated_n, 1);
    assert_eq!(successors.len(), 1, "never two live successors");
}

pub async fn session_bound_family_ends_with_its_session(h: &dyn Harness) {
    let store = h.store(config()).await;
    let s = start(store.as_ref(), "alice", 60 * SECOND, 3600 * SECOND).await;
    let bound = store
        .issue_refresh(bound_family(&s.sid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bound.family.sid(), Some(s.sid.clone()));
    let offline = offline_token(store.as_ref(), "alice", "wiki").await;
    let bound_t2 = rotated(
        store
            .rotate_refresh(bound.token.secret(), "wiki", None)
            .await
            .unwrap(),
    );
    store.end_session(s.sid.as_str()).await.unwrap().unwrap();
    assert!(matches!(
        store.rotate_refresh(&bound_t2, "wiki", None).await.unwrap(),
        Rotation::Invalid
    ));
    assert!(
        store
            .revoke_family(&bound.family.id)
            .await
            .unwrap()
            .is_none()
    );
    rotated(store.rotate_refresh(&offline, "wiki", None).await.unwrap());
}

pub async fn session_bound_family_ends_when_the_session_expires(h: &dyn Harness) {
    let store = h.store(config()).await;
    let s = start(store.as_ref(), "alice", SECOND, 3600 * SECOND).await;
    let bound = store
        .issue_refresh(bound_family(&s.sid))
        .await
        .unwrap()
        .unwrap();
    h.advance(SECOND + MARGIN).await;
    assert!(matches!(
        store
            .rotate_refresh(bound.token.secret(), "wiki", None)
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    assert!(store.user_families("alice").await.unwrap().is_empty());
}

pub async fn family_never_outlives_its_session(h: &dyn Harness) {
    let store = h.store(config()).await;
    let s = start(store.as_ref(), "alice", 60 * SECOND, 120 * SECOND).await;
    let bound = store
        .issue_refresh(bound_family(&s.sid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bound.family.expires_at, s.absolute_deadline);
    let t2 = store
        .rotate_refresh(bound.token.secret(), "wiki", None)
        .await
        .unwrap();
    match t2 {
        Rotation::Rotated { family, .. } => assert_eq!(family.expires_at, s.absolute_deadline),
        other => panic!("{other:?}"),
    }
}

pub async fn no_family_for_an_ended_session(h: &dyn Harness) {
    let store = h.store(config()).await;
    let s = start(store.as_ref(), "alice", 60 * SECOND, 3600 * SECOND).await;
    store.end_session(s.sid.as_str()).await.unwrap();
    let got = store.issue_refresh(bound_family(&s.sid)).await.unwrap();
    assert!(got.is_none(), "{got:?}");
    assert!(store.user_families("alice").await.unwrap().is_empty());
}

pub async fn family_expires_at_its_absolute_lifetime(h: &dyn Harness) {
    let store = h.store(config()).await;
    let issued = store
        .issue_refresh(new_family(
            FamilyId::generate(None),
            "alice",
            "wiki",
            SECOND,
        ))
        .await
        .unwrap()
        .unwrap();
    let t2 = rotated(
        store
            .rotate_refresh(issued.token.secret(), "wiki", None)
            .await
            .unwrap(),
    );
    h.advance(SECOND + MARGIN).await;
    assert!(matches!(
        store.rotate_refresh(&t2, "wiki", None).await.unwrap(),
        Rotation::Invalid
    ));
    assert!(store.user_families("alice").await.unwrap().is_empty());
}

pub async fn revoking_a_family_names_its_live_access_tokens(h: &dyn Harness) {
    let store = h.store(config()).await;
    let now = h.now();
    let a1 = access_token(now.plus(600 * SECOND));
    let a2 = access_token(now.plus(600 * SECOND));
    let short = access_token(now.plus(SECOND));
    let mut new = new_family(FamilyId::generate(None), "alice", "wiki", 3600 * SECOND);
    new.access_token = Some(a1.clone());
    let issued = store.issue_refresh(new).await.unwrap().unwrap();
    let t2 = rotated(
        store
            .rotate_refresh(issued.token.secret(), "wiki", Some(&short))
            .await
            .unwrap(),
    );
    let t3 = rotated(store.rotate_refresh(&t2, "wiki", Some(&a2)).await.unwrap());
    h.advance(SECOND + MARGIN).await;
    let revoked = store
        .revoke_family(&issued.family.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.family, issued.family);
    let got: HashSet<_> = revoked.access_tokens.into_iter().collect();
    assert_eq!(got, HashSet::from([a1, a2]), "expired ones are forgotten");
    assert!(matches!(
        store.rotate_refresh(&t3, "wiki", None).await.unwrap(),
        Rotation::Invalid
    ));
    assert!(
        store
            .revoke_family(&issued.family.id)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn revoking_families_by_user_and_by_client(h: &dyn Harness) {
    let store = h.store(config()).await;
    let alice_wiki = offline_token(store.as_ref(), "alice", "wiki").await;
    let alice_billing = offline_token(store.as_ref(), "alice", "billing").await;
    let bob_wiki = offline_token(store.as_ref(), "bob", "wiki").await;
    let revoked = store.revoke_client_families("wiki").await.unwrap();
    let subs: HashSet<_> = revoked.iter().map(|r| r.family.sub.as_str()).collect();
    assert_eq!(revoked.len(), 2);
    assert_eq!(subs, HashSet::from(["alice", "bob"]));
    for t in [&alice_wiki, &bob_wiki] {
        assert!(matches!(
            store.rotate_refresh(t, "wiki", None).await.unwrap(),
            Rotation::Invalid
        ));
    }
    let left = store.user_families("alice").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].client_id, "billing");
    let revoked = store.revoke_user_families("alice").await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert!(matches!(
        store
            .rotate_refresh(&alice_billing, "billing", None)
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    assert!(store.user_families("alice").await.unwrap().is_empty());
    assert!(
        store
            .revoke_user_families("nobody")
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn garbage_refresh_tokens_are_invalid_and_harmless(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            refresh_grace: Duration::ZERO,
            ..config()
        })
        .await;
    let t1 = offline_token(store.as_ref(), "alice", "wiki").await;
    let (family, _) = t1.split_once('.').unwrap();
    let forged = format!("{family}.{}", "A".repeat(43));
    let mut flipped = t1.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let long = "x".repeat(10_000);
    for garbage in [
        "", ".", "x.y", family, &forged, &flipped, &long, "é.é", "{rev}.x",
    ] {
        assert!(
            matches!(
                store.rotate_refresh(garbage, "wiki", None).await.unwrap(),
                Rotation::Invalid
            ),
            "{:?}",
            &garbage[..garbage.len().min(20)]
        );
        assert_eq!(store.find_refresh(garbage).await.unwrap(), None);
    }
    rotated(store.rotate_refresh(&t1, "wiki", None).await.unwrap());
}

pub async fn family_ids_are_single_use(h: &dyn Harness) {
    let store = h.store(config()).await;
    let id = FamilyId::generate(None);
    store
        .issue_refresh(new_family(id.clone(), "alice", "wiki", 3600 * SECOND))
        .await
        .unwrap()
        .unwrap();
    let again = store
        .issue_refresh(new_family(id, "mallory", "wiki", 3600 * SECOND))
        .await;
    assert!(
        matches!(again, Err(StoreError::InvalidRequest(_))),
        "{again:?}"
    );
}

pub async fn refresh_tokens_are_unguessable(h: &dyn Harness) {
    let store = h.store(config()).await;
    let mut seen = HashSet::new();
    let mut token = offline_token(store.as_ref(), "alice", "wiki").await;
    for _ in 0..200 {
        let (_, secret) = token.split_once('.').unwrap();
        assert_eq!(secret.len(), 43, "256 bits, base64url");
        assert!(seen.insert(secret.to_owned()));
        token = rotated(store.rotate_refresh(&token, "wiki", None).await.unwrap());
    }
}

pub async fn find_refresh_does_not_rotate(h: &dyn Harness) {
    let store = h.store(config()).await;
    let t1 = offline_token(store.as_ref(), "alice", "wiki").await;
    for _ in 0..3 {
        let family = store.find_refresh(&t1).await.unwrap().unwrap();
        assert_eq!(family.client_id, "wiki");
    }
    rotated(store.rotate_refresh(&t1, "wiki", None).await.unwrap());
    assert!(
        store.find_refresh(&t1).await.unwrap().is_some(),
        "a retired token still names its family"
    );
}

pub async fn inspect_refresh_tells_current_from_retired_and_names_access_tokens(h: &dyn Harness) {
    let store = h.store(config()).await;
    let now = h.now();
    let a1 = access_token(now.plus(600 * SECOND));
    let short = access_token(now.plus(SECOND));
    let mut new = new_family(FamilyId::generate(None), "alice", "wiki", 3600 * SECOND);
    new.access_token = Some(a1.clone());
    let issued = store.issue_refresh(new).await.unwrap().unwrap();
    let t1 = issued.token.secret().to_owned();
    let info = store.inspect_refresh(&t1).await.unwrap().unwrap();
    assert!(info.current);
    assert_eq!(info.family, issued.family);
    assert_eq!(info.access_tokens, vec![a1.clone()]);

    let t2 = rotated(
        store
            .rotate_refresh(&t1, "wiki", Some(&short))
            .await
            .unwrap(),
    );
    h.advance(SECOND + MARGIN).await;
    let current = store.inspect_refresh(&t2).await.unwrap().unwrap();
    assert!(current.current);
    assert_eq!(
        current.access_tokens,
        vec![a1.clone()],
        "expired ones are left out"
    );
    let retired = store.inspect_refresh(&t1).await.unwrap().unwrap();
    assert!(!retired.current, "a rotated token is no longer current");
    // Inspecting changed nothing: the current token still rotates, and names its tokens.
    let revoked = store
        .revoke_family(&issued.family.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.access_tokens, vec![a1]);
    assert!(store.inspect_refresh(&t2).await.unwrap().is_none());
    assert!(store.inspect_refresh("garbage").await.unwrap().is_none());
}

pub async fn another_clients_refresh_token_is_invalid_and_untouched(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            refresh_grace: Duration::ZERO,
            ..config()
        })
        .await;
    let t1 = offline_token(store.as_ref(), "alice", "wiki").await;
    for _ in 0..3 {
        assert!(matches!(
            store.rotate_refresh(&t1, "billing", None).await.unwrap(),
            Rotation::Invalid
        ));
    }
    let t2 = rotated(store.rotate_refresh(&t1, "wiki", None).await.unwrap());
    assert!(
        matches!(
            store.rotate_refresh(&t1, "billing", None).await.unwrap(),
            Rotation::Invalid
        ),
        "a retired token shown by another client is not reuse by the owner"
    );
    rotated(store.rotate_refresh(&t2, "wiki", None).await.unwrap());
}

pub async fn family_revoked_before_it_is_issued_never_lives(h: &dyn Harness) {
    let store = h.store(config()).await;
    let id = FamilyId::generate(None);
    assert!(store.revoke_family(&id).await.unwrap().is_none());
    let issued = store
        .issue_refresh(new_family(id, "alice", "wiki", 3600 * SECOND))
        .await
        .unwrap();
    assert!(
        issued.is_none(),
        "a replayed code's revocation won the race: {issued:?}"
    );
    assert!(store.user_families("alice").await.unwrap().is_empty());
}

pub async fn a_reused_family_id_does_not_leak_to_another_owner(h: &dyn Harness) {
    let store = h.store(config()).await;
    let id = FamilyId::generate(None);
    let alice = store
        .issue_refresh(new_family(id.clone(), "alice", "wiki", 3600 * SECOND))
        .await
        .unwrap()
        .unwrap();
    let again = store
        .issue_refresh(new_family(id, "mallory", "crm", 3600 * SECOND))
        .await;
    assert!(again.is_err());
    assert!(store.user_families("mallory").await.unwrap().is_empty());
    assert!(
        store
            .revoke_user_families("mallory")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .revoke_client_families("crm")
            .await
            .unwrap()
            .is_empty()
    );
    rotated(
        store
            .rotate_refresh(alice.token.secret(), "wiki", None)
            .await
            .unwrap(),
    );
}

pub async fn a_token_retired_long_ago_is_refused_without_revoking(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            refresh_grace: Duration::ZERO,
            ..config()
        })
        .await;
    let first = offline_token(store.as_ref(), "alice", "wiki").await;
    let mut token = rotated(store.rotate_refresh(&first, "wiki", None).await.unwrap());
    for _ in 0..crate::refresh::RETIRED_KEPT {
        token = rotated(store.rotate_refresh(&token, "wiki", None).await.unwrap());
    }
    assert!(matches!(
        store.rotate_refresh(&first, "wiki", None).await.unwrap(),
        Rotation::Invalid
    ));
    rotated(store.rotate_refresh(&token, "wiki", None).await.unwrap());
}

pub async fn listings_are_oldest_first(h: &dyn Harness) {
    let store = h.store(config()).await;
    let mut sids = Vec::new();
    let mut families = Vec::new();
    for _ in 0..3 {
        sids.push(
            start(store.as_ref(), "alice", 60 * SECOND, 3600 * SECOND)
                .await
                .sid,
        );
        let issued = store
            .issue_refresh(new_family(
                FamilyId::generate(None),
                "alice",
                "wiki",
                3600 * SECOND,
            ))
            .await
            .unwrap()
            .unwrap();
        families.push(issued.family.id);
        h.advance(ms(20)).await;
    }
    let listed: Vec<_> = store
        .user_sessions("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(listed, sids);
    let listed: Vec<_> = store
        .user_families("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(listed, families);
}

// ---------------------------------------------------------------- revocation lists

struct Token {
    jti: String,
    sid: Option<String>,
    sub: String,
    client_id: String,
    origin: Option<Origin>,
    act: Option<Actor>,
    iat: Timestamp,
    exp: Timestamp,
}

impl Token {
    fn issued_at(iat: Timestamp) -> Self {
        Self {
            jti: GrantId::generate().to_string(),
            sid: Some("sid-1".to_owned()),
            sub: "alice".to_owned(),
            client_id: "wiki".to_owned(),
            origin: None,
            act: None,
            iat: Timestamp::from_secs(iat.as_secs()),
            exp: Timestamp::from_secs(iat.as_secs() + 600),
        }
    }

    fn facts(&self) -> TokenFacts<'_> {
        TokenFacts {
            jti: &self.jti,
            sid: self.sid.as_deref(),
            sub: &self.sub,
            client_id: &self.client_id,
            origin: self.origin.as_ref(),
            act: self.act.as_ref(),
            iat: self.iat,
            exp: self.exp,
        }
    }
}

async fn verdict(store: &dyn TokenStore, t: &Token) -> Verdict {
    store.check(&t.facts()).await.unwrap()
}

pub async fn revoke_by_jti(h: &dyn Harness) {
    let store = h.store(config()).await;
    let t = Token::issued_at(h.now());
    let other = Token::issued_at(h.now());
    assert_eq!(verdict(store.as_ref(), &t).await, Verdict::NotRevoked);
    let event = store
        .revoke(Target::Jti(t.jti.clone()), t.exp)
        .await
        .unwrap();
    assert_eq!(event.revocation.target, Target::Jti(t.jti.clone()));
    assert_eq!(
        verdict(store.as_ref(), &t).await,
        Verdict::Revoked(RevokedBy::Token)
    );
    assert_eq!(verdict(store.as_ref(), &other).await, Verdict::NotRevoked);
}

pub async fn revoke_by_sid(h: &dyn Harness) {
    let store = h.store(config()).await;
    let t = Token::issued_at(h.now());
    let mut other = Token::issued_at(h.now());
    other.sid = Some("sid-2".to_owned());
    let mut sessionless = Token::issued_at(h.now());
    sessionless.sid = None;
    store
        .revoke(Target::Sid("sid-1".into()), h.now())
        .await
        .unwrap();
    assert_eq!(
        verdict(store.as_ref(), &t).await,
        Verdict::Revoked(RevokedBy::Session)
    );
    assert_eq!(verdict(store.as_ref(), &other).await, Verdict::NotRevoked);
    assert_eq!(
        verdict(store.as_ref(), &sessionless).await,
        Verdict::NotRevoked
    );
}

async fn watermark(h: &dyn Harness, target: Target, by: RevokedBy, retarget: fn(&mut Token)) {
    let store = h.store(config()).await;
    let mark = h.now();
    let mut before = Token::issued_at(mark.minus(120 * SECOND));
    let mut same_second = Token::issued_at(mark);
    let mut after = Token::issued_at(mark.plus(2 * SECOND));
    let mut unrelated = Token::issued_at(mark.minus(120 * SECOND));
    for t in [&mut before, &mut same_second, &mut after] {
        retarget(t);
    }
    unrelated.sub = "bob".to_owned();
    unrelated.client_id = "billing".to_owned();
    store.revoke(target, mark).await.unwrap();
    assert_eq!(verdict(store.as_ref(), &before).await, Verdict::Revoked(by));
    assert_eq!(
        verdict(store.as_ref(), &same_second).await,
        Verdict::Revoked(by)
    );
    assert_eq!(verdict(store.as_ref(), &after).await, Verdict::NotRevoked);
    assert_eq!(
        verdict(store.as_ref(), &unrelated).await,
        Verdict::NotRevoked
    );
}

pub async fn subject_watermark(h: &dyn Harness) {
    watermark(h, Target::Sub("carol".into()), RevokedBy::Subject, |t| {
        t.sub = "carol".into();
    })
    .await;
}

pub async fn client_watermark(h: &dyn Harness) {
    watermark(h, Target::ClientId("crm".into()), RevokedBy::Client, |t| {
        t.client_id = "crm".into();
    })
    .await;
}

pub async fn grant_watermark(h: &dyn Harness) {
    watermark(h, Target::grant("carol", "crm"), RevokedBy::Grant, |t| {
        t.sub = "carol".into();
        t.client_id = "crm".into();
    })
    .await;
    // Carol's tokens at another client, and another user's at this one, stay valid.
    let store = h.store(config()).await;
    let mark = h.now();
    store
        .revoke(Target::grant("carol", "crm"), mark)
        .await
        .unwrap();
    let mut elsewhere = Token::issued_at(mark.minus(60 * SECOND));
    elsewhere.sub = "carol".into();
    let mut someone_else = Token::issued_at(mark.minus(60 * SECOND));
    someone_else.client_id = "crm".into();
    assert_eq!(
        verdict(store.as_ref(), &elsewhere).await,
        Verdict::NotRevoked
    );
    assert_eq!(
        verdict(store.as_ref(), &someone_else).await,
        Verdict::NotRevoked
    );
    let listed = store.snapshot().await.unwrap().revocations;
    assert!(
        listed
            .iter()
            .any(|r| r.target == Target::grant("carol", "crm")),
        "the snapshot carries the grant list: {listed:?}"
    );
}

/// A token exchanged twice (RFC 8693: `orders` and then `stock` acting for the person who
/// signed in to `shop`) dies with the person's grant at any client of the chain, and with
/// any of those clients; the same person's token at another client does not. (The nodes
/// share one state, so each round uses clients of its own.)
pub async fn exchanged_token_chain(h: &dyn Harness) {
    let store = h.store(config()).await;
    let mark = h.now();
    let exchanged = |round: usize| {
        let mut t = Token::issued_at(mark.minus(60 * SECOND));
        t.sub = "carol".into();
        t.client_id = format!("stock{round}");
        t.origin = Some(Origin {
            client_id: format!("shop{round}"),
            jti: format!("first{round}"),
        });
        t.act = Some(Actor {
            sub: format!("stock{round}"),
            act: Some(Box::new(Actor {
                sub: format!("orders{round}"),
                act: None,
            })),
        });
        t
    };
    let mut elsewhere = Token::issued_at(mark.minus(60 * SECOND));
    elsewhere.sub = "carol".into();
    for (round, client) in ["shop", "orders", "stock"].into_iter().enumerate() {
        let (grant, whole) = (2 * round, 2 * round + 1);
        store
            .revoke(Target::grant("carol", &format!("{client}{grant}")), mark)
            .await
            .unwrap();
        assert_eq!(
            verdict(store.as_ref(), &exchanged(grant)).await,
            Verdict::Revoked(RevokedBy::Grant),
            "carol's grant at {client}"
        );
        store
            .revoke(Target::ClientId(format!("{client}{whole}")), mark)
            .await
            .unwrap();
        assert_eq!(
            verdict(store.as_ref(), &exchanged(whole)).await,
            Verdict::Revoked(RevokedBy::Client),
            "the client {client}"
        );
    }
    assert_eq!(
        verdict(store.as_ref(), &elsewhere).await,
        Verdict::NotRevoked
    );
    store
        .revoke(Target::grant("dave", "shop6"), mark)
        .await
        .unwrap();
    assert_eq!(
        verdict(store.as_ref(), &exchanged(6)).await,
        Verdict::NotRevoked
    );
    // The person's first token revoked (alone, or with its refresh family): every token
    // exchanged from it is refused.
    let first = exchanged(6);
    store
        .revoke(Target::Jti("first6".into()), first.exp)
        .await
        .unwrap();
    assert_eq!(
        verdict(store.as_ref(), &first).await,
        Verdict::Revoked(RevokedBy::Origin)
    );
}

pub async fn watermarks_never_move_back(h: &dyn Harness) {
    let store = h.store(config()).await;
    let later = h.now();
    let earlier = later.minus(300 * SECOND);
    store
        .revoke(Target::Sub("alice".into()), later)
        .await
        .unwrap();
    let event = store
        .revoke(Target::Sub("alice".into()), earlier)
        .await
        .unwrap();
    assert_eq!(
        event.revocation.at, later,
        "the event carries the entry in force"
    );
    let t = Token::issued_at(later.minus(60 * SECOND));
    assert_eq!(
        verdict(store.as_ref(), &t).await,
        Verdict::Revoked(RevokedBy::Subject)
    );
}

pub async fn entries_drop_out_when_nothing_they_cover_can_be_valid(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            max_access_token_lifetime: SECOND,
            leeway: Duration::ZERO,
            ..config()
        })
        .await;
    let now = h.now();
    store
        .revoke(Target::Sid("s-old".into()), now)
        .await
        .unwrap();
    store
        .revoke(Target::Jti("j-old".into()), now.plus(SECOND))
        .await
        .unwrap();
    store
        .revoke(Target::Sub("u-old".into()), now)
        .await
        .unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.revocations.len(), 3);
    h.advance(SECOND + MARGIN).await;
    store
        .revoke(Target::Sid("s-new".into()), h.now())
        .await
        .unwrap();
    let snap = store.snapshot().await.unwrap();
    let targets: Vec<_> = snap.revocations.iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, [Target::Sid("s-new".into())]);
}

pub async fn token_outliving_the_lists_is_refused(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            max_access_token_lifetime: 600 * SECOND,
            ..config()
        })
        .await;
    let mut t = Token::issued_at(h.now());
    assert_eq!(verdict(store.as_ref(), &t).await, Verdict::NotRevoked);
    t.exp = t.iat.plus(601 * SECOND);
    assert_eq!(
        verdict(store.as_ref(), &t).await,
        Verdict::Revoked(RevokedBy::LifetimeNotCovered)
    );
}

fn seqs(events: &[RevocationEvent]) -> Vec<u64> {
    events.iter().map(|e| e.cursor.seq).collect()
}

async fn events(sub: &mut Box<dyn crate::Subscription>, wait: Duration) -> Vec<RevocationEvent> {
    match sub.next(wait).await.unwrap() {
        Feed::Events(events) => events,
        Feed::Resnapshot => panic!("unexpected resnapshot"),
    }
}

pub async fn snapshot_then_events_in_order(h: &dyn Harness) {
    let store = h.store(config()).await;
    store
        .revoke(Target::Sub("before".into()), h.now())
        .await
        .unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.revocations.len(), 1);
    let mut sub = store.subscribe(&snap.cursor).await.unwrap();
    let sent = revoke_three_tokens(h, store.as_ref()).await;
    let got = events(&mut sub, 2 * SECOND).await;
    assert_eq!(got, sent);
    let c = snap.cursor.seq;
    assert_eq!(seqs(&got), [c + 1, c + 2, c + 3]);
    assert_eq!(sub.cursor(), &sent[2].cursor);
    assert!(events(&mut sub, ms(100)).await.is_empty());
}

pub async fn resume_from_a_cursor(h: &dyn Harness) {
    let store = h.store(config()).await;
    let snap = store.snapshot().await.unwrap();
    let a = store
        .revoke(Target::Sid("a".into()), h.now())
        .await
        .unwrap();
    let b = store
        .revoke(Target::Sid("b".into()), h.now())
        .await
        .unwrap();
    let c = store
        .revoke(Target::Sid("c".into()), h.now())
        .await
        .unwrap();
    let mut from_start = store.subscribe(&snap.cursor).await.unwrap();
    assert_eq!(
        events(&mut from_start, SECOND).await,
        [a.clone(), b.clone(), c.clone()]
    );
    let mut from_a = store.subscribe(&a.cursor).await.unwrap();
    assert_eq!(events(&mut from_a, SECOND).await, [b, c]);
}

pub async fn fallen_behind_subscriber_resnapshots(h: &dyn Harness) {
    let store = h
        .store(StoreConfig {
            event_retention: 3,
            ..config()
        })
        .await;
    let snap = store.snapshot().await.unwrap();
    let mut last = None;
    for i in 0..6 {
        last = Some(
            store
                .revoke(Target::Jti(format!("j{i}")), h.now().plus(60 * SECOND))
                .await
                .unwrap(),
        );
    }
    let mut behind = store.subscribe(&snap.cursor).await.unwrap();
    assert_eq!(behind.next(SECOND).await.unwrap(), Feed::Resnapshot);
    let last = last.unwrap();
    let recent = Cursor {
        seq: last.cursor.seq - 2,
        ..last.cursor.clone()
    };
    let mut close = store.subscribe(&recent).await.unwrap();
    assert_eq!(
        seqs(&events(&mut close, SECOND).await),
        [last.cursor.seq - 1, last.cursor.seq]
    );
    let fresh = store.snapshot().await.unwrap();
    assert_eq!(
        fresh.revocations.len(),
        6,
        "the lists keep what the stream trimmed"
    );
}

pub async fn reseed_starts_a_new_epoch(h: &dyn Harness) {
    let store = h.store(config()).await;
    store
        .revoke(Target::Sub("kept".into()), h.now())
        .await
        .unwrap();
    let old = store.snapshot().await.unwrap();
    let durable = vec![crate::Revocation::new(
        Target::Jti("from-db".into()),
        h.now().plus(60 * SECOND),
        store.config(),
    )];
    let cursor = store.reseed(durable).await.unwrap();
    assert_ne!(cursor.epoch, old.cursor.epoch);
    let mut stale = store.subscribe(&old.cursor).await.unwrap();
    assert_eq!(stale.next(SECOND).await.unwrap(), Feed::Resnapshot);
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.cursor.epoch, cursor.epoch);
    let mut targets: Vec<_> = snap.revocations.iter().map(|r| r.target.clone()).collect();
    targets.sort_by(|a, b| a.value().cmp(b.value()));
    assert_eq!(
        targets,
        [Target::Jti("from-db".into()), Target::Sub("kept".into())]
    );
    let mut t = Token::issued_at(h.now());
    t.jti = "from-db".into();
    assert_eq!(
        verdict(store.as_ref(), &t).await,
        Verdict::Revoked(RevokedBy::Token)
    );
    let mut fresh = store.subscribe(&snap.cursor).await.unwrap();
    let e = store
        .revoke(Target::Sid("after".into()), h.now())
        .await
        .unwrap();
    assert_eq!(events(&mut fresh, SECOND).await, [e]);
}

pub async fn waiting_subscriber_is_woken_by_a_revocation(h: &dyn Harness) {
    let store = h.store(config()).await;
    let snap = store.snapshot().await.unwrap();
    let mut sub = store.subscribe(&snap.cursor).await.unwrap();
    let waiting = tokio::spawn(async move { sub.next(30 * SECOND).await });
    tokio::time::sleep(ms(200)).await;
    let sent = store
        .revoke(Target::Sid("pushed".into()), h.now())
        .await
        .unwrap();
    // Not a speed test: only "woken by the event, not by the end of its 30 s wait".
    let got = tokio::time::timeout(10 * SECOND, waiting)
        .await
        .expect("the subscriber was not woken by the revocation");
    match got.unwrap().unwrap() {
        Feed::Events(got) => assert_eq!(got, [sent]),
        Feed::Resnapshot => panic!("unexpected resnapshot"),
    }
}

pub async fn subscriber_ahead_of_the_stream_resnapshots(h: &dyn Harness) {
    let store = h.store(config()).await;
    store
        .revoke(Target::Sid("one".into()), h.now())
        .await
        .unwrap();
    let snap = store.snapshot().await.unwrap();
    let ahead = Cursor {
        seq: snap.cursor.seq + 5,
        ..snap.cursor.clone()
    };
    let mut sub = store.subscribe(&ahead).await.unwrap();
    assert_eq!(sub.next(ms(100)).await.unwrap(), Feed::Resnapshot);
}

/// The leader's wait in the shared-feed tests.
const SHARED_WAIT: Duration = Duration::from_millis(300);

/// Revokes tokens `j1`, `j2`, `j3`; their events.
async fn revoke_three_tokens(h: &dyn Harness, store: &dyn TokenStore) -> Vec<RevocationEvent> {
    let mut sent = Vec::new();
    for jti in ["j1", "j2", "j3"] {
        sent.push(
            store
                .revoke(Target::Jti(jti.into()), h.now().plus(60 * SECOND))
                .await
                .unwrap(),
        );
    }
    sent
}

/// At least `n` events from a follower, however many answers they come in.
async fn at_least(follower: &mut Box<dyn crate::Subscription>, n: usize) -> Vec<RevocationEvent> {
    let mut got = Vec::new();
    while got.len() < n {
        got.extend(events(follower, 5 * SECOND).await);
    }
    got
}

/// A follower's next answer that is not "nothing new" (one such answer may come first: the
/// leader's wait can end just before the change the test makes).
async fn past_a_heartbeat(follower: &mut Box<dyn crate::Subscription>) -> Feed {
    let answer = follower.next(5 * SECOND).await.unwrap();
    if answer == Feed::Events(Vec::new()) {
        return follower.next(5 * SECOND).await.unwrap();
    }
    answer
}

/// Many followers of one [`Fanout`](crate::Fanout) at the same cursor: one reading of the
/// store, every event to each, in order.
pub async fn shared_feed_gives_every_follower_every_event(h: &dyn Harness) {
    let store = h.store(config()).await;
    let fanout = crate::Fanout::new(store.clone(), SHARED_WAIT);
    let snap = store.snapshot().await.unwrap();
    let mut followers = Vec::new();
    for _ in 0..50 {
        followers.push(fanout.subscribe(&snap.cursor).await.unwrap());
    }
    assert_eq!(fanout.followers(), 50);
    let sent = revoke_three_tokens(h, store.as_ref()).await;
    for follower in &mut followers {
        let got = at_least(follower, sent.len()).await;
        assert_eq!(got, sent);
        assert_eq!(follower.cursor(), &sent[2].cursor);
    }
    // A follower that joins later, from the middle, gets the rest.
    let mut late = fanout.subscribe(&sent[0].cursor).await.unwrap();
    let got = at_least(&mut late, 2).await;
    assert_eq!(got, sent[1..]);
    assert_eq!(fanout.followers(), 51);
    drop(followers);
    assert_eq!(fanout.followers(), 1);
}

/// An empty answer (a feed's heartbeat) means the store answered "nothing new" since the
/// follower's last answer: a revocation made before that is never skipped by it.
pub async fn shared_feed_says_nothing_new_only_after_the_store_did(h: &dyn Harness) {
    let store = h.store(config()).await;
    let fanout = crate::Fanout::new(store.clone(), SHARED_WAIT);
    let snap = store.snapshot().await.unwrap();
    let mut follower = fanout.subscribe(&snap.cursor).await.unwrap();
    let sent = store
        .revoke(Target::Sid("s".into()), h.now())
        .await
        .unwrap();
    assert_eq!(
        events(&mut follower, 5 * SECOND).await,
        std::slice::from_ref(&sent)
    );
    // Nothing more: an empty answer comes, after the leader's wait, not an error.
    assert!(events(&mut follower, 5 * SECOND).await.is_empty());
    assert_eq!(follower.cursor(), &sent.cursor);
    // A new follower at the head hears "nothing new" only from an answer after it joined,
    // so a revocation between its snapshot and that answer reaches it.
    let mut second = fanout.subscribe(&sent.cursor).await.unwrap();
    let next = store
        .revoke(Target::Sid("t".into()), h.now())
        .await
        .unwrap();
    assert_eq!(
        past_a_heartbeat(&mut second).await,
        Feed::Events(vec![next])
    );
}

/// A follower too far behind for the ring reads the store on its own, gets every event,
/// and joins the shared reading again once it has caught up.
pub async fn shared_feed_follower_left_behind_reads_alone_then_rejoins(h: &dyn Harness) {
    let store = h.store(config()).await;
    let fanout = crate::Fanout::new(store.clone(), SHARED_WAIT);
    let snap = store.snapshot().await.unwrap();
    // Neither reads while the ring fills past their cursor: both are left behind.
    let mut slow = fanout.subscribe(&snap.cursor).await.unwrap();
    let mut fast = fanout.subscribe(&snap.cursor).await.unwrap();
    let total = crate::fanout::RING + 20;
    let mut last = None;
    for i in 0..total {
        last = Some(
            store
                .revoke(Target::Jti(format!("j{i}")), h.now().plus(60 * SECOND))
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    let mut got = 0;
    while fast.cursor() != &last.cursor {
        got += events(&mut fast, 5 * SECOND).await.len();
    }
    assert_eq!(got, total);
    let mut seen = Vec::new();
    while slow.cursor() != &last.cursor {
        seen.extend(seqs(&events(&mut slow, 5 * SECOND).await));
    }
    let want: Vec<u64> = (snap.cursor.seq + 1..=last.cursor.seq).collect();
    assert_eq!(seen, want, "every event, in order, none twice");
    // Nothing more, said once the store has answered so (through the leader, or through the
    // follower's own subscription, the leader being behind it): both follow the leader again.
    assert!(events(&mut fast, 5 * SECOND).await.is_empty());
    assert!(events(&mut slow, 5 * SECOND).await.is_empty());
    assert_eq!(fanout.followers(), 2, "both read through the ring again");
    // A follower that starts behind the ring also reads alone and is not counted.
    let old = fanout.subscribe(&snap.cursor).await.unwrap();
    assert_eq!(fanout.followers(), 2);
    drop(old);
}

/// A leader started by a follower further back (after a restart, the first app to come back
/// may be behind): the followers at the current cursor wait for it instead of each reading
/// the store on its own.
pub async fn shared_feed_follower_ahead_of_the_leader_waits_for_it(h: &dyn Harness) {
    let store = h.store(config()).await;
    let fanout = crate::Fanout::new(store.clone(), SHARED_WAIT);
    let snap = store.snapshot().await.unwrap();
    let mut sent = revoke_three_tokens(h, store.as_ref()).await;
    let mut behind = fanout.subscribe(&snap.cursor).await.unwrap();
    let mut current = Vec::new();
    for _ in 0..20 {
        current.push(fanout.subscribe(&sent[2].cursor).await.unwrap());
    }
    assert_eq!(fanout.followers(), 21, "all follow the one leader");
    let next = store
        .revoke(Target::Sid("s".into()), h.now())
        .await
        .unwrap();
    for follower in &mut current {
        assert_eq!(
            past_a_heartbeat(follower).await,
            Feed::Events(vec![next.clone()])
        );
    }
    let got = at_least(&mut behind, 4).await;
    sent.push(next);
    assert_eq!(got, sent);
    assert_eq!(fanout.followers(), 21);
}

/// The store's "take a new snapshot" reaches every follower; one that subscribes from the
/// new snapshot is served again.
pub async fn shared_feed_passes_on_resnapshot(h: &dyn Harness) {
    let store = h.store(config()).await;
    let fanout = crate::Fanout::new(store.clone(), SHARED_WAIT);
    let old = store.snapshot().await.unwrap();
    let mut a = fanout.subscribe(&old.cursor).await.unwrap();
    let mut b = fanout.subscribe(&old.cursor).await.unwrap();
    let cursor = store.reseed(Vec::new()).await.unwrap();
    for follower in [&mut a, &mut b] {
        assert_eq!(past_a_heartbeat(follower).await, Feed::Resnapshot);
    }
    // Ahead of the stream: the store's own answer, through the shared feed.
    let ahead = Cursor {
        seq: cursor.seq + 5,
        ..cursor.clone()
    };
    let mut c = fanout.subscribe(&ahead).await.unwrap();
    let mut fresh = fanout.subscribe(&cursor).await.unwrap();
    assert_eq!(past_a_heartbeat(&mut c).await, Feed::Resnapshot);
    let e = store
        .revoke(Target::Sid("after".into()), h.now())
        .await
        .unwrap();
    assert_eq!(past_a_heartbeat(&mut fresh).await, Feed::Events(vec![e]));
}

pub async fn out_of_range_times_are_clamped_alike(h: &dyn Harness) {
    let store = h.store(config()).await;
    let far = Timestamp::from_secs(i64::MAX);
    let event = store
        .revoke(Target::Jti("forever".into()), far)
        .await
        .unwrap();
    assert_eq!(event.revocation.at.as_millis(), crate::TIME_LIMIT_MS);
    assert_eq!(event.revocation.until.as_millis(), crate::TIME_LIMIT_MS);
    let mut t = Token::issued_at(h.now());
    t.jti = "forever".into();
    assert_eq!(
        verdict(store.as_ref(), &t).await,
        Verdict::Revoked(RevokedBy::Token)
    );
    let long = store
        .issue_refresh(new_family(
            FamilyId::generate(None),
            "alice",
            "wiki",
            Duration::MAX,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(long.family.expires_at.as_millis(), crate::TIME_LIMIT_MS);
    rotated(
        store
            .rotate_refresh(long.token.secret(), "wiki", None)
            .await
            .unwrap(),
    );
}

pub async fn two_nodes_see_each_other(h: &dyn Harness) {
    let a = h.store(config()).await;
    let b = h.store(config()).await;
    let snap = b.snapshot().await.unwrap();
    let mut b_events = b.subscribe(&snap.cursor).await.unwrap();
    let t = Token::issued_at(h.now());
    let sent = a.revoke(Target::Jti(t.jti.clone()), t.exp).await.unwrap();
    assert_eq!(
        verdict(b.as_ref(), &t).await,
        Verdict::Revoked(RevokedBy::Token)
    );
    assert_eq!(events(&mut b_events, 2 * SECOND).await, [sent]);

    let code = a.put_code(&grant("wiki")).await.unwrap();
    assert!(matches!(
        b.redeem_code(code.secret(), "wiki").await.unwrap(),
        Redemption::Redeemed(_)
    ));
    assert!(matches!(
        a.redeem_code(code.secret(), "wiki").await.unwrap(),
        Redemption::AlreadyRedeemed(_)
    ));
    let s = a
        .create_session(new_session("alice", 60 * SECOND, 3600 * SECOND))
        .await
        .unwrap();
    assert_eq!(b.session(s.sid.as_str()).await.unwrap(), Some(s.clone()));
    let t1 = offline_token(a.as_ref(), "alice", "wiki").await;
    let t2 = rotated(b.rotate_refresh(&t1, "wiki", None).await.unwrap());
    rotated(a.rotate_refresh(&t2, "wiki", None).await.unwrap());
    b.end_session(s.sid.as_str()).await.unwrap();
    assert_eq!(a.session(s.sid.as_str()).await.unwrap(), None);
}

// --- Failed attempts ---

fn policy(window: Duration, steps: &[(u32, Duration)]) -> ThrottlePolicy {
    ThrottlePolicy {
        window,
        steps: steps.to_vec(),
    }
}

pub async fn failures_block_as_the_policy_says(h: &dyn Harness) {
    let store = h.store(config()).await;
    let p = policy(3 * SECOND, &[(3, SECOND), (4, 60 * SECOND)]);
    for n in 1..=2 {
        let t = store.record_failure("user:alice", &p).await.unwrap();
        assert_eq!((t.failures, t.blocked_until), (n, None));
    }
    let t = store.record_failure("user:alice", &p).await.unwrap();
    assert_eq!(t.failures, 3);
    let left = t.blocked_for(h.now()).expect("blocked after the third");
    assert!(left > SECOND - MARGIN && left <= SECOND, "{left:?}");
    assert_eq!(store.throttle("user:alice").await.unwrap(), t);
    assert_eq!(
        store.throttle("user:bob").await.unwrap(),
        Default::default(),
        "keys are separate"
    );
    h.advance(SECOND + MARGIN).await;
    let t = store.throttle("user:alice").await.unwrap();
    assert_eq!(t.failures, 3, "still counted inside the window");
    assert_eq!(t.blocked_for(h.now()), None, "the block is over");
    let t = store.record_failure("user:alice", &p).await.unwrap();
    let left = t.blocked_for(h.now()).expect("locked");
    assert!(left > 59 * SECOND, "the last block applies: {left:?}");
    // Locked longer than the window: still there after the window.
    h.advance(2 * SECOND + MARGIN).await;
    assert_eq!(store.throttle("user:alice").await.unwrap().failures, 4);
    assert!(store.clear_throttle("user:alice").await.unwrap());
    assert_eq!(
        store.throttle("user:alice").await.unwrap(),
        Default::default()
    );
    assert!(!store.clear_throttle("user:alice").await.unwrap());
}

pub async fn a_counter_is_forgotten_after_its_window(h: &dyn Harness) {
    let store = h.store(config()).await;
    let p = policy(SECOND, &[]);
    store.record_failure("ip:192.0.2.1", &p).await.unwrap();
    store.record_failure("ip:192.0.2.1", &p).await.unwrap();
    h.advance(SECOND + MARGIN).await;
    assert_eq!(
        store.throttle("ip:192.0.2.1").await.unwrap(),
        Default::default()
    );
    let t = store.record_failure("ip:192.0.2.1", &p).await.unwrap();
    assert_eq!(t.failures, 1, "a new window");
}

pub async fn counters_are_shared_by_nodes_and_exact_under_concurrency(h: &dyn Harness) {
    let one = h.store(config()).await;
    let two = h.store(config()).await;
    let p = policy(60 * SECOND, &[]);
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        let p = p.clone();
        tasks.spawn(async move { store.record_failure("client:wiki", &p).await.unwrap() });
    }
    let mut seen: Vec<u32> = tasks.join_all().await.iter().map(|t| t.failures).collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<u32>>(),
        "each failure counted once"
    );
    assert_eq!(two.throttle("client:wiki").await.unwrap().failures, 20);
}

pub async fn attempts_are_counted_before_they_are_checked(h: &dyn Harness) {
    let store = h.store(config()).await;
    let account = "signin:{user:alice}";
    let pair = "signin:{user:alice}:ip:192.0.2.1";
    let slow = policy(60 * SECOND, &[(3, SECOND)]);
    let lock = policy(60 * SECOND, &[(2, 60 * SECOND)]);
    let keys = [(account, &slow), (pair, &lock)];
    let Attempt::Allowed(first) = store.attempt(&keys).await.unwrap() else {
        panic!("nothing is blocked yet");
    };
    assert_eq!(
        first.iter().map(|t| t.failures).collect::<Vec<_>>(),
        [1, 1],
        "counted under each key, in order"
    );
    assert_eq!(store.throttle(pair).await.unwrap().failures, 1);
    let Attempt::Allowed(second) = store.attempt(&keys).await.unwrap() else {
        panic!("the second attempt is let through");
    };
    assert!(
        second[1].blocked_for(h.now()).is_some(),
        "it locks the pair"
    );
    match store.attempt(&keys).await.unwrap() {
        Attempt::Blocked(wait) => assert!(wait > 59 * SECOND, "{wait:?}"),
        other => panic!("the pair is locked: {other:?}"),
    }
    assert_eq!(
        store.throttle(account).await.unwrap().failures,
        2,
        "a blocked attempt counts nowhere"
    );
    // Another address: its own pair, the account shared.
    let elsewhere = "signin:{user:alice}:ip:198.51.100.7";
    let Attempt::Allowed(third) = store
        .attempt(&[(account, &slow), (elsewhere, &lock)])
        .await
        .unwrap()
    else {
        panic!("another address is not locked by the first one's failures");
    };
    assert_eq!(third[0].failures, 3);
    assert!(
        third[0].blocked_for(h.now()).is_some(),
        "the account slows down"
    );
    assert!(store.clear_throttle(account).await.unwrap());
    assert!(store.clear_throttle(elsewhere).await.unwrap());
    assert!(matches!(
        store
            .attempt(&[(account, &slow), (elsewhere, &lock)])
            .await
            .unwrap(),
        Attempt::Allowed(_)
    ));
    h.advance(60 * SECOND + MARGIN).await;
    let Attempt::Allowed(later) = store.attempt(&keys).await.unwrap() else {
        panic!("the lock is over");
    };
    assert_eq!(later[1].failures, 1, "a new window");
}

pub async fn concurrent_attempts_get_no_more_checks_than_the_policy_allows(h: &dyn Harness) {
    let one = h.store(config()).await;
    let two = h.store(config()).await;
    let p = policy(60 * SECOND, &[(4, 60 * SECOND)]);
    let mut tasks = JoinSet::new();
    for i in 0..150 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        let p = p.clone();
        tasks.spawn(async move {
            let keys = [
                ("signin:{user:bob}", &p),
                ("signin:{user:bob}:ip:192.0.2.9", &p),
            ];
            store.attempt(&keys).await.unwrap()
        });
    }
    let outcomes = tasks.join_all().await;
    let allowed = outcomes
        .iter()
        .filter(|a| matches!(a, Attempt::Allowed(_)))
        .count();
    assert_eq!(allowed, 4, "four checks, then the lock");
    assert_eq!(two.throttle("signin:{user:bob}").await.unwrap().failures, 4);
}

//! The conformance suite on `RedisStore`, plus what only Redis can get wrong: outages,
//! lost state, corrupt records, secrets at rest, durability across `kill -9`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_store::{
    Clock, CodeGrant, FamilyId, Feed, GrantId, Issuance, NewFamily, RedisConfig, RedisStore,
    RevokedBy, Rotation, StoreConfig, StoreError, SystemClock, Target, TokenFacts, TokenStore,
    Verdict,
};
use support::{
    OwnRedis, RedisHarness, delete_prefix, dump_prefix, redis_url, store_at, unique_prefix,
};

lanyard_store::conformance_suite!(RedisHarness::new());

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn facts<'a>(jti: &'a str, sub: &'a str) -> TokenFacts<'a> {
    let now = SystemClock.now();
    TokenFacts {
        jti,
        sid: None,
        sub,
        client_id: "wiki",
        origin: None,
        act: None,
        iat: now,
        exp: now.plus(Duration::from_secs(600)),
    }
}

/// A store whose Redis is gone answers with an error, never with "not revoked".
#[tokio::test]
async fn unreachable_redis_is_an_error_never_an_answer() {
    let mut own = OwnRedis::start();
    let store = store_at(&own.url(), "t:", StoreConfig::default(), true).await;
    let code = store.put_code(&grant()).await.unwrap();
    let issued = store
        .issue_refresh(offline_family())
        .await
        .unwrap()
        .unwrap();
    let cursor = store.snapshot().await.unwrap().cursor;
    let mut subscriber = store.subscribe(&cursor).await.unwrap();
    store
        .revoke(
            Target::Jti("j".into()),
            SystemClock.now().plus(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    own.kill();
    for _ in 0..3 {
        let got = store.check(&facts("other", "alice")).await;
        assert!(
            matches!(
                got,
                Err(StoreError::Unavailable(_) | StoreError::Timeout(_))
            ),
            "{got:?}"
        );
        assert!(got.unwrap_err().is_transient());
    }
    let session = store.session("AAAAAAAAAAAAAAAAAAAAAA").await;
    assert!(session.is_err(), "{session:?}");
    let rotated = store
        .rotate_refresh(issued.token.secret(), "wiki", None)
        .await;
    assert!(rotated.is_err(), "{rotated:?}");
    let redeemed = store.redeem_code(code.secret(), "wiki").await;
    assert!(redeemed.is_err(), "{redeemed:?}");
    assert!(store.snapshot().await.is_err());
    assert!(subscriber.next(Duration::from_millis(200)).await.is_err());
    let rotation = store.rotate_refresh("x.y", "wiki", None).await;
    assert!(
        rotation.is_ok(),
        "a malformed token needs no Redis: {rotation:?}"
    );

    let mut closed = RedisConfig::new(format!("redis://127.0.0.1:{}", own.port));
    closed.prefix = "t:".into();
    let connect = RedisStore::connect(StoreConfig::default(), closed).await;
    assert!(
        matches!(
            connect,
            Err(StoreError::Unavailable(_) | StoreError::Timeout(_))
        ),
        "{connect:?}"
    );
}

/// Acknowledged revocations survive `kill -9` and a restart; the store reconnects by itself
/// and carries on, and a subscriber resumes from its cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_revocations_survive_kill_9() {
    let mut own = OwnRedis::start();
    let store = store_at(&own.url(), "d:", StoreConfig::default(), true).await;
    let exp = SystemClock.now().plus(Duration::from_secs(600));
    let mut last = None;
    for i in 0..50 {
        last = Some(
            store
                .revoke(Target::Jti(format!("j{i}")), exp)
                .await
                .unwrap(),
        );
    }
    store
        .revoke(Target::Sub("alice".into()), SystemClock.now())
        .await
        .unwrap();
    let cursor = last.unwrap().cursor;
    let mut subscriber = store.subscribe(&cursor).await.unwrap();

    own.kill();
    assert!(store.check(&facts("j0", "bob")).await.is_err());
    own.restart();

    let mut answered = None;
    for _ in 0..50 {
        match store.check(&facts("j0", "bob")).await {
            Ok(v) => {
                answered = Some(v);
                break;
            }
            Err(e) => assert!(e.is_transient(), "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answered,
        Some(Verdict::Revoked(RevokedBy::Token)),
        "the store reconnected by itself"
    );
    for i in 0..50 {
        let jti = format!("j{i}");
        assert_eq!(
            store.check(&facts(&jti, "bob")).await.unwrap(),
            Verdict::Revoked(RevokedBy::Token)
        );
    }
    let mut old = facts("fresh", "alice");
    old.iat = old.iat.minus(Duration::from_secs(60));
    assert_eq!(
        store.check(&old).await.unwrap(),
        Verdict::Revoked(RevokedBy::Subject)
    );

    let after = store
        .revoke(Target::Sid("s-after".into()), SystemClock.now())
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        match subscriber.next(Duration::from_millis(500)).await {
            Ok(Feed::Events(events)) => {
                got.extend(events);
                if !got.is_empty() {
                    break;
                }
            }
            Ok(Feed::Resnapshot) => panic!("the stream survived: no resnapshot needed"),
            Err(e) => assert!(e.is_transient(), "{e}"),
        }
    }
    let seqs: Vec<u64> = got.iter().map(|e| e.cursor.seq).collect();
    assert_eq!(
        seqs,
        [cursor.seq + 1, after.cursor.seq],
        "the alice watermark, then the new one"
    );
}

/// A Redis that lost the lists (its epoch marker) never reads as "nothing revoked".
#[tokio::test]
async fn lost_revocation_state_is_refused_until_reseeded() {
    let url = redis_url();
    let prefix = unique_prefix();
    let store = store_at(&url, &prefix, StoreConfig::default(), true).await;
    let snap = store.snapshot().await.unwrap();
    let mut subscriber = store.subscribe(&snap.cursor).await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}{{rev}}:epoch"))
        .query(&mut raw(&url))
        .unwrap();

    assert!(matches!(
        store.check(&facts("j", "alice")).await,
        Err(StoreError::RevocationStateLost)
    ));
    assert!(matches!(
        store.snapshot().await,
        Err(StoreError::RevocationStateLost)
    ));
    assert!(matches!(
        store
            .revoke(Target::Sub("alice".into()), SystemClock.now())
            .await,
        Err(StoreError::RevocationStateLost)
    ));
    assert!(matches!(
        subscriber.next(Duration::from_millis(100)).await,
        Err(StoreError::RevocationStateLost)
    ));

    let durable = vec![lanyard_store::Revocation::new(
        Target::Sub("alice".into()),
        SystemClock.now(),
        store.config(),
    )];
    store.reseed(durable).await.unwrap();
    let mut old = facts("j", "alice");
    old.iat = old.iat.minus(Duration::from_secs(5));
    assert_eq!(
        store.check(&old).await.unwrap(),
        Verdict::Revoked(RevokedBy::Subject)
    );
    assert_eq!(
        subscriber.next(Duration::from_millis(100)).await.unwrap(),
        Feed::Resnapshot
    );
    delete_prefix(&url, &prefix);
}

/// A record that does not decode is an error, not a default.
#[tokio::test]
async fn corrupt_records_are_errors() {
    let url = redis_url();
    let prefix = unique_prefix();
    let store = store_at(&url, &prefix, StoreConfig::default(), true).await;
    let mut conn = raw(&url);

    let s = store
        .create_session(lanyard_store::NewSession {
            sub: "alice".into(),
            auth_time: SystemClock.now(),
            amr: vec!["pwd".into()],
            remember_me: false,
            idle_timeout: Duration::from_secs(60),
            absolute_lifetime: Duration::from_secs(600),
            user_agent: None,
            ip: None,
        })
        .await
        .unwrap();
    let key = format!("{prefix}{{s:{}}}:sess", s.sid);
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("idle")
        .arg("soon")
        .query(&mut conn)
        .unwrap();
    let got = store.session(s.sid.as_str()).await;
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("idle")
        .arg("99999999999999")
        .arg("d")
        .arg("{not json")
        .query(&mut conn)
        .unwrap();
    let got = store.session(s.sid.as_str()).await;
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");

    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}{{rev}}:jti"))
        .arg("bad")
        .arg("no-separator")
        .query(&mut conn)
        .unwrap();
    let got = store.check(&facts("bad", "alice")).await;
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");

    let code = store.put_code(&grant()).await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}code:*"))
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&keys[0])
        .arg("live")
        .arg("[]")
        .query(&mut conn)
        .unwrap();
    let got = store.redeem_code(code.secret(), "wiki").await;
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");
    delete_prefix(&url, &prefix);
}

fn grant() -> CodeGrant {
    CodeGrant {
        grant_id: GrantId::generate(),
        client_id: "wiki".into(),
        sub: "alice".into(),
        sid: None,
        issuance: Issuance::default(),
        payload: serde_json::json!({}),
    }
}

/// Codes, refresh tokens, device and user codes are kept only as hashes; every key is under
/// the prefix.
#[tokio::test]
async fn secrets_are_not_at_rest() {
    let url = redis_url();
    let prefix = unique_prefix();
    let store = store_at(&url, &prefix, StoreConfig::default(), true).await;
    let code = store.put_code(&grant()).await.unwrap();
    let redeemed = store.put_code(&grant()).await.unwrap();
    let _ = store.redeem_code(redeemed.secret(), "wiki").await.unwrap();
    let issued = store
        .issue_refresh(NewFamily {
            id: FamilyId::generate(None),
            grant_id: GrantId::generate(),
            client_id: "wiki".into(),
            sub: "alice".into(),
            scope: vec!["openid".into()],
            lifetime: Duration::from_secs(600),
            payload: serde_json::json!({}),
            access_token: None,
        })
        .await
        .unwrap()
        .unwrap();
    let t1 = issued.token.secret().to_owned();
    let Rotation::Rotated { token: t2, .. } =
        store.rotate_refresh(&t1, "wiki", None).await.unwrap()
    else {
        panic!("rotation failed");
    };
    let user_code = lanyard_store::UserCode::generate();
    let device = store
        .put_device(&lanyard_store::NewDeviceGrant {
            client_id: "tv".into(),
            user_code: user_code.clone(),
            lifetime: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            payload: serde_json::json!({}),
        })
        .await
        .unwrap()
        .unwrap();
    let dump = dump_prefix(&url, &prefix);
    assert!(dump.len() >= 6, "{dump:?}");
    for (key, value) in &dump {
        assert!(
            !key.contains(user_code.as_str()) && !value.contains(user_code.as_str()),
            "a user code is stored in {key}"
        );
    }
    let secret_of = |t: &str| t.split_once('.').map(|(_, s)| s.to_owned()).unwrap();
    let secrets = [
        code.secret().to_owned(),
        redeemed.secret().to_owned(),
        secret_of(&t1),
        secret_of(t2.secret()),
        secret_of(device.secret()),
    ];
    // Each secret as issued (base64url), as hex of its bytes, and as raw bytes.
    let mut forms = Vec::new();
    for secret in &secrets {
        let bytes = URL_SAFE_NO_PAD.decode(secret).unwrap();
        forms.push(secret.clone());
        forms.push(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        forms.push(format!("{:?}", redis::Value::BulkString(bytes)));
    }
    for form in &forms {
        for (key, value) in &dump {
            assert!(
                !key.contains(form.as_str()) && !value.contains(form.as_str()),
                "a secret is stored in {key}"
            );
        }
    }
    delete_prefix(&url, &prefix);
}

/// Redis forgetting the scripts (a restart, `SCRIPT FLUSH`) costs one reload, not an error.
#[tokio::test]
async fn scripts_are_reloaded_after_a_flush() {
    // SCRIPT FLUSH touches the whole server: on a server of this test's own.
    let own = OwnRedis::start();
    let store = store_at(&own.url(), "t:", StoreConfig::default(), true).await;
    let code = store.put_code(&grant()).await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut raw(&own.url()))
        .unwrap();
    let got = store.redeem_code(code.secret(), "wiki").await.unwrap();
    assert!(matches!(got, lanyard_store::Redemption::Redeemed(_)));
}

/// A Redis that may evict any key could evict revocations: refused at connect.
#[tokio::test]
async fn a_redis_that_may_evict_revocations_is_refused() {
    let own = OwnRedis::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let mut config = RedisConfig::new(own.url());
    config.prefix = "t:".into();
    let got = RedisStore::connect(StoreConfig::default(), config).await;
    assert!(matches!(got, Err(StoreError::InvalidRequest(_))), "{got:?}");
}

/// What expires is really gone from Redis, not merely filtered out on reading.
#[tokio::test]
async fn expired_records_leave_redis() {
    let own = OwnRedis::start();
    let config = StoreConfig {
        code_ttl: Duration::from_millis(100),
        redeemed_code_retention: Duration::from_millis(100),
        max_access_token_lifetime: Duration::from_millis(100),
        leeway: Duration::ZERO,
        ..StoreConfig::default()
    };
    let store = store_at(&own.url(), "t:", config, true).await;
    let now = SystemClock.now();
    store.revoke(Target::Sid("s".into()), now).await.unwrap();
    let exp = now.plus(Duration::from_millis(100));
    store.revoke(Target::Jti("j".into()), exp).await.unwrap();
    let _ = store.put_code(&grant()).await.unwrap();
    let session = store
        .create_session(lanyard_store::NewSession {
            sub: "alice".into(),
            auth_time: now,
            amr: vec![],
            remember_me: false,
            idle_timeout: Duration::from_millis(100),
            absolute_lifetime: Duration::from_millis(150),
            user_agent: None,
            ip: None,
        })
        .await
        .unwrap();
    store
        .touch_session(session.sid.as_str(), Some("wiki"))
        .await
        .unwrap();
    let mut family = offline_family();
    family.lifetime = Duration::from_millis(100);
    let issued = store.issue_refresh(family).await.unwrap().unwrap();
    let _ = store
        .rotate_refresh(issued.token.secret(), "wiki", None)
        .await
        .unwrap();
    // Index entries live until the expiry the caller asked for (the index cannot see the
    // session's deadline), so ask for no more than the session has left.
    let mut bound = offline_family();
    bound.id = FamilyId::generate(Some(&session.sid));
    bound.lifetime = Duration::from_millis(150);
    store.issue_refresh(bound).await.unwrap().unwrap();
    let mut conn = raw(&own.url());
    let hlen = |conn: &mut redis::Connection, list: &str| -> i64 {
        redis::cmd("HLEN")
            .arg(format!("t:{{rev}}:{list}"))
            .query(conn)
            .unwrap()
    };
    assert_eq!(hlen(&mut conn, "sid") + hlen(&mut conn, "jti"), 2);

    // What this test checks is Redis itself dropping keys at their TTL, on its own clock:
    // real time must pass, past the longest lifetime above (150 ms). The revocation entries
    // go at the next write, whenever it comes: nothing above depends on setup being quick.
    tokio::time::sleep(Duration::from_millis(190)).await;
    store
        .revoke(Target::Sub("u".into()), SystemClock.now())
        .await
        .unwrap();
    assert_eq!(
        hlen(&mut conn, "sid") + hlen(&mut conn, "jti"),
        0,
        "pruned by the next write"
    );
    let drop: i64 = redis::cmd("ZCARD")
        .arg("t:{rev}:drop")
        .query(&mut conn)
        .unwrap();
    assert_eq!(drop, 1, "only the new entry's drop-out time is left");
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("t:*").query(&mut conn).unwrap();
    keys.sort();
    let expected = [
        "t:{rev}:drop",
        "t:{rev}:epoch",
        "t:{rev}:events",
        "t:{rev}:seq",
        "t:{rev}:sub",
    ];
    assert_eq!(
        keys, expected,
        "codes, sessions, families and indexes expired"
    );
}

fn offline_family() -> NewFamily {
    NewFamily {
        id: FamilyId::generate(None),
        grant_id: GrantId::generate(),
        client_id: "wiki".into(),
        sub: "alice".into(),
        scope: vec!["openid".into()],
        lifetime: Duration::from_secs(600),
        payload: serde_json::json!({}),
        access_token: None,
    }
}

#[tokio::test]
async fn a_prefix_may_not_choose_the_hash_slot() {
    let mut config = RedisConfig::new(redis_url());
    config.prefix = "x{rev}:".into();
    let got = RedisStore::connect(StoreConfig::default(), config).await;
    assert!(matches!(got, Err(StoreError::InvalidRequest(_))), "{got:?}");
}

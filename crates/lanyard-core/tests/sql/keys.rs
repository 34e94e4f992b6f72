//! `Db::keys`: signing keys and the server's own secrets.

use lanyard_core::db::{Db, DbError};
use lanyard_core::model::StoredKey;
use lanyard_store::Timestamp;

fn key(kid: &str, alg: &str, state: &str, created_ms: i64, until_ms: Option<i64>) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        alg: alg.to_owned(),
        private_key: format!("der of {kid}").into_bytes(),
        state: state.to_owned(),
        created_at: Timestamp::from_millis(created_ms),
        usable_until: until_ms.map(Timestamp::from_millis),
    }
}

pub(crate) async fn published_keys_are_newest_first_until_their_end(db: Db) {
    let old = key("old", "RS256", "retired", 1_000, Some(5_000));
    let active = key("active", "RS256", "active", 2_000, None);
    let next = key("next", "RS256", "next", 3_000, None);
    let ec = key("ec", "ES256", "active", 2_500, None);
    for k in [&old, &active, &next, &ec] {
        db.keys().insert(k).await.unwrap();
    }
    let kids = |keys: Vec<StoredKey>| keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
    let at = |ms| Timestamp::from_millis(ms);
    assert_eq!(
        kids(db.keys().published(at(4_999)).await.unwrap()),
        ["next", "ec", "active", "old"]
    );
    // A retired key leaves at its `usable_until`.
    assert_eq!(
        kids(db.keys().published(at(5_000)).await.unwrap()),
        ["next", "ec", "active"]
    );
    let read = db.keys().published(at(0)).await.unwrap();
    assert_eq!(read.last(), Some(&old), "every field reads back");
    let again = db.keys().insert(&active).await;
    assert!(matches!(again, Err(DbError::Conflict(_))), "{again:?}");
}

pub(crate) async fn only_one_first_key_per_algorithm_even_at_once(db: Db) {
    // Nodes started at once on an empty database each make a first key: one gets in.
    let tries = (0..8).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            db.keys()
                .insert_first(&key(&format!("k{i}"), "RS256", "active", 1_000 + i, None))
                .await
                .unwrap()
        })
    });
    let mut stored = 0;
    for t in tries {
        stored += usize::from(t.await.unwrap());
    }
    assert_eq!(stored, 1);
    let active = db
        .keys()
        .published(Timestamp::from_millis(0))
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    // Another algorithm, or another state, is not held back by it.
    assert!(
        db.keys()
            .insert_first(&key("ec", "ES256", "active", 9, None))
            .await
            .unwrap()
    );
    assert!(
        db.keys()
            .insert_first(&key("n", "RS256", "next", 9, None))
            .await
            .unwrap()
    );
    assert!(
        !db.keys()
            .insert_first(&key("ec2", "ES256", "active", 9, None))
            .await
            .unwrap()
    );
}

pub(crate) async fn key_states_change_and_keys_go(db: Db) {
    db.keys()
        .insert(&key("k", "EdDSA", "next", 1_000, None))
        .await
        .unwrap();
    assert!(db.keys().set_state("k", "active", None).await.unwrap());
    let until = Timestamp::from_millis(9_000);
    assert!(
        db.keys()
            .set_state("k", "retired", Some(until))
            .await
            .unwrap()
    );
    let stored = db
        .keys()
        .published(Timestamp::from_millis(0))
        .await
        .unwrap();
    assert_eq!(
        (stored[0].state.as_str(), stored[0].usable_until),
        ("retired", Some(until))
    );
    assert!(!db.keys().set_state("nobody", "active", None).await.unwrap());
    assert!(db.keys().delete("k").await.unwrap());
    assert!(!db.keys().delete("k").await.unwrap());
    assert!(
        db.keys()
            .published(Timestamp::from_millis(0))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn the_first_server_secret_wins(db: Db) {
    let now = Timestamp::from_millis(1_000);
    let first = db
        .keys()
        .server_secret("pepper", b"first".to_vec(), now)
        .await
        .unwrap();
    let second = db
        .keys()
        .server_secret("pepper", b"second".to_vec(), now)
        .await
        .unwrap();
    assert_eq!(
        (first.as_slice(), second.as_slice()),
        (&b"first"[..], &b"first"[..])
    );
    let other = db
        .keys()
        .server_secret("cookie", b"c".to_vec(), now)
        .await
        .unwrap();
    assert_eq!(other, b"c");
}

/// Envelope encryption (issue 19 §4): secrets an older Lanyard stored in the clear are sealed
/// by `reseal`; a sealed secret opens under its own master key only, and `reseal` with the
/// previous key moves everything to a new one, all or nothing.
pub(crate) async fn secrets_in_the_clear_are_sealed_and_open_under_their_master_key_only(db: Db) {
    use std::sync::Arc;

    use lanyard_core::crypto::MasterKey;
    let now = Timestamp::from_millis(1_000);
    // As an older Lanyard left it: in the clear.
    let signing = key("k1", "RS256", "active", 1_000, None);
    db.keys().insert(&signing).await.unwrap();
    let cookie = db
        .keys()
        .server_secret("cookie_mac", b"cookie key".to_vec(), now)
        .await
        .unwrap();
    assert_eq!(cookie, b"cookie key");
    let (a, _) = MasterKey::generate();
    let a = Arc::new(a);
    let under_a = db.clone().with_master_key(a.clone());
    assert_eq!(under_a.keys().reseal(None).await.unwrap(), 2);
    assert_eq!(under_a.keys().reseal(None).await.unwrap(), 0, "sealed once");
    let raw = under_a.keys().stored_raw().await.unwrap();
    assert!(raw.iter().all(|(_, v)| a.sealed_here(v)), "sealed at rest");
    assert!(
        !raw.iter()
            .any(|(_, v)| v.windows(6).any(|w| w == b"der of" || w == b"cookie")),
        "nothing in the clear"
    );
    let published = under_a.keys().published(now).await.unwrap();
    assert_eq!(published[0].private_key, signing.private_key);
    let again = under_a
        .keys()
        .server_secret("cookie_mac", b"another".to_vec(), now)
        .await
        .unwrap();
    assert_eq!(again, b"cookie key", "the first one stays");
    // Without the key, or with another, nothing opens.
    assert!(matches!(
        db.keys().published(now).await,
        Err(DbError::Corrupt { .. })
    ));
    let (b, _) = MasterKey::generate();
    let under_b = db.clone().with_master_key(Arc::new(b));
    assert!(under_b.keys().published(now).await.is_err());
    assert!(
        under_b.keys().reseal(None).await.is_err(),
        "not without the previous key"
    );
    // Moved to b: b opens it, a no longer does.
    assert_eq!(under_b.keys().reseal(Some(&a)).await.unwrap(), 2);
    assert_eq!(
        under_b.keys().published(now).await.unwrap()[0].private_key,
        signing.private_key
    );
    assert!(under_a.keys().published(now).await.is_err());
}

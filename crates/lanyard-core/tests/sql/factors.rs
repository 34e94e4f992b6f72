//! `Db::factors`: second factors and recovery codes (issue 20).

use std::sync::Arc;

use lanyard_core::crypto::MasterKey;
use lanyard_core::db::Db;
use lanyard_core::model::FactorKind;
use lanyard_store::Timestamp;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// Factors are listed oldest first without their seeds; a seed reads back as stored, sealed
/// at rest under the master key; removing one, or all, leaves other people's alone.
pub(crate) async fn factors_read_back_and_seeds_are_sealed(db: Db) {
    let (master, _) = MasterKey::generate();
    let master = Arc::new(master);
    let db = db.with_master_key(master.clone());
    let f = db.factors();
    let phone = f
        .add_totp("f1", "s1", "Phone", b"seed-one", at(2_000))
        .await
        .unwrap();
    f.add_totp("f0", "s1", "Tablet", b"seed-zero", at(1_000))
        .await
        .unwrap();
    f.add_totp("f2", "s2", "Phone", b"seed-two", at(3_000))
        .await
        .unwrap();
    assert_eq!((phone.kind, phone.last_used_at), (FactorKind::Totp, None));
    let listed = f.of_user("s1").await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, ["f0", "f1"], "oldest first");
    assert_eq!(listed[1], phone);
    let seeds = f.totp_seeds("s1").await.unwrap();
    assert_eq!(
        seeds,
        [
            ("f0".to_owned(), b"seed-zero".to_vec()),
            ("f1".to_owned(), b"seed-one".to_vec())
        ]
    );
    // At rest: sealed, and the keys' reseal finds nothing left to seal.
    assert_eq!(db.keys().reseal(None).await.unwrap(), 0);
    let (other, _) = MasterKey::generate();
    let moved = db.clone().with_master_key(Arc::new(other));
    assert!(
        moved.factors().totp_seeds("s1").await.is_err(),
        "another key opens nothing"
    );
    assert_eq!(
        moved.keys().reseal(Some(&master)).await.unwrap(),
        3,
        "moved with the keys"
    );
    assert_eq!(
        moved.factors().totp_seeds("s2").await.unwrap()[0].1,
        b"seed-two"
    );
    assert!(
        f.add_totp("f1", "s3", "Dup", b"x", at(4_000))
            .await
            .is_err(),
        "ids are unique"
    );
    assert!(!f.remove("s2", "f1").await.unwrap(), "only the owner's");
    assert!(f.remove("s1", "f1").await.unwrap());
    assert_eq!(f.remove_all("s1").await.unwrap(), 1);
    assert!(f.of_user("s1").await.unwrap().is_empty());
    assert_eq!(f.of_user("s2").await.unwrap().len(), 1);
}

/// A time step is accepted once: never again, nor any earlier one (RFC 6238 §5.2).
pub(crate) async fn a_time_step_is_accepted_once(db: Db) {
    let f = db.factors();
    f.add_totp("f1", "s1", "Phone", b"seed", at(1_000))
        .await
        .unwrap();
    assert!(f.use_step("f1", 100, at(5_000)).await.unwrap());
    assert!(
        !f.use_step("f1", 100, at(5_001)).await.unwrap(),
        "the same step"
    );
    assert!(
        !f.use_step("f1", 99, at(5_002)).await.unwrap(),
        "an earlier step"
    );
    assert!(f.use_step("f1", 101, at(5_003)).await.unwrap());
    assert!(!f.use_step("nope", 200, at(5_004)).await.unwrap());
    let listed = f.of_user("s1").await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(at(5_003)));
}

/// Recovery codes: replaced as a set, each used once, counted; deleting the user takes
/// them and the factors.
pub(crate) async fn recovery_codes_are_single_use(db: Db) {
    let f = db.factors();
    let hashes = |p: &str| (0..3).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    f.replace_recovery_codes("s1", &hashes("a"), at(1_000))
        .await
        .unwrap();
    f.replace_recovery_codes("s2", &hashes("a"), at(1_000))
        .await
        .unwrap();
    assert_eq!(f.recovery_codes_left("s1").await.unwrap(), 3);
    assert!(f.use_recovery_code("s1", "a1").await.unwrap());
    assert!(!f.use_recovery_code("s1", "a1").await.unwrap(), "once");
    assert!(!f.use_recovery_code("s1", "zz").await.unwrap());
    assert_eq!(f.recovery_codes_left("s1").await.unwrap(), 2);
    assert_eq!(
        f.recovery_codes_left("s2").await.unwrap(),
        3,
        "another person's stay"
    );
    f.replace_recovery_codes("s1", &hashes("b"), at(2_000))
        .await
        .unwrap();
    assert!(
        !f.use_recovery_code("s1", "a0").await.unwrap(),
        "old codes are gone"
    );
    assert!(f.use_recovery_code("s1", "b0").await.unwrap());
    db.users()
        .insert(&lanyard_core::model::User {
            sub: "s2".to_owned(),
            username: "bob".to_owned(),
            email: None,
            display_name: None,
            password_hash: "x".to_owned(),
            disabled: false,
            created_at: at(1),
            updated_at: at(1),
            external_id: None,
            email_verified: false,
            pending_email: None,
        })
        .await
        .unwrap();
    f.add_totp("f9", "s2", "Phone", b"seed", at(1_000))
        .await
        .unwrap();
    assert!(db.users().delete("s2").await.unwrap());
    assert_eq!(f.recovery_codes_left("s2").await.unwrap(), 0);
    assert!(f.of_user("s2").await.unwrap().is_empty());
}

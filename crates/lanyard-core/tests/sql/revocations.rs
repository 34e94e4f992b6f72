//! `Db::revocations`: the durable revocation record.

use lanyard_core::db::{Db, DbError};
use lanyard_store::{Revocation, Target, Timestamp};

fn revocation(target: Target, at_s: i64, until_s: i64) -> Revocation {
    Revocation {
        target,
        at: Timestamp::from_secs(at_s),
        until: Timestamp::from_secs(until_s),
    }
}

pub(crate) async fn a_revocation_already_covered_adds_no_row(db: Db) {
    let now = Timestamp::from_secs(100);
    let alice = |at, until| revocation(Target::Sub("alice".into()), at, until);
    assert!(
        db.revocations()
            .record(&alice(100, 200), "admin:ops", now)
            .await
            .unwrap()
    );
    // As early and as short, or earlier and shorter: covered.
    assert!(
        !db.revocations()
            .record(&alice(100, 200), "cli", now)
            .await
            .unwrap()
    );
    assert!(
        !db.revocations()
            .record(&alice(90, 150), "cli", now)
            .await
            .unwrap()
    );
    // Later or longer: a row of its own.
    assert!(
        db.revocations()
            .record(&alice(110, 200), "cli", now)
            .await
            .unwrap()
    );
    assert!(
        db.revocations()
            .record(&alice(100, 300), "cli", now)
            .await
            .unwrap()
    );
    // Another target of the same value is another revocation.
    let sid = revocation(Target::Sid("alice".into()), 100, 200);
    assert!(db.revocations().record(&sid, "system", now).await.unwrap());
    let recorded = db.revocations().in_force(now).await.unwrap();
    let actors: Vec<&str> = recorded.iter().map(|r| r.actor.as_str()).collect();
    assert_eq!(
        actors,
        ["admin:ops", "cli", "cli", "system"],
        "oldest first"
    );
    assert_eq!(recorded[0].revocation, alice(100, 200));
    assert_eq!(recorded[0].recorded_at, now);
}

pub(crate) async fn live_revocations_end_with_their_tokens(db: Db) {
    let now = Timestamp::from_secs(100);
    let every = [
        revocation(Target::Jti("j".into()), 150, 150),
        revocation(Target::Sid("s".into()), 100, 400),
        revocation(Target::Sub("u".into()), 100, 300),
        revocation(Target::ClientId("c".into()), 100, 250),
        revocation(Target::grant("u", "c"), 100, 200),
    ];
    for r in &every {
        db.revocations().record(r, "system", now).await.unwrap();
    }
    assert_eq!(db.revocations().live(now).await.unwrap(), every.to_vec());
    // `until` passed: no token it covers can be valid.
    let later = Timestamp::from_secs(250);
    assert_eq!(
        db.revocations().live(later).await.unwrap(),
        every[1..3].to_vec()
    );
    assert_eq!(db.revocations().prune(later).await.unwrap(), 3);
    assert_eq!(
        db.revocations().live(now).await.unwrap(),
        every[1..3].to_vec()
    );
}

pub(crate) async fn an_unknown_kind_is_an_error(db: Db) {
    let now = Timestamp::from_secs(100);
    let r = revocation(Target::Jti("j".into()), 100, 200);
    db.revocations().record(&r, "system", now).await.unwrap();
    db.execute_unprepared("UPDATE revocations SET kind = 'device'")
        .await
        .unwrap();
    let read = db.revocations().live(now).await;
    assert!(
        matches!(
            read,
            Err(DbError::Corrupt {
                what: "revocation",
                ..
            })
        ),
        "{read:?}"
    );
}

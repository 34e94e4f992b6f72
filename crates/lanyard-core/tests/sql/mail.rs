//! `Db::outbox` and `Db::mail_links` (issue 22).

use std::sync::Arc;
use std::time::Duration;

use lanyard_core::crypto::MasterKey;
use lanyard_core::db::Db;
use lanyard_core::model::{LinkPurpose, MailLink, NewMail};
use lanyard_store::Timestamp;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn mail(to: &str) -> NewMail {
    NewMail {
        to: to.to_owned(),
        kind: "password_reset".to_owned(),
        subject: "Reset your password".to_owned(),
        text: "Follow http://localhost:8080/reset-password?token=secret-token".to_owned(),
        html: "<a href=\"http://localhost:8080/reset-password?token=secret-token\">".to_owned(),
    }
}

/// A waiting mail is sealed under the master key (another key opens nothing; a reseal moves
/// it), one claim takes it (a second finds it held until the hold runs out), a failed attempt
/// makes it due again later, and once sent its body is gone for good.
pub(crate) async fn a_mail_is_sealed_while_it_waits_and_wiped_once_sent(db: Db) {
    let (master, _) = MasterKey::generate();
    let master = Arc::new(master);
    let db = db.with_master_key(master.clone());
    let outbox = db.outbox();
    outbox
        .enqueue("m1", &mail("a@example.com"), at(1_000))
        .await
        .unwrap();
    outbox
        .enqueue("m2", &mail("b@example.com"), at(2_000))
        .await
        .unwrap();
    assert!(
        outbox
            .enqueue("m1", &mail("c@example.com"), at(3_000))
            .await
            .is_err()
    );
    assert_eq!(outbox.waiting().await.unwrap(), 2);
    assert_eq!(db.keys().reseal(None).await.unwrap(), 0, "sealed already");
    let (other, _) = MasterKey::generate();
    let moved = db.clone().with_master_key(Arc::new(other));
    assert!(
        moved
            .outbox()
            .claim_due(at(5_000), Duration::from_secs(60), 10)
            .await
            .is_err(),
        "another key opens nothing"
    );
    assert_eq!(
        moved.keys().reseal(Some(&master)).await.unwrap(),
        2,
        "moved with the keys"
    );
    let outbox = moved.outbox();

    let hold = Duration::from_secs(60);
    let taken = outbox.claim_due(at(5_000), hold, 10).await.unwrap();
    let ids: Vec<&str> = taken.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2"], "oldest due first");
    assert_eq!(taken[0].mail, mail("a@example.com"), "reads back as queued");
    assert!(
        outbox
            .claim_due(at(6_000), hold, 10)
            .await
            .unwrap()
            .is_empty(),
        "held"
    );

    outbox.sent("m1", at(7_000)).await.unwrap();
    outbox
        .retry_at("m2", at(100_000), "relay down")
        .await
        .unwrap();
    assert!(
        outbox
            .claim_due(at(99_000), hold, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let again = outbox.claim_due(at(100_000), hold, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id.as_str(), again[0].attempts), ("m2", 1));
    // A node that died holding it frees it when the hold runs out.
    let later = at(100_000).plus(hold);
    assert_eq!(outbox.claim_due(later, hold, 10).await.unwrap().len(), 1);
    outbox
        .give_up("m2", later, "550 no such user")
        .await
        .unwrap();

    assert_eq!(outbox.waiting().await.unwrap(), 0);
    let recent = outbox.recent(10).await.unwrap();
    assert_eq!(recent.len(), 2);
    let m1 = recent.iter().find(|m| m.id == "m1").unwrap();
    assert_eq!((m1.sent_at, m1.attempts), (Some(at(7_000)), 1));
    let m2 = recent.iter().find(|m| m.id == "m2").unwrap();
    assert_eq!(m2.failed_at, Some(later));
    assert_eq!(m2.last_error.as_deref(), Some("550 no such user"));
    assert!(
        outbox
            .claim_due(at(i64::MAX / 2), hold, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        moved.keys().reseal(Some(&master)).await.unwrap(),
        0,
        "no body left to move"
    );
}

/// A link is found by its hash and purpose only, is taken once before it expires, and a
/// newer one of its kind voids the older; deleting the person deletes their links.
pub(crate) async fn a_link_is_taken_once_before_it_expires(db: Db) {
    db.users()
        .insert(&crate::users::user(
            "s1",
            "alice",
            Some("alice@example.com"),
        ))
        .await
        .unwrap();
    let links = db.mail_links();
    let link = MailLink {
        sub: "s1".to_owned(),
        purpose: LinkPurpose::PasswordReset,
        email: "alice@example.com".to_owned(),
        created_at: at(1_000),
        expires_at: at(10_000),
        used_at: None,
    };
    links.insert("h1", &link).await.unwrap();
    assert_eq!(
        links.find("h1", LinkPurpose::PasswordReset).await.unwrap(),
        Some(link.clone())
    );
    assert_eq!(
        links.find("h1", LinkPurpose::Invitation).await.unwrap(),
        None,
        "one purpose"
    );
    assert_eq!(
        links
            .take("h1", LinkPurpose::PasswordReset, at(10_000))
            .await
            .unwrap(),
        None,
        "expired"
    );
    let taken = links
        .take("h1", LinkPurpose::PasswordReset, at(9_999))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.used_at, Some(at(9_999)));
    assert_eq!(
        links
            .take("h1", LinkPurpose::PasswordReset, at(9_999))
            .await
            .unwrap(),
        None,
        "once"
    );

    links.insert("h2", &link).await.unwrap();
    let other = MailLink {
        purpose: LinkPurpose::VerifyEmail,
        ..link.clone()
    };
    links.insert("h3", &other).await.unwrap();
    assert_eq!(
        links
            .void("s1", LinkPurpose::PasswordReset, at(2_000))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        links
            .take("h2", LinkPurpose::PasswordReset, at(3_000))
            .await
            .unwrap(),
        None,
        "void"
    );
    assert!(
        links
            .find("h3", LinkPurpose::VerifyEmail)
            .await
            .unwrap()
            .unwrap()
            .usable(at(3_000)),
        "other purposes stay"
    );
    db.users().delete("s1").await.unwrap();
    assert_eq!(
        links.find("h3", LinkPurpose::VerifyEmail).await.unwrap(),
        None
    );
}

//! `Db::users` and `Db::consents`.

use lanyard_core::db::{Db, DbError};
use lanyard_core::model::User;
use lanyard_store::Timestamp;

/// A user as the services make one.
pub(crate) fn user(sub: &str, username: &str, email: Option<&str>) -> User {
    User {
        sub: sub.to_owned(),
        username: username.to_owned(),
        email: email.map(str::to_owned),
        display_name: Some(format!("{username} display")),
        password_hash: format!("$argon2id$hash-of-{username}"),
        disabled: false,
        created_at: Timestamp::from_millis(1_700_000_000_123),
        updated_at: Timestamp::from_millis(1_700_000_000_456),
        external_id: Some(format!("hr-{username}")),
        email_verified: email.is_some(),
        pending_email: None,
    }
}

pub(crate) async fn a_user_reads_back_as_written(db: Db) {
    let alice = User {
        disabled: true,
        pending_email: Some("alice@new.example.com".to_owned()),
        ..user("sub-alice", "Alice", Some("alice@example.com"))
    };
    db.users().insert(&alice).await.unwrap();
    assert_eq!(
        db.users().by_sub("sub-alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        db.users().by_username("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        db.users().by_username("ALICE").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(db.users().recent("sub-alice").await.unwrap(), Some(alice));
    assert_eq!(db.users().by_sub("sub-nobody").await.unwrap(), None);
    assert_eq!(db.users().by_username("bob").await.unwrap(), None);
    assert_eq!(db.users().count().await.unwrap(), 1);
}

pub(crate) async fn usernames_are_unique_in_any_letter_case(db: Db) {
    db.users().insert(&user("s1", "alice", None)).await.unwrap();
    let again = db.users().insert(&user("s2", "ALICE", None)).await;
    assert!(matches!(again, Err(DbError::Conflict(_))), "{again:?}");
    let same_sub = db.users().insert(&user("s1", "bob", None)).await;
    assert!(
        matches!(same_sub, Err(DbError::Conflict(_))),
        "{same_sub:?}"
    );
    assert_eq!(db.users().count().await.unwrap(), 1);
}

pub(crate) async fn lists_page_in_username_order_and_search_literally(db: Db) {
    for (sub, name, email) in [
        ("s1", "carol", Some("carol@example.com")),
        ("s2", "Alice", Some("alice@corp.example")),
        ("s3", "bob_smith", None),
        ("s4", "bobXsmith", Some("bob@example.com")),
        ("s5", "dave", Some("d%ve@example.com")),
    ] {
        db.users().insert(&user(sub, name, email)).await.unwrap();
    }
    let names = |users: Vec<User>| users.into_iter().map(|u| u.username).collect::<Vec<_>>();
    let page = db.users().list(None, None, 2).await.unwrap();
    assert_eq!(names(page), ["Alice", "bob_smith"]);
    let page = db.users().list(None, Some("bob_smith"), 2).await.unwrap();
    assert_eq!(names(page), ["bobXsmith", "carol"]);
    let page = db.users().list(None, Some("carol"), 2).await.unwrap();
    assert_eq!(names(page), ["dave"]);
    // `_` and `%` are letters to search for, not wildcards; letter case does not matter;
    // the email is searched too.
    let found = db.users().list(Some("B_S"), None, 10).await.unwrap();
    assert_eq!(names(found), ["bob_smith"]);
    let found = db.users().list(Some("%"), None, 10).await.unwrap();
    assert_eq!(names(found), ["dave"]);
    let found = db
        .users()
        .list(Some("EXAMPLE.COM"), None, 10)
        .await
        .unwrap();
    assert_eq!(names(found), ["bobXsmith", "carol", "dave"]);
    let found = db.users().list(Some("corp"), None, 10).await.unwrap();
    assert_eq!(names(found), ["Alice"]);
}

pub(crate) async fn a_profile_write_loses_to_a_change_made_meanwhile(db: Db) {
    let alice = user("s1", "alice", Some("old@example.com"));
    db.users().insert(&alice).await.unwrap();
    let seen = alice.updated_at;
    let first = User {
        email: Some("first@example.com".to_owned()),
        display_name: None,
        updated_at: seen.plus(std::time::Duration::from_millis(5)),
        ..alice.clone()
    };
    assert!(db.users().update_profile(&first, seen).await.unwrap());
    // A second writer that read the same version loses and changes nothing.
    let second = User {
        email: Some("second@example.com".to_owned()),
        updated_at: seen.plus(std::time::Duration::from_millis(9)),
        ..alice.clone()
    };
    assert!(!db.users().update_profile(&second, seen).await.unwrap());
    let stored = db.users().by_sub("s1").await.unwrap().unwrap();
    assert_eq!(stored.email.as_deref(), Some("first@example.com"));
    assert_eq!(stored.display_name, None);
    assert_eq!(stored.updated_at, first.updated_at);
    // The password and the username are not a profile write's to change.
    assert_eq!(stored.password_hash, alice.password_hash);
    let gone = User {
        sub: "nobody".to_owned(),
        ..first
    };
    assert!(!db.users().update_profile(&gone, seen).await.unwrap());
}

pub(crate) async fn columns_change_only_for_a_user_that_exists(db: Db) {
    db.users().insert(&user("s1", "alice", None)).await.unwrap();
    let now = Timestamp::from_millis(1_800_000_000_000);
    assert!(
        db.users()
            .set_password("s1", "$argon2id$new", now)
            .await
            .unwrap()
    );
    assert!(db.users().set_disabled("s1", true, now).await.unwrap());
    let stored = db.users().by_sub("s1").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.password_hash.as_str(),
            stored.disabled,
            stored.updated_at
        ),
        ("$argon2id$new", true, now)
    );
    assert!(db.users().set_disabled("s1", false, now).await.unwrap());
    assert!(!db.users().by_sub("s1").await.unwrap().unwrap().disabled);
    assert!(!db.users().set_password("nobody", "x", now).await.unwrap());
    assert!(!db.users().set_disabled("nobody", true, now).await.unwrap());
}

pub(crate) async fn deleting_a_user_forgets_what_they_allowed(db: Db) {
    db.users().insert(&user("s1", "alice", None)).await.unwrap();
    db.users().insert(&user("s2", "bob", None)).await.unwrap();
    let now = Timestamp::from_millis(1_800_000_000_000);
    let scopes = ["openid".to_owned()];
    db.consents()
        .grant("s1", "wiki", &scopes, now)
        .await
        .unwrap();
    db.consents()
        .grant("s2", "wiki", &scopes, now)
        .await
        .unwrap();
    assert!(db.users().delete("s1").await.unwrap());
    assert_eq!(db.users().by_sub("s1").await.unwrap(), None);
    assert_eq!(db.consents().of_user("s1").await.unwrap(), vec![]);
    assert_eq!(db.consents().of_user("s2").await.unwrap().len(), 1);
    assert!(!db.users().delete("s1").await.unwrap());
    assert_eq!(db.users().count().await.unwrap(), 1);
}

pub(crate) async fn consents_are_replaced_listed_and_withdrawn(db: Db) {
    let at = |ms| Timestamp::from_millis(ms);
    let scopes = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    db.consents()
        .grant("s1", "wiki", &scopes(&["openid"]), at(1_000))
        .await
        .unwrap();
    db.consents()
        .grant("s1", "billing", &scopes(&["openid", "email"]), at(2_000))
        .await
        .unwrap();
    // A second grant replaces the first: scopes and time.
    db.consents()
        .grant("s1", "wiki", &scopes(&["openid", "profile"]), at(3_000))
        .await
        .unwrap();
    let wiki = db.consents().get("s1", "wiki").await.unwrap().unwrap();
    assert_eq!(
        (wiki.scopes, wiki.granted_at),
        (scopes(&["openid", "profile"]), at(3_000))
    );
    let listed: Vec<String> = db
        .consents()
        .of_user("s1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(listed, ["billing", "wiki"], "oldest first");
    assert_eq!(db.consents().get("s2", "wiki").await.unwrap(), None);
    assert!(db.consents().withdraw("s1", "wiki").await.unwrap());
    assert!(!db.consents().withdraw("s1", "wiki").await.unwrap());
    assert_eq!(db.consents().get("s1", "wiki").await.unwrap(), None);
}

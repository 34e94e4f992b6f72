//! `Db::groups` and `Db::roles`.

use lanyard_core::db::{Db, DbError};
use lanyard_core::model::{Group, Holder, Role};
use lanyard_store::Timestamp;

use crate::clients::client;
use crate::users::user;

fn group(id: &str, name: &str) -> Group {
    Group {
        id: id.to_owned(),
        name: name.to_owned(),
        description: Some(format!("{name} people")),
        external_id: None,
        created_at: Timestamp::from_millis(1_700_000_000_000),
        updated_at: Timestamp::from_millis(1_700_000_000_000),
    }
}

fn role(client_id: &str, name: &str) -> Role {
    Role {
        client_id: client_id.to_owned(),
        name: name.to_owned(),
        description: None,
        created_at: Timestamp::from_millis(1_700_000_000_000),
    }
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

pub(crate) async fn groups_read_back_with_unique_names_in_any_case(db: Db) {
    let finance = Group {
        external_id: Some("hr-42".to_owned()),
        ..group("g1", "Finance Team")
    };
    db.groups().insert(&finance).await.unwrap();
    assert_eq!(db.groups().get("g1").await.unwrap(), Some(finance.clone()));
    assert_eq!(
        db.groups().by_name("finance team").await.unwrap(),
        Some(finance.clone())
    );
    assert!(matches!(
        db.groups().insert(&group("g2", "FINANCE TEAM")).await,
        Err(DbError::Conflict(_))
    ));
    db.groups().insert(&group("g3", "Ops")).await.unwrap();
    db.groups()
        .insert(&group("g4", "ops-oncall"))
        .await
        .unwrap();
    let names = |gs: Vec<Group>| gs.into_iter().map(|g| g.name).collect::<Vec<_>>();
    assert_eq!(
        names(db.groups().list(None, None, 10).await.unwrap()),
        ["Finance Team", "Ops", "ops-oncall"]
    );
    assert_eq!(
        names(
            db.groups()
                .list(Some("OPS"), Some("ops"), 10)
                .await
                .unwrap()
        ),
        ["ops-oncall"],
        "search, after the cursor"
    );
    assert_eq!(
        names(db.groups().list(Some("_"), None, 10).await.unwrap()),
        Vec::<String>::new(),
        "LIKE wildcards are taken literally"
    );
    // Renamed only if unchanged since it was read, and not onto a taken name.
    let mut renamed = Group {
        name: "Finance".to_owned(),
        updated_at: at(5),
        ..finance.clone()
    };
    assert!(!db.groups().update(&renamed, at(1)).await.unwrap());
    assert!(
        db.groups()
            .update(&renamed, finance.updated_at)
            .await
            .unwrap()
    );
    assert_eq!(db.groups().get("g1").await.unwrap(), Some(renamed.clone()));
    renamed.name = "ops".to_owned();
    assert!(matches!(
        db.groups().update(&renamed, at(5)).await,
        Err(DbError::Conflict(_))
    ));
}

pub(crate) async fn members_change_in_one_step_and_move_the_version(db: Db) {
    for (sub, name) in [("s1", "alice"), ("s2", "bob"), ("s3", "carol")] {
        db.users().insert(&user(sub, name, None)).await.unwrap();
    }
    db.groups().insert(&group("g1", "Finance")).await.unwrap();
    db.groups().insert(&group("g2", "Ops")).await.unwrap();
    let (added, removed) = db
        .groups()
        .change_members("g1", &["s2".into(), "s1".into(), "s1".into()], &[], at(10))
        .await
        .unwrap();
    assert_eq!((added, removed), (vec!["s2".into(), "s1".into()], vec![]));
    let v1 = db.groups().get("g1").await.unwrap().unwrap().updated_at;
    assert_eq!(v1, at(10));
    let usernames =
        |us: Vec<lanyard_core::model::User>| us.into_iter().map(|u| u.username).collect::<Vec<_>>();
    assert_eq!(
        usernames(db.groups().members("g1").await.unwrap()),
        ["alice", "bob"]
    );
    // Adding someone already there and removing someone never there change nothing, and
    // leave the version as it was.
    let (added, removed) = db
        .groups()
        .change_members("g1", &["s1".into()], &["s3".into()], at(20))
        .await
        .unwrap();
    assert!(added.is_empty() && removed.is_empty());
    assert_eq!(db.groups().get("g1").await.unwrap().unwrap().updated_at, v1);
    // A change in the same millisecond still moves the version.
    let (_, removed) = db
        .groups()
        .change_members("g1", &["s3".into()], &["s2".into()], at(10))
        .await
        .unwrap();
    assert_eq!(removed, ["s2"]);
    assert!(db.groups().get("g1").await.unwrap().unwrap().updated_at > v1);
    db.groups()
        .change_members("g2", &["s1".into()], &[], at(30))
        .await
        .unwrap();
    assert_eq!(
        db.groups().names_of("s1").await.unwrap(),
        ["Finance", "Ops"]
    );
    assert_eq!(db.groups().member_count("g1").await.unwrap(), 2);
    // A deleted user leaves every group; a deleted group leaves no memberships behind.
    assert!(db.users().delete("s1").await.unwrap());
    assert!(db.groups().names_of("s1").await.unwrap().is_empty());
    assert_eq!(
        usernames(db.groups().members("g1").await.unwrap()),
        ["carol"]
    );
    assert!(db.groups().delete("g1").await.unwrap());
    assert!(db.groups().names_of("s3").await.unwrap().is_empty());
    assert!(!db.groups().delete("g1").await.unwrap());
}

pub(crate) async fn roles_are_held_directly_or_through_groups(db: Db) {
    for id in ["billing", "wiki"] {
        db.clients().insert(&client(id)).await.unwrap();
    }
    for (sub, name) in [("s1", "alice"), ("s2", "bob")] {
        db.users().insert(&user(sub, name, None)).await.unwrap();
    }
    db.groups().insert(&group("g1", "Finance")).await.unwrap();
    db.groups()
        .change_members("g1", &["s1".into(), "s2".into()], &[], at(1))
        .await
        .unwrap();
    for (c, r) in [
        ("billing", "billing:admin"),
        ("billing", "billing:read"),
        ("wiki", "wiki:edit"),
    ] {
        db.roles().insert(&role(c, r)).await.unwrap();
    }
    assert!(matches!(
        db.roles().insert(&role("billing", "billing:admin")).await,
        Err(DbError::Conflict(_))
    ));
    let finance = Holder::Group("g1".into());
    let alice = Holder::User("s1".into());
    assert!(
        db.roles()
            .grant("billing", "billing:read", &finance, at(2))
            .await
            .unwrap()
    );
    assert!(
        db.roles()
            .grant("billing", "billing:admin", &alice, at(2))
            .await
            .unwrap()
    );
    assert!(
        db.roles()
            .grant("billing", "billing:read", &alice, at(2))
            .await
            .unwrap()
    );
    assert!(
        db.roles()
            .grant("wiki", "wiki:edit", &finance, at(2))
            .await
            .unwrap()
    );
    assert!(
        !db.roles()
            .grant("wiki", "wiki:edit", &finance, at(3))
            .await
            .unwrap(),
        "granting twice is no error and changes nothing"
    );
    let at_billing = |sub: &'static str| {
        let db = db.clone();
        async move {
            db.roles()
                .of_user_at(sub, &["billing".to_owned()])
                .await
                .unwrap()
                .into_iter()
                .map(|(_, r)| r)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(at_billing("s1").await, ["billing:admin", "billing:read"]);
    assert_eq!(at_billing("s2").await, ["billing:read"]);
    assert_eq!(
        db.roles()
            .of_user_at("s2", &["billing".to_owned(), "wiki".to_owned()])
            .await
            .unwrap(),
        [
            ("billing".to_owned(), "billing:read".to_owned()),
            ("wiki".to_owned(), "wiki:edit".to_owned())
        ]
    );
    assert_eq!(
        db.roles().holders("billing", "billing:read").await.unwrap(),
        [finance.clone(), alice.clone()]
    );
    // Taken from the group, bob loses it; alice holds it herself too and keeps it.
    assert!(
        db.roles()
            .revoke("billing", "billing:read", &finance)
            .await
            .unwrap()
    );
    assert!(
        !db.roles()
            .revoke("billing", "billing:read", &finance)
            .await
            .unwrap()
    );
    assert!(at_billing("s2").await.is_empty());
    assert_eq!(at_billing("s1").await, ["billing:admin", "billing:read"]);
    // A deleted role takes its grants along; a deleted client its roles.
    assert!(db.roles().delete("billing", "billing:admin").await.unwrap());
    assert_eq!(at_billing("s1").await, ["billing:read"]);
    assert!(db.clients().delete("billing").await.unwrap());
    assert!(db.roles().of_client("billing").await.unwrap().is_empty());
    assert!(at_billing("s1").await.is_empty());
    // A deleted group's grants go with it.
    assert!(db.groups().delete("g1").await.unwrap());
    assert!(
        db.roles()
            .holders("wiki", "wiki:edit")
            .await
            .unwrap()
            .is_empty()
    );
}

//! `Db::clients`.

use std::time::Duration;

use lanyard_core::db::{Db, DbError};
use lanyard_core::model::{Client, GrantType};
use lanyard_store::Timestamp;

/// A client with every field set.
pub(crate) fn client(client_id: &str) -> Client {
    Client {
        client_id: client_id.to_owned(),
        name: format!("The {client_id} app"),
        public: false,
        secret_hash: Some(format!("hmac-sha256$of-{client_id}")),
        redirect_uris: vec![
            format!("https://{client_id}.example.com/callback"),
            "http://127.0.0.1/cb".to_owned(),
        ],
        post_logout_redirect_uris: vec![format!("https://{client_id}.example.com/")],
        backchannel_logout_uri: Some(format!("https://{client_id}.example.com/logout")),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".to_owned(), "email".to_owned()],
        first_party: true,
        access_token_lifetime: Some(Duration::from_secs(300)),
        id_token_lifetime: Some(Duration::from_secs(600)),
        refresh_token_lifetime: Some(Duration::from_secs(86_400)),
        created_at: Timestamp::from_millis(1_700_000_000_001),
        updated_at: Timestamp::from_millis(1_700_000_000_002),
    }
}

pub(crate) async fn a_client_reads_back_as_written(db: Db) {
    let wiki = client("wiki");
    db.clients().insert(&wiki).await.unwrap();
    assert_eq!(db.clients().get("wiki").await.unwrap(), Some(wiki.clone()));
    assert_eq!(db.clients().recent("wiki").await.unwrap(), Some(wiki));
    // The fields that may be empty or absent, empty and absent.
    let bare = Client {
        public: true,
        secret_hash: None,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        grant_types: vec![GrantType::ClientCredentials],
        scopes: vec![],
        first_party: false,
        access_token_lifetime: None,
        id_token_lifetime: None,
        refresh_token_lifetime: None,
        ..client("bare")
    };
    db.clients().insert(&bare).await.unwrap();
    assert_eq!(db.clients().get("bare").await.unwrap(), Some(bare));
    assert_eq!(
        db.clients().get("WIKI").await.unwrap(),
        None,
        "ids are exact"
    );
    assert_eq!(db.clients().count().await.unwrap(), 2);
}

pub(crate) async fn client_ids_are_unique(db: Db) {
    db.clients().insert(&client("wiki")).await.unwrap();
    let again = db.clients().insert(&client("wiki")).await;
    assert!(matches!(again, Err(DbError::Conflict(_))), "{again:?}");
    assert_eq!(db.clients().count().await.unwrap(), 1);
}

pub(crate) async fn lists_page_in_id_order(db: Db) {
    for id in ["c", "a", "b", "d"] {
        db.clients().insert(&client(id)).await.unwrap();
    }
    let ids = |clients: Vec<Client>| clients.into_iter().map(|c| c.client_id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.clients().list(None, 3).await.unwrap()),
        ["a", "b", "c"]
    );
    assert_eq!(ids(db.clients().list(Some("c"), 3).await.unwrap()), ["d"]);
    assert_eq!(
        ids(db.clients().list(Some("d"), 3).await.unwrap()),
        Vec::<String>::new()
    );
}

pub(crate) async fn an_update_loses_to_a_change_made_meanwhile(db: Db) {
    let wiki = client("wiki");
    db.clients().insert(&wiki).await.unwrap();
    let seen = wiki.updated_at;
    let changed = Client {
        name: "Wiki".to_owned(),
        scopes: vec!["openid".to_owned()],
        backchannel_logout_uri: None,
        updated_at: seen.plus(Duration::from_millis(3)),
        ..wiki.clone()
    };
    assert!(db.clients().update(&changed, seen).await.unwrap());
    let late = Client {
        name: "Late".to_owned(),
        ..changed.clone()
    };
    assert!(!db.clients().update(&late, seen).await.unwrap());
    assert_eq!(db.clients().get("wiki").await.unwrap(), Some(changed));
}

pub(crate) async fn a_secret_changes_only_for_a_client_that_exists(db: Db) {
    db.clients().insert(&client("wiki")).await.unwrap();
    let now = Timestamp::from_millis(1_800_000_000_000);
    assert!(
        db.clients()
            .set_secret_hash("wiki", "hmac-sha256$new", now)
            .await
            .unwrap()
    );
    let stored = db.clients().get("wiki").await.unwrap().unwrap();
    assert_eq!(
        (stored.secret_hash.as_deref(), stored.updated_at),
        (Some("hmac-sha256$new"), now)
    );
    assert!(
        !db.clients()
            .set_secret_hash("nobody", "x", now)
            .await
            .unwrap()
    );
}

pub(crate) async fn deleting_a_client_forgets_its_consents(db: Db) {
    db.clients().insert(&client("wiki")).await.unwrap();
    let now = Timestamp::from_millis(1_800_000_000_000);
    let scopes = ["openid".to_owned()];
    db.consents()
        .grant("s1", "wiki", &scopes, now)
        .await
        .unwrap();
    db.consents()
        .grant("s1", "crm", &scopes, now)
        .await
        .unwrap();
    assert!(db.clients().delete("wiki").await.unwrap());
    assert_eq!(db.clients().get("wiki").await.unwrap(), None);
    assert_eq!(db.consents().get("s1", "wiki").await.unwrap(), None);
    assert!(db.consents().get("s1", "crm").await.unwrap().is_some());
    assert!(!db.clients().delete("wiki").await.unwrap());
}

pub(crate) async fn a_corrupt_row_is_an_error_not_a_client(db: Db) {
    db.clients().insert(&client("wiki")).await.unwrap();
    db.execute_unprepared(
        "UPDATE clients SET grant_types = '[\"password\"]' WHERE client_id = 'wiki'",
    )
    .await
    .unwrap();
    let read = db.clients().get("wiki").await;
    assert!(
        matches!(read, Err(DbError::Corrupt { what: "client", .. })),
        "{read:?}"
    );
    db.execute_unprepared("UPDATE clients SET grant_types = 'not json' WHERE client_id = 'wiki'")
        .await
        .unwrap();
    let listed = db.clients().list(None, 10).await;
    assert!(matches!(listed, Err(DbError::Corrupt { .. })), "{listed:?}");
}

//! `Db::clients`.

use std::time::Duration;

use lanyard_core::db::{Db, DbError};
use lanyard_core::model::{Client, ClientSettings, GrantType};
use lanyard_store::Timestamp;

/// A client with every setting set.
pub(crate) fn client(client_id: &str) -> Client {
    Client {
        settings: ClientSettings {
            name: format!("The {client_id} app"),
            redirect_uris: vec![
                format!("https://{client_id}.example.com/callback"),
                "http://127.0.0.1/cb".to_owned(),
            ],
            post_logout_redirect_uris: vec![format!("https://{client_id}.example.com/")],
            backchannel_logout_uri: Some(format!("https://{client_id}.example.com/logout")),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: vec!["openid".to_owned(), "email".to_owned()],
            first_party: true,
            access_token_lifetime: Some(300),
            id_token_lifetime: Some(600),
            refresh_token_lifetime: Some(86_400),
            ..ClientSettings::new(client_id)
        },
        secret_hash: Some(format!("hmac-sha256$of-{client_id}")),
        created_at: Timestamp::from_millis(1_700_000_000_001),
        updated_at: Timestamp::from_millis(1_700_000_000_002),
    }
}

pub(crate) async fn a_client_reads_back_as_written(db: Db) {
    let wiki = client("wiki");
    db.clients().insert(&wiki).await.unwrap();
    assert_eq!(db.clients().get("wiki").await.unwrap(), Some(wiki.clone()));
    assert_eq!(db.clients().recent("wiki").await.unwrap(), Some(wiki));
    // The settings that may be empty or absent, empty and absent.
    let bare = Client {
        settings: ClientSettings {
            public: true,
            grant_types: vec![GrantType::ClientCredentials],
            ..ClientSettings::new("bare")
        },
        secret_hash: None,
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
    let ids = |clients: Vec<Client>| {
        clients
            .into_iter()
            .map(|c| c.settings.client_id)
            .collect::<Vec<_>>()
    };
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
    let mut changed = wiki.clone();
    changed.settings.name = "Wiki".to_owned();
    changed.settings.scopes = vec!["openid".to_owned()];
    changed.settings.backchannel_logout_uri = None;
    changed.updated_at = seen.plus(Duration::from_millis(3));
    assert!(db.clients().update(&changed, seen).await.unwrap());
    let mut late = changed.clone();
    late.settings.name = "Late".to_owned();
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
    let corrupt = |settings: &str| {
        format!("UPDATE clients SET settings = '{settings}' WHERE client_id = 'wiki'")
    };
    for settings in [
        r#"{"client_id":"wiki","grant_types":["password"]}"#,
        r#"{"client_id":"wiki","colour":"blue"}"#,
        r#"{"client_id":"billing"}"#,
        "not json",
    ] {
        db.execute_unprepared(&corrupt(settings)).await.unwrap();
        let read = db.clients().get("wiki").await;
        assert!(
            matches!(read, Err(DbError::Corrupt { what: "client", .. })),
            "{settings}: {read:?}"
        );
        let listed = db.clients().list(None, 10).await;
        assert!(matches!(listed, Err(DbError::Corrupt { .. })), "{listed:?}");
    }
}

/// A row the settings document was added to later reads with the later fields' defaults.
pub(crate) async fn settings_left_out_of_a_row_take_their_defaults(db: Db) {
    db.clients().insert(&client("wiki")).await.unwrap();
    db.execute_unprepared(
        r#"UPDATE clients SET settings = '{"client_id":"wiki","name":"Wiki"}' WHERE client_id = 'wiki'"#,
    )
    .await
    .unwrap();
    let read = db.clients().get("wiki").await.unwrap().unwrap();
    assert_eq!(
        read.settings,
        ClientSettings {
            name: "Wiki".to_owned(),
            ..ClientSettings::new("wiki")
        }
    );
}

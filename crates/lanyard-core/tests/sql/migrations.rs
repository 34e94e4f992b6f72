//! Migrations that change data: a database as an older Lanyard left it, migrated.

use lanyard_core::model::{ClientSettings, GrantType};
use lanyard_core::testing::TestDatabase;

/// m0004: every client row of the column-per-setting layout keeps every setting.
pub(crate) async fn client_rows_keep_their_settings_as_one_document(kind: &str) {
    let database = match kind {
        "sqlite" => TestDatabase::sqlite("lanyard-sql"),
        _ => TestDatabase::postgres("lanyard_sql").await,
    };
    let db = database.connect().await;
    db.migrate_first(3).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO clients (client_id, name, public, secret_hash, redirect_uris, \
         post_logout_redirect_uris, backchannel_logout_uri, grant_types, scopes, first_party, \
         access_token_lifetime_secs, id_token_lifetime_secs, refresh_token_lifetime_secs, \
         created_at, updated_at) VALUES \
         ('wiki', 'The wiki', false, 'hmac-sha256$x', '[\"https://wiki.example/cb\"]', \
          '[\"https://wiki.example/\"]', 'https://wiki.example/logout', \
          '[\"authorization_code\",\"refresh_token\"]', '[\"openid\",\"email\"]', true, \
          300, NULL, 86400, 1000, 2000), \
         ('spa', 'SPA', true, NULL, '[\"http://127.0.0.1/cb\"]', '[]', NULL, \
          '[\"authorization_code\"]', '[\"openid\"]', false, NULL, NULL, NULL, 3000, 4000)",
    )
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let wiki = db.clients().get("wiki").await.unwrap().unwrap();
    assert_eq!(
        wiki.settings,
        ClientSettings {
            name: "The wiki".to_owned(),
            redirect_uris: vec!["https://wiki.example/cb".to_owned()],
            post_logout_redirect_uris: vec!["https://wiki.example/".to_owned()],
            backchannel_logout_uri: Some("https://wiki.example/logout".to_owned()),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: vec!["openid".to_owned(), "email".to_owned()],
            first_party: true,
            access_token_lifetime: Some(300),
            refresh_token_lifetime: Some(86_400),
            ..ClientSettings::new("wiki")
        }
    );
    assert_eq!(wiki.secret_hash.as_deref(), Some("hmac-sha256$x"));
    assert_eq!(
        (wiki.created_at.as_millis(), wiki.updated_at.as_millis()),
        (1000, 2000)
    );
    let spa = db.clients().get("spa").await.unwrap().unwrap();
    assert!(spa.public && spa.secret_hash.is_none() && !spa.first_party);
    assert_eq!(spa.grant_types, [GrantType::AuthorizationCode]);
    // The old columns are gone: writing one fails.
    assert!(
        db.execute_unprepared("UPDATE clients SET name = 'x'")
            .await
            .is_err()
    );
    database.remove().await;
}

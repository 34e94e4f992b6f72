//! Interoperability: the `openidconnect` crate, used exactly as an app would use it —
//! discovery, PKCE, nonce, ID-token verification (signature, `iss`, `aud`, `exp`, nonce,
//! `at_hash`), a refresh, UserInfo — completes the flow against Lanyard.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;

use crate::support::{Browser, ClientSpec, Db, Store, TestServer, redirect_params};

#[tokio::test]
async fn the_openidconnect_crate_completes_the_code_flow() {
    for (db, store) in [(Db::Sqlite, Store::Memory), (Db::Postgres, Store::Redis)] {
        let server = TestServer::start(db, store).await;
        server.user("alice", "correct horse battery staple").await;
        let wiki = server.client(ClientSpec::web("wiki")).await;
        openidconnect_flow(&server, &wiki).await;
        // A browser or native app: no secret, PKCE, token_endpoint_auth_method none.
        let spa = server
            .client(ClientSpec {
                public: true,
                ..ClientSpec::web("spa")
            })
            .await;
        openidconnect_flow(&server, &spa).await;
        server.stop().await;
    }
}

async fn openidconnect_flow(server: &TestServer, wiki: &crate::support::TestClient) {
    let alice = server
        .state
        .db
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(wiki.id.clone()),
        wiki.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(wiki.redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The person signs in.
    let browser = Browser::new();
    let page = browser.get(url.as_str()).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let answer = browser
        .sign_in(
            server,
            &page,
            "alice",
            "correct horse battery staple",
            false,
        )
        .await;
    let (_, params) = redirect_params(&answer);
    assert_eq!(&params["state"], csrf.secret());
    assert_eq!(params["iss"], server.issuer);

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies");
    assert_eq!(claims.subject().as_str(), alice.sub);
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), alice.sub);
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("offline_access"))
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let again = refreshed.id_token().expect("a refreshed ID token");
    let refreshed_claims = again
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .expect("the refreshed ID token verifies");
    assert_eq!(refreshed_claims.subject(), claims.subject());
}

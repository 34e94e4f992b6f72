//! Consent for apps that are not first-party (OIDC Core §3.1.2.4): asked once per app and set
//! of scopes, in plain words; remembered; asked again for a new scope or `prompt=consent`;
//! `consent_required` under `prompt=none`; `access_denied` when refused; withdrawn with the
//! app's tokens revoked.

use reqwest::StatusCode;
use serde_json::Value;

use crate::admin::{admin_token, audit_events};
use crate::revoke::{field, userinfo};
use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, authorize_url, code_flow,
    redirect_params, refresh,
};

const PASSWORD: &str = "correct horse battery staple";

/// Signs alice in at `client` in `browser` and returns the page that follows (consent).
async fn consent_page(
    server: &TestServer,
    browser: &Browser,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> String {
    let page = browser.get(&authorize_url(server, client, extra)).await;
    let page = page.text().await.unwrap();
    let r = browser
        .sign_in(server, &page, "alice", PASSWORD, false)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the consent page, not a redirect"
    );
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_third_party_app_is_allowed_once_and_remembered() {
    let server = TestServer::start(Db::Postgres, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let crm = server.client(ClientSpec::third_party("crm")).await;
    let browser = Browser::new();
    let page = consent_page(&server, &browser, &crm, &[("scope", "openid email")]).await;
    assert!(page.contains("Allow The crm app?"), "{page}");
    assert!(
        page.contains("See your email address"),
        "in plain words: {page}"
    );
    assert!(page.contains("Know who you are"));
    assert!(!page.contains("your name"), "only what is asked: {page}");
    assert!(page.contains("alice"), "who is signed in");
    let r = browser.consent(&server, &page, "allow").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&r);
    assert_eq!(to, crm.redirect_uri);
    assert_eq!(params["state"], "st-123");
    assert!(params.contains_key("code"));

    // The same again: single sign-on, no question.
    let r = browser
        .get(&authorize_url(&server, &crm, &[("scope", "openid email")]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(redirect_params(&r).1.contains_key("code"));
    // A scope not yet allowed, or prompt=consent: asked again.
    for extra in [
        vec![("scope", "openid email profile")],
        vec![("scope", "openid email"), ("prompt", "consent")],
    ] {
        let r = browser.get(&authorize_url(&server, &crm, &extra)).await;
        assert_eq!(r.status(), StatusCode::OK, "{extra:?}");
        let page = r.text().await.unwrap();
        assert!(page.contains(r#"action="/consent""#));
    }
    let ops = admin_token(&server).await;
    let events = audit_events(&server, &ops, "consent.grant", 1).await;
    assert_eq!(events[0]["actor"], alice.sub.as_str());
    assert_eq!(events[0]["target"], "client_id:crm");
    server.stop().await;
}

#[tokio::test]
async fn refusing_sends_access_denied_and_prompt_none_cannot_ask() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let crm = server.client(ClientSpec::third_party("crm")).await;
    let browser = Browser::new();
    let page = consent_page(&server, &browser, &crm, &[]).await;
    let r = browser.consent(&server, &page, "deny").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&r);
    assert_eq!(to, crm.redirect_uri);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], server.issuer);

    // Signed in, never asked: prompt=none cannot show the question.
    let r = browser
        .get(&authorize_url(&server, &crm, &[("prompt", "none")]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(redirect_params(&r).1["error"], "consent_required");

    // Another site posting the answer has no CSRF cookie.
    let r = browser
        .get(&authorize_url(&server, &crm, &[]))
        .await
        .text()
        .await
        .unwrap();
    let r = Browser::new().consent(&server, &r, "allow").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test]
async fn withdrawing_consent_revokes_the_apps_tokens_and_asks_again() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let crm = server.client(ClientSpec::third_party("crm")).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let browser = Browser::new();
    let offline = code_flow(
        &server,
        &browser,
        &crm,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    // Without offline_access a third-party app gets no refresh token: only the revocation
    // lists can take this access token back.
    // (Each flow signs in afresh, in a browser of its own.)
    let online = code_flow(&server, &Browser::new(), &crm, "openid", "alice", PASSWORD).await;
    assert!(online.get("refresh_token").is_none(), "{online}");
    let at_wiki = code_flow(&server, &Browser::new(), &wiki, "openid", "alice", PASSWORD).await;
    for tokens in [&offline, &online, &at_wiki] {
        assert_eq!(
            userinfo(&server, field(tokens, "access_token"))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let had = lanyard_core::consents::withdraw(&server.state, &alice.sub, "crm")
        .await
        .unwrap();
    assert!(had);
    for tokens in [&offline, &online] {
        let r = userinfo(&server, field(tokens, "access_token")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.contains("error=\"invalid_token\"") && challenge.contains("withdrew"),
            "{challenge}"
        );
    }
    assert_eq!(
        userinfo(&server, field(&at_wiki, "access_token"))
            .await
            .status(),
        StatusCode::OK,
        "alice's tokens at other apps stay valid"
    );
    let r = refresh(&server, &crm, field(&offline, "refresh_token"), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    // Every app's guard hears of it: the lists they mirror carry the entry.
    let listed = server.state.store.snapshot().await.unwrap().revocations;
    assert!(
        listed
            .iter()
            .any(|r| r.target == lanyard_store::Target::grant(&alice.sub, "crm")),
        "{listed:?}"
    );
    let r = browser
        .get(&authorize_url(
            &server,
            &crm,
            &[("scope", "openid offline_access")],
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "asked again");
    server.stop().await;
}

//! Token exchange (RFC 8693): an API (`orders`) that received a person's access token gets
//! one meant for the next API (`stock`), on the person's behalf; the token names the actor
//! (`act`, nested along a chain) and dies with everything it came from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_core::model::GrantType;
use lanyard_rp::client::TokenExchange;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin::{admin, admin_token};
use crate::apps::{App, on_redis, refused_within_a_second, start_app};
use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, assert_oauth_error, client_post,
    code_flow_for, decode_jwt, expired_access_token, token_request,
};

const PASSWORD: &str = "correct horse battery staple";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The person signs in at `shop`, whose tokens may be meant for `orders`; `orders` may
/// exchange them for `stock`.
struct Apis {
    shop: TestClient,
    orders: App,
    stock: App,
}

async fn apis(server: &TestServer, app: impl AsyncFn(&'static str) -> App) -> Apis {
    let shop = server.client(ClientSpec::web("shop")).await;
    server.allow_resources("shop", &["orders"]).await;
    let orders = app("orders").await;
    let stock = app("stock").await;
    may_exchange(server, "orders", &["stock"]).await;
    Apis {
        shop,
        orders,
        stock,
    }
}

/// A demo app following the server's own store.
async fn app_on(server: &TestServer, name: &'static str) -> App {
    start_app(server, name, server.store(), Duration::from_secs(10)).await
}

/// Lets client `id` exchange tokens for `audiences`.
pub(crate) async fn may_exchange(server: &TestServer, id: &str, audiences: &[&str]) {
    server
        .change_client(id, |c| {
            c.grant_types.push(GrantType::TokenExchange);
            c.exchange_audiences = audiences.iter().map(|a| (*a).to_owned()).collect();
        })
        .await;
}

/// `username` signs in at shop, which redeems the code for a token meant for `orders`
/// (RFC 8707); the token response.
async fn token_for_orders(server: &TestServer, apis: &Apis, username: &str) -> Value {
    token_meant_for(server, &apis.shop, username, "orders").await
}

/// `username` signs in at `client` (which may ask tokens for `resource`), which redeems the
/// code for a token meant for `resource`; the token response.
pub(crate) async fn token_meant_for(
    server: &TestServer,
    client: &TestClient,
    username: &str,
    resource: &str,
) -> Value {
    code_flow_for(
        server,
        &Browser::new(),
        client,
        "openid profile offline_access",
        (username, PASSWORD),
        Some(resource),
    )
    .await
}

/// `client` exchanges `subject` for a token meant for `audience`.
pub(crate) async fn exchange(
    server: &TestServer,
    client: &TestClient,
    subject: &str,
    audience: &str,
) -> reqwest::Response {
    token_request(
        server,
        client,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", audience),
        ],
    )
    .await
}

/// The exchanged access token from a 200 answer.
async fn exchanged(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Asserts a 400 with `error`, whose description says `saying`.
async fn refused(response: reqwest::Response, error: &str, saying: &str) {
    let body = assert_oauth_error(response, StatusCode::BAD_REQUEST, error).await;
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains(saying), "{body}");
}

/// What an app's `/api/me` answers for `token`.
async fn me(app: &App, token: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/api/me", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_api_calls_the_next_on_the_persons_behalf() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let apis = apis(&server, async |name| app_on(&server, name).await).await;
    let tokens = token_for_orders(&server, &apis, "alice").await;
    let subject = tokens["access_token"].as_str().unwrap();
    let (_, first) = decode_jwt(subject);
    assert_eq!(first["aud"], json!(["orders"]));
    assert_eq!(me(&apis.orders, subject).await.0, StatusCode::OK);

    // orders exchanges the token it was sent for one meant for stock.
    let r = exchange(&server, &apis.orders.client, subject, "stock").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["scope"], "openid profile",
        "offline_access stays behind"
    );
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let (_, claims) = decode_jwt(token);
    assert_eq!(claims["sub"], alice.sub.as_str());
    assert_eq!(claims["aud"], json!(["stock"]));
    assert_eq!(claims["client_id"], "orders");
    assert_eq!(claims["act"], json!({ "sub": "orders" }));
    assert_eq!(
        claims["origin"],
        json!({ "client_id": "shop", "jti": first["jti"] })
    );
    assert_eq!(claims["sid"], first["sid"]);
    assert_eq!(claims["acr"], first["acr"]);
    assert_eq!(claims["auth_time"], first["auth_time"]);
    assert!(claims["exp"].as_i64() <= first["exp"].as_i64());

    // stock takes it and sees who acts; orders does not (it is meant for stock).
    let (status, seen) = me(&apis.stock, token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["sub"], alice.sub.as_str());
    assert_eq!(seen["act"], json!({ "sub": "orders" }));
    assert_eq!(me(&apis.orders, token).await.0, StatusCode::UNAUTHORIZED);

    // The same through lanyard-rp: "call stock on behalf of the caller".
    let stock_api = Arc::new(TokenExchange::new(
        &server.url("/token"),
        "orders",
        apis.orders.client.secret.as_deref().unwrap(),
        "stock",
    ));
    let r = stock_api
        .on_behalf_of(subject)
        .send(|http| http.get(format!("{}/api/me", apis.stock.base)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["act"], json!({ "sub": "orders" }));
    assert_eq!(seen["client_id"], "orders");

    // stock calls ledger in turn (its policy set through the admin API): the actors nest,
    // the origin stays.
    let ledger = app_on(&server, "ledger").await;
    let admin_token = admin_token(&server).await;
    let r = admin(
        &server,
        &admin_token,
        reqwest::Method::PATCH,
        "/clients/stock",
        Some(json!({
            "grant_types": ["authorization_code", "refresh_token", EXCHANGE],
            "exchange_audiences": ["ledger"],
        })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let changed: Value = r.json().await.unwrap();
    assert_eq!(changed["exchange_audiences"], json!(["ledger"]));
    let second = exchanged(exchange(&server, &apis.stock.client, token, "ledger").await).await;
    let (_, claims) = decode_jwt(&second);
    assert_eq!(
        claims["act"],
        json!({ "sub": "stock", "act": { "sub": "orders" } })
    );
    assert_eq!(
        claims["origin"],
        json!({ "client_id": "shop", "jti": first["jti"] })
    );
    let (status, seen) = me(&ledger, &second).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["client_id"], "stock");
    server.stop().await;
}

#[tokio::test]
async fn exchanges_that_are_refused() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let apis = apis(&server, async |name| app_on(&server, name).await).await;
    let tokens = token_for_orders(&server, &apis, "alice").await;
    let subject = tokens["access_token"].as_str().unwrap();
    let orders = &apis.orders.client;
    let ledger = server.client(ClientSpec::web("ledger")).await;

    // An audience not in the client's policy, or not a client at all.
    refused(
        exchange(&server, orders, subject, "ledger").await,
        "invalid_target",
        "ledger",
    )
    .await;
    may_exchange(&server, "orders", &["stock", "ghost"]).await;
    assert_oauth_error(
        exchange(&server, orders, subject, "ghost").await,
        StatusCode::BAD_REQUEST,
        "invalid_target",
    )
    .await;
    let no_audience = token_request(
        &server,
        orders,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_oauth_error(no_audience, StatusCode::BAD_REQUEST, "invalid_request").await;

    // A client that may not exchange at all.
    assert_oauth_error(
        exchange(&server, &ledger, subject, "stock").await,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
    )
    .await;

    // Subject tokens that are no grant: an ID token, a token meant for someone else,
    // garbage, an expired token, a revoked token.
    let id_token = tokens["id_token"].as_str().unwrap();
    let r = token_request(
        &server,
        orders,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", id_token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            ("audience", "stock"),
        ],
    )
    .await;
    refused(r, "invalid_request", "ID token").await;
    let r = exchange(&server, orders, id_token, "stock").await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    let at_stock = exchanged(exchange(&server, orders, subject, "stock").await).await;
    refused(
        exchange(&server, orders, &at_stock, "stock").await,
        "invalid_request",
        "not issued for this client",
    )
    .await;
    let garbage = exchange(&server, orders, "not.a.token", "stock").await;
    refused(garbage, "invalid_request", "not valid").await;
    let expired = expired_access_token(&server, &alice.sub, "orders").await;
    let expired = exchange(&server, orders, &expired, "stock").await;
    refused(expired, "invalid_request", "expired").await;

    // More than the subject token holds, or an actor token: refused.
    let wider = token_request(
        &server,
        orders,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "stock"),
            ("scope", "openid email"),
        ],
    )
    .await;
    assert_oauth_error(wider, StatusCode::BAD_REQUEST, "invalid_scope").await;
    let with_actor = token_request(
        &server,
        orders,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "stock"),
            ("actor_token", subject),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_oauth_error(with_actor, StatusCode::BAD_REQUEST, "invalid_request").await;

    // Revoked at the source (RFC 7009 by shop): no longer exchanged.
    let r = client_post(&server, "/revoke", &apis.shop, &[("token", subject)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    refused(
        exchange(&server, orders, subject, "stock").await,
        "invalid_request",
        "revoked",
    )
    .await;
    server.stop().await;
}

/// At most four clients act in a row: a fifth exchange is refused.
#[tokio::test]
async fn a_chain_of_actors_is_bounded() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let apis = apis(&server, async |name| app_on(&server, name).await).await;
    let tokens = token_for_orders(&server, &apis, "alice").await;
    let mut token = tokens["access_token"].as_str().unwrap().to_owned();
    let hops = ["hop3", "hop4", "hop5", "hop6"];
    let mut clients = vec![apis.orders.client.clone(), apis.stock.client.clone()];
    may_exchange(&server, "stock", &["hop3"]).await;
    for (i, id) in hops.into_iter().enumerate() {
        clients.push(
            server
                .client(ClientSpec {
                    id,
                    public: false,
                    grants: &[EXCHANGE],
                    scopes: &["openid"],
                    first_party: false,
                })
                .await,
        );
        if let Some(next) = hops.get(i + 1) {
            may_exchange(&server, id, &[next]).await;
        }
    }
    let audiences = ["stock", "hop3", "hop4", "hop5", "hop6"];
    for (n, (client, audience)) in clients.iter().zip(audiences).enumerate() {
        let r = exchange(&server, client, &token, audience).await;
        if n < 4 {
            token = exchanged(r).await;
            let (_, claims) = decode_jwt(&token);
            let mut depth = 0;
            let mut act = &claims["act"];
            while !act.is_null() {
                depth += 1;
                act = &act["act"];
            }
            assert_eq!(depth, n + 1);
        } else {
            refused(r, "invalid_request", "too many times").await;
        }
    }
    server.stop().await;
}

/// The exchanged token dies with what it came from, at the downstream API, within a second:
/// the person, the session, the first token's refresh family (RFC 7009), the person's grant
/// at the client they signed in to, or at the API that exchanged it.
#[tokio::test]
async fn an_exchanged_token_dies_with_its_origin_within_a_second() {
    let server = TestServer::start(Db::Postgres, Store::Redis).await;
    let apis = apis(&server, async |name| on_redis(&server, name).await).await;
    let admin_token = admin_token(&server).await;
    let cases = [
        "person",
        "session",
        "refresh family",
        "grant at shop",
        "grant at orders",
    ];
    for (i, case) in cases.into_iter().enumerate() {
        // A person of their own each time: a watermark covers the whole second it is in.
        let username = format!("user{i}");
        let user = server.user(&username, PASSWORD).await;
        let tokens = token_for_orders(&server, &apis, &username).await;
        let subject = tokens["access_token"].as_str().unwrap();
        let token = exchanged(exchange(&server, &apis.orders.client, subject, "stock").await).await;
        assert_eq!(me(&apis.stock, &token).await.0, StatusCode::OK, "{case}");
        let started = Instant::now();
        match case {
            "person" | "session" => {
                let body = if case == "person" {
                    json!({ "sub": user.sub })
                } else {
                    json!({ "sid": decode_jwt(subject).1["sid"] })
                };
                let r = admin(
                    &server,
                    &admin_token,
                    reqwest::Method::POST,
                    "/revocations",
                    Some(body),
                )
                .await;
                assert_eq!(r.status(), StatusCode::OK, "{case}");
            }
            "refresh family" => {
                let refresh = tokens["refresh_token"].as_str().unwrap();
                let r = client_post(&server, "/revoke", &apis.shop, &[("token", refresh)]).await;
                assert_eq!(r.status(), StatusCode::OK);
            }
            _ => {
                let client = if case == "grant at shop" {
                    "shop"
                } else {
                    "orders"
                };
                lanyard_core::consents::withdraw(&server.state, &user.sub, client)
                    .await
                    .unwrap();
            }
        }
        let refused = refused_within_a_second(&apis.stock.base, &token, started).await;
        let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("invalid_token"), "{case}: {challenge}");
        if case == "refresh family" {
            assert!(challenge.contains("exchanged from"), "{challenge}");
        }
    }
    server.stop().await;
}

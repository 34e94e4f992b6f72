//! What the process-level test files share: a throwaway PostgreSQL database, and reading a
//! sign-in page's hidden fields.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::process::Command;

/// A fresh database on the test PostgreSQL server (`LANYARD_TEST_POSTGRES_URL`, default
/// `postgres://postgres@127.0.0.1:5432/postgres`), dropped when this is dropped.
pub(crate) struct PgDatabase {
    admin: String,
    /// Its name.
    pub(crate) name: String,
    /// Its URL.
    pub(crate) url: String,
}

impl PgDatabase {
    /// Creates `<prefix>_<random>`.
    pub(crate) fn create(prefix: &str) -> Self {
        let admin = std::env::var("LANYARD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let tag = lanyard_core::crypto::random_token(6)
            .to_lowercase()
            .replace(['-', '_'], "x");
        let name = format!("{prefix}_{tag}");
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        psql(&admin, &format!("CREATE DATABASE {name}"));
        Self { admin, name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin,
                "-qtAc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Runs `sql` with psql against `url`; fails saying how to get PostgreSQL.
pub(crate) fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-qtAc", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql is needed (apt-get install postgresql-client): {e}"));
    assert!(
        out.status.success(),
        "psql {sql}: {}. This test needs PostgreSQL: start it (`pg_ctlcluster 15 main start`), \
         or point LANYARD_TEST_POSTGRES_URL at a server where the user may create databases",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A hidden field's value, with the character references askama writes decoded.
pub(crate) fn form_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    let end = page[start..].find('"').unwrap();
    let mut out = String::new();
    let mut rest = &page[start..start + end];
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let stop = rest[i..].find(';').unwrap() + i;
        let entity = &rest[i + 1..stop];
        let c = match entity {
            "amp" => '&',
            "quot" => '"',
            "lt" => '<',
            "gt" => '>',
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32)
                .unwrap(),
        };
        out.push(c);
        rest = &rest[stop + 1..];
    }
    out.push_str(rest);
    out
}

/// The sign-in form of `page`, filled in with `username` and `password`.
pub(crate) fn signin_form(
    page: &str,
    username: &str,
    password: &str,
) -> [(&'static str, String); 4] {
    [
        ("csrf", form_value(page, "csrf")),
        (
            "authorization_request",
            form_value(page, "authorization_request"),
        ),
        ("username", username.to_owned()),
        ("password", password.to_owned()),
    ]
}

/// The body of a GET of `url` by `http`.
pub(crate) async fn text_at(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// The JSON body at `url`.
#[allow(dead_code)] // not every test binary reads JSON this way
pub(crate) async fn json_at(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

//! Throwaway databases for tests (feature `testing`): a SQLite file or a PostgreSQL database
//! of their own, removed by [`TestDatabase::remove`]. PostgreSQL is the server at
//! `LANYARD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); when
//! it cannot be reached the test fails saying how to get one, never skips.
#![allow(clippy::panic)]

use std::path::PathBuf;

use crate::crypto::random_token;
use crate::db::Db;

/// What a test that needs PostgreSQL says when there is none.
pub const HOW_POSTGRES: &str = "These tests need PostgreSQL. Install and start it \
    (`apt-get install postgresql && pg_ctlcluster 15 main start`), or point \
    LANYARD_TEST_POSTGRES_URL at a server where the user may create databases \
    (default postgres://postgres@127.0.0.1:5432/postgres).";

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("LANYARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The URL of database `name` on the server of `admin`.
pub fn with_database(admin: &str, name: &str) -> String {
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    format!("{base}/{name}")
}

/// A database of a test's own.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL, for `Db::connect` or a server's configuration.
    pub url: String,
    place: Place,
}

#[derive(Debug)]
enum Place {
    Sqlite(PathBuf),
    Postgres { admin: String, name: String },
}

/// A tag for names: lower-case letters and digits.
fn tag() -> String {
    random_token(8).to_lowercase().replace(['-', '_'], "x")
}

impl TestDatabase {
    /// A SQLite file in the temporary directory, named after `prefix`.
    pub fn sqlite(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}.db", tag()));
        Self {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            place: Place::Sqlite(path),
        }
    }

    /// A new PostgreSQL database `<prefix>_<tag>` on the test server.
    pub async fn postgres(prefix: &str) -> Self {
        let admin = postgres_admin_url();
        let name = format!("{prefix}_{}", tag());
        let conn = Db::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("no PostgreSQL at {admin}: {e}. {HOW_POSTGRES}"));
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}. {HOW_POSTGRES}"));
        Self {
            url: with_database(&admin, &name),
            place: Place::Postgres { admin, name },
        }
    }

    /// Connects to it and applies the migrations.
    pub async fn open(&self) -> Db {
        let db = self.connect().await;
        db.migrate()
            .await
            .unwrap_or_else(|e| panic!("cannot migrate {}: {e}", self.url));
        db
    }

    /// Connects to it, migrating nothing.
    pub async fn connect(&self) -> Db {
        Db::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url))
    }

    /// Removes it (the file, or the database with every connection to it).
    pub async fn remove(self) {
        match self.place {
            Place::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Place::Postgres { admin, name } => {
                if let Ok(conn) = Db::connect(&admin).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            }
        }
    }
}

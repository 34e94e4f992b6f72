//! Lanyard's SQL schema. Applied by `lanyard migrate` and at every `lanyard serve` start;
//! the same migrations run on SQLite and PostgreSQL.
//!
//! Conventions (see `docs/adding-a-migration.md`): times are `BIGINT` milliseconds since the
//! Unix epoch (one type on every database); lists are JSON arrays in `TEXT`; secrets are
//! stored only as hashes, except signing keys and server keys, which must be usable.

use sea_orm_migration::prelude::*;

pub use sea_orm_migration::MigratorTrait;

mod m0001_initial;
mod m0002_revocations;
mod m0003_consents;
mod m0004_client_settings;
mod m0005_factors;
mod m0006_groups_roles;
mod m0007_mail;
mod m0008_signals;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_revocations::Migration),
            Box::new(m0003_consents::Migration),
            Box::new(m0004_client_settings::Migration),
            Box::new(m0005_factors::Migration),
            Box::new(m0006_groups_roles::Migration),
            Box::new(m0007_mail::Migration),
            Box::new(m0008_signals::Migration),
        ]
    }
}

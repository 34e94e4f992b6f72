//! The durable revocation record: every revocation Lanyard acknowledged, written here before
//! the token store hears of it, so that lists lost with a Redis can be rebuilt.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Id,
    Kind,
    Value,
    At,
    Until,
    RecordedAt,
    Actor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Revocations::Table)
                    .col(big_pk_auto(Revocations::Id))
                    // `jti`, `sid`, `sub` or `client_id`.
                    .col(string(Revocations::Kind))
                    .col(string(Revocations::Value))
                    // As in `lanyard_store::Revocation`: the token's exp, or the watermark.
                    .col(big_integer(Revocations::At))
                    // After this instant no token it covers can be valid: the row may go.
                    .col(big_integer(Revocations::Until))
                    .col(big_integer(Revocations::RecordedAt))
                    .col(string(Revocations::Actor))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_revocations_until")
                    .table(Revocations::Table)
                    .col(Revocations::Until)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

//! Second factors: a person's one-time-code generators and passkeys (`factors`), and their
//! recovery codes (`recovery_codes`, each a keyed hash, deleted when used).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Factors {
    Table,
    Id,
    Sub,
    Kind,
    Name,
    Secret,
    Data,
    CreatedAt,
    LastUsedAt,
    LastStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Sub,
    CodeHash,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Factors::Table)
                    .col(string(Factors::Id).primary_key())
                    .col(string(Factors::Sub))
                    // `totp` or `passkey`.
                    .col(string(Factors::Kind))
                    // What the person called it ("Phone", "YubiKey").
                    .col(string(Factors::Name))
                    // A one-time-code seed, sealed under the master key.
                    .col(blob_null(Factors::Secret))
                    // A passkey's public credential, JSON.
                    .col(text_null(Factors::Data))
                    .col(big_integer(Factors::CreatedAt))
                    .col(big_integer_null(Factors::LastUsedAt))
                    // The last time step whose code was accepted (RFC 6238 §5.2: never twice).
                    .col(big_integer_null(Factors::LastStep))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_factors_sub")
                    .table(Factors::Table)
                    .col(Factors::Sub)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(string(RecoveryCodes::Sub))
                    .col(string(RecoveryCodes::CodeHash))
                    .col(big_integer(RecoveryCodes::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(RecoveryCodes::Sub)
                            .col(RecoveryCodes::CodeHash),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

//! Consent: what each user allowed each (not first-party) client, so they are asked once per
//! client and set of scopes, and can withdraw it from their account page.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Consents {
    Table,
    Sub,
    ClientId,
    Scopes,
    GrantedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(string(Consents::Sub))
                    .col(string(Consents::ClientId))
                    // JSON array of the scopes allowed.
                    .col(text(Consents::Scopes))
                    .col(big_integer(Consents::GrantedAt))
                    .primary_key(Index::create().col(Consents::Sub).col(Consents::ClientId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_consents_client")
                    .table(Consents::Table)
                    .col(Consents::ClientId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

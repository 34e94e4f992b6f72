//! Users, clients, signing keys, server keys, audit events.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Sub,
    Username,
    UsernameKey,
    Email,
    DisplayName,
    PasswordHash,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    Name,
    Public,
    SecretHash,
    RedirectUris,
    PostLogoutRedirectUris,
    BackchannelLogoutUri,
    GrantTypes,
    Scopes,
    FirstParty,
    AccessTokenLifetimeSecs,
    IdTokenLifetimeSecs,
    RefreshTokenLifetimeSecs,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Alg,
    PrivateKey,
    State,
    CreatedAt,
    UsableUntil,
}

#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Name,
    Secret,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Actor,
    Action,
    Target,
    Outcome,
    RequestId,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string(Users::Sub).primary_key())
                    .col(string(Users::Username))
                    // Lower-cased username: unique, so "Alice" and "alice" are one user.
                    .col(string_uniq(Users::UsernameKey))
                    .col(string_null(Users::Email))
                    .col(string_null(Users::DisplayName))
                    .col(string(Users::PasswordHash))
                    .col(boolean(Users::Disabled).default(false))
                    .col(big_integer(Users::CreatedAt))
                    .col(big_integer(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .col(string(Clients::ClientId).primary_key())
                    .col(string(Clients::Name))
                    .col(boolean(Clients::Public))
                    .col(string_null(Clients::SecretHash))
                    .col(text(Clients::RedirectUris))
                    .col(text(Clients::PostLogoutRedirectUris))
                    .col(string_null(Clients::BackchannelLogoutUri))
                    .col(text(Clients::GrantTypes))
                    .col(text(Clients::Scopes))
                    .col(boolean(Clients::FirstParty).default(false))
                    .col(big_integer_null(Clients::AccessTokenLifetimeSecs))
                    .col(big_integer_null(Clients::IdTokenLifetimeSecs))
                    .col(big_integer_null(Clients::RefreshTokenLifetimeSecs))
                    .col(big_integer(Clients::CreatedAt))
                    .col(big_integer(Clients::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(string(SigningKeys::Kid).primary_key())
                    .col(string(SigningKeys::Alg))
                    .col(blob(SigningKeys::PrivateKey))
                    // next | active | retired
                    .col(string(SigningKeys::State))
                    .col(big_integer(SigningKeys::CreatedAt))
                    .col(big_integer_null(SigningKeys::UsableUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServerKeys::Table)
                    .col(string(ServerKeys::Name).primary_key())
                    .col(blob(ServerKeys::Secret))
                    .col(big_integer(ServerKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(big_integer(AuditEvents::At))
                    .col(string(AuditEvents::Actor))
                    .col(string(AuditEvents::Action))
                    .col(string_null(AuditEvents::Target))
                    .col(string(AuditEvents::Outcome))
                    .col(string_null(AuditEvents::RequestId))
                    .col(text_null(AuditEvents::Detail))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_audit_at", AuditEvents::At),
            ("idx_audit_actor", AuditEvents::Actor),
            ("idx_audit_target", AuditEvents::Target),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditEvents::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

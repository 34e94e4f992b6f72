//! A client's settings become one JSON document (`clients.settings`, the shape of
//! `lanyard_core::model::ClientSettings`) instead of a column each: the admin API, the command
//! line and the row are made from one type, and a new setting needs no new column. Every
//! existing row is converted, then the old columns go.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    Settings,
    Name,
    Public,
    RedirectUris,
    PostLogoutRedirectUris,
    BackchannelLogoutUri,
    GrantTypes,
    Scopes,
    FirstParty,
    AccessTokenLifetimeSecs,
    IdTokenLifetimeSecs,
    RefreshTokenLifetimeSecs,
}

/// The columns the settings replace.
const OLD: [Clients; 11] = [
    Clients::Name,
    Clients::Public,
    Clients::RedirectUris,
    Clients::PostLogoutRedirectUris,
    Clients::BackchannelLogoutUri,
    Clients::GrantTypes,
    Clients::Scopes,
    Clients::FirstParty,
    Clients::AccessTokenLifetimeSecs,
    Clients::IdTokenLifetimeSecs,
    Clients::RefreshTokenLifetimeSecs,
];

fn list(text: &str, column: &str) -> Result<Value, DbErr> {
    serde_json::from_str::<Vec<String>>(text)
        .map(|v| json!(v))
        .map_err(|e| DbErr::Migration(format!("clients.{column} is not a JSON list: {e}")))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(
                        ColumnDef::new(Clients::Settings)
                            .text()
                            .not_null()
                            .default("{}"),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let rows = db
            .query_all_raw(Statement::from_string(
                manager.get_database_backend(),
                "SELECT client_id, name, public, redirect_uris, post_logout_redirect_uris, \
                 backchannel_logout_uri, grant_types, scopes, first_party, \
                 access_token_lifetime_secs, id_token_lifetime_secs, refresh_token_lifetime_secs \
                 FROM clients",
            ))
            .await?;
        for row in rows {
            let client_id: String = row.try_get("", "client_id")?;
            let settings = json!({
                "client_id": client_id,
                "name": row.try_get::<String>("", "name")?,
                "public": row.try_get::<bool>("", "public")?,
                "redirect_uris": list(&row.try_get::<String>("", "redirect_uris")?, "redirect_uris")?,
                "post_logout_redirect_uris": list(
                    &row.try_get::<String>("", "post_logout_redirect_uris")?,
                    "post_logout_redirect_uris",
                )?,
                "backchannel_logout_uri": row.try_get::<Option<String>>("", "backchannel_logout_uri")?,
                "grant_types": list(&row.try_get::<String>("", "grant_types")?, "grant_types")?,
                "scopes": list(&row.try_get::<String>("", "scopes")?, "scopes")?,
                "first_party": row.try_get::<bool>("", "first_party")?,
                "access_token_lifetime": row.try_get::<Option<i64>>("", "access_token_lifetime_secs")?,
                "id_token_lifetime": row.try_get::<Option<i64>>("", "id_token_lifetime_secs")?,
                "refresh_token_lifetime": row.try_get::<Option<i64>>("", "refresh_token_lifetime_secs")?,
            });
            manager
                .exec_stmt(
                    Query::update()
                        .table(Clients::Table)
                        .value(Clients::Settings, settings.to_string())
                        .and_where(Expr::col(Clients::ClientId).eq(client_id))
                        .to_owned(),
                )
                .await?;
        }
        // One column per statement: SQLite alters one thing at a time.
        for column in OLD {
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

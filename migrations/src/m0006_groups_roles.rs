//! Who may do what: groups of people (`user_groups`, flat; a person in many, through
//! `group_members`), the roles each application defines (`app_roles`), and who holds them
//! (`role_grants`: a group or one person). Users gain `external_id`, the id an HR system
//! that provisions them over SCIM knows them by.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum UserGroups {
    Table,
    Id,
    Name,
    NameKey,
    Description,
    ExternalId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    GroupId,
    Sub,
    AddedAt,
}

#[derive(DeriveIden)]
enum AppRoles {
    Table,
    ClientId,
    Name,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RoleGrants {
    Table,
    ClientId,
    Role,
    HolderKind,
    Holder,
    GrantedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    ExternalId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserGroups::Table)
                    // Opaque and never reused: the admin API's and SCIM's id.
                    .col(string(UserGroups::Id).primary_key())
                    .col(string(UserGroups::Name))
                    // The lower-cased name: names are unique regardless of letter case.
                    .col(string_uniq(UserGroups::NameKey))
                    .col(text_null(UserGroups::Description))
                    .col(string_null(UserGroups::ExternalId))
                    .col(big_integer(UserGroups::CreatedAt))
                    // Also moves when the members change (SCIM's `meta.version`).
                    .col(big_integer(UserGroups::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(GroupMembers::Table)
                    .col(string(GroupMembers::GroupId))
                    .col(string(GroupMembers::Sub))
                    .col(big_integer(GroupMembers::AddedAt))
                    .primary_key(
                        Index::create()
                            .col(GroupMembers::GroupId)
                            .col(GroupMembers::Sub),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_group_members_sub")
                    .table(GroupMembers::Table)
                    .col(GroupMembers::Sub)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AppRoles::Table)
                    .col(string(AppRoles::ClientId))
                    .col(string(AppRoles::Name))
                    .col(text_null(AppRoles::Description))
                    .col(big_integer(AppRoles::CreatedAt))
                    .primary_key(Index::create().col(AppRoles::ClientId).col(AppRoles::Name))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoleGrants::Table)
                    .col(string(RoleGrants::ClientId))
                    .col(string(RoleGrants::Role))
                    // `group` (holder: a group's id) or `user` (holder: a `sub`).
                    .col(string(RoleGrants::HolderKind))
                    .col(string(RoleGrants::Holder))
                    .col(big_integer(RoleGrants::GrantedAt))
                    .primary_key(
                        Index::create()
                            .col(RoleGrants::ClientId)
                            .col(RoleGrants::Role)
                            .col(RoleGrants::HolderKind)
                            .col(RoleGrants::Holder),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_role_grants_holder")
                    .table(RoleGrants::Table)
                    .col(RoleGrants::Holder)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_null(Users::ExternalId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_external_id")
                    .table(Users::Table)
                    .col(Users::ExternalId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

//! E-mail: the outbox mail waits in until it is handed to the SMTP relay (`mail_outbox`:
//! durable, so a restart or a slow relay loses nothing; the body sealed under the master key
//! and wiped once sent), the links mails carry (`mail_links`: stored as SHA-256 hashes, single
//! use, bound to one person and one purpose), and on `users` whether the address was verified
//! and the address waiting to be (`pending_email`: the old one stays until the new one is).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    Recipient,
    Kind,
    Subject,
    Body,
    CreatedAt,
    NextAttemptAt,
    Attempts,
    ClaimedUntil,
    SentAt,
    FailedAt,
    LastError,
}

#[derive(DeriveIden)]
enum MailLinks {
    Table,
    TokenHash,
    Sub,
    Purpose,
    Email,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    EmailVerified,
    PendingEmail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MailOutbox::Table)
                    // Random; also the message's `Message-ID`, so a relay can tell a resend.
                    .col(string(MailOutbox::Id).primary_key())
                    .col(string(MailOutbox::Recipient))
                    .col(string(MailOutbox::Kind))
                    .col(string(MailOutbox::Subject))
                    // The text and HTML parts, sealed; NULL once sent or given up.
                    .col(blob_null(MailOutbox::Body))
                    .col(big_integer(MailOutbox::CreatedAt))
                    .col(big_integer(MailOutbox::NextAttemptAt))
                    .col(integer(MailOutbox::Attempts).default(0))
                    // A node sending it holds it until then (another takes over after).
                    .col(big_integer_null(MailOutbox::ClaimedUntil))
                    .col(big_integer_null(MailOutbox::SentAt))
                    .col(big_integer_null(MailOutbox::FailedAt))
                    .col(text_null(MailOutbox::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_outbox_due")
                    .table(MailOutbox::Table)
                    .col(MailOutbox::SentAt)
                    .col(MailOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MailLinks::Table)
                    .col(string(MailLinks::TokenHash).primary_key())
                    .col(string(MailLinks::Sub))
                    .col(string(MailLinks::Purpose))
                    // The address the link was sent to (what following it verifies).
                    .col(string(MailLinks::Email))
                    .col(big_integer(MailLinks::CreatedAt))
                    .col(big_integer(MailLinks::ExpiresAt))
                    .col(big_integer_null(MailLinks::UsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_links_sub")
                    .table(MailLinks::Table)
                    .col(MailLinks::Sub)
                    .col(MailLinks::Purpose)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(boolean(Users::EmailVerified).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_null(Users::PendingEmail))
                    .to_owned(),
            )
            .await
    }
}

//! Signals: the streams Shared Signals receivers made (`ssf_streams`: each receiver's
//! configuration as one JSON document, and a push endpoint's `Authorization` value sealed
//! under the master key: it must be sent, so it cannot be a hash), the subjects a receiver
//! added to or removed from a stream (`ssf_subjects`), and the durable outbox every event
//! leaving Lanyard goes through (`event_outbox`: one row per event per channel, kept in
//! order by `seq`; `event_channels`: where each channel's deliveries stand, so that a node
//! that dies or restarts loses nothing and two nodes never deliver one channel at once).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum SsfStreams {
    Table,
    StreamId,
    ClientId,
    Config,
    AuthorizationHeader,
    Status,
    Reason,
    CreatedAt,
    UpdatedAt,
    VerifiedAt,
}

#[derive(DeriveIden)]
enum SsfSubjects {
    Table,
    StreamId,
    SubjectKey,
    Subject,
    Included,
    AddedAt,
}

#[derive(DeriveIden)]
enum EventOutbox {
    Table,
    Seq,
    Channel,
    Jti,
    Payload,
    CreatedAt,
    Attempts,
    DoneAt,
    Outcome,
    LastError,
}

#[derive(DeriveIden)]
enum EventChannels {
    Table,
    Channel,
    Kind,
    Active,
    NextAttemptAt,
    Attempts,
    ClaimedUntil,
    LastError,
    LastDeliveredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SsfStreams::Table)
                    .col(string(SsfStreams::StreamId).primary_key())
                    // The receiver: the client whose token made the stream (its `aud`).
                    .col(string(SsfStreams::ClientId))
                    // What the receiver chose (JSON): events, delivery, description.
                    .col(text(SsfStreams::Config))
                    .col(blob_null(SsfStreams::AuthorizationHeader))
                    // enabled, paused or disabled.
                    .col(string(SsfStreams::Status))
                    .col(text_null(SsfStreams::Reason))
                    .col(big_integer(SsfStreams::CreatedAt))
                    .col(big_integer(SsfStreams::UpdatedAt))
                    // The last verification asked for (`min_verification_interval`).
                    .col(big_integer_null(SsfStreams::VerifiedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ssf_streams_client")
                    .table(SsfStreams::Table)
                    .col(SsfStreams::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SsfSubjects::Table)
                    .col(string(SsfSubjects::StreamId))
                    // `sub <sub>` or `email <address, lower case>`: what events are matched by.
                    .col(string(SsfSubjects::SubjectKey))
                    // The subject identifier as the receiver sent it (JSON).
                    .col(text(SsfSubjects::Subject))
                    // Added (true) or removed (false) by the receiver.
                    .col(boolean(SsfSubjects::Included))
                    .col(big_integer(SsfSubjects::AddedAt))
                    .primary_key(
                        Index::create()
                            .col(SsfSubjects::StreamId)
                            .col(SsfSubjects::SubjectKey),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventOutbox::Table)
                    .col(big_pk_auto(EventOutbox::Seq))
                    // `ssf <stream_id>` or `backchannel <client_id>`.
                    .col(string(EventOutbox::Channel))
                    .col(string_uniq(EventOutbox::Jti))
                    // What is signed at delivery (JSON): a SET's claims, or a logout's facts.
                    .col(text(EventOutbox::Payload))
                    .col(big_integer(EventOutbox::CreatedAt))
                    .col(integer(EventOutbox::Attempts).default(0))
                    // Delivered, acknowledged, given up or dropped at; NULL while pending.
                    .col(big_integer_null(EventOutbox::DoneAt))
                    .col(string_null(EventOutbox::Outcome))
                    .col(text_null(EventOutbox::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_event_outbox_pending")
                    .table(EventOutbox::Table)
                    .col(EventOutbox::DoneAt)
                    .col(EventOutbox::Channel)
                    .col(EventOutbox::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_event_outbox_channel")
                    .table(EventOutbox::Table)
                    .col(EventOutbox::Channel)
                    .col(EventOutbox::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventChannels::Table)
                    .col(string(EventChannels::Channel).primary_key())
                    // `ssf-push`, `ssf-poll` or `backchannel`: only the first and last are pushed.
                    .col(string(EventChannels::Kind))
                    // False while a stream is paused: its events wait.
                    .col(boolean(EventChannels::Active).default(true))
                    // After a failure, nothing is tried before this.
                    .col(big_integer_null(EventChannels::NextAttemptAt))
                    .col(integer(EventChannels::Attempts).default(0))
                    // A node delivering it holds it until then (another takes over after).
                    .col(big_integer_null(EventChannels::ClaimedUntil))
                    .col(text_null(EventChannels::LastError))
                    .col(big_integer_null(EventChannels::LastDeliveredAt))
                    .to_owned(),
            )
            .await
    }
}

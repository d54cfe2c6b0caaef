//! The event log: what happened in a membership that its webhooks and live
//! streams announce (`alert.opened`, `consent.revoked`, ...).
//!
//! Events are rows, not messages between processes, so any node may fan
//! them out: the webhook dispatcher claims undispatched events
//! (`dispatched_at` null) and turns them into deliveries, and every node's
//! stream tails them by `seq`. An event is written in the same transaction
//! as the change it reports, so neither exists without the other.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Seq,
    Id,
    MembershipId,
    Kind,
    SubjectId,
    Payload,
    CreatedAt,
    DispatchedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Events::Table)
                // A cursor for tailing: increases with every insert (bigserial
                // on PostgreSQL, the rowid on SQLite).
                .col(
                    ColumnDef::new(Events::Seq)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                // The public id: a webhook's `webhook-id`, stable across retries.
                .col(uuid_uniq(Events::Id))
                // No foreign key: erasure deletes a membership's events itself.
                .col(uuid(Events::MembershipId))
                .col(string_len(Events::Kind, 32))
                .col(uuid_null(Events::SubjectId))
                // The event's `data` object, as JSON text.
                .col(text(Events::Payload))
                .col(timestamp_with_time_zone(Events::CreatedAt))
                .col(timestamp_with_time_zone_null(Events::DispatchedAt))
                .to_owned(),
        )
        .await?;
        // Streams tail one membership's events after a cursor.
        m.create_index(
            Index::create()
                .name("idx_events_membership_seq")
                .table(Events::Table)
                .col(Events::MembershipId)
                .col(Events::Seq)
                .to_owned(),
        )
        .await?;
        // The dispatcher looks only at what it has not fanned out yet.
        m.create_index(
            Index::create()
                .name("idx_events_dispatched")
                .table(Events::Table)
                .col(Events::DispatchedAt)
                .col(Events::Seq)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Events::Table).to_owned()).await
    }
}

//! Webhooks: endpoints a membership registers for its events, the
//! deliveries the dispatcher makes of each event to each endpoint, and the
//! devices' offline flag that produces `device.offline`.
//!
//! A delivery is a row any node may send: its `next_attempt_at_ms` is both
//! when it is due and, while an attempt runs, the claimer's lease (a claim
//! moves it past the attempt's timeout), so a delivery whose node died is
//! due again once that time passes. Times compared in queries are epoch
//! milliseconds (`big_integer`), which compare the same on both databases.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    MembershipId,
    Url,
    Description,
    Events,
    SecretSealed,
    Enabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    MembershipId,
    EventId,
    EventKind,
    Body,
    Status,
    Attempts,
    NextAttemptAtMs,
    AttemptLog,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    OfflineDueMs,
    OfflineAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Webhooks::Table)
                .col(uuid(Webhooks::Id).primary_key())
                // No foreign key: erasure deletes a membership's webhooks itself.
                .col(uuid(Webhooks::MembershipId))
                .col(string_len(Webhooks::Url, 2048))
                .col(string_len_null(Webhooks::Description, 500))
                // The subscribed event kinds, a JSON array as text.
                .col(text(Webhooks::Events))
                // The signing key, AES-GCM sealed under a key derived from
                // the master key: it must be usable, so it cannot be hashed.
                .col(text(Webhooks::SecretSealed))
                .col(boolean(Webhooks::Enabled))
                .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                .col(timestamp_with_time_zone(Webhooks::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_webhooks_membership")
                .table(Webhooks::Table)
                .col(Webhooks::MembershipId)
                .col(Webhooks::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WebhookDeliveries::Table)
                .col(uuid(WebhookDeliveries::Id).primary_key())
                .col(uuid(WebhookDeliveries::WebhookId))
                .col(uuid(WebhookDeliveries::MembershipId))
                // The event's public id: the `webhook-id` header.
                .col(uuid(WebhookDeliveries::EventId))
                .col(string_len(WebhookDeliveries::EventKind, 32))
                // The exact body sent, the same on every attempt.
                .col(text(WebhookDeliveries::Body))
                // `pending`, `delivered`, `failed`.
                .col(string_len(WebhookDeliveries::Status, 16))
                .col(integer(WebhookDeliveries::Attempts))
                // Null once delivered or failed.
                .col(big_integer_null(WebhookDeliveries::NextAttemptAtMs))
                // The attempts so far (time, status code, duration, error
                // class), a JSON array as text; never response bodies.
                .col(text(WebhookDeliveries::AttemptLog))
                .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                .col(timestamp_with_time_zone(WebhookDeliveries::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // The worker looks only at due deliveries.
        m.create_index(
            Index::create()
                .name("idx_webhook_deliveries_due")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::NextAttemptAtMs)
                .to_owned(),
        )
        .await?;
        // An endpoint's history, newest first.
        m.create_index(
            Index::create()
                .name("idx_webhook_deliveries_webhook")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::WebhookId)
                .col(WebhookDeliveries::Id)
                .to_owned(),
        )
        .await?;
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Devices::Table)
                .add_column(big_integer_null(Devices::OfflineDueMs))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Devices::Table)
                .add_column(big_integer_null(Devices::OfflineAtMs))
                .to_owned(),
        )
        .await?;
        // The offline sweep looks only at devices whose silence is due to
        // be noticed (the column is null once flagged or never seen).
        m.create_index(
            Index::create()
                .name("idx_devices_offline_due")
                .table(Devices::Table)
                .col(Devices::OfflineDueMs)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_devices_offline_due")
                .table(Devices::Table)
                .to_owned(),
        )
        .await?;
        for col in [Devices::OfflineAtMs, Devices::OfflineDueMs] {
            m.alter_table(Table::alter().table(Devices::Table).drop_column(col).to_owned())
                .await?;
        }
        m.drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Webhooks::Table).to_owned()).await
    }
}

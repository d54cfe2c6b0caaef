//! Background jobs (exports first) and the erasure tombstone.
//!
//! A job is a row any node may claim: on PostgreSQL with `FOR UPDATE SKIP
//! LOCKED`, on SQLite with a conditional UPDATE; the claimer holds a lease
//! (`lease_until_ms`) it renews while it works, so a job whose node died is
//! claimed again once the lease runs out. Payload and result are JSON text,
//! which both databases store and neither needs to query.
//!
//! `memberships.erased_at` marks a membership erased: the row stays so its
//! id is never reused, with nothing left that refers to it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    MembershipId,
    RequestedBy,
    IdempotencyKey,
    Payload,
    Status,
    Attempts,
    LeaseUntilMs,
    Result,
    Error,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    ErasedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(pk_uuid(Jobs::Id))
                .col(string_len(Jobs::Kind, 32))
                // No foreign key: erasure deletes a membership's jobs itself,
                // and the membership row outlives them as a tombstone.
                .col(uuid(Jobs::MembershipId))
                // A user or an API key.
                .col(uuid_null(Jobs::RequestedBy))
                // The client's `Idempotency-Key`, unique per membership.
                .col(string_len_null(Jobs::IdempotencyKey, 200))
                .col(text(Jobs::Payload))
                .col(string_len(Jobs::Status, 16))
                .col(integer(Jobs::Attempts).default(0))
                // Epoch milliseconds: compared with "now" in SQL on both
                // databases without timestamp arithmetic.
                .col(big_integer_null(Jobs::LeaseUntilMs))
                .col(text_null(Jobs::Result))
                .col(text_null(Jobs::Error))
                .col(timestamp_with_time_zone(Jobs::CreatedAt))
                .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // Claiming scans by status.
        m.create_index(
            Index::create()
                .name("idx_jobs_status")
                .table(Jobs::Table)
                .col(Jobs::Status)
                .col(Jobs::LeaseUntilMs)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_jobs_membership")
                .table(Jobs::Table)
                .col(Jobs::MembershipId)
                .col(Jobs::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_jobs_idempotency")
                .table(Jobs::Table)
                .col(Jobs::MembershipId)
                .col(Jobs::IdempotencyKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Memberships::Table)
                .add_column(timestamp_with_time_zone_null(Memberships::ErasedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Memberships::Table)
                .drop_column(Memberships::ErasedAt)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(Jobs::Table).to_owned()).await?;
        Ok(())
    }
}

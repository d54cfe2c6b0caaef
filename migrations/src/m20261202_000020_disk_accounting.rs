//! Disk held, not only files kept, counts against a farm's quota; and jobs
//! remember when they were claimed, so the worker can serve memberships in
//! turn.
//!
//! `farms.used_bytes` becomes the size of every blob the farm still has in
//! the store: live files, uploads in flight (reserved before the body
//! streams) and replaced or abandoned blobs not yet removed. Until now it
//! counted live files only, so it is recomputed from `farm_blobs` once.
//!
//! `jobs.claimed_at_ms` (epoch milliseconds, like `lease_until_ms`) is when
//! a worker last claimed the job. The claim prefers the membership whose
//! latest claim is oldest; the index serves that per-membership maximum.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    MembershipId,
    ClaimedAtMs,
}

const INDEX: &str = "idx_jobs_membership_claimed";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .add_column(big_integer_null(Jobs::ClaimedAtMs))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(INDEX)
                .table(Jobs::Table)
                .col(Jobs::MembershipId)
                .col(Jobs::ClaimedAtMs)
                .to_owned(),
        )
        .await?;
        // Plain SQL both databases read the same way.
        m.get_connection()
            .execute_unprepared(
                "UPDATE farms SET used_bytes = COALESCE(\
                 (SELECT SUM(farm_blobs.size) FROM farm_blobs WHERE farm_blobs.farm_id = farms.id), 0)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(INDEX).table(Jobs::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .drop_column(Jobs::ClaimedAtMs)
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE farms SET used_bytes = COALESCE(\
                 (SELECT SUM(farm_files.size) FROM farm_files WHERE farm_files.farm_id = farms.id), 0)",
            )
            .await?;
        Ok(())
    }
}

//! Readings by arrival time: the live stream's poller asks every quarter
//! second for the readings received after its cursor, on whichever node it
//! runs, so it needs `received_at` indexed (without it each poll would scan
//! the whole table).
//!
//! Cost: one more B-tree entry per stored row. `received_at` is the same
//! value for every row of one ingest batch and grows with time, so inserts
//! land on the rightmost page of the index; `vitalfarm bench ingest` pays
//! that one index more next to the primary key, the identity key and the
//! covering query index. The readings table is a plain table on both
//! databases (migrations 004 and 007), so one ordinary index covers it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Readings {
    Table,
    ReceivedAt,
}

const NAME: &str = "idx_readings_received_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(NAME)
                .table(Readings::Table)
                .col(Readings::ReceivedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(NAME).table(Readings::Table).to_owned())
            .await
    }
}

//! The query index of readings becomes covering: its key holds every column
//! a raw, aggregate or summary query of one subject reads, so PostgreSQL
//! (index-only scan) and SQLite (covering index) answer from the index
//! alone. A subject's day of one metric then sits in a handful of adjacent
//! index pages instead of one heap page per reading, since a fleet writes
//! its subjects' readings interleaved. The key continues with device and
//! component, the raw query's order, so no sort is needed either.
//!
//! On PostgreSQL an index-only scan skips the heap only for pages the
//! visibility map marks all-visible, which autovacuum sets; by default it
//! visits an insert-only table after 20% growth, so the newest days of a
//! large store would keep going to the heap. Vacuuming readings after every
//! 1% (and at least 10,000 rows) keeps the map current.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Readings {
    Table,
    SubjectId,
    Metric,
    TsMs,
    DeviceId,
    Component,
    Value,
    Source,
}

const OLD: &str = "idx_readings_subject_metric_ts";
const NEW: &str = "idx_readings_subject_metric_ts_cover";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(NEW)
                .table(Readings::Table)
                .col(Readings::SubjectId)
                .col(Readings::Metric)
                .col(Readings::TsMs)
                .col(Readings::DeviceId)
                .col(Readings::Component)
                .col(Readings::Value)
                .col(Readings::Source)
                .to_owned(),
        )
        .await?;
        m.drop_index(Index::drop().name(OLD).table(Readings::Table).to_owned())
            .await?;
        if m.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            m.get_connection()
                .execute_unprepared(
                    "ALTER TABLE readings SET (autovacuum_vacuum_insert_scale_factor = 0.01, \
                     autovacuum_vacuum_insert_threshold = 10000)",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            m.get_connection()
                .execute_unprepared(
                    "ALTER TABLE readings RESET (autovacuum_vacuum_insert_scale_factor, \
                     autovacuum_vacuum_insert_threshold)",
                )
                .await?;
        }
        m.create_index(
            Index::create()
                .name(OLD)
                .table(Readings::Table)
                .col(Readings::SubjectId)
                .col(Readings::Metric)
                .col(Readings::TsMs)
                .to_owned(),
        )
        .await?;
        m.drop_index(Index::drop().name(NEW).table(Readings::Table).to_owned())
            .await
    }
}

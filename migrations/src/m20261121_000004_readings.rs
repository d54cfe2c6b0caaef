//! Readings: one row per value (a blood pressure reading is two rows, one a
//! component), timestamped in epoch milliseconds so that ranges and time
//! buckets are integer arithmetic on every database. A reading sent twice
//! hits the unique key and is counted as a duplicate, never stored twice.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Readings {
    Table,
    Id,
    MembershipId,
    SubjectId,
    DeviceId,
    Metric,
    Component,
    TsMs,
    Value,
    Unit,
    Source,
    Seq,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Subjects {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Readings::Table)
                .col(pk_uuid(Readings::Id))
                .col(uuid(Readings::MembershipId))
                .col(uuid(Readings::SubjectId))
                .col(uuid_null(Readings::DeviceId))
                .col(string_len(Readings::Metric, 32))
                .col(string_len(Readings::Component, 32))
                .col(big_integer(Readings::TsMs))
                .col(double(Readings::Value))
                .col(string_len(Readings::Unit, 32))
                .col(string_len(Readings::Source, 16))
                .col(big_integer_null(Readings::Seq))
                .col(timestamp_with_time_zone(Readings::ReceivedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Readings::Table, Readings::SubjectId)
                        .to(Subjects::Table, Subjects::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Exactly-once: the identity of a reading.
        m.create_index(
            Index::create()
                .name("idx_readings_identity")
                .table(Readings::Table)
                .col(Readings::DeviceId)
                .col(Readings::Metric)
                .col(Readings::Component)
                .col(Readings::TsMs)
                .unique()
                .to_owned(),
        )
        .await?;
        // The query path: one subject, one metric, a time range.
        m.create_index(
            Index::create()
                .name("idx_readings_subject_metric_ts")
                .table(Readings::Table)
                .col(Readings::SubjectId)
                .col(Readings::Metric)
                .col(Readings::TsMs)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Readings::Table).to_owned()).await
    }
}

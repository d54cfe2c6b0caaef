//! Why a device's last message was dropped. An MQTT readings message that
//! is not a reading or batch is acknowledged (so the broker does not
//! redeliver it for ever) and would otherwise vanish without a trace; the
//! device's record keeps the reason and the time for its owner to see.
//! Nullable columns added one at a time: SQLite alters one column per
//! statement.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    LastError,
    LastErrorAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Devices::Table)
                .add_column(ColumnDef::new(Devices::LastError).string_len(300).null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Devices::Table)
                .add_column(ColumnDef::new(Devices::LastErrorAt).timestamp_with_time_zone().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Devices::Table)
                .drop_column(Devices::LastErrorAt)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Devices::Table)
                .drop_column(Devices::LastError)
                .to_owned(),
        )
        .await
    }
}

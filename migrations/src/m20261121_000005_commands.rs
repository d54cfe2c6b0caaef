//! Device commands: what a membership asked a device to do over MQTT, its
//! progress (`queued`, `sent`, `acked`, `failed`, `expired`) and the
//! device's answer. Params and results are JSON text, which both databases
//! store and neither needs to query.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeviceCommands {
    Table,
    Id,
    DeviceId,
    MembershipId,
    Name,
    Params,
    Status,
    CreatedBy,
    CreatedAt,
    SentAt,
    CompletedAt,
    ExpiresAt,
    Result,
    Error,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DeviceCommands::Table)
                .col(pk_uuid(DeviceCommands::Id))
                .col(uuid(DeviceCommands::DeviceId))
                // The membership that issued it: its commands, and their
                // results, are visible to it alone.
                .col(uuid(DeviceCommands::MembershipId))
                .col(string_len(DeviceCommands::Name, 32))
                .col(text(DeviceCommands::Params))
                .col(string_len(DeviceCommands::Status, 16))
                // A user or an API key; no foreign key, since either may be
                // deleted while the command stays on record.
                .col(uuid_null(DeviceCommands::CreatedBy))
                .col(timestamp_with_time_zone(DeviceCommands::CreatedAt))
                .col(timestamp_with_time_zone_null(DeviceCommands::SentAt))
                .col(timestamp_with_time_zone_null(DeviceCommands::CompletedAt))
                .col(timestamp_with_time_zone(DeviceCommands::ExpiresAt))
                .col(text_null(DeviceCommands::Result))
                .col(text_null(DeviceCommands::Error))
                .foreign_key(
                    ForeignKey::create()
                        .from(DeviceCommands::Table, DeviceCommands::DeviceId)
                        .to(Devices::Table, Devices::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                // Erasing a membership erases what it asked its devices and
                // what they answered.
                .foreign_key(
                    ForeignKey::create()
                        .from(DeviceCommands::Table, DeviceCommands::MembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // A device's pending commands, and its history.
        m.create_index(
            Index::create()
                .name("idx_device_commands_device_status")
                .table(DeviceCommands::Table)
                .col(DeviceCommands::DeviceId)
                .col(DeviceCommands::Status)
                .to_owned(),
        )
        .await?;
        // The expiry sweep and re-dispatch look across all devices by status.
        m.create_index(
            Index::create()
                .name("idx_device_commands_status_expiry")
                .table(DeviceCommands::Table)
                .col(DeviceCommands::Status)
                .col(DeviceCommands::ExpiresAt)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(DeviceCommands::Table).to_owned())
            .await?;
        Ok(())
    }
}

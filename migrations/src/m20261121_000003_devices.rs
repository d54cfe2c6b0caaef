//! Devices: models a company defines, and devices registered in fleets,
//! claimed by individuals or assigned to enrollees. Secrets and claim codes
//! are stored as SHA-256 only.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeviceModels {
    Table,
    Id,
    MembershipId,
    Name,
    Manufacturer,
    Metrics,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    OwnerMembershipId,
    ModelId,
    Serial,
    Status,
    SecretHash,
    ClaimCodeHash,
    ClaimExpiresAt,
    BoundMembershipId,
    SubjectId,
    LastSeenAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
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
                .table(DeviceModels::Table)
                .col(pk_uuid(DeviceModels::Id))
                .col(uuid(DeviceModels::MembershipId))
                .col(string_len(DeviceModels::Name, 200))
                .col(string_len(DeviceModels::Manufacturer, 200))
                // JSON array of metric codes.
                .col(text(DeviceModels::Metrics))
                .col(timestamp_with_time_zone(DeviceModels::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(DeviceModels::Table, DeviceModels::MembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_device_models_membership")
                .table(DeviceModels::Table)
                .col(DeviceModels::MembershipId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Devices::Table)
                .col(pk_uuid(Devices::Id))
                .col(uuid(Devices::OwnerMembershipId))
                .col(uuid_null(Devices::ModelId))
                .col(string_len(Devices::Serial, 100))
                .col(string_len(Devices::Status, 16))
                .col(string_len(Devices::SecretHash, 64))
                .col(string_len_null(Devices::ClaimCodeHash, 64))
                .col(timestamp_with_time_zone_null(Devices::ClaimExpiresAt))
                .col(uuid_null(Devices::BoundMembershipId))
                .col(uuid_null(Devices::SubjectId))
                .col(timestamp_with_time_zone_null(Devices::LastSeenAt))
                .col(timestamp_with_time_zone(Devices::CreatedAt))
                .col(timestamp_with_time_zone(Devices::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Devices::Table, Devices::OwnerMembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Devices::Table, Devices::ModelId)
                        .to(DeviceModels::Table, DeviceModels::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Devices::Table, Devices::SubjectId)
                        .to(Subjects::Table, Subjects::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_devices_owner_serial")
                .table(Devices::Table)
                .col(Devices::OwnerMembershipId)
                .col(Devices::Serial)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_devices_claim_code")
                .table(Devices::Table)
                .col(Devices::ClaimCodeHash)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_devices_bound")
                .table(Devices::Table)
                .col(Devices::BoundMembershipId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Devices::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(DeviceModels::Table).to_owned())
            .await?;
        Ok(())
    }
}

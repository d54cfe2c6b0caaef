//! Persistent MQTT sessions of the embedded broker: which devices asked for
//! a session that outlives their connection, and what they subscribed to.
//! The in-process broker forgets everything when vitalfarm restarts; with
//! this table the front resumes each device's session, so a device keeps
//! (and sends again) the messages it has not seen acknowledged.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MqttSessions {
    Table,
    DeviceId,
    Subscriptions,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(MqttSessions::Table)
                .col(pk_uuid(MqttSessions::DeviceId))
                // JSON: [[filter, qos], ...]
                .col(text(MqttSessions::Subscriptions))
                .col(timestamp_with_time_zone(MqttSessions::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(MqttSessions::Table, MqttSessions::DeviceId)
                        .to(Devices::Table, Devices::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(MqttSessions::Table).to_owned()).await
    }
}

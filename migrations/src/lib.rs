//! vitalfarm's schema, one migration per change. Migrations are written with
//! sea-query's builder so the same code creates the schema on SQLite and
//! PostgreSQL; they are applied by `vitalfarm migrate` and on `serve` start.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_accounts;
mod m20261121_000002_farms;
mod m20261121_000003_devices;
mod m20261121_000004_readings;
mod m20261121_000005_commands;
mod m20261121_000006_mqtt_sessions;
mod m20261121_000007_readings_cover;
mod m20261122_000008_consents;
mod m20261122_000009_audit;
mod m20261122_000010_oauth;
mod m20261122_000011_jobs;
mod m20261122_000012_events;
mod m20261122_000013_alerts;
mod m20261122_000014_webhooks;
mod m20261122_000015_readings_received;
mod m20261202_000016_email_verification;
mod m20261202_000017_invitations;
mod m20261202_000018_device_last_error;
mod m20261202_000019_app_grants;
mod m20261202_000020_disk_accounting;
mod m20261202_000021_audit_heads_and_scrubs;
mod m20261207_000022_sourceless_readings_key;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_accounts::Migration),
            Box::new(m20261121_000002_farms::Migration),
            Box::new(m20261121_000003_devices::Migration),
            Box::new(m20261121_000004_readings::Migration),
            Box::new(m20261121_000005_commands::Migration),
            Box::new(m20261121_000006_mqtt_sessions::Migration),
            Box::new(m20261121_000007_readings_cover::Migration),
            Box::new(m20261122_000008_consents::Migration),
            Box::new(m20261122_000009_audit::Migration),
            Box::new(m20261122_000010_oauth::Migration),
            Box::new(m20261122_000011_jobs::Migration),
            Box::new(m20261122_000012_events::Migration),
            Box::new(m20261122_000013_alerts::Migration),
            Box::new(m20261122_000014_webhooks::Migration),
            Box::new(m20261122_000015_readings_received::Migration),
            Box::new(m20261202_000016_email_verification::Migration),
            Box::new(m20261202_000017_invitations::Migration),
            Box::new(m20261202_000018_device_last_error::Migration),
            Box::new(m20261202_000019_app_grants::Migration),
            Box::new(m20261202_000020_disk_accounting::Migration),
            Box::new(m20261202_000021_audit_heads_and_scrubs::Migration),
            Box::new(m20261207_000022_sourceless_readings_key::Migration),
        ]
    }
}

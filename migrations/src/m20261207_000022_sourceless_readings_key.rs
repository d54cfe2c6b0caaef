//! Readings without a device (a FHIR import, a heart rate derived from an
//! ECG, a manual entry) get an identity of their own: one reading per
//! subject, metric, component and time. Device readings are identified by
//! `(device_id, metric, component, ts_ms)`, but `device_id` is NULL here and
//! NULLs never conflict, so two imports of the same bundle running at once
//! could each store it; a look-up before the insert could not close that
//! race. Copies such a race left behind are removed first (the oldest row,
//! by its time-ordered id, stays).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "readings_sourceless_key";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared(
            "DELETE FROM readings WHERE device_id IS NULL AND EXISTS (\
               SELECT 1 FROM readings older WHERE older.device_id IS NULL \
               AND older.subject_id = readings.subject_id AND older.metric = readings.metric \
               AND older.component = readings.component AND older.ts_ms = readings.ts_ms \
               AND older.id < readings.id)",
        )
        .await?;
        // A partial index: device readings, nearly all of them, never
        // enter it, so the ingest path pays only the predicate.
        db.execute_unprepared(&format!(
            "CREATE UNIQUE INDEX {INDEX} ON readings (subject_id, metric, component, ts_ms) \
             WHERE device_id IS NULL"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(&format!("DROP INDEX {INDEX}"))
            .await?;
        Ok(())
    }
}

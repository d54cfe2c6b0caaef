//! Persistent MQTT sessions of devices on the embedded broker.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::{Database, DatabaseKind, StorageError};

/// A subscription: topic filter and QoS.
pub type Subscription = (String, u8);

fn stmt(db: &Database, sql: &str, values: Vec<Value>) -> Statement {
    let (backend, sql) = match db.kind() {
        DatabaseKind::Sqlite => (DbBackend::Sqlite, sql.to_owned()),
        // `?` placeholders become `$1, $2, …`.
        DatabaseKind::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            (DbBackend::Postgres, out)
        }
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// The device's session, if it has one: its subscriptions.
pub async fn find(db: &Database, device: Uuid) -> Result<Option<Vec<Subscription>>, StorageError> {
    let row = db
        .conn()
        .query_one_raw(stmt(
            db,
            "SELECT subscriptions FROM mqtt_sessions WHERE device_id = ?",
            vec![device.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let json: String = row.try_get("", "subscriptions")?;
    // A corrupt record is an empty session, not an error for the device.
    Ok(Some(serde_json::from_str(&json).unwrap_or_default()))
}

/// Starts (or keeps) the device's persistent session.
pub async fn open(db: &Database, device: Uuid) -> Result<(), StorageError> {
    db.conn()
        .execute_raw(stmt(
            db,
            "INSERT INTO mqtt_sessions (device_id, subscriptions, updated_at) VALUES (?, '[]', ?) ON CONFLICT (device_id) DO NOTHING",
            vec![device.into(), Utc::now().into()],
        ))
        .await?;
    Ok(())
}

pub async fn set_subscriptions(db: &Database, device: Uuid, subs: &[Subscription]) -> Result<(), StorageError> {
    let json = serde_json::to_string(subs).unwrap_or_else(|_| "[]".to_owned());
    db.conn()
        .execute_raw(stmt(
            db,
            "UPDATE mqtt_sessions SET subscriptions = ?, updated_at = ? WHERE device_id = ?",
            vec![json.into(), Utc::now().into(), device.into()],
        ))
        .await?;
    Ok(())
}

/// Ends the device's session (it connected with a clean session).
pub async fn close(db: &Database, device: Uuid) -> Result<(), StorageError> {
    db.conn()
        .execute_raw(stmt(
            db,
            "DELETE FROM mqtt_sessions WHERE device_id = ?",
            vec![device.into()],
        ))
        .await?;
    Ok(())
}

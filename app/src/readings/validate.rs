//! Checking a reading as a device or a client sends it: its shape, its
//! time and its value, in canonical units, with every problem named by
//! field so the sender can correct it.

use chrono::{DateTime, Utc};
use vitalfarm_domain::metrics;
use vitalfarm_openapi::FieldError;
use vitalfarm_openapi::readings::{ReadingIn, Rejected};

/// Most readings in one request.
pub const MAX_BATCH: usize = 5000;

/// A reading that passed validation, in canonical units.
pub struct Valid {
    pub index: usize,
    pub ts_ms: i64,
    pub seq: Option<i64>,
    pub normalized: metrics::Normalized,
}

/// Validates one reading of a batch: its shape, time and value.
pub fn validate(index: usize, raw: &serde_json::Value, now_ms: i64) -> Result<Valid, Rejected> {
    let reject = |errors: Vec<FieldError>| Rejected { index, errors };
    let reading: ReadingIn = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            Some(name) => name.to_owned(),
            None if path == "." => "reading".to_owned(),
            None => path,
        };
        reject(vec![FieldError { field, message }])
    })?;
    let mut errors = Vec::new();
    let ts_ms = match DateTime::parse_from_rfc3339(&reading.ts) {
        Ok(t) => {
            let ms = t.with_timezone(&Utc).timestamp_millis();
            if let Err(e) = metrics::check_reading_time(ms, now_ms) {
                errors.push(FieldError {
                    field: "ts".into(),
                    message: e.to_string(),
                });
            }
            ms
        }
        Err(_) => {
            errors.push(FieldError {
                field: "ts".into(),
                message: "must be an RFC 3339 timestamp such as 2026-11-21T08:00:00Z".into(),
            });
            0
        }
    };
    let components: Option<Vec<(String, f64)>> = reading.components.map(|c| c.into_iter().collect());
    let normalized = metrics::normalize(
        &reading.metric,
        reading.value,
        components.as_deref(),
        reading.unit.as_deref(),
    );
    match normalized {
        Ok(n) if errors.is_empty() => Ok(Valid {
            index,
            ts_ms,
            seq: reading.seq,
            normalized: n,
        }),
        Ok(_) => Err(reject(errors)),
        Err(e) => {
            errors.extend(e.into_errors().into_iter().map(|f| FieldError {
                field: f.field,
                message: f.message,
            }));
            Err(reject(errors))
        }
    }
}

//! Hospital records in: a FHIR R4 Bundle split into readings (Observations
//! whose LOINC code is one of our metrics, the reverse of `fhir`) and
//! documents (everything else, kept as files), with every entry that cannot
//! be used rejected on its own.
//!
//! This module only reads the bundle's structure. The readings come out in
//! the shape a device sends (`metric`, `ts`, `value` or `components`,
//! `unit`), so the same validation (units and their conversion, plausible
//! ranges, times) applies to hospital data as to device data.

use serde_json::{Map, Value, json};

use crate::fhir::{LOINC, UCUM};
use crate::metrics::{self, MetricDef, MetricKind};

/// An entry of the bundle that is kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// An Observation of one of our metrics, as a device reading
    /// (`{"metric", "ts", "value" | "components", "unit"?}`).
    Reading { id: Option<String>, reading: Value },
    /// Any other resource, kept whole as a document.
    Document {
        resource_type: String,
        id: Option<String>,
        resource: Value,
    },
}

/// Why an entry of the bundle was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub resource_type: Option<String>,
    pub id: Option<String>,
    /// The FHIR element at fault, e.g. `effectiveDateTime`.
    pub field: String,
    pub reason: String,
}

/// The first problem with the body itself: it is not a Bundle at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotABundle {
    pub field: &'static str,
    pub message: &'static str,
}

/// The LOINC code of the vital-signs profile for oxygen saturation in
/// arterial blood, which our FHIR view adds beside the pulse-oximetry code.
const SPO2_ARTERIAL: &str = "2708-6";

/// The metric a LOINC code stands for: the reverse of the catalog's codes
/// (panels by their panel code), waveforms excluded.
pub fn metric_of_loinc(code: &str) -> Option<&'static MetricDef> {
    if code == SPO2_ARTERIAL {
        return metrics::find("spo2");
    }
    metrics::catalog()
        .iter()
        .find(|m| m.loinc == code && m.accepts_readings())
}

/// Whether `id` is a FHIR id (`[A-Za-z0-9\-\.]{1,64}`), safe in a file name.
pub fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The entries of `bundle`, each kept or rejected; `Err` when the body is
/// not a Bundle (not an object, another `resourceType`, `entry` not an
/// array).
pub fn entries(bundle: &Value) -> Result<Vec<Result<Entry, Rejection>>, NotABundle> {
    let obj = bundle.as_object().ok_or(NotABundle {
        field: "body",
        message: "must be a FHIR Bundle (a JSON object)",
    })?;
    if obj.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(NotABundle {
            field: "resourceType",
            message: "must be `Bundle`",
        });
    }
    let list = match obj.get("entry") {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(NotABundle {
                field: "entry",
                message: "must be an array of entries",
            });
        }
    };
    Ok(list.iter().map(entry).collect())
}

fn entry(e: &Value) -> Result<Entry, Rejection> {
    let reject = |rt: Option<&str>, id: Option<&str>, field: &str, reason: &str| Rejection {
        resource_type: rt.map(str::to_owned),
        id: id.map(str::to_owned),
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    let resource = match e.get("resource") {
        Some(Value::Object(r)) => r,
        _ => return Err(reject(None, None, "resource", "the entry has no resource")),
    };
    let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
        return Err(reject(None, None, "resourceType", "the resource has no resourceType"));
    };
    if rt.is_empty() || !rt.bytes().all(|b| b.is_ascii_alphabetic()) || rt.len() > 64 {
        return Err(reject(None, None, "resourceType", "not a FHIR resource type"));
    }
    let id = match resource.get("id") {
        None => None,
        Some(Value::String(id)) if is_fhir_id(id) => Some(id.as_str()),
        Some(_) => return Err(reject(Some(rt), None, "id", "not a FHIR id")),
    };
    if rt == "Observation"
        && let Some(def) = observation_metric(resource)
    {
        return observation(resource, def)
            .map(|reading| Entry::Reading {
                id: id.map(str::to_owned),
                reading,
            })
            .map_err(|(field, reason)| reject(Some(rt), id, field, &reason));
    }
    Ok(Entry::Document {
        resource_type: rt.to_owned(),
        id: id.map(str::to_owned),
        resource: Value::Object(resource.clone()),
    })
}

/// The LOINC codings of a `CodeableConcept`.
fn loinc_codes(concept: Option<&Value>) -> impl Iterator<Item = &str> {
    concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("system").and_then(Value::as_str) == Some(LOINC))
        .filter_map(|c| c.get("code").and_then(Value::as_str))
}

/// The metric of an Observation's code, when it is one of ours.
fn observation_metric(resource: &Map<String, Value>) -> Option<&'static MetricDef> {
    loinc_codes(resource.get("code")).find_map(metric_of_loinc)
}

/// The time of an Observation: `effectiveDateTime`, `effectiveInstant` or
/// the start of `effectivePeriod`.
fn effective(resource: &Map<String, Value>) -> Result<String, (&'static str, String)> {
    let t = resource
        .get("effectiveDateTime")
        .or_else(|| resource.get("effectiveInstant"))
        .or_else(|| resource.get("effectivePeriod").and_then(|p| p.get("start")));
    match t.and_then(Value::as_str) {
        Some(t) => Ok(t.to_owned()),
        None => Err(("effectiveDateTime", "the observation has no effective time".into())),
    }
}

/// `(value, unit)` of a `valueQuantity`; the unit is the UCUM code when
/// the system is UCUM, else the human-readable unit.
fn quantity(q: Option<&Value>, field: &'static str) -> Result<(f64, Option<String>), (&'static str, String)> {
    let q = q.ok_or((field, "the observation has no valueQuantity".to_owned()))?;
    let value = q
        .get("value")
        .and_then(Value::as_f64)
        .ok_or((field, "valueQuantity.value must be a number".to_owned()))?;
    let ucum = (q.get("system").and_then(Value::as_str) == Some(UCUM))
        .then(|| q.get("code").and_then(Value::as_str))
        .flatten();
    let unit = ucum.or_else(|| q.get("unit").and_then(Value::as_str));
    Ok((value, unit.map(str::to_owned)))
}

fn observation(resource: &Map<String, Value>, def: &'static MetricDef) -> Result<Value, (&'static str, String)> {
    if resource.get("status").and_then(Value::as_str) == Some("entered-in-error") {
        return Err(("status", "the observation was entered in error".into()));
    }
    let ts = effective(resource)?;
    let mut reading = json!({"metric": def.code, "ts": ts});
    match def.kind {
        MetricKind::Components => {
            let parts = resource
                .get("component")
                .and_then(Value::as_array)
                .ok_or(("component", "the panel has no components".to_owned()))?;
            let mut values = Map::new();
            let mut unit: Option<String> = None;
            for part in parts {
                let Some(c) =
                    loinc_codes(part.get("code")).find_map(|code| def.components.iter().find(|c| c.loinc == code))
                else {
                    continue;
                };
                let (v, u) = quantity(part.get("valueQuantity"), "component.valueQuantity")?;
                if let (Some(a), Some(b)) = (&unit, &u)
                    && a != b
                {
                    return Err(("component.valueQuantity", "the components have different units".into()));
                }
                unit = unit.or(u);
                values.insert(c.code.to_owned(), json!(v));
            }
            if values.is_empty() {
                return Err(("component", "the panel has no component of a known code".into()));
            }
            reading["components"] = Value::Object(values);
            if let Some(u) = unit {
                reading["unit"] = json!(u);
            }
        }
        MetricKind::Scalar | MetricKind::Waveform => {
            let (v, u) = quantity(resource.get("valueQuantity"), "valueQuantity")?;
            reading["value"] = json!(v);
            if let Some(u) = u {
                reading["unit"] = json!(u);
            }
        }
    }
    Ok(reading)
}

/// The FHIR element a reading validation error is about.
pub fn fhir_field(reading_field: &str) -> String {
    match reading_field {
        "ts" => "effectiveDateTime".into(),
        "value" => "valueQuantity.value".into(),
        "unit" => "valueQuantity.code".into(),
        f if f.starts_with("components") => "component".into(),
        f => f.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(code: &str, extra: Value) -> Value {
        let mut r = json!({"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]}});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({"resource": r})
    }

    fn bundle(entries: Vec<Value>) -> Value {
        json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
    }

    #[test]
    fn loinc_codes_map_back_to_metrics() {
        for m in metrics::catalog().iter().filter(|m| m.accepts_readings()) {
            assert_eq!(metric_of_loinc(m.loinc).map(|d| d.code), Some(m.code));
        }
        assert_eq!(metric_of_loinc("2708-6").map(|d| d.code), Some("spo2"));
        assert_eq!(metric_of_loinc("11524-6"), None, "waveforms are documents");
        assert_eq!(metric_of_loinc("1234-5"), None);
    }

    #[test]
    fn observations_become_device_shaped_readings() {
        let b = bundle(vec![
            obs(
                "8867-4",
                json!({"effectiveDateTime": "2026-11-20T08:00:00Z",
                "valueQuantity": {"value": 72, "unit": "beats/minute", "system": UCUM, "code": "/min"}}),
            ),
            obs(
                "8310-5",
                json!({"effectivePeriod": {"start": "2026-11-20T08:00:00Z"},
                "valueQuantity": {"value": 98.6, "unit": "degF", "system": UCUM, "code": "[degF]"}}),
            ),
            obs(
                "85354-9",
                json!({"effectiveDateTime": "2026-11-20T08:00:00Z", "component": [
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 120, "system": UCUM, "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": {"value": 80, "system": UCUM, "code": "mm[Hg]"}}]}),
            ),
        ]);
        let out = entries(&b).unwrap();
        let readings: Vec<Value> = out
            .into_iter()
            .map(|e| match e {
                Ok(Entry::Reading { reading, .. }) => reading,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            readings[0],
            json!({"metric": "heart_rate", "ts": "2026-11-20T08:00:00Z", "value": 72.0, "unit": "/min"})
        );
        assert_eq!(readings[1]["unit"], "[degF]");
        assert_eq!(readings[1]["metric"], "body_temperature");
        assert_eq!(readings[2]["components"], json!({"systolic": 120.0, "diastolic": 80.0}));
        assert_eq!(readings[2]["unit"], "mm[Hg]");
    }

    #[test]
    fn other_resources_and_unknown_codes_are_documents() {
        let b = bundle(vec![
            json!({"resource": {"resourceType": "Patient", "id": "p1"}}),
            obs("1234-5", json!({"valueString": "x"})),
            json!({"resource": {"resourceType": "Condition"}}),
        ]);
        let out = entries(&b).unwrap();
        assert!(
            matches!(&out[0], Ok(Entry::Document { resource_type, id: Some(id), .. }) if resource_type == "Patient" && id == "p1")
        );
        assert!(matches!(&out[1], Ok(Entry::Document { resource_type, .. }) if resource_type == "Observation"));
        assert!(matches!(&out[2], Ok(Entry::Document { id: None, .. })));
    }

    #[test]
    fn bad_entries_are_rejected_one_by_one() {
        let b = bundle(vec![
            json!({"resource": {"id": "x"}}),
            json!({"fullUrl": "urn:x"}),
            obs("8867-4", json!({"valueQuantity": {"value": 72}})),
            obs("8867-4", json!({"effectiveDateTime": "2026-11-20T08:00:00Z"})),
            obs(
                "8867-4",
                json!({"effectiveDateTime": "2026-11-20T08:00:00Z", "valueQuantity": {"value": "fast"}}),
            ),
            obs(
                "85354-9",
                json!({"effectiveDateTime": "2026-11-20T08:00:00Z", "component": []}),
            ),
            json!({"resource": {"resourceType": "Patient", "id": "../../etc"}}),
            obs(
                "8867-4",
                json!({"status": "entered-in-error", "effectiveDateTime": "2026-11-20T08:00:00Z", "valueQuantity": {"value": 72}}),
            ),
        ]);
        let fields: Vec<String> = entries(&b).unwrap().into_iter().map(|e| e.unwrap_err().field).collect();
        assert_eq!(
            fields,
            [
                "resourceType",
                "resource",
                "effectiveDateTime",
                "valueQuantity",
                "valueQuantity",
                "component",
                "id",
                "status"
            ]
        );
    }

    #[test]
    fn a_body_that_is_no_bundle_names_the_field() {
        assert_eq!(entries(&json!([])).unwrap_err().field, "body");
        assert_eq!(
            entries(&json!({"resourceType": "Patient"})).unwrap_err().field,
            "resourceType"
        );
        assert_eq!(
            entries(&json!({"resourceType": "Bundle", "entry": {}}))
                .unwrap_err()
                .field,
            "entry"
        );
        assert!(entries(&json!({"resourceType": "Bundle"})).unwrap().is_empty());
    }

    #[test]
    fn fhir_ids_are_safe_file_names() {
        assert!(is_fhir_id("abc-1.2"));
        assert!(!is_fhir_id(""));
        assert!(!is_fhir_id("a/b"));
        assert!(!is_fhir_id(&"a".repeat(65)));
    }
}

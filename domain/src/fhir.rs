//! Readings as FHIR R4 resources: one `Observation` per reading, a `Patient`
//! for the subject, and the `searchset` `Bundle` that carries them.
//!
//! Pure functions over JSON values, so the HTTP view and the export job map
//! readings the same way; `observation` works on one reading at a time, for
//! writers that stream observations without building a whole bundle.
//!
//! Every number is in the metric's canonical UCUM unit (see `metrics`), so
//! `valueQuantity.code` is always the catalog unit. Waveforms (ECG) are not
//! numeric readings and are kept as farm files; an `Observation` cannot carry
//! them without a `SampledData` the store does not have, so they are the one
//! thing this mapping skips.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use uuid::Uuid;

use crate::metrics::{MetricDef, MetricKind};
use crate::subject::Sex;

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// The identifier system of a value that is itself a URI (`urn:uuid:...`).
pub const URI_SYSTEM: &str = "urn:ietf:rfc:3986";

/// The UUID v5 namespace of observation ids. Fixed forever: changing it
/// would change the id of every observation ever exported.
const NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_8a1e_3b7d_4c52_9e61_d0a4_f2b8_7c13);

/// The subject as the `Observation.subject` reference and the `Patient`
/// resource need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Patient {
    pub id: Uuid,
    pub display_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    pub sex: Option<Sex>,
}

impl Patient {
    /// `Patient/<id>`, the reference every observation carries.
    pub fn reference(&self) -> String {
        format!("Patient/{}", self.id)
    }
}

/// One stored reading of one metric, in canonical units.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub ts_ms: i64,
    pub device_id: Option<Uuid>,
    /// `(component, value)`; the component is `""` for a scalar metric.
    pub values: Vec<(String, f64)>,
    /// `device`, `manual`, `hospital`.
    pub source: String,
}

/// The stable id of the observation of a reading: a UUID v5 of (subject,
/// device, metric, time), the reading's identity. The subject is part of
/// it because readings entered without a device have no device to tell
/// them apart.
pub fn observation_id(subject: Uuid, metric: &str, reading: &Reading) -> Uuid {
    let device = reading.device_id.map(|d| d.to_string()).unwrap_or_default();
    let name = format!("{subject}/{device}/{metric}/{}", reading.ts_ms);
    let mut hasher = Sha1::new();
    hasher.update(NAMESPACE.as_bytes());
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// A FHIR `instant`/`dateTime` in UTC, with milliseconds only when present.
pub fn instant(ts_ms: i64) -> String {
    DateTime::from_timestamp_millis(ts_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The `Observation.category` code of a metric. Vital signs are what the
/// FHIR vital-signs profile lists; blood glucose is a laboratory value and
/// a step count an activity, whatever device measured them.
pub fn category(metric: &MetricDef) -> (&'static str, &'static str) {
    match metric.code {
        "blood_glucose" => ("laboratory", "Laboratory"),
        "steps" => ("activity", "Activity"),
        _ => ("vital-signs", "Vital Signs"),
    }
}

/// The human-readable `Quantity.unit` of a UCUM code.
fn unit_display(metric: &MetricDef, ucum: &str) -> &'static str {
    match (metric.code, ucum) {
        ("heart_rate", _) => "beats/minute",
        ("respiratory_rate", _) => "breaths/minute",
        (_, "Cel") => "°C",
        (_, "mm[Hg]") => "mmHg",
        (_, "%") => "%",
        (_, "mg/dL") => "mg/dL",
        (_, "kg") => "kg",
        (_, "{steps}") => "steps",
        (_, "/min") => "/min",
        _ => "",
    }
}

fn quantity(metric: &MetricDef, unit: &str, value: f64) -> Value {
    // Counts go out as integers: `10000`, not `10000.0`.
    let value = if metric.integer && value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    };
    let display = match unit_display(metric, unit) {
        "" => unit,
        d => d,
    };
    json!({"value": value, "unit": display, "system": UCUM, "code": unit})
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"system": LOINC, "code": code, "display": display})
}

fn code(metric: &MetricDef) -> Value {
    let mut coding = vec![loinc(metric.loinc, metric.name)];
    // The vital-signs profile identifies oxygen saturation by 2708-6; the
    // catalog's pulse-oximetry code stays first since it says how it was
    // measured.
    if metric.code == "spo2" {
        coding.push(loinc("2708-6", "Oxygen saturation in Arterial blood"));
    }
    json!({"coding": coding, "text": metric.name})
}

/// The `Observation` of one reading, or `None` when the reading cannot be
/// one: a waveform metric, or values that do not fit the metric's shape
/// (neither can come out of ingest, which validates both).
pub fn observation(patient: &Patient, metric: &MetricDef, reading: &Reading) -> Option<Value> {
    let id = observation_id(patient.id, metric.code, reading);
    let (category_code, category_display) = category(metric);
    let mut obs = Map::new();
    obs.insert("resourceType".into(), json!("Observation"));
    obs.insert("id".into(), json!(id.to_string()));
    let mut meta = Map::new();
    if let Some(device) = reading.device_id {
        meta.insert("source".into(), json!(format!("urn:uuid:{device}")));
    }
    meta.insert(
        "tag".into(),
        json!([{"system": "https://vitalfarm.dev/fhir/reading-source", "code": reading.source}]),
    );
    obs.insert("meta".into(), Value::Object(meta));
    obs.insert(
        "identifier".into(),
        json!([{"system": URI_SYSTEM, "value": format!("urn:uuid:{id}")}]),
    );
    obs.insert("status".into(), json!("final"));
    obs.insert(
        "category".into(),
        json!([{
            "coding": [{"system": OBSERVATION_CATEGORY, "code": category_code, "display": category_display}],
            "text": category_display
        }]),
    );
    obs.insert("code".into(), code(metric));
    obs.insert(
        "subject".into(),
        json!({"reference": patient.reference(), "display": patient.display_name}),
    );
    obs.insert("effectiveDateTime".into(), json!(instant(reading.ts_ms)));
    match metric.kind {
        MetricKind::Scalar => {
            let [(component, value)] = reading.values.as_slice() else {
                return None;
            };
            if !component.is_empty() || !value.is_finite() {
                return None;
            }
            obs.insert("valueQuantity".into(), quantity(metric, metric.unit, *value));
        }
        MetricKind::Components => {
            // In catalog order (systolic before diastolic), whatever order
            // the rows came in; a row of an unknown component is dropped.
            let components: Vec<Value> = metric
                .components
                .iter()
                .filter_map(|c| {
                    let (_, value) = reading.values.iter().find(|(code, _)| code == c.code)?;
                    value.is_finite().then(|| {
                        json!({
                            "code": {"coding": [loinc(c.loinc, c.name)], "text": c.name},
                            "valueQuantity": quantity(metric, c.unit, *value),
                        })
                    })
                })
                .collect();
            if components.is_empty() {
                return None;
            }
            obs.insert("component".into(), Value::Array(components));
        }
        MetricKind::Waveform => return None,
    }
    if let Some(device) = reading.device_id {
        obs.insert(
            "device".into(),
            json!({
                "identifier": {"system": URI_SYSTEM, "value": format!("urn:uuid:{device}")},
                "display": format!("Device {device}")
            }),
        );
    }
    Some(Value::Object(obs))
}

/// The subject as a `Patient` resource, so that observations' references
/// resolve inside the bundle.
pub fn patient(p: &Patient) -> Value {
    let mut out = Map::new();
    out.insert("resourceType".into(), json!("Patient"));
    out.insert("id".into(), json!(p.id.to_string()));
    out.insert(
        "identifier".into(),
        json!([{"system": URI_SYSTEM, "value": format!("urn:uuid:{}", p.id)}]),
    );
    out.insert("name".into(), json!([{"text": p.display_name}]));
    if let Some(sex) = p.sex {
        // vitalfarm's sexes are FHIR's administrative genders, code for code.
        out.insert("gender".into(), json!(sex.as_str()));
    }
    if let Some(date) = &p.birth_date {
        out.insert("birthDate".into(), json!(date));
    }
    Value::Object(out)
}

/// The links and counts of one page of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// This page's URL.
    pub self_url: String,
    /// The next page's URL, when there is one.
    pub next_url: Option<String>,
    /// Matches over all pages (observations; the patient is an include).
    pub total: u64,
    /// When the bundle was assembled, ms since the epoch.
    pub timestamp_ms: i64,
}

/// A `searchset` bundle: the patient (search mode `include`), then the
/// observations (`match`) in the order given.
pub fn bundle(patient_resource: Value, observations: Vec<Value>, page: &Page) -> Value {
    let mut links = vec![json!({"relation": "self", "url": page.self_url})];
    if let Some(next) = &page.next_url {
        links.push(json!({"relation": "next", "url": next}));
    }
    let mut entries = Vec::with_capacity(observations.len() + 1);
    entries.push(entry(patient_resource, "include"));
    entries.extend(observations.into_iter().map(|o| entry(o, "match")));
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": instant(page.timestamp_ms),
        "total": page.total,
        "link": links,
        "entry": entries,
    })
}

fn entry(resource: Value, mode: &str) -> Value {
    let id = resource["id"].as_str().unwrap_or_default().to_owned();
    json!({"fullUrl": format!("urn:uuid:{id}"), "resource": resource, "search": {"mode": mode}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{catalog, find};

    fn someone() -> Patient {
        Patient {
            id: Uuid::parse_str("0191f0a8-7c4e-7a3b-9f00-0000000000aa").unwrap(),
            display_name: "Ada Example".into(),
            birth_date: Some("1950-02-03".into()),
            sex: Some(Sex::Female),
        }
    }

    fn device() -> Uuid {
        Uuid::parse_str("0191f0a8-7c4e-7a3b-9f00-0000000000dd").unwrap()
    }

    /// A plausible reading of any numeric metric: the middle of its range.
    fn reading_of(m: &MetricDef) -> Reading {
        let values = match m.kind {
            MetricKind::Components => vec![("diastolic".into(), 80.0), ("systolic".into(), 120.0)],
            MetricKind::Waveform => vec![(String::new(), 0.5)],
            MetricKind::Scalar => {
                let mid = (m.min.unwrap() + m.max.unwrap()) / 2.0;
                vec![(String::new(), if m.integer { mid.round() } else { mid })]
            }
        };
        Reading {
            ts_ms: 1_795_248_000_123,
            device_id: Some(device()),
            values,
            source: "device".into(),
        }
    }

    fn fhir_id_ok(id: &str) -> bool {
        (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    }

    #[test]
    fn every_numeric_metric_maps_to_loinc_and_ucum() {
        let p = someone();
        for m in catalog() {
            let r = reading_of(m);
            let Some(obs) = observation(&p, m, &r) else {
                assert_eq!(m.kind, MetricKind::Waveform, "{} was skipped", m.code);
                continue;
            };
            assert_eq!(obs["resourceType"], "Observation");
            assert_eq!(obs["status"], "final");
            assert!(fhir_id_ok(obs["id"].as_str().unwrap()), "{}", obs["id"]);
            assert_eq!(obs["code"]["coding"][0]["system"], LOINC, "{}", m.code);
            assert_eq!(obs["code"]["coding"][0]["code"], m.loinc, "{}", m.code);
            assert_eq!(obs["code"]["text"], m.name);
            assert_eq!(obs["category"][0]["coding"][0]["system"], OBSERVATION_CATEGORY);
            assert_eq!(obs["subject"]["reference"], format!("Patient/{}", p.id));
            assert_eq!(obs["subject"]["display"], "Ada Example");
            assert_eq!(obs["effectiveDateTime"], "2026-11-21T08:00:00.123Z");
            assert_eq!(obs["device"]["identifier"]["value"], format!("urn:uuid:{}", device()));
            assert_eq!(obs["meta"]["source"], format!("urn:uuid:{}", device()));
            let quantities: Vec<&Value> = match m.kind {
                MetricKind::Scalar => {
                    assert!(obs.get("component").is_none());
                    vec![&obs["valueQuantity"]]
                }
                _ => {
                    assert!(obs.get("valueQuantity").is_none(), "a panel has no top-level value");
                    obs["component"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| &c["valueQuantity"])
                        .collect()
                }
            };
            for q in quantities {
                assert_eq!(q["system"], UCUM, "{}", m.code);
                assert_eq!(q["code"], m.unit, "{}", m.code);
                assert!(q["value"].is_number(), "{}", m.code);
                assert!(!q["unit"].as_str().unwrap().is_empty(), "{}", m.code);
            }
        }
    }

    #[test]
    fn categories_and_values_per_metric() {
        let p = someone();
        let obs = |code: &str| {
            let m = find(code).unwrap();
            observation(&p, m, &reading_of(m)).unwrap()
        };
        assert_eq!(obs("heart_rate")["category"][0]["coding"][0]["code"], "vital-signs");
        assert_eq!(obs("heart_rate")["valueQuantity"]["unit"], "beats/minute");
        assert_eq!(obs("body_temperature")["valueQuantity"]["code"], "Cel");
        assert_eq!(obs("body_temperature")["valueQuantity"]["value"], 35.0);
        assert_eq!(obs("blood_glucose")["category"][0]["coding"][0]["code"], "laboratory");
        assert_eq!(obs("steps")["category"][0]["coding"][0]["code"], "activity");
        assert_eq!(obs("steps")["valueQuantity"]["value"], json!(100_000));
        assert_eq!(obs("steps")["valueQuantity"]["code"], "{steps}");
        let spo2 = obs("spo2");
        assert_eq!(spo2["code"]["coding"][0]["code"], "59408-5");
        assert_eq!(spo2["code"]["coding"][1]["code"], "2708-6");
        assert_eq!(spo2["valueQuantity"]["code"], "%");
    }

    #[test]
    fn blood_pressure_is_a_panel_of_systolic_and_diastolic() {
        let m = find("blood_pressure").unwrap();
        let obs = observation(&someone(), m, &reading_of(m)).unwrap();
        assert_eq!(obs["code"]["coding"][0]["code"], "85354-9");
        assert!(obs.get("valueQuantity").is_none());
        let c = obs["component"].as_array().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0]["code"]["coding"][0]["code"], "8480-6");
        assert_eq!(c[0]["code"]["coding"][0]["system"], LOINC);
        assert_eq!(c[0]["valueQuantity"]["value"], 120.0);
        assert_eq!(c[0]["valueQuantity"]["code"], "mm[Hg]");
        assert_eq!(c[0]["valueQuantity"]["unit"], "mmHg");
        assert_eq!(c[1]["code"]["coding"][0]["code"], "8462-4");
        assert_eq!(c[1]["valueQuantity"]["value"], 80.0);

        let none = Reading {
            values: vec![("mean".into(), 90.0)],
            ..reading_of(m)
        };
        assert!(observation(&someone(), m, &none).is_none());
    }

    #[test]
    fn waveforms_and_misshapen_readings_are_skipped() {
        let p = someone();
        let ecg = find("ecg").unwrap();
        let r = Reading {
            ts_ms: 0,
            device_id: None,
            values: vec![(String::new(), 0.5)],
            source: "device".into(),
        };
        assert!(observation(&p, ecg, &r).is_none());
        let hr = find("heart_rate").unwrap();
        let two = Reading {
            values: vec![(String::new(), 60.0), (String::new(), 61.0)],
            ..r.clone()
        };
        assert!(observation(&p, hr, &two).is_none());
        let nan = Reading {
            values: vec![(String::new(), f64::NAN)],
            ..r.clone()
        };
        assert!(observation(&p, hr, &nan).is_none());
        // Without a device there is no device reference and no meta.source.
        let obs = observation(
            &p,
            hr,
            &Reading {
                ts_ms: 0,
                ..reading_of(hr)
            },
        )
        .unwrap();
        assert_eq!(obs["effectiveDateTime"], "1970-01-01T00:00:00Z");
        let manual = Reading {
            device_id: None,
            source: "manual".into(),
            ..reading_of(hr)
        };
        let obs = observation(&p, hr, &manual).unwrap();
        assert!(obs.get("device").is_none());
        assert!(obs["meta"].get("source").is_none());
        assert_eq!(obs["meta"]["tag"][0]["code"], "manual");
    }

    #[test]
    fn ids_are_stable_and_tell_readings_apart() {
        let p = someone();
        let hr = find("heart_rate").unwrap();
        let r = reading_of(hr);
        let a = observation_id(p.id, hr.code, &r);
        assert_eq!(a, observation_id(p.id, hr.code, &r.clone()));
        assert_eq!(a.get_version_num(), 5);
        let later = Reading {
            ts_ms: r.ts_ms + 1,
            ..r.clone()
        };
        let other_device = Reading {
            device_id: Some(Uuid::nil()),
            ..r.clone()
        };
        let ids = [
            a,
            observation_id(p.id, "spo2", &r),
            observation_id(p.id, hr.code, &later),
            observation_id(p.id, hr.code, &other_device),
            observation_id(Uuid::nil(), hr.code, &r),
        ];
        for (i, x) in ids.iter().enumerate() {
            for y in &ids[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn patient_and_bundle() {
        let p = someone();
        let patient = patient(&p);
        assert_eq!(patient["resourceType"], "Patient");
        assert_eq!(patient["id"], p.id.to_string());
        assert_eq!(patient["gender"], "female");
        assert_eq!(patient["birthDate"], "1950-02-03");
        assert_eq!(patient["name"][0]["text"], "Ada Example");
        let bare = super::patient(&Patient {
            birth_date: None,
            sex: None,
            ..p.clone()
        });
        assert!(bare.get("gender").is_none() && bare.get("birthDate").is_none());

        let hr = find("heart_rate").unwrap();
        let obs = observation(&p, hr, &reading_of(hr)).unwrap();
        let obs_id = obs["id"].as_str().unwrap().to_owned();
        let page = Page {
            self_url: "https://x.example/v1/subjects/s/fhir?_count=1".into(),
            next_url: Some("https://x.example/v1/subjects/s/fhir?_count=1&cursor=abc".into()),
            total: 2,
            timestamp_ms: 1_795_248_000_000,
        };
        let b = bundle(patient, vec![obs], &page);
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "searchset");
        assert_eq!(b["timestamp"], "2026-11-21T08:00:00Z");
        assert_eq!(b["total"], 2);
        assert_eq!(b["link"][0]["relation"], "self");
        assert_eq!(b["link"][1]["relation"], "next");
        assert_eq!(b["entry"][0]["fullUrl"], format!("urn:uuid:{}", p.id));
        assert_eq!(b["entry"][0]["search"]["mode"], "include");
        assert_eq!(b["entry"][1]["fullUrl"], format!("urn:uuid:{obs_id}"));
        assert_eq!(b["entry"][1]["search"]["mode"], "match");

        let last = bundle(
            b["entry"][0]["resource"].clone(),
            Vec::new(),
            &Page { next_url: None, ..page },
        );
        assert_eq!(last["link"].as_array().unwrap().len(), 1);
        assert_eq!(last["entry"].as_array().unwrap().len(), 1);
    }
}

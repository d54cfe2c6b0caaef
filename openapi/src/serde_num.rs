//! Lenient integers. JSON has one number type and JSON Schema calls `90.0`
//! an integer, so integer fields accept a number with no fractional part;
//! serde alone would refuse it.

use serde::{Deserialize, Deserializer};

/// For `Option<u32>` fields: accepts `90` and `90.0`, refuses `90.5`.
pub fn opt_u32<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u32>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(de)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u64)
    });
    whole
        .and_then(|v| u32::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number from 0 to {}, got {n}", u32::MAX)))
}

/// For required `u32` fields, with the same leniency.
pub fn u32_lenient<'de, D: Deserializer<'de>>(de: D) -> Result<u32, D::Error> {
    opt_u32(de)?.ok_or_else(|| serde::de::Error::custom("expected a whole number, got null"))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::opt_u32")]
        n: Option<u32>,
    }

    fn parse(s: &str) -> Result<Option<u32>, serde_json::Error> {
        serde_json::from_str::<T>(s).map(|t| t.n)
    }

    #[test]
    fn accepts_integral_numbers_only() {
        assert_eq!(parse(r#"{"n": 90}"#).unwrap(), Some(90));
        assert_eq!(parse(r#"{"n": 90.0}"#).unwrap(), Some(90));
        assert_eq!(parse(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(parse(r#"{}"#).unwrap(), None);
        assert!(parse(r#"{"n": 90.5}"#).is_err());
        assert!(parse(r#"{"n": -1}"#).is_err());
        assert!(parse(r#"{"n": 1e20}"#).is_err());
        assert!(parse(r#"{"n": "90"}"#).is_err());
    }
}

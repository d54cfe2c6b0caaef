//! A JSON body extractor that reports which field is wrong. actix's own
//! `web::Json` says only "Json deserialize error"; this one checks the
//! content type (415), the size (413), the syntax (400) and the shape (422,
//! with the path of the field) in that order.

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, AppError, AppResult};
use vitalfarm_app::state::AppState;

pub struct Json<T>(pub T);

pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserialises `bytes`, naming the offending field on failure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> AppResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::InvalidJson(
            "the request body is empty; a JSON object is expected".into(),
        ));
    }
    // Every request body of this API is an object. serde would happily read a
    // struct from an array by position, so anything else is refused here.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(AppError::field("body", "must be a JSON object")),
            Err(e) => Err(AppError::InvalidJson(format!("malformed JSON: {e}"))),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return match inner.classify() {
                serde_json::error::Category::Syntax
                | serde_json::error::Category::Eof
                | serde_json::error::Category::Io => Err(AppError::InvalidJson(format!("malformed JSON: {inner}"))),
                serde_json::error::Category::Data => {
                    let message = strip_position(&inner.to_string());
                    Err(AppError::field(field_of(&path, &message), message))
                }
            };
        }
    };
    de.end()
        .map_err(|e| AppError::InvalidJson(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// serde's messages end in " at line L column C"; that helps nobody once
/// the field is named.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The field a data error is about. For "missing field `x`" serde reports
/// the parent's path, so the named field is joined to it.
fn field_of(path: &str, message: &str) -> String {
    // Every request body is an object: an error under a top-level array
    // index means the body itself has the wrong shape.
    let parent = if path == "." || path.starts_with('[') { "" } else { path };
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (named, parent.is_empty()) {
        (Some(name), true) => name.to_owned(),
        (Some(name), false) => format!("{parent}.{name}"),
        (None, true) => "body".to_owned(),
        (None, false) => parent.to_owned(),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.config.max_json_body_bytes)
            .unwrap_or(1024 * 1024);
        let declared_len = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let outcome: AppResult<Json<T>> = async move {
                if !content_type.as_deref().is_some_and(is_json) {
                    return Err(AppError::UnsupportedMediaType {
                        expected: "application/json",
                    });
                }
                if declared_len.is_some_and(|n| n > limit) {
                    return Err(AppError::PayloadTooLarge { limit });
                }
                let mut body = web::BytesMut::new();
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|e| AppError::InvalidJson(format!("could not read the body: {e}")))?;
                    if body.len() + chunk.len() > limit {
                        return Err(AppError::PayloadTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                parse(&body).map(Json)
            }
            .await;
            outcome.map_err(ApiError)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Kind {
        Company,
        Individual,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        kind: Kind,
    }

    fn field(body: &str) -> String {
        match parse::<Outer>(body.as_bytes()) {
            Err(AppError::Validation(errors)) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_field() {
        assert_eq!(field(r#"{"inner": {"kind": "company"}}"#), "name");
        assert_eq!(field(r#"{"name": "x", "inner": {}}"#), "inner.kind");
        assert_eq!(field(r#"{"name": "x", "inner": {"kind": "bank"}}"#), "inner.kind");
        assert_eq!(field(r#"{"name": 5, "inner": {"kind": "company"}}"#), "name");
        assert_eq!(
            field(r#"{"name": "x", "inner": {"kind": "company"}, "extra": 1}"#),
            "extra"
        );
        assert_eq!(field(r#"[1]"#), "body");
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        for body in [
            "",
            "   ",
            "{",
            r#"{"name": }"#,
            r#"{"name": "x", "inner": {"kind": "company"}} trailing"#,
        ] {
            assert!(
                matches!(parse::<Outer>(body.as_bytes()), Err(AppError::InvalidJson(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}

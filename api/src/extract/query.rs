//! Query-string extractor that names the offending parameter, and the
//! pagination parameters every list shares.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use futures_util::future::{Ready, ready};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::{ApiError, AppError, AppResult};

pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(req.query_string().as_bytes()));
        ready(match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => Ok(Query(v)),
            Err(err) => {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                let field = match message
                    .strip_prefix("missing field `")
                    .and_then(|r| r.split('`').next())
                {
                    Some(name) => name.to_owned(),
                    None if path == "." => "query".to_owned(),
                    None => path,
                };
                Err((AppError::InvalidParameter { field, message }).into())
            }
        })
    }
}

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 1000;

/// `?limit=&cursor=` of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{22}$")]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err((AppError::InvalidParameter {
                field: "limit".into(),
                message: "must be between 1 and 1000".into(),
            })
            .into()),
        }
    }

    pub fn after(&self) -> AppResult<Option<Uuid>> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// The one check of a `from`/`to` pair: when both are given, `from` must
/// come before `to` (periods are half-open, so an empty one is refused
/// too). A reversed period is a mistake worth telling, not an empty answer.
pub fn check_period(
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), ApiError> {
    match (from, to) {
        (Some(from), Some(to)) if from >= to => Err((AppError::InvalidParameter {
            field: "from".into(),
            message: "must be before `to`".into(),
        })
        .into()),
        _ => Ok(()),
    }
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Cursors are 16 bytes in 22 base64url characters; the 4 spare bits are
/// ignored, so every string of the documented pattern is a cursor.
const CURSOR: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

fn decode_cursor(cursor: &str) -> AppResult<Uuid> {
    CURSOR
        .decode(cursor)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| AppError::InvalidParameter {
            field: "cursor".into(),
            message: "is not a cursor this API returned".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let id = Uuid::now_v7();
        let q = PageQuery {
            limit: None,
            cursor: Some(encode_cursor(id)),
        };
        assert_eq!(q.after().unwrap(), Some(id));
        let q = PageQuery {
            limit: Some(0),
            cursor: Some("%%%".into()),
        };
        assert!(q.after().is_err());
        assert!(q.limit().is_err());
    }
}

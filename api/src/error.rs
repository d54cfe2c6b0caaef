//! `ApiError`: every failure a handler can return, rendered as an RFC 9457
//! problem document from the catalogue in `vitalfarm_openapi::problem`.
//! Internal causes are logged with the request id and never sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use vitalfarm_domain::ValidationErrors;
use vitalfarm_openapi::{FieldError, Problem, ProblemKind};
use vitalfarm_storage::StorageError;

use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("malformed request: {0}")]
    MalformedRequest(String),
    #[error("invalid parameter {field}: {message}")]
    InvalidParameter { field: String, message: String },
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("route not found")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type")]
    UnsupportedMediaType { expected: &'static str },
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("length required")]
    LengthRequired,
    #[error("range not satisfiable")]
    RangeNotSatisfiable { len: u64 },
    #[error("quota exceeded")]
    QuotaExceeded { quota: i64, used: i64 },
    #[error("gone: {0}")]
    Gone(String),
    #[error("stored data failed its integrity check")]
    DataIntegrity,
    #[error("insufficient scope")]
    InsufficientScope { scope: &'static str },
    /// The request body stalled or crawled (`body_read_timeout_secs`,
    /// `min_transfer_bytes_per_sec`).
    #[error("request body timed out")]
    RequestTimeout { after_secs: u64 },
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn kind(&self) -> ProblemKind {
        use ApiError::*;
        match self {
            InvalidJson(_) => ProblemKind::InvalidJson,
            MalformedRequest(_) => ProblemKind::MalformedRequest,
            InvalidParameter { .. } => ProblemKind::InvalidParameter,
            Validation(_) => ProblemKind::ValidationFailed,
            Unauthorized(_) => ProblemKind::Unauthorized,
            InvalidCredentials => ProblemKind::InvalidCredentials,
            Forbidden(_) => ProblemKind::Forbidden,
            NotFound(_) => ProblemKind::NotFound,
            RouteNotFound => ProblemKind::RouteNotFound,
            MethodNotAllowed { .. } => ProblemKind::MethodNotAllowed,
            Conflict(_) => ProblemKind::Conflict,
            PayloadTooLarge { .. } => ProblemKind::PayloadTooLarge,
            UnsupportedMediaType { .. } => ProblemKind::UnsupportedMediaType,
            RateLimited { .. } => ProblemKind::RateLimited,
            Unavailable(_) => ProblemKind::Unavailable,
            PreconditionFailed(_) => ProblemKind::PreconditionFailed,
            LengthRequired => ProblemKind::LengthRequired,
            RangeNotSatisfiable { .. } => ProblemKind::RangeNotSatisfiable,
            QuotaExceeded { .. } => ProblemKind::InsufficientStorage,
            Gone(_) => ProblemKind::Gone,
            DataIntegrity => ProblemKind::DataIntegrity,
            Internal(_) => ProblemKind::Internal,
            InsufficientScope { .. } => ProblemKind::InsufficientScope,
            RequestTimeout { .. } => ProblemKind::RequestTimeout,
        }
    }

    /// A single-field validation problem.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    fn detail(&self) -> String {
        use ApiError::*;
        match self {
            InvalidJson(d) | MalformedRequest(d) => d.clone(),
            InvalidParameter { field, message } => format!("{field}: {message}"),
            Validation(errors) => match errors.as_slice() {
                [one] => format!("{}: {}", one.field, one.message),
                many => format!("{} fields are invalid", many.len()),
            },
            Unauthorized(d) => (*d).to_owned(),
            InvalidCredentials => "wrong email or password".to_owned(),
            Forbidden(d) | Conflict(d) => d.clone(),
            NotFound(what) => format!("no such {what}"),
            RouteNotFound => "no endpoint at this path; see /openapi.json".to_owned(),
            MethodNotAllowed { allow } => format!("allowed methods: {allow}"),
            PayloadTooLarge { limit } => format!("the body exceeds {limit} bytes"),
            UnsupportedMediaType { expected } => format!("Content-Type must be {expected}"),
            RateLimited { retry_after_secs } => {
                format!("too many attempts; retry after {retry_after_secs} seconds")
            }
            Unavailable(d) => (*d).to_owned(),
            PreconditionFailed(d) | Gone(d) => d.clone(),
            LengthRequired => "uploads must declare their size in Content-Length".to_owned(),
            RangeNotSatisfiable { len } => format!("the range is outside the file of {len} bytes"),
            QuotaExceeded { quota, used } => {
                format!("the farm's quota is {quota} bytes and {used} are used; delete files or ask for a larger quota")
            }
            DataIntegrity => {
                "the stored file does not authenticate: it was altered or damaged in storage; it was not served"
                    .to_owned()
            }
            Internal(_) => "an unexpected error occurred; quote the request id when reporting it".to_owned(),
            InsufficientScope { scope } => {
                format!("this needs the scope {scope}, which the app was not granted")
            }
            RequestTimeout { after_secs } => format!(
                "the request body stalled (nothing for {after_secs} seconds) or arrived too slowly; the request was not processed"
            ),
        }
    }

    fn errors(&self) -> Option<Vec<FieldError>> {
        match self {
            ApiError::Validation(errors) => Some(errors.clone()),
            ApiError::InvalidParameter { field, message } => Some(vec![FieldError {
                field: field.clone(),
                message: message.clone(),
            }]),
            ApiError::UnsupportedMediaType { expected } => Some(vec![FieldError {
                field: "Content-Type".to_owned(),
                message: format!("must be {expected}"),
            }]),
            _ => None,
        }
    }

    pub fn problem(&self) -> Problem {
        let kind = self.kind();
        Problem {
            kind: kind.type_uri(),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail: self.detail(),
            request_id: telemetry::current_request_id(),
            errors: self.errors(),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Validation(
            errors
                .into_errors()
                .into_iter()
                .map(|e| FieldError {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        )
    }
}

/// A value the norms cannot judge is the caller's input at fault (a
/// value of the wrong shape, an age no shipped source covers): a 400
/// naming the field, never a 500. Views that judge many values at once
/// (charts, boards) leave such a value unjudged instead of failing.
impl From<vitalfarm_domain::norms::NormError> for ApiError {
    fn from(err: vitalfarm_domain::norms::NormError) -> Self {
        ApiError::InvalidParameter {
            field: err.field().to_owned(),
            message: err.to_string(),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound => ApiError::NotFound("resource"),
            StorageError::Conflict(what) => ApiError::Conflict(what.to_owned()),
            StorageError::Db(e) => ApiError::Internal(anyhow::Error::new(e).context("database")),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.kind().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::DataIntegrity = self {
            tracing::error!(
                request_id = telemetry::current_request_id().as_deref(),
                "stored data failed its integrity check"
            );
        }
        if let ApiError::Internal(cause) = self {
            // The cause chain goes to the log, keyed by request id; the client
            // gets an opaque problem. Causes are database or I/O errors, which
            // never carry request bodies.
            tracing::error!(
                request_id = telemetry::current_request_id().as_deref(),
                error = format!("{cause:#}"),
                "request failed"
            );
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type("application/problem+json");
        match self {
            ApiError::MethodNotAllowed { allow } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    res.insert_header((header::ALLOW, v));
                }
            }
            ApiError::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::RangeNotSatisfiable { len } => {
                res.insert_header((header::CONTENT_RANGE, format!("bytes */{len}")));
            }
            ApiError::Unauthorized(_) | ApiError::InvalidCredentials => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"vitalfarm\""));
            }
            ApiError::InsufficientScope { scope } => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer realm=\"vitalfarm\", error=\"insufficient_scope\", scope=\"{scope}\""),
                ));
            }
            _ => {}
        }
        res.body(serde_json::to_vec(&self.problem()).unwrap_or_default())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The body limit of routes that read their body as raw bytes (broker
/// hooks, OAuth forms, mashup bodies): actix's `PayloadConfig`, set
/// explicitly so that the 413 can name it.
pub const BYTES_BODY_LIMIT: usize = 256 * 1024;

/// The problem for an error response that actix produced without one (its
/// extractors answer with an empty or plain-text body): chosen by status,
/// so clients get `application/problem+json` from every error.
fn problem_for_status(status: StatusCode) -> Option<ApiError> {
    Some(match status.as_u16() {
        400 => ApiError::MalformedRequest("the request is malformed (a header, the URI or the body framing)".into()),
        404 => ApiError::RouteNotFound,
        411 => ApiError::LengthRequired,
        413 => ApiError::PayloadTooLarge {
            limit: BYTES_BODY_LIMIT,
        },
        414 => ApiError::MalformedRequest("the URI is too long".into()),
        415 => ApiError::UnsupportedMediaType {
            expected: "a supported type",
        },
        431 => ApiError::MalformedRequest("the request's header fields are too large".into()),
        s if (400..500).contains(&s) => ApiError::MalformedRequest(
            status
                .canonical_reason()
                .unwrap_or("the request was refused")
                .to_owned(),
        ),
        _ => return None,
    })
}

/// Middleware: an error response without a body, or with a plain-text one
/// (actix's own rejections: a `Content-Type` that is not ASCII, a body over
/// the byte routes' limit, ...), gets the problem document of its status.
/// Problem documents, JSON errors (OAuth) and pages (the consent page) are
/// left alone.
pub async fn problem_bodies(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::ResponseError;
    use actix_web::body::BodySize;
    let head = req.method() == actix_web::http::Method::HEAD;
    let res = next.call(req).await?;
    let status = res.status();
    if head || !(status.is_client_error() || status.is_server_error()) {
        return Ok(res.map_into_boxed_body());
    }
    let empty = matches!(res.response().body().size(), BodySize::None | BodySize::Sized(0));
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(empty || plain) {
        return Ok(res.map_into_boxed_body());
    }
    let Some(problem) = problem_for_status(status) else {
        return Ok(res.map_into_boxed_body());
    };
    let (req, old) = res.into_parts();
    let mut new = problem.error_response();
    // The status stays actix's (a 431 stays 431 even though the catalogue
    // files it under malformed requests); headers it set are kept.
    *new.status_mut() = status;
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if let Ok(body) = serde_json::to_vec(&{
        let mut p = problem.problem();
        p.status = status.as_u16();
        p
    }) {
        new = new.set_body(actix_web::body::BoxBody::new(body));
    }
    Ok(actix_web::dev::ServiceResponse::new(req, new))
}

#[cfg(test)]
mod tests {
    use vitalfarm_domain::norms::{Metric, Value, assess};

    use super::*;

    #[test]
    fn a_norm_error_is_a_400_naming_its_field() {
        // No shipped source gives a newborn's SpO2 norm.
        let err = assess(Metric::Spo2, Value::Scalar(95.0), Some(10), None).unwrap_err();
        let api = ApiError::from(err);
        assert_eq!(api.status_code(), StatusCode::BAD_REQUEST);
        let fields: Vec<String> = api.errors().unwrap_or_default().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["age_days"]);
        let err = assess(Metric::HeartRate, Value::Scalar(f64::NAN), None, None).unwrap_err();
        let fields: Vec<String> = ApiError::from(err)
            .errors()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["value"]);
    }
}

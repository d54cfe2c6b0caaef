//! `AppError`: every way a use case can fail, named by the problem kind of
//! the public catalogue (`vitalfarm_openapi::problem`). The HTTP adapter
//! renders it as a problem document; nothing here knows about HTTP.

use vitalfarm_domain::ValidationErrors;
use vitalfarm_openapi::{FieldError, ProblemKind};
use vitalfarm_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
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

impl AppError {
    pub fn kind(&self) -> ProblemKind {
        use AppError::*;
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
        AppError::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn detail(&self) -> String {
        use AppError::*;
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

    pub fn errors(&self) -> Option<Vec<FieldError>> {
        match self {
            AppError::Validation(errors) => Some(errors.clone()),
            AppError::InvalidParameter { field, message } => Some(vec![FieldError {
                field: field.clone(),
                message: message.clone(),
            }]),
            AppError::UnsupportedMediaType { expected } => Some(vec![FieldError {
                field: "Content-Type".to_owned(),
                message: format!("must be {expected}"),
            }]),
            _ => None,
        }
    }
}

impl From<ValidationErrors> for AppError {
    fn from(errors: ValidationErrors) -> Self {
        AppError::Validation(
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
impl From<vitalfarm_domain::norms::NormError> for AppError {
    fn from(err: vitalfarm_domain::norms::NormError) -> Self {
        AppError::InvalidParameter {
            field: err.field().to_owned(),
            message: err.to_string(),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound => AppError::NotFound("resource"),
            StorageError::Conflict(what) => AppError::Conflict(what.to_owned()),
            StorageError::Db(e) => AppError::Internal(anyhow::Error::new(e).context("database")),
            e @ StorageError::TimestampOutOfRange(_) => AppError::Internal(e.into()),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use vitalfarm_domain::norms::{Metric, Value, assess};

    use super::*;

    #[test]
    fn a_norm_error_is_a_400_naming_its_field() {
        // No shipped source gives a newborn's SpO2 norm.
        let err = assess(Metric::Spo2, Value::Scalar(95.0), Some(10), None).unwrap_err();
        let app = AppError::from(err);
        assert_eq!(app.kind().status(), 400);
        let fields: Vec<String> = app.errors().unwrap_or_default().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["age_days"]);
        let err = assess(Metric::HeartRate, Value::Scalar(f64::NAN), None, None).unwrap_err();
        let fields: Vec<String> = AppError::from(err)
            .errors()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["value"]);
    }
}

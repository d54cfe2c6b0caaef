//! `ApiError`: the HTTP face of [`AppError`], rendered as an RFC 9457
//! problem document from the catalogue in `vitalfarm_openapi::problem`.
//! Internal causes are logged with the request id and never sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
pub use vitalfarm_app::error::{AppError, AppResult};
use vitalfarm_openapi::Problem;

use crate::telemetry;

/// An [`AppError`] on its way to an HTTP client. A newtype because the
/// app crate knows nothing of actix, and actix's `ResponseError` can only
/// be implemented here.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(err: E) -> Self {
        ApiError(err.into())
    }
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        let kind = self.0.kind();
        Problem {
            kind: kind.type_uri(),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail: self.0.detail(),
            request_id: telemetry::current_request_id(),
            errors: self.0.errors(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.kind().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::DataIntegrity = &self.0 {
            tracing::error!(
                request_id = telemetry::current_request_id().as_deref(),
                "stored data failed its integrity check"
            );
        }
        if let AppError::Internal(cause) = &self.0 {
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
        match &self.0 {
            AppError::MethodNotAllowed { allow } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    res.insert_header((header::ALLOW, v));
                }
            }
            AppError::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            AppError::RangeNotSatisfiable { len } => {
                res.insert_header((header::CONTENT_RANGE, format!("bytes */{len}")));
            }
            AppError::Unauthorized(_) | AppError::InvalidCredentials => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"vitalfarm\""));
            }
            AppError::InsufficientScope { scope } => {
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
pub(crate) fn problem_for_status(status: StatusCode) -> Option<ApiError> {
    Some(ApiError(match status.as_u16() {
        400 => AppError::MalformedRequest("the request is malformed (a header, the URI or the body framing)".into()),
        404 => AppError::RouteNotFound,
        411 => AppError::LengthRequired,
        413 => AppError::PayloadTooLarge {
            limit: BYTES_BODY_LIMIT,
        },
        414 => AppError::MalformedRequest("the URI is too long".into()),
        415 => AppError::UnsupportedMediaType {
            expected: "a supported type",
        },
        431 => AppError::MalformedRequest("the request's header fields are too large".into()),
        s if (400..500).contains(&s) => AppError::MalformedRequest(
            status
                .canonical_reason()
                .unwrap_or("the request was refused")
                .to_owned(),
        ),
        _ => return None,
    }))
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

//! RFC 9457 problem documents and the catalogue of problem kinds. Every error
//! vitalfarm returns is one of these kinds; the table below is the single
//! source of their status, `type` and title, used both by the server and by
//! the OpenAPI document.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Base of every problem `type` URI; the fragment names the kind.
pub const TYPE_BASE: &str = "https://vitalfarm.dev/problems/";

/// An error response (RFC 9457, `application/problem+json`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://vitalfarm.dev/problems/validation-failed",
    "title": "The request has invalid fields",
    "status": 422,
    "detail": "1 field is invalid",
    "request_id": "01935c6e-7a8b-7c3d-9e0f-123456789abc",
    "errors": [{"field": "password", "message": "must be at least 10 characters long"}]
}))]
pub struct Problem {
    /// URI identifying the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The id of this request, also in the `X-Request-Id` header: quote it
    /// when asking for support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For validation problems: every invalid field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Path to the field: a body field (`membership.kind`), a query parameter
    /// (`limit`), a path parameter (`mid`) or a header (`Content-Type`).
    pub field: String,
    pub message: String,
}

/// The catalogue. Adding a kind means adding a row to `meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    InvalidJson,
    MalformedRequest,
    InvalidParameter,
    ValidationFailed,
    Unauthorized,
    InvalidCredentials,
    Forbidden,
    NotFound,
    RouteNotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    PreconditionFailed,
    LengthRequired,
    RangeNotSatisfiable,
    InsufficientStorage,
    Gone,
    DataIntegrity,
    Internal,
    Unavailable,
    InsufficientScope,
    RequestTimeout,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 24] = [
        ProblemKind::InvalidJson,
        ProblemKind::MalformedRequest,
        ProblemKind::InvalidParameter,
        ProblemKind::ValidationFailed,
        ProblemKind::Unauthorized,
        ProblemKind::InvalidCredentials,
        ProblemKind::Forbidden,
        ProblemKind::NotFound,
        ProblemKind::RouteNotFound,
        ProblemKind::MethodNotAllowed,
        ProblemKind::Conflict,
        ProblemKind::PayloadTooLarge,
        ProblemKind::UnsupportedMediaType,
        ProblemKind::RateLimited,
        ProblemKind::PreconditionFailed,
        ProblemKind::LengthRequired,
        ProblemKind::RangeNotSatisfiable,
        ProblemKind::InsufficientStorage,
        ProblemKind::Gone,
        ProblemKind::DataIntegrity,
        ProblemKind::Internal,
        ProblemKind::Unavailable,
        ProblemKind::InsufficientScope,
        ProblemKind::RequestTimeout,
    ];

    /// `(status, slug, title)` of each kind.
    pub const fn meta(self) -> (u16, &'static str, &'static str) {
        use ProblemKind::*;
        match self {
            InvalidJson => (400, "invalid-json", "The request body is not valid JSON"),
            MalformedRequest => (400, "malformed-request", "The request is malformed"),
            InvalidParameter => (400, "invalid-parameter", "A path or query parameter is invalid"),
            ValidationFailed => (422, "validation-failed", "The request has invalid fields"),
            Unauthorized => (401, "unauthorized", "Authentication is required"),
            InvalidCredentials => (401, "invalid-credentials", "The credentials are not valid"),
            Forbidden => (403, "forbidden", "Your role does not allow this"),
            NotFound => (404, "not-found", "No such resource"),
            RouteNotFound => (404, "route-not-found", "No such endpoint"),
            MethodNotAllowed => (405, "method-not-allowed", "The endpoint does not support this method"),
            Conflict => (409, "conflict", "The request conflicts with the current state"),
            PayloadTooLarge => (413, "payload-too-large", "The request body is too large"),
            UnsupportedMediaType => (
                415,
                "unsupported-media-type",
                "The request body has the wrong content type",
            ),
            RateLimited => (429, "rate-limited", "Too many requests"),
            PreconditionFailed => (412, "precondition-failed", "A precondition header does not hold"),
            LengthRequired => (411, "length-required", "The request needs a Content-Length"),
            RangeNotSatisfiable => (416, "range-not-satisfiable", "The requested range is outside the file"),
            InsufficientStorage => (507, "quota-exceeded", "The farm's storage quota would be exceeded"),
            Gone => (410, "gone", "The resource existed but is no longer available"),
            DataIntegrity => (500, "data-integrity", "Stored data failed its integrity check"),
            Internal => (500, "internal", "Internal server error"),
            Unavailable => (503, "unavailable", "The service is temporarily unavailable"),
            InsufficientScope => (
                403,
                "insufficient-scope",
                "The app's access token lacks the scope this needs",
            ),
            RequestTimeout => (408, "request-timeout", "The request body stalled"),
        }
    }

    pub const fn status(self) -> u16 {
        self.meta().0
    }

    pub const fn slug(self) -> &'static str {
        self.meta().1
    }

    pub const fn title(self) -> &'static str {
        self.meta().2
    }

    pub fn type_uri(self) -> String {
        format!("{TYPE_BASE}{}", self.slug())
    }

    /// Name of the reusable response in `components.responses`.
    pub const fn component(self) -> &'static str {
        use ProblemKind::*;
        match self {
            InvalidJson => "InvalidJson",
            MalformedRequest => "MalformedRequest",
            InvalidParameter => "InvalidParameter",
            ValidationFailed => "ValidationFailed",
            Unauthorized => "Unauthorized",
            InvalidCredentials => "InvalidCredentials",
            Forbidden => "Forbidden",
            NotFound => "NotFound",
            RouteNotFound => "RouteNotFound",
            MethodNotAllowed => "MethodNotAllowed",
            Conflict => "Conflict",
            PayloadTooLarge => "PayloadTooLarge",
            UnsupportedMediaType => "UnsupportedMediaType",
            RateLimited => "RateLimited",
            PreconditionFailed => "PreconditionFailed",
            LengthRequired => "LengthRequired",
            RangeNotSatisfiable => "RangeNotSatisfiable",
            InsufficientStorage => "QuotaExceeded",
            Gone => "Gone",
            DataIntegrity => "DataIntegrity",
            Internal => "InternalError",
            Unavailable => "Unavailable",
            InsufficientScope => "InsufficientScope",
            RequestTimeout => "RequestTimeout",
        }
    }

    pub fn example_detail(self) -> &'static str {
        use ProblemKind::*;
        match self {
            InvalidJson => "expected value at line 1 column 1",
            MalformedRequest => "the request is malformed (a header, the URI or the body framing)",
            InvalidParameter => "mid: must be a UUID",
            ValidationFailed => "1 field is invalid",
            Unauthorized => "missing Authorization header",
            InvalidCredentials => "wrong email or password",
            Forbidden => "your role (viewer) may not manage members",
            NotFound => "no such membership",
            RouteNotFound => "no endpoint at this path",
            MethodNotAllowed => "allowed methods: GET, POST",
            Conflict => "email is already registered",
            PayloadTooLarge => "the body exceeds 1048576 bytes",
            UnsupportedMediaType => "Content-Type must be application/json",
            RateLimited => "too many attempts; retry after 60 seconds",
            PreconditionFailed => "If-Match \"9f86d081...\" does not match the current file",
            LengthRequired => "uploads must declare their size in Content-Length",
            RangeNotSatisfiable => "bytes=5000- is outside a file of 4096 bytes",
            InsufficientStorage => "the farm has 1073741824 bytes of quota and 1073000000 are used",
            Gone => "this share link expired at 2026-11-28T10:00:00Z",
            DataIntegrity => "the stored file does not authenticate; it was altered or damaged in storage",
            Internal => "an unexpected error occurred; quote the request id when reporting it",
            Unavailable => "the database is not reachable",
            InsufficientScope => "this needs the scope readings.read, which the app was not granted",
            RequestTimeout => "no byte of the request body arrived for 30 seconds",
        }
    }

    pub fn example(self) -> Problem {
        let errors = match self {
            ProblemKind::ValidationFailed => Some(vec![FieldError {
                field: "password".into(),
                message: "must be at least 10 characters long".into(),
            }]),
            ProblemKind::InvalidParameter => Some(vec![FieldError {
                field: "mid".into(),
                message: "must be a UUID".into(),
            }]),
            _ => None,
        };
        Problem {
            kind: self.type_uri(),
            title: self.title().into(),
            status: self.status(),
            detail: self.example_detail().into(),
            request_id: Some("01935c6e-7a8b-7c3d-9e0f-123456789abc".into()),
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_consistent() {
        let mut slugs = std::collections::HashSet::new();
        for kind in ProblemKind::ALL {
            let (status, slug, title) = kind.meta();
            assert!((400..600).contains(&status));
            assert!(slugs.insert(slug), "duplicate slug {slug}");
            assert!(!title.is_empty());
            assert_eq!(kind.example().status, status);
        }
    }
}

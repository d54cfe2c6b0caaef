//! Turns the document utoipa derives from the handlers into the published
//! one: info, tags, security schemes, and the problem responses that follow
//! from an operation's shape (a secured operation can answer 401, one with a
//! body 413/415/422, one with path parameters 404...). Deriving them here
//! rather than repeating them on every handler keeps them complete.

use serde_json::{Map, Value, json};

use crate::ProblemKind;

/// Tags in the order the reference shows them.
pub const TAGS: &[(&str, &str)] = &[
    ("auth", "Sign-up, sign-in and the token lifecycle."),
    ("me", "The signed-in user and their memberships."),
    ("memberships", "Companies and individuals: the unit of tenancy."),
    ("members", "A company's staff and their roles."),
    ("api-keys", "Server-to-server keys of a company."),
    (
        "farms",
        "Each membership's isolated, encrypted file space: upload, download, list, move, export.",
    ),
    (
        "share-links",
        "Time-limited links that let anyone download one file, with every use recorded.",
    ),
    (
        "subjects",
        "The people whose data a membership holds: self, dependents, enrollees.",
    ),
    (
        "metrics",
        "The catalog of vital signs: codes, LOINC, UCUM units, conversions, plausible ranges.",
    ),
    (
        "devices",
        "Device models and fleets: registration (also in bulk), life cycle, claiming, assignment and commands.",
    ),
    (
        "ingest",
        "Devices send readings (`Authorization: Device id:secret`); MQTT topics carry the same bodies.",
    ),
    ("readings", "Raw readings, time buckets and summaries of a subject."),
    (
        "mqtt-hooks",
        "Called by an external MQTT broker (Mosquitto go-auth, EMQX) to log devices in and check topics.",
    ),
    ("service", "Health, readiness, metrics, keys and this reference."),
    (
        "consents",
        "An individual's explicit, scoped, revocable permission for a company to read some of their data.",
    ),
    (
        "audit",
        "Each membership's tamper-evident log of who did what to its data, and the check of its hash chain.",
    ),
    (
        "oauth",
        "OAuth2 for third-party apps: app registration, authorization code with PKCE, tokens, revocation, metadata.",
    ),
    (
        "exports",
        "Everything a membership holds as one ZIP, built in the background; and erasure of a membership.",
    ),
    (
        "public-datasets",
        "Read-only public reference data with its sources: blood-pressure categories, vital-sign ranges by age, temperature thresholds.",
    ),
    (
        "analytics",
        "Analyses of the readings one may read (one's own, or shared by consent), with the consents used.",
    ),
    (
        "stream",
        "A live Server-Sent Events stream of the readings and alerts a membership may see, honouring consents as they change.",
    ),
    (
        "webhooks",
        "Signed HTTP callbacks (Standard Webhooks) for a membership's events, retried with backoff, with delivery history.",
    ),
    (
        "alerts",
        "Rules over the readings a membership may see (thresholds, ranges, rates of change, silences) and the alerts they open.",
    ),
];

/// Security scheme names, as handlers reference them.
pub const BEARER_JWT: &str = "bearer_jwt";
pub const API_KEY: &str = "api_key";
pub const DEVICE: &str = "device";
pub const OAUTH2: &str = "oauth2";
pub const MQTT_HOOK_SECRET: &str = "mqtt_hook_secret";
pub const MQTT_HOOK_BASIC: &str = "mqtt_hook_basic";

const PROBLEM_JSON: &str = "application/problem+json";

/// Completes `doc` (the serialised utoipa document) in place.
pub fn finalize(doc: &mut Value) {
    doc["info"] = json!({
        "title": "vitalfarm API",
        "version": env!("CARGO_PKG_VERSION"),
        "summary": "Multi-tenant health data: farms, devices, consent-based sharing, analytics.",
        "description": "vitalfarm stores health data for companies and individuals. Every membership owns an isolated farm; individuals share data with companies only through explicit, revocable consent.\n\nErrors are RFC 9457 problem documents (`application/problem+json`). Lists are cursor-paginated with `limit` and `cursor`. Something that belongs to another membership answers 404.",
        "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
    });
    doc["tags"] = Value::Array(
        TAGS.iter()
            .map(|(name, description)| json!({"name": name, "description": description}))
            .collect(),
    );
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})));
    if let Some(components) = components {
        components["securitySchemes"] = json!({
            BEARER_JWT: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An access token from `/v1/auth/login`, `/v1/auth/signup` or `/v1/auth/refresh` (EdDSA, verify with `/.well-known/jwks.json`)."
            },
            API_KEY: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "vf_key_...",
                "description": "A company API key from `/v1/memberships/{mid}/api-keys`, sent as `Authorization: Bearer vf_key_...`."
            },
            DEVICE: {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "A device's credentials, `Device <device_id>:<secret>`, from registration or `/v1/devices/{did}/rotate-secret`."
            },
            MQTT_HOOK_SECRET: {
                "type": "apiKey",
                "in": "header",
                "name": "X-Vitalfarm-Hook-Secret",
                "description": "The broker hooks' shared secret (`mqtt_hook_secret`), for an external MQTT broker only."
            },
            MQTT_HOOK_BASIC: {
                "type": "http",
                "scheme": "basic",
                "description": "The broker hooks' shared secret (`mqtt_hook_secret`) as the password of Basic authentication (any user name), for brokers that cannot send custom headers."
            }
        });
        components["securitySchemes"][OAUTH2] = oauth2_scheme();
        components["responses"] = problem_responses();
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch" | "head") {
                    add_standard_responses(op);
                }
            }
        }
    }
}

/// Third-party apps: authorization code with PKCE (S256) for acting for a
/// person, client credentials for acting for the app's own membership.
/// Operations name the scope they need in their security requirement.
fn oauth2_scheme() -> Value {
    let scopes: Map<String, Value> = vitalfarm_domain::oauth::Scope::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), Value::String(s.describe().to_owned())))
        .collect();
    json!({
        "type": "oauth2",
        "description": "Access tokens issued to registered apps (`/v1/memberships/{mid}/apps`). PKCE with S256 is required; refresh tokens only with `offline_access`; metadata at `/.well-known/oauth-authorization-server`.",
        "flows": {
            "authorizationCode": {
                "authorizationUrl": "/oauth/authorize",
                "tokenUrl": "/oauth/token",
                "refreshUrl": "/oauth/token",
                "scopes": scopes
            },
            "clientCredentials": {
                "tokenUrl": "/oauth/token",
                "scopes": scopes
            }
        }
    })
}

fn problem_responses() -> Value {
    let mut out = Map::new();
    for kind in ProblemKind::ALL {
        out.insert(kind.component().to_owned(), response(kind.title(), &[kind]));
    }
    // One status can carry one response: 400 covers malformed JSON,
    // invalid parameters and requests malformed at the HTTP level.
    out.insert(
        "BadRequest".into(),
        response(
            "The body is not valid JSON, a path or query parameter is invalid, or the request is malformed at the HTTP level.",
            &[
                ProblemKind::InvalidJson,
                ProblemKind::InvalidParameter,
                ProblemKind::MalformedRequest,
            ],
        ),
    );
    Value::Object(out)
}

fn response(description: &str, kinds: &[ProblemKind]) -> Value {
    let examples: Map<String, Value> = kinds
        .iter()
        .map(|k| (k.slug().to_owned(), json!({"summary": k.title(), "value": k.example()})))
        .collect();
    let mut r = json!({
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}, "examples": examples}}
    });
    if kinds.contains(&ProblemKind::RateLimited) {
        r["headers"] = json!({"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 0}}});
    }
    if kinds.contains(&ProblemKind::Unauthorized) || kinds.contains(&ProblemKind::InvalidCredentials) {
        r["headers"] = json!({"WWW-Authenticate": {"description": "The scheme to authenticate with.", "schema": {"type": "string"}}});
    }
    r
}

fn add_standard_responses(op: &mut Value) {
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|reqs| reqs.iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty())));
    let params = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_path_param = params.iter().any(|p| p["in"] == "path");
    let has_query_param = params.iter().any(|p| p["in"] == "query");
    let has_json_body = op
        .pointer("/requestBody/content")
        .and_then(Value::as_object)
        .is_some_and(|c| c.keys().any(|k| k.contains("json")));

    let mut wanted: Vec<(&str, &str)> = Vec::new();
    if has_json_body || has_path_param || has_query_param {
        wanted.push(("400", "BadRequest"));
    }
    if secured {
        wanted.push(("401", ProblemKind::Unauthorized.component()));
    }
    if has_path_param {
        wanted.push(("404", ProblemKind::NotFound.component()));
    }
    if has_json_body {
        wanted.push(("413", ProblemKind::PayloadTooLarge.component()));
        wanted.push(("415", ProblemKind::UnsupportedMediaType.component()));
        wanted.push(("422", ProblemKind::ValidationFailed.component()));
    }
    wanted.push(("500", ProblemKind::Internal.component()));

    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, component) in wanted {
        responses
            .entry(status)
            .or_insert_with(|| json!({"$ref": format!("#/components/responses/{component}")}));
    }
    // Sort by status so the reference reads 2xx, 4xx, 5xx.
    let mut sorted: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    responses.extend(sorted);
}

/// Marks a problem response of `kind` for `status` on an operation declared
/// by a handler (403, 409, 429...): handlers write `response = ...` with the
/// type below, and utoipa references the component.
macro_rules! problem_response {
    ($($name:ident => $kind:ident),* $(,)?) => {
        $(
            #[doc = concat!("The `", stringify!($kind), "` problem response.")]
            pub struct $name;
            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, utoipa::openapi::RefOr<utoipa::openapi::response::Response>) {
                    let kind = ProblemKind::$kind;
                    let value = response(kind.title(), &[kind]);
                    let parsed = serde_json::from_value(value).unwrap_or_else(|_| {
                        utoipa::openapi::response::Response::new(kind.title())
                    });
                    (kind.component(), utoipa::openapi::RefOr::T(parsed))
                }
            }
        )*
    };
}

problem_response! {
    ForbiddenResponse => Forbidden,
    ConflictResponse => Conflict,
    RateLimitedResponse => RateLimited,
    InvalidCredentialsResponse => InvalidCredentials,
    UnavailableResponse => Unavailable,
    NotFoundResponse => NotFound,
    PreconditionFailedResponse => PreconditionFailed,
    LengthRequiredResponse => LengthRequired,
    RangeNotSatisfiableResponse => RangeNotSatisfiable,
    QuotaExceededResponse => InsufficientStorage,
    GoneResponse => Gone,
    DataIntegrityResponse => DataIntegrity,
    PayloadTooLargeResponse => PayloadTooLarge,
    InsufficientScopeResponse => InsufficientScope,
    RequestTimeoutResponse => RequestTimeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secured_body_operation_gets_the_full_set() {
        let mut op = json!({
            "security": [{"bearer_jwt": []}],
            "parameters": [{"name": "mid", "in": "path"}],
            "requestBody": {"content": {"application/json": {}}},
            "responses": {"201": {"description": "created"}}
        });
        add_standard_responses(&mut op);
        let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert_eq!(statuses, ["201", "400", "401", "404", "413", "415", "422", "500"]);
    }

    #[test]
    fn public_operation_without_input_gets_only_500() {
        let mut op = json!({"responses": {"200": {"description": "ok"}}});
        add_standard_responses(&mut op);
        assert_eq!(op["responses"].as_object().unwrap().len(), 2);
    }

    #[test]
    fn declared_responses_are_kept() {
        let mut op = json!({"requestBody": {"content": {"application/json": {}}}, "responses": {"422": {"description": "mine"}}});
        add_standard_responses(&mut op);
        assert_eq!(op["responses"]["422"]["description"], "mine");
    }
}

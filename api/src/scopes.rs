//! Which OAuth2 scope each endpoint needs when an app calls it: one table,
//! consulted by the `Auth` extractor for every request an app makes, keyed
//! by the route's method and OpenAPI path. `None` means apps may not call
//! the endpoint at all (people and keys management, app registration,
//! sign-in, device and broker endpoints, public ones). A route missing from
//! the table is refused to apps too, and a unit test fails, so a new route
//! has to decide.

use vitalfarm_domain::oauth::Scope;

use Scope::*;

/// `(method, path, scope)`; paths as registered in `routes::all()`.
pub const TABLE: &[(&str, &str, Option<Scope>)] = &[
    // Service and sign-in endpoints take no bearer token.
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", None),
    ("GET", "/.well-known/jwks.json", None),
    ("GET", "/openapi.json", None),
    ("GET", "/docs", None),
    ("POST", "/v1/auth/signup", None),
    ("POST", "/v1/auth/accept-invitation", None),
    ("POST", "/v1/auth/login", None),
    ("POST", "/v1/auth/refresh", None),
    ("POST", "/v1/auth/logout", None),
    ("POST", "/v1/auth/verify-email", None),
    ("POST", "/v1/auth/resend-verification", None),
    ("POST", "/v1/auth/password-reset", None),
    ("POST", "/v1/auth/password-reset/confirm", None),
    // A person's own password and invitations: never an app's business.
    ("POST", "/v1/me/password", None),
    ("GET", "/v1/me/invitations", None),
    ("POST", "/v1/me/invitations/{id}/accept", None),
    ("POST", "/v1/me/invitations/{id}/decline", None),
    ("GET", "/v1/me", Some(Profile)),
    // Which apps act for a person is the person's own decision.
    ("GET", "/v1/me/authorizations", None),
    ("DELETE", "/v1/me/authorizations/{app_id}", None),
    ("GET", "/v1/memberships/{mid}", Some(Profile)),
    // Staff and keys: a person's or a key's business, never an app's.
    ("POST", "/v1/memberships/{mid}/members", None),
    ("GET", "/v1/memberships/{mid}/members", None),
    ("PATCH", "/v1/memberships/{mid}/members/{uid}", None),
    ("DELETE", "/v1/memberships/{mid}/members/{uid}", None),
    ("POST", "/v1/memberships/{mid}/api-keys", None),
    ("GET", "/v1/memberships/{mid}/api-keys", None),
    ("DELETE", "/v1/memberships/{mid}/api-keys/{kid}", None),
    ("GET", "/v1/metrics", None),
    ("POST", "/v1/memberships/{mid}/subjects", Some(ReadingsWrite)),
    ("GET", "/v1/memberships/{mid}/subjects", Some(ReadingsRead)),
    ("GET", "/v1/subjects/{sid}", Some(ReadingsRead)),
    ("PATCH", "/v1/subjects/{sid}", Some(ReadingsWrite)),
    ("POST", "/v1/memberships/{mid}/device-models", Some(DevicesWrite)),
    ("GET", "/v1/memberships/{mid}/device-models", Some(DevicesRead)),
    ("POST", "/v1/memberships/{mid}/devices", Some(DevicesWrite)),
    ("GET", "/v1/memberships/{mid}/devices", Some(DevicesRead)),
    ("POST", "/v1/devices/claim", Some(DevicesWrite)),
    ("GET", "/v1/devices/{did}", Some(DevicesRead)),
    ("PATCH", "/v1/devices/{did}", Some(DevicesWrite)),
    ("POST", "/v1/devices/{did}/rotate-secret", Some(DevicesWrite)),
    ("POST", "/v1/devices/{did}/assign", Some(DevicesWrite)),
    ("POST", "/v1/devices/{did}/commands", Some(DevicesWrite)),
    ("GET", "/v1/devices/{did}/commands", Some(DevicesRead)),
    ("GET", "/v1/devices/{did}/commands/{cid}", Some(DevicesRead)),
    // Devices authenticate themselves; brokers call the hooks.
    ("POST", "/v1/ingest/readings", None),
    ("POST", "/v1/mqtt/auth/user", None),
    ("POST", "/v1/mqtt/auth/superuser", None),
    ("POST", "/v1/mqtt/auth/acl", None),
    ("GET", "/v1/subjects/{sid}/readings", Some(ReadingsRead)),
    ("GET", "/v1/subjects/{sid}/readings/aggregate", Some(ReadingsRead)),
    ("GET", "/v1/subjects/{sid}/summary", Some(ReadingsRead)),
    ("GET", "/v1/farms/{fid}", Some(FilesRead)),
    ("PUT", "/v1/farms/{fid}/files/{path}", Some(FilesWrite)),
    ("GET", "/v1/farms/{fid}/files/{path}", Some(FilesRead)),
    ("HEAD", "/v1/farms/{fid}/files/{path}", Some(FilesRead)),
    ("DELETE", "/v1/farms/{fid}/files/{path}", Some(FilesWrite)),
    ("GET", "/v1/farms/{fid}/list", Some(FilesRead)),
    ("POST", "/v1/farms/{fid}/move", Some(FilesWrite)),
    ("GET", "/v1/farms/{fid}/export", Some(FilesRead)),
    // A share link hands a file to anyone: creating or revoking one
    // changes who can read the farm, so it is a write.
    ("POST", "/v1/farms/{fid}/share-links", Some(FilesWrite)),
    ("GET", "/v1/farms/{fid}/share-links", Some(FilesRead)),
    ("DELETE", "/v1/farms/{fid}/share-links/{lid}", Some(FilesWrite)),
    ("GET", "/v1/farms/{fid}/share-links/{lid}/uses", Some(FilesRead)),
    ("GET", "/v1/shared/{token}", None),
    // An app never registers or manages apps, its own included.
    ("POST", "/v1/memberships/{mid}/apps", None),
    ("GET", "/v1/memberships/{mid}/apps", None),
    ("GET", "/v1/memberships/{mid}/apps/{app_id}", None),
    ("DELETE", "/v1/memberships/{mid}/apps/{app_id}", None),
    ("POST", "/v1/memberships/{mid}/apps/{app_id}/rotate-secret", None),
    ("GET", "/oauth/authorize", None),
    ("POST", "/oauth/authorize", None),
    ("POST", "/oauth/token", None),
    ("POST", "/oauth/revoke", None),
    ("GET", "/.well-known/oauth-authorization-server", None),
    ("GET", "/v1/subjects/{sid}/fhir", Some(ReadingsRead)),
    // Consents are decided by people; an app may only see them.
    ("POST", "/v1/consent-requests", None),
    ("GET", "/v1/consent-requests", Some(ConsentsRead)),
    ("POST", "/v1/consent-requests/{id}/approve", None),
    ("POST", "/v1/consent-requests/{id}/deny", None),
    // Like deciding, previewing is the individual's own act.
    ("GET", "/v1/consent-requests/{id}/preview", None),
    ("POST", "/v1/consents", None),
    ("GET", "/v1/consents", Some(ConsentsRead)),
    ("GET", "/v1/consents/{id}", Some(ConsentsRead)),
    ("DELETE", "/v1/consents/{id}", None),
    ("GET", "/v1/shared-with-me", Some(ConsentsRead)),
    // The audit log is for the membership's owners and admins themselves.
    ("GET", "/v1/memberships/{mid}/audit", None),
    ("GET", "/v1/memberships/{mid}/audit/verify", None),
    // Exports hold everything, erasure destroys everything: people only.
    ("POST", "/v1/memberships/{mid}/exports", None),
    ("GET", "/v1/memberships/{mid}/exports", None),
    ("GET", "/v1/memberships/{mid}/exports/{eid}", None),
    ("GET", "/v1/memberships/{mid}/exports/{eid}/download", None),
    ("DELETE", "/v1/memberships/{mid}", None),
    // Public reference data: readable by any app that runs analytics.
    ("GET", "/v1/public-datasets", Some(AnalyticsRead)),
    ("GET", "/v1/public-datasets/{name}", Some(AnalyticsRead)),
    ("GET", "/v1/analytics/correlation", Some(AnalyticsRead)),
    ("POST", "/v1/analytics/cohort", Some(AnalyticsRead)),
    // Hospital imports write readings and farm files at once: people and
    // API keys only.
    ("POST", "/v1/memberships/{mid}/imports/fhir", None),
    ("GET", "/v1/subjects/{sid}/charts/{metric}.svg", Some(ReadingsRead)),
    // Also needs `files.read`, checked by the route: the recording is a
    // farm file.
    ("POST", "/v1/subjects/{sid}/ecg/analyze", Some(ReadingsRead)),
    ("GET", "/v1/memberships/{mid}/stream", Some(AlertsRead)),
    ("POST", "/v1/memberships/{mid}/webhooks", Some(WebhooksManage)),
    ("GET", "/v1/memberships/{mid}/webhooks", Some(WebhooksManage)),
    ("GET", "/v1/memberships/{mid}/webhooks/{wid}", Some(WebhooksManage)),
    ("DELETE", "/v1/memberships/{mid}/webhooks/{wid}", Some(WebhooksManage)),
    (
        "POST",
        "/v1/memberships/{mid}/webhooks/{wid}/rotate-secret",
        Some(WebhooksManage),
    ),
    (
        "GET",
        "/v1/memberships/{mid}/webhooks/{wid}/deliveries",
        Some(WebhooksManage),
    ),
    (
        "POST",
        "/v1/memberships/{mid}/webhooks/{wid}/test",
        Some(WebhooksManage),
    ),
    ("POST", "/v1/memberships/{mid}/alert-rules", Some(AlertsWrite)),
    ("GET", "/v1/memberships/{mid}/alert-rules", Some(AlertsRead)),
    ("GET", "/v1/memberships/{mid}/alert-rules/{rid}", Some(AlertsRead)),
    ("DELETE", "/v1/memberships/{mid}/alert-rules/{rid}", Some(AlertsWrite)),
    ("GET", "/v1/memberships/{mid}/alerts", Some(AlertsRead)),
    ("POST", "/v1/alerts/{aid}/ack", Some(AlertsWrite)),
    ("GET", "/v1/mashups", Some(AnalyticsRead)),
    ("POST", "/v1/mashups/elderly-watch/run", Some(AnalyticsRead)),
    ("GET", "/v1/mashups/infant-monitor/{sid}", Some(AnalyticsRead)),
];

/// The OpenAPI path of an actix match pattern (`{path:.+}` is `{path}`).
pub fn openapi_path(pattern: &str) -> String {
    pattern.replace("{path:.+}", "{path}")
}

/// What an app needs to call `method path`: `Some(Some(scope))`, or
/// `Some(None)` when apps may not call it; `None` when the route is not in
/// the table (treated like `Some(None)` by callers).
pub fn lookup(method: &str, path: &str) -> Option<Option<Scope>> {
    TABLE
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, s)| *s)
}

/// The scope an app needs for `method` on the actix `pattern`, or `None`
/// when apps may not call it.
pub fn required(method: &str, pattern: &str) -> Option<Scope> {
    lookup(method, &openapi_path(pattern)).flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::routes;

    #[test]
    fn every_route_has_a_row_and_every_row_a_route() {
        let registered: BTreeSet<(String, String)> = routes::all()
            .table()
            .into_iter()
            .map(|(m, p)| (m.as_str().to_owned(), p.to_owned()))
            .collect();
        let rows: BTreeSet<(String, String)> = TABLE
            .iter()
            .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(rows.len(), TABLE.len(), "a route is in the scope table twice");
        let missing: Vec<_> = registered.difference(&rows).collect();
        assert!(
            missing.is_empty(),
            "routes without a row in api/src/scopes.rs (decide which scope an app needs, or None): {missing:?}"
        );
        let stale: Vec<_> = rows.difference(&registered).collect();
        assert!(stale.is_empty(), "scope rows for routes that do not exist: {stale:?}");
    }

    #[test]
    fn lookups_use_the_actix_pattern() {
        assert_eq!(
            required("GET", "/v1/farms/{fid}/files/{path:.+}"),
            Some(Scope::FilesRead)
        );
        assert_eq!(
            required("GET", "/v1/subjects/{sid}/readings"),
            Some(Scope::ReadingsRead)
        );
        assert_eq!(required("POST", "/v1/memberships/{mid}/api-keys"), None);
        assert_eq!(required("GET", "/v1/not-a-route"), None);
    }
}

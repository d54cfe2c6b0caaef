//! The OpenAPI document: utoipa derives the operations from the handlers'
//! annotations, `vitalfarm_openapi::finalize` adds what every operation
//! shares. Generated once per process.

use std::sync::LazyLock;

use utoipa::OpenApi;
use vitalfarm_openapi::{FieldError, Problem};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        routes::health::jwks,
        routes::health::openapi_json,
        routes::health::docs,
        routes::auth::signup,
        routes::auth::accept_invitation,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::account::verify_email,
        routes::account::resend_verification,
        routes::account::request_password_reset,
        routes::account::confirm_password_reset,
        routes::account::change_password,
        routes::account::list_invitations,
        routes::account::accept_invitation,
        routes::account::decline_invitation,
        routes::me::me,
        routes::me::list_authorizations,
        routes::me::revoke_authorization,
        routes::memberships::get_membership,
        routes::members::add_member,
        routes::members::list_members,
        routes::members::update_member,
        routes::members::remove_member,
        routes::api_keys::create_key,
        routes::api_keys::list_keys,
        routes::api_keys::revoke_key,
        routes::subjects::create,
        routes::subjects::list,
        routes::subjects::get,
        routes::subjects::update,
        routes::metrics_catalog::catalog,
        routes::devices::create_model,
        routes::devices::list_models,
        routes::devices::register,
        routes::devices::list,
        routes::devices::claim,
        routes::devices::get,
        routes::devices::update,
        routes::devices::rotate_secret,
        routes::devices::assign,
        routes::commands::create,
        routes::commands::list,
        routes::commands::get,
        routes::readings::ingest,
        routes::readings::list,
        routes::readings::aggregate,
        routes::readings::summary,
        routes::consents::create_request,
        routes::consents::list_requests,
        routes::consents::approve,
        routes::consents::deny,
        routes::consents::preview,
        routes::consents::grant,
        routes::consents::list,
        routes::consents::get,
        routes::consents::revoke,
        routes::consents::shared_with_me,
        routes::mqtt_auth::user,
        routes::mqtt_auth::superuser,
        routes::mqtt_auth::acl,
        routes::farms::farm_info,
        routes::farms::upload,
        routes::farms::download,
        routes::farms::head,
        routes::farms::delete,
        routes::farms::list,
        routes::farms::move_file,
        routes::farm_export::export,
        routes::share_links::create,
        routes::share_links::list,
        routes::share_links::revoke,
        routes::share_links::uses,
        routes::share_links::download,
        routes::audit::list,
        routes::audit::verify,
        routes::fhir::bundle,
        routes::apps::create_app,
        routes::apps::list_apps,
        routes::apps::get_app,
        routes::apps::delete_app,
        routes::apps::rotate_secret,
        routes::oauth::authorize_page,
        routes::oauth::authorize_submit,
        routes::oauth::token,
        routes::oauth::revoke,
        routes::oauth::metadata,
        routes::exports::create,
        routes::exports::list,
        routes::exports::get,
        routes::exports::download,
        routes::erasure::erase,
        routes::public_datasets::list,
        routes::public_datasets::get,
        routes::analytics::correlation,
        routes::charts::chart_svg,
        routes::ecg::analyze,
        routes::stream::stream,
        routes::webhooks::create,
        routes::webhooks::list,
        routes::webhooks::get,
        routes::webhooks::delete,
        routes::webhooks::rotate_secret,
        routes::webhooks::deliveries,
        routes::webhooks::test,
        routes::alerts::create_rule,
        routes::alerts::list_rules,
        routes::alerts::get_rule,
        routes::alerts::delete_rule,
        routes::alerts::list_alerts,
        routes::alerts::ack,
        routes::mashups::catalog,
        routes::mashups::elderly_watch,
        routes::mashups::infant_monitor,
        routes::cohort::cohort_stats,
        routes::imports::import_fhir,
    ),
    components(schemas(Problem, FieldError))
)]
struct ApiDoc;

static SPEC: LazyLock<String> = LazyLock::new(|| {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    vitalfarm_openapi::finalize(&mut doc);
    add_app_scopes(&mut doc);
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
});

/// Lets every operation an OAuth2 app may call say so: its security
/// requirements gain `oauth2` with the scope from `crate::scopes`.
fn add_app_scopes(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(serde_json::Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(Some(scope)) = crate::scopes::lookup(&method.to_uppercase(), path) else {
                continue;
            };
            if let Some(security) = op.get_mut("security").and_then(serde_json::Value::as_array_mut)
                && !security.is_empty()
            {
                security.push(serde_json::json!({ vitalfarm_openapi::doc::OAUTH2: [scope.as_str()] }));
            }
        }
    }
}

/// The published document as pretty JSON, exactly as committed in
/// `openapi/openapi.json`.
pub fn spec_json() -> &'static str {
    &SPEC
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn spec() -> serde_json::Value {
        serde_json::from_str(spec_json()).unwrap()
    }

    #[test]
    fn committed_spec_matches_the_code() {
        assert!(
            vitalfarm_openapi::COMMITTED_SPEC == spec_json(),
            "openapi/openapi.json is stale: run `cargo run -- openapi --out openapi/openapi.json`"
        );
    }

    #[test]
    fn every_registered_route_is_documented_and_vice_versa() {
        let registered: BTreeSet<(String, String)> = routes::all()
            .table()
            .into_iter()
            .map(|(m, p)| (m.as_str().to_lowercase(), p.to_owned()))
            .collect();
        let spec = spec();
        let mut documented = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&registered).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from the spec: {undocumented:?}"
        );
        assert!(unrouted.is_empty(), "spec operations with no route: {unrouted:?}");
    }

    #[test]
    fn every_operation_is_complete() {
        let spec = spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let at = format!("{method} {path}");
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{at}: no tag");
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{at}: no summary"
                );
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2') || s.starts_with('3')),
                    "{at}: no success response"
                );
                assert!(responses.contains_key("500"), "{at}: no 500 problem");
                // Public by design: signing in, and share links (the token in
                // the path is the credential).
                // The broker hooks are public too: the device credentials
                // they check are in the body.
                let public = path.starts_with("/v1/auth/")
                    || path.starts_with("/v1/shared/")
                    || path.starts_with("/v1/mqtt/auth/")
                    || path == "/v1/metrics";
                if path.starts_with("/v1/") && !public {
                    assert!(
                        op["security"].as_array().is_some_and(|s| !s.is_empty()),
                        "{at}: no security"
                    );
                    assert!(responses.contains_key("401"), "{at}: no 401");
                }
                if path.contains('{') {
                    assert!(responses.contains_key("404"), "{at}: no 404");
                }
            }
        }
    }

    /// Whether the JSON content `media` carries an example, inline or on the
    /// schema it references.
    fn has_example(spec: &serde_json::Value, media: &serde_json::Value) -> bool {
        if media.get("example").is_some() || media.get("examples").is_some() {
            return true;
        }
        let schema = &media["schema"];
        if schema.get("example").is_some() || schema.get("examples").is_some() {
            return true;
        }
        schema["$ref"]
            .as_str()
            .and_then(|r| spec.pointer(r.trim_start_matches('#')))
            .is_some_and(|s| s.get("example").is_some() || s.get("examples").is_some())
    }

    #[test]
    fn every_json_body_and_response_has_an_example() {
        let spec = spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(media) = op.pointer("/requestBody/content/application~1json") {
                    assert!(
                        has_example(&spec, media),
                        "{method} {path}: request body has no example"
                    );
                }
                for (status, response) in op["responses"].as_object().unwrap() {
                    if let Some(media) = response.pointer("/content/application~1json") {
                        assert!(
                            has_example(&spec, media),
                            "{method} {path} {status}: response has no example"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn spec_is_openapi_3_1_with_security_schemes() {
        let spec = spec();
        assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
        let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
        assert!(schemes.contains_key("bearer_jwt") && schemes.contains_key("api_key"));
        // Every $ref points at something that exists.
        let text = spec_json();
        for piece in text.split("\"$ref\": \"#/").skip(1) {
            let pointer = format!("/{}", piece.split('"').next().unwrap());
            assert!(spec.pointer(&pointer).is_some(), "dangling $ref {pointer}");
        }
    }
}

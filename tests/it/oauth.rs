//! OAuth2 for third-party apps, driven by the `oauth2` crate as a real
//! client: the consent page fetched and posted like a browser would, the
//! redirect parsed (nothing listens at the redirect URI), tokens used on the
//! API within and outside their scopes, refresh rotation, reuse detection,
//! client_credentials, revocation, and the requests that must be refused.

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::url::{Url, form_urlencoded};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, RevocationUrl, Scope,
    TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;
use vitalfarm_storage::entity::oauth_code;
use vitalfarm_tests::{Member, PASSWORD, TestApp};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet, EndpointSet>;

/// The `oauth2` crate's HTTP interface over the tests' reqwest client
/// (redirects off, as the crate asks).
async fn send(client: reqwest::Client, req: HttpRequest) -> Result<HttpResponse, std::io::Error> {
    let (parts, body) = req.into_parts();
    let res = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(std::io::Error::other)?;
    let mut builder = oauth2::http::Response::builder().status(res.status());
    for (k, v) in res.headers() {
        builder = builder.header(k, v);
    }
    let bytes = res.bytes().await.map_err(std::io::Error::other)?;
    builder.body(bytes.to_vec()).map_err(std::io::Error::other)
}

fn http(
    app: &TestApp,
) -> impl Fn(HttpRequest) -> futures_util::future::BoxFuture<'static, Result<HttpResponse, std::io::Error>> {
    let client = app.client.clone();
    move |req| Box::pin(send(client.clone(), req))
}

/// Revokes `token` (RFC 7009) as `client_id`. By hand: the `oauth2` crate
/// refuses revocation endpoints that are not https, and the test server
/// speaks plain http.
pub(crate) async fn revoke(
    app: &TestApp,
    client_id: &str,
    secret: Option<&str>,
    token: &str,
    hint: &str,
) -> reqwest::Response {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token).append_pair("token_type_hint", hint);
    let mut req = app
        .client
        .post(app.url("/oauth/revoke"))
        .header("content-type", "application/x-www-form-urlencoded");
    match secret {
        Some(secret) => {
            use base64::Engine;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
            req = req.header("authorization", format!("Basic {basic}"));
        }
        None => {
            form.append_pair("client_id", client_id);
        }
    }
    req.body(form.finish()).send().await.unwrap()
}

fn oauth_client(app: &TestApp, client_id: &str, secret: Option<&str>) -> Client {
    let mut c = BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(AuthUrl::new(app.url("/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
        .set_revocation_url(RevocationUrl::new(app.url("/oauth/revoke")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
    if let Some(secret) = secret {
        c = c.set_client_secret(ClientSecret::new(secret.to_owned()));
    }
    c
}

/// Registers an app for `owner`'s membership; returns its client id and
/// secret (confidential clients only).
async fn register(app: &TestApp, owner: &Member, client_type: &str, scopes: &[&str]) -> (String, Option<String>) {
    let res = app
        .post(
            &format!("/v1/memberships/{}/apps", owner.membership_id),
            Some(&owner.token),
            json!({"name": "Sleep Coach <beta>", "client_type": client_type, "redirect_uris": [REDIRECT], "scopes": scopes}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let secret = res.body["client_secret"].as_str().map(str::to_owned);
    assert_eq!(secret.is_some(), client_type == "confidential");
    (res.str("/app/client_id"), secret)
}

/// The hidden fields of the consent page's form.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    page.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|tag| {
            let name = tag.split("name=\"").nth(1).unwrap().split('"').next().unwrap();
            let value = tag.split("value=\"").nth(1).unwrap().split('"').next().unwrap();
            (name.to_owned(), unescape(value))
        })
        .collect()
}

/// What a browser has after loading the consent page.
struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    html: String,
    fields: Vec<(String, String)>,
    cookie: Option<String>,
}

async fn open(app: &TestApp, url: &str) -> Page {
    let res = app.client.get(url).send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap().to_owned());
    let html = res.text().await.unwrap();
    let fields = hidden_fields(&html);
    Page {
        status,
        headers,
        html,
        fields,
        cookie,
    }
}

/// Posts the consent form as a browser would (with the page's cookie);
/// returns the status and the `Location`.
async fn submit(
    app: &TestApp,
    page: &Page,
    extra: &[(&str, &str)],
    cookie: bool,
) -> (StatusCode, Option<String>, String) {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &page.fields {
        form.append_pair(k, v);
    }
    for (k, v) in extra {
        form.append_pair(k, v);
    }
    let mut req = app
        .client
        .post(app.url("/oauth/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.finish());
    if let (true, Some(c)) = (cookie, &page.cookie) {
        req = req.header("cookie", c);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, location, res.text().await.unwrap())
}

fn query_of(location: &str) -> Vec<(String, String)> {
    Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

fn param(location: &str, name: &str) -> Option<String> {
    query_of(location).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Runs the browser part of the flow for `user`: returns the code and the
/// PKCE verifier.
async fn authorize(app: &TestApp, client: &Client, user: &Member, scopes: &[&str]) -> (String, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
        .set_pkce_challenge(challenge)
        .url();
    let page = open(app, url.as_str()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let (status, location, body) = submit(
        app,
        &page,
        &[("email", &user.email), ("password", PASSWORD), ("decision", "approve")],
        true,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let location = location.unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some(csrf.secret().as_str()));
    (param(&location, "code").unwrap(), verifier)
}

/// An access token for `user` from a new public app of `developer`,
/// approved by `user` with exactly `scopes`.
pub(crate) async fn user_app_token(app: &TestApp, developer: &Member, user: &Member, scopes: &[&str]) -> String {
    user_app(app, developer, user, scopes).await.1
}

/// A new public app of `developer` approved by `user` with exactly
/// `scopes`: its client id (the app id) and an access token.
pub(crate) async fn user_app(app: &TestApp, developer: &Member, user: &Member, scopes: &[&str]) -> (String, String) {
    let (client_id, _) = register(app, developer, "public", scopes).await;
    let client = oauth_client(app, &client_id, None);
    let (code, verifier) = authorize(app, &client, user, scopes).await;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http(app))
        .await
        .expect("code exchange")
        .access_token()
        .secret()
        .clone();
    (client_id, token)
}

/// A client_credentials access token of a new confidential app of
/// `company` with all of `scopes`.
pub(crate) async fn company_app_token(app: &TestApp, company: &Member, scopes: &[&str]) -> String {
    let (client_id, secret) = register(app, company, "confidential", scopes).await;
    oauth_client(app, &client_id, secret.as_deref())
        .exchange_client_credentials()
        .request_async(&http(app))
        .await
        .expect("client_credentials")
        .access_token()
        .secret()
        .clone()
}

fn oauth_error<T: std::fmt::Debug>(
    result: Result<T, RequestTokenError<std::io::Error, oauth2::StandardErrorResponse<BasicErrorResponseType>>>,
) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        other => panic!("expected an OAuth error response, got {other:?}"),
    }
}

async fn self_subject(app: &TestApp, user: &Member) -> String {
    let res = app
        .get(&format!("/v1/memberships/{}/subjects", user.membership_id), &user.token)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.str("/items/0/id")
}

#[tokio::test]
async fn authorization_code_with_pkce_scopes_refresh_rotation_and_reuse() {
    let app = TestApp::spawn().await;
    let dev = app.company("dev@sleepcoach.example").await;
    let ada = app.individual("ada@example.org").await;
    let (client_id, _) = register(&app, &dev, "public", &["profile", "readings.read", "offline_access"]).await;
    let client = oauth_client(&app, &client_id, None);

    // The consent page: who asks, for what, and a page that cannot be
    // framed or run script.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("readings.read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let page = open(&app, url.as_str()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("Sleep Coach &lt;beta&gt;"),
        "the app's name, escaped"
    );
    assert!(
        page.html.contains("dev@sleepcoach.example&#39;s company"),
        "the owning membership"
    );
    assert!(page.html.contains("Read health readings"), "the scope in plain words");
    assert!(!page.html.contains("See your name"), "only the scopes asked for");
    assert!(page.html.contains("type=\"password\"") && page.html.contains("value=\"deny\""));
    assert!(!page.html.contains("<script"));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        page.cookie
            .as_deref()
            .is_some_and(|c| c.starts_with("vf_oauth_consent="))
    );

    // The whole flow.
    let (code, verifier) = authorize(&app, &client, &ada, &["profile", "readings.read", "offline_access"]).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http(&app))
        .await
        .expect("code exchange");
    let access = tokens.access_token().secret().clone();
    // Both sides' audit logs tell: the app's registration in its
    // developer's, the authorization and the token in the user's.
    let ada_log = app.audit_actions(ada.membership_id, &ada.token).await;
    for action in ["app.authorized", "app.token_issued"] {
        assert!(ada_log.iter().any(|a| a == action), "{action}: {ada_log:?}");
    }
    let dev_log = app.audit_actions(dev.membership_id, &dev.token).await;
    assert!(dev_log.iter().any(|a| a == "app.registered"), "{dev_log:?}");
    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .clone();
    assert!(tokens.expires_in().is_some());

    let me = app.get("/v1/me", &access).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["user"]["email"], "ada@example.org");
    let subject = self_subject(&app, &ada).await;
    let readings = app
        .get(&format!("/v1/subjects/{subject}/readings?metric=heart_rate"), &access)
        .await;
    assert_eq!(readings.status, StatusCode::OK, "{}", readings.text);

    // Outside the scopes.
    let res = app.get(&format!("/v1/farms/{}", ada.farm_id), &access).await;
    res.problem(403, "insufficient-scope");
    let challenge = res.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"files.read\""),
        "{challenge}"
    );
    app.post(
        &format!("/v1/memberships/{}/subjects", ada.membership_id),
        Some(&access),
        json!({"kind": "dependent", "display_name": "Baby"}),
    )
    .await
    .problem(403, "insufficient-scope");
    // Never for apps, whatever the scopes.
    app.get(&format!("/v1/memberships/{}/apps", ada.membership_id), &access)
        .await
        .problem(403, "forbidden");
    // Someone else's data is still someone else's.
    let subject_of_dev = app
        .get(&format!("/v1/memberships/{}", dev.membership_id), &access)
        .await;
    subject_of_dev.problem(404, "not-found");

    // Refresh rotation: a new refresh token each time, the old one spent.
    let rotated = client
        .exchange_refresh_token(&refresh)
        .request_async(&http(&app))
        .await
        .expect("refresh");
    let next = rotated.refresh_token().expect("a new refresh token").clone();
    assert_ne!(next.secret(), refresh.secret());
    let access2 = rotated.access_token().secret().clone();
    assert_eq!(app.get("/v1/me", &access2).await.status, StatusCode::OK);

    // Reusing the spent one revokes the whole grant.
    let reused = client.exchange_refresh_token(&refresh).request_async(&http(&app)).await;
    assert_eq!(oauth_error(reused), BasicErrorResponseType::InvalidGrant);
    let after = client.exchange_refresh_token(&next).request_async(&http(&app)).await;
    assert_eq!(oauth_error(after), BasicErrorResponseType::InvalidGrant);
    app.get("/v1/me", &access2).await.problem(401, "unauthorized");
    app.get("/v1/me", &access).await.problem(401, "unauthorized");

    // Without offline_access there is no refresh token.
    let (code, verifier) = authorize(&app, &client, &ada, &["profile"]).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http(&app))
        .await
        .unwrap();
    assert!(tokens.refresh_token().is_none());
    app.get(
        &format!("/v1/subjects/{subject}/readings?metric=heart_rate"),
        tokens.access_token().secret(),
    )
    .await
    .problem(403, "insufficient-scope");
    // The user's own token is not an app token and keeps working.
    assert_eq!(app.get("/v1/me", &ada.token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn codes_are_single_use_short_lived_and_bound_to_verifier_redirect_and_client() {
    let app = TestApp::spawn().await;
    let dev = app.company("dev@codes.example").await;
    let ada = app.individual("ada@codes.example").await;
    let (client_id, secret) = register(&app, &dev, "confidential", &["profile"]).await;
    let secret = secret.unwrap();
    let client = oauth_client(&app, &client_id, Some(&secret));

    // Reused code: the second exchange fails and revokes the first's tokens.
    let (code, verifier) = authorize(&app, &client, &ada, &["profile"]).await;
    let verifier_copy = PkceCodeVerifier::new(verifier.secret().clone());
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http(&app))
        .await
        .expect("first exchange, HTTP Basic");
    let access = tokens.access_token().secret().clone();
    assert_eq!(app.get("/v1/me", &access).await.status, StatusCode::OK);
    let again = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier_copy)
        .request_async(&http(&app))
        .await;
    assert_eq!(oauth_error(again), BasicErrorResponseType::InvalidGrant);
    app.get("/v1/me", &access).await.problem(401, "unauthorized");

    // Wrong verifier.
    let (code, _) = authorize(&app, &client, &ada, &["profile"]).await;
    let (_, wrong) = PkceCodeChallenge::new_random_sha256();
    let res = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(wrong)
        .request_async(&http(&app))
        .await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidGrant);

    // No verifier at all.
    let (code, _) = authorize(&app, &client, &ada, &["profile"]).await;
    let res = client
        .exchange_code(AuthorizationCode::new(code))
        .request_async(&http(&app))
        .await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidRequest);

    // Another redirect URI than the code was issued for.
    let (code, verifier) = authorize(&app, &client, &ada, &["profile"]).await;
    let res = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .set_redirect_uri(std::borrow::Cow::Owned(
            RedirectUrl::new("http://127.0.0.1:9/other".into()).unwrap(),
        ))
        .request_async(&http(&app))
        .await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidGrant);

    // Expired: codes live 60 seconds.
    let (code, verifier) = authorize(&app, &client, &ada, &["profile"]).await;
    oauth_code::Entity::update_many()
        .col_expr(
            oauth_code::Column::ExpiresAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(oauth_code::Column::UsedAt.is_null())
        .exec(app.running.state.db.conn())
        .await
        .unwrap();
    let res = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http(&app))
        .await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidGrant);

    // Wrong client secret, by Basic and in the body; a code of this client
    // is useless to another client.
    let (code, verifier) = authorize(&app, &client, &ada, &["profile"]).await;
    let verifier_copy = PkceCodeVerifier::new(verifier.secret().clone());
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let wrong = oauth_client(&app, &client_id, Some("vf_cs_wrong")).set_auth_type(auth);
        let res = wrong
            .exchange_code(AuthorizationCode::new(code.clone()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
            .request_async(&http(&app))
            .await;
        assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidClient);
    }
    let (other_id, other_secret) = register(&app, &dev, "confidential", &["profile"]).await;
    let other = oauth_client(&app, &other_id, other_secret.as_deref());
    let res = other
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http(&app))
        .await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidGrant);
    // client_secret_post works, and the code was not spent by the failures.
    let tokens = client
        .clone()
        .set_auth_type(AuthType::RequestBody)
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier_copy)
        .request_async(&http(&app))
        .await
        .expect("client_secret_post");
    assert_eq!(
        app.get("/v1/me", tokens.access_token().secret()).await.status,
        StatusCode::OK
    );

    // A confidential client without its secret is refused.
    let bare = oauth_client(&app, &client_id, None);
    let res = bare.exchange_client_credentials().request_async(&http(&app)).await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidClient);
}

#[tokio::test]
async fn the_authorize_endpoint_refuses_bad_requests_safely() {
    let app = TestApp::spawn().await;
    let dev = app.company("dev@refuse.example").await;
    let ada = app.individual("ada@refuse.example").await;
    let (client_id, _) = register(&app, &dev, "public", &["profile"]).await;
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let good = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "profile"),
        ("state", "xyz"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let url = |changes: &[(&str, Option<&str>)]| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in good {
            match changes.iter().find(|(c, _)| *c == k) {
                Some((_, Some(new))) => {
                    q.append_pair(k, new);
                }
                Some((_, None)) => {}
                None => {
                    q.append_pair(k, v);
                }
            }
        }
        app.url(&format!("/oauth/authorize?{}", q.finish()))
    };

    // Unknown client or unregistered redirect URI: an error page, no redirect.
    for changes in [
        vec![("redirect_uri", Some("http://127.0.0.1:9/callback/"))],
        vec![("redirect_uri", Some("https://evil.example/callback"))],
        vec![("redirect_uri", None)],
        vec![("client_id", Some("01935c6e-0000-7000-8000-000000000099"))],
        vec![("client_id", Some("not-a-client"))],
    ] {
        let page = open(&app, &url(&changes)).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{changes:?}");
        assert!(page.headers.get("location").is_none());
        assert!(page.html.contains("cannot continue"));
        assert_eq!(page.headers["x-frame-options"], "DENY");
    }

    // Anything else goes back to the app with an error and the state.
    for (changes, error) in [
        (vec![("code_challenge", None)], "invalid_request"),
        (vec![("code_challenge_method", None)], "invalid_request"),
        (vec![("code_challenge_method", Some("plain"))], "invalid_request"),
        (vec![("code_challenge", Some("too-short"))], "invalid_request"),
        (vec![("response_type", Some("token"))], "unsupported_response_type"),
        (vec![("scope", Some("profile files.write"))], "invalid_scope"),
        (vec![("scope", Some("profile admin"))], "invalid_scope"),
    ] {
        let res = app.client.get(url(&changes)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "{changes:?}");
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(param(&location, "error").as_deref(), Some(error), "{changes:?}");
        assert_eq!(param(&location, "state").as_deref(), Some("xyz"));
        assert!(param(&location, "code").is_none());
    }

    let page = open(&app, &url(&[])).await;
    assert_eq!(page.status, StatusCode::OK);
    // Deny.
    let (status, location, _) = submit(&app, &page, &[("decision", "deny")], true).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&location, "state").as_deref(), Some("xyz"));
    // Wrong password: the page again, no code.
    let (status, location, body) = submit(
        &app,
        &page,
        &[
            ("email", &ada.email),
            ("password", "not the password"),
            ("decision", "approve"),
        ],
        true,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(location.is_none() && body.contains("Wrong email or password"));
    // Without the browser's cookie (a cross-site post): refused.
    let (status, location, body) = submit(
        &app,
        &page,
        &[("email", &ada.email), ("password", PASSWORD), ("decision", "approve")],
        false,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(location.is_none());
    // The request token is bound to the parameters: widening the scope on
    // the way back is refused.
    let mut tampered = Page {
        status: page.status,
        headers: page.headers.clone(),
        html: String::new(),
        fields: page.fields.clone(),
        cookie: page.cookie.clone(),
    };
    for (k, v) in &mut tampered.fields {
        if k == "state" {
            *v = "other".into();
        }
    }
    let (status, location, _) = submit(
        &app,
        &tampered,
        &[("email", &ada.email), ("password", PASSWORD), ("decision", "approve")],
        true,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(location.is_none());
    // The genuine form still works.
    let (status, location, _) = submit(
        &app,
        &page,
        &[("email", &ada.email), ("password", PASSWORD), ("decision", "approve")],
        true,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(param(&location.unwrap(), "code").is_some_and(|c| c.starts_with("vf_ac_")));
}

#[tokio::test]
async fn client_credentials_act_for_the_apps_membership_and_revocation_is_immediate() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme-cc.example").await;
    let other = app.company("owner@other-cc.example").await;
    let (client_id, secret) = register(&app, &acme, "confidential", &["readings.read", "readings.write"]).await;
    let client = oauth_client(&app, &client_id, secret.as_deref());

    let tokens = client
        .exchange_client_credentials()
        .add_scope(Scope::new("readings.read".into()))
        .request_async(&http(&app))
        .await
        .expect("client_credentials");
    assert!(
        tokens.refresh_token().is_none(),
        "no refresh tokens for client_credentials"
    );
    let access = tokens.access_token().secret().clone();
    let own = format!("/v1/memberships/{}/subjects", acme.membership_id);
    assert_eq!(app.get(&own, &access).await.status, StatusCode::OK);
    app.get(&format!("/v1/memberships/{}/subjects", other.membership_id), &access)
        .await
        .problem(404, "not-found");
    app.get("/v1/me", &access).await.problem(403, "insufficient-scope");
    // Granted readings.write, but the app's fixed role reads only.
    let writer = client
        .exchange_client_credentials()
        .request_async(&http(&app))
        .await
        .unwrap();
    assert_eq!(
        writer.scopes().map(|s| s.len()),
        Some(2),
        "both registered scopes by default"
    );
    app.post(
        &own,
        Some(writer.access_token().secret()),
        json!({"kind": "enrollee", "display_name": "Grace"}),
    )
    .await
    .problem(403, "forbidden");
    let res = client
        .exchange_client_credentials()
        .add_scope(Scope::new("files.read".into()))
        .request_async(&http(&app))
        .await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidScope);

    // Public clients have no client_credentials.
    let (public_id, _) = register(&app, &acme, "public", &["readings.read"]).await;
    let res = oauth_client(&app, &public_id, None)
        .exchange_client_credentials()
        .request_async(&http(&app))
        .await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::UnauthorizedClient);

    // Revocation (RFC 7009) cuts access on the next request; unknown
    // tokens are fine.
    let res = revoke(&app, &client_id, secret.as_deref(), &access, "access_token").await;
    assert_eq!(res.status(), StatusCode::OK);
    app.get(&own, &access).await.problem(401, "unauthorized");
    assert_eq!(
        app.get(&own, writer.access_token().secret()).await.status,
        StatusCode::OK,
        "another grant is untouched"
    );
    let res = revoke(&app, &client_id, secret.as_deref(), "vf_art_unknown", "refresh_token").await;
    assert_eq!(res.status(), StatusCode::OK, "unknown tokens answer 200");
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token=x&client_id={client_id}&client_secret=wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // Rotating the secret retires the old one; deleting the app ends its
    // tokens.
    let rotated = app
        .post(
            &format!("/v1/memberships/{}/apps/{client_id}/rotate-secret", acme.membership_id),
            Some(&acme.token),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_secret = rotated.str("/client_secret");
    let res = client.exchange_client_credentials().request_async(&http(&app)).await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidClient);
    let fresh = oauth_client(&app, &client_id, Some(&new_secret))
        .exchange_client_credentials()
        .request_async(&http(&app))
        .await
        .expect("the new secret works");
    let res = app
        .delete(
            &format!("/v1/memberships/{}/apps/{client_id}", acme.membership_id),
            &acme.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    app.get(&own, fresh.access_token().secret())
        .await
        .problem(401, "unauthorized");
}

#[tokio::test]
async fn refresh_token_revocation_ends_the_grant() {
    let app = TestApp::spawn().await;
    let dev = app.company("dev@revoke.example").await;
    let ada = app.individual("ada@revoke.example").await;
    let (client_id, secret) = register(&app, &dev, "confidential", &["profile", "offline_access"]).await;
    let client = oauth_client(&app, &client_id, secret.as_deref());
    let (code, verifier) = authorize(&app, &client, &ada, &["profile", "offline_access"]).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http(&app))
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();
    assert_eq!(app.get("/v1/me", &access).await.status, StatusCode::OK);
    let res = revoke(
        &app,
        &client_id,
        secret.as_deref(),
        tokens.refresh_token().unwrap().secret(),
        "refresh_token",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.get("/v1/me", &access).await.problem(401, "unauthorized");
    let res = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http(&app))
        .await;
    assert_eq!(oauth_error(res), BasicErrorResponseType::InvalidGrant);
}

#[tokio::test]
async fn metadata_and_app_registration_rules() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let meta: Value = res.json().await.unwrap();
    assert_eq!(meta["authorization_endpoint"], app.url("/oauth/authorize"));
    assert_eq!(meta["token_endpoint"], app.url("/oauth/token"));
    assert_eq!(meta["revocation_endpoint"], app.url("/oauth/revoke"));
    assert_eq!(meta["jwks_uri"], app.url("/.well-known/jwks.json"));
    assert!(meta["issuer"].is_string());
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["response_types_supported"], json!(["code"]));
    assert_eq!(
        meta["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(meta["scopes_supported"].as_array().unwrap().len(), 13);
    assert!(
        meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_secret_basic"))
    );

    let acme = app.company("owner@acme-reg.example").await;
    let apps = format!("/v1/memberships/{}/apps", acme.membership_id);
    let res = app
        .post(
            &apps,
            Some(&acme.token),
            json!({"name": "x", "client_type": "public", "redirect_uris": ["http://app.example/cb", "https://a.example/cb#f"], "scopes": ["profile", "admin"]}),
        )
        .await;
    res.problem(422, "validation-failed");
    let fields = res.fields();
    for f in ["redirect_uris[0]", "redirect_uris[1]", "scopes[1]"] {
        assert!(fields.contains(&f.to_owned()), "{f} in {fields:?}");
    }
    app.post(
        &apps,
        Some(&acme.token),
        json!({"name": "x", "client_type": "secret", "redirect_uris": [REDIRECT], "scopes": ["profile"]}),
    )
    .await
    .problem(422, "validation-failed");
    let (client_id, _) = register(&app, &acme, "public", &["profile"]).await;
    let listed = app.get(&apps, &acme.token).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"][0]["client_id"], client_id.as_str());
    assert!(listed.body["items"][0].get("client_secret").is_none());
    app.post(
        &format!("{apps}/{client_id}/rotate-secret"),
        Some(&acme.token),
        json!({}),
    )
    .await
    .problem(409, "conflict");

    // Roles: a viewer may not manage apps; an API key may list them but
    // not register one (that takes a person).
    let viewer = app.staff(&acme, "viewer@acme-reg.example", "viewer").await;
    app.get(&apps, &viewer).await.problem(403, "forbidden");
    let key = app.api_key(&acme, "developer").await;
    assert_eq!(app.get(&apps, &key).await.status, StatusCode::OK);
    app.post(
        &apps,
        Some(&key),
        json!({"name": "k", "client_type": "public", "redirect_uris": [REDIRECT], "scopes": ["profile"]}),
    )
    .await
    .problem(403, "forbidden");
}

#[tokio::test]
async fn another_membership_cannot_see_or_touch_an_app() {
    let app = TestApp::spawn().await;
    let acme = app.company("owner@acme-iso.example").await;
    let mallory = app.company("mallory@iso.example").await;
    let (client_id, _) = register(&app, &acme, "confidential", &["profile"]).await;
    let apps = format!("/v1/memberships/{}/apps", acme.membership_id);
    let one = format!("{apps}/{client_id}");
    app.get(&apps, &mallory.token).await.problem(404, "not-found");
    app.post(
        &apps,
        Some(&mallory.token),
        json!({"name": "m", "client_type": "public", "redirect_uris": [REDIRECT], "scopes": ["profile"]}),
    )
    .await
    .problem(404, "not-found");
    app.get(&one, &mallory.token).await.problem(404, "not-found");
    app.delete(&one, &mallory.token).await.problem(404, "not-found");
    app.post(&format!("{one}/rotate-secret"), Some(&mallory.token), json!({}))
        .await
        .problem(404, "not-found");
    // Through mallory's own membership, acme's app does not exist.
    let theirs = format!("/v1/memberships/{}/apps/{client_id}", mallory.membership_id);
    app.get(&theirs, &mallory.token).await.problem(404, "not-found");
    app.delete(&theirs, &mallory.token).await.problem(404, "not-found");
    app.get(&format!("{apps}/{}", Uuid::now_v7()), &acme.token)
        .await
        .problem(404, "not-found");
    let res = app.get(&format!("{apps}/not-a-uuid"), &acme.token).await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["app_id"]);
    // Still there for its owner.
    let res = app.get(&one, &acme.token).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["name"], "Sleep Coach <beta>");
}

/// Issue 13 item 3: a person lists the apps they authorized and revokes
/// one without the app's credentials; nobody else sees or revokes them.
#[tokio::test]
async fn a_person_lists_and_revokes_their_app_authorizations_and_no_one_else_can() {
    let app = TestApp::spawn().await;
    let dev = app.company("dev@authz-list.example").await;
    let ann = app.individual("ann@authz-list.example").await;
    let bob = app.individual("bob@authz-list.example").await;
    let (client_id, token) = user_app(&app, &dev, &ann, &["profile", "readings.read"]).await;
    // Used once, so the list has a last use to show.
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);

    let list = app.get("/v1/me/authorizations", &ann.token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["app_id"], client_id.as_str());
    assert_eq!(items[0]["app_name"], "Sleep Coach <beta>");
    assert_eq!(items[0]["app_membership_id"], json!(dev.membership_id));
    assert_eq!(items[0]["scopes"], json!(["profile", "readings.read"]));
    assert!(items[0]["granted_at"].is_string());
    assert!(items[0]["last_used_at"].is_string(), "{}", list.text);
    assert_eq!(list.body["next_cursor"], Value::Null);

    // Bob sees none of it and cannot revoke it; neither can the developer,
    // an API key, or the app itself.
    let theirs = format!("/v1/me/authorizations/{client_id}");
    let list = app.get("/v1/me/authorizations", &bob.token).await;
    assert_eq!(list.body["items"], json!([]), "{}", list.text);
    app.delete(&theirs, &bob.token).await.problem(404, "not-found");
    app.delete(&theirs, &dev.token).await.problem(404, "not-found");
    let key = app.api_key(&dev, "admin").await;
    assert_eq!(app.delete(&theirs, &key).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/v1/me/authorizations", &key).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.delete(&theirs, &token).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/v1/me/authorizations", &token).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/v1/me", &token).await.status,
        StatusCode::OK,
        "still authorized"
    );
    let res = app.delete("/v1/me/authorizations/not-a-uuid", &ann.token).await;
    res.problem(400, "invalid-parameter");
    assert_eq!(res.fields(), ["app_id"]);
    app.delete(&format!("/v1/me/authorizations/{}", Uuid::now_v7()), &ann.token)
        .await
        .problem(404, "not-found");

    // Ann revokes: the token dies on its next request, the list empties,
    // a second revocation finds nothing, and the developer's log says so.
    let res = app.delete(&theirs, &ann.token).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    assert_eq!(app.get("/v1/me", &token).await.status, StatusCode::UNAUTHORIZED);
    let list = app.get("/v1/me/authorizations", &ann.token).await;
    assert_eq!(list.body["items"], json!([]), "{}", list.text);
    app.delete(&theirs, &ann.token).await.problem(404, "not-found");
    let actions = app.audit_actions(dev.membership_id, &dev.token).await;
    assert!(actions.iter().any(|a| a == "app.authorization_revoked"), "{actions:?}");
}

#[tokio::test]
async fn the_consent_page_shares_the_sign_in_rate_limit() {
    let app = TestApp::spawn_with(|c| c.login_max_failures_per_account = 2).await;
    let dev = app.company("dev@limit.example").await;
    let ada = app.individual("ada@limit.example").await;
    let (client_id, _) = register(&app, &dev, "public", &["profile"]).await;
    let client = oauth_client(&app, &client_id, None);
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let page = open(&app, url.as_str()).await;
    let wrong = [
        ("email", ada.email.as_str()),
        ("password", "guess"),
        ("decision", "approve"),
    ];
    for _ in 0..2 {
        let (status, _, _) = submit(&app, &page, &wrong, true).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let right = [
        ("email", ada.email.as_str()),
        ("password", PASSWORD),
        ("decision", "approve"),
    ];
    let (status, location, body) = submit(&app, &page, &right, true).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(location.is_none() && body.contains("Too many attempts"));
    // The sign-in endpoint counts the same failures.
    app.post(
        "/v1/auth/login",
        None,
        json!({"email": ada.email, "password": PASSWORD}),
    )
    .await
    .problem(429, "rate-limited");
}

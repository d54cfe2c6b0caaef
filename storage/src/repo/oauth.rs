//! OAuth2 apps, authorization codes, grants and refresh tokens. Apps are a
//! membership's rows and are reached through it; codes and refresh tokens
//! are found by the digest of the secret a client presents, and always
//! together with the app that presents them, so one app cannot spend
//! another's. A grant is the family of tokens of one authorization:
//! revoking it (on request, on a reused code or on a reused refresh token)
//! ends all of them at once, and ends what the app created under it
//! (`disable_tied_in`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;
use vitalfarm_domain::{AppId, GrantId, MembershipId, UserId};

use super::webhooks::{FAILED as FAILED_DELIVERY, PENDING as PENDING_DELIVERY};

use crate::entity::{
    alert_rule, farm, oauth_app, oauth_code, oauth_grant, oauth_refresh_token, share_link, webhook, webhook_delivery,
};
use crate::page::{self, Keyset};
use crate::{Database, Page, StorageError};

/// Which OAuth app and authorization created a row; both `None` for rows
/// made by people and API keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppOrigin {
    pub app: Option<Uuid>,
    pub grant: Option<Uuid>,
}

pub struct NewApp<'a> {
    pub id: AppId,
    pub name: &'a str,
    pub client_type: &'a str,
    pub secret_hash: Option<String>,
    /// JSON array.
    pub redirect_uris: String,
    pub scopes: String,
    pub created_by: UserId,
}

pub async fn create_app(
    db: &Database,
    membership: MembershipId,
    a: NewApp<'_>,
) -> Result<oauth_app::Model, StorageError> {
    Ok(oauth_app::ActiveModel {
        id: Set(a.id.as_uuid()),
        membership_id: Set(membership.as_uuid()),
        name: Set(a.name.to_owned()),
        client_type: Set(a.client_type.to_owned()),
        secret_hash: Set(a.secret_hash),
        redirect_uris: Set(a.redirect_uris),
        scopes: Set(a.scopes),
        created_by: Set(a.created_by.as_uuid()),
        created_at: Set(Utc::now()),
    }
    .insert(db.conn())
    .await?)
}

/// The membership's apps, oldest first.
pub async fn list_apps(
    db: &Database,
    membership: MembershipId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<oauth_app::Model>, StorageError> {
    let q = oauth_app::Entity::find().filter(oauth_app::Column::MembershipId.eq(membership.as_uuid()));
    page::fetch(db.conn(), q, Keyset::after(oauth_app::Column::Id, after, limit), |a| {
        a.id
    })
    .await
}

pub async fn find_app_in(
    db: &Database,
    membership: MembershipId,
    id: AppId,
) -> Result<Option<oauth_app::Model>, StorageError> {
    Ok(oauth_app::Entity::find_by_id(id.as_uuid())
        .filter(oauth_app::Column::MembershipId.eq(membership.as_uuid()))
        .one(db.conn())
        .await?)
}

/// An app by its client id, for the OAuth endpoints, where the client id is
/// what identifies the caller.
pub async fn find_client(db: &Database, id: AppId) -> Result<Option<oauth_app::Model>, StorageError> {
    Ok(oauth_app::Entity::find_by_id(id.as_uuid()).one(db.conn()).await?)
}

/// Deletes the app; its codes, grants and refresh tokens go with it, so
/// every token it holds stops working on the next request, and what it
/// created under any authorization is disabled (returned for the audit).
pub async fn delete_app(db: &Database, membership: MembershipId, id: AppId) -> Result<Disabled, StorageError> {
    let txn = db.begin_write().await?;
    let owned = oauth_app::Entity::find_by_id(id.as_uuid())
        .filter(oauth_app::Column::MembershipId.eq(membership.as_uuid()))
        .one(&txn)
        .await?;
    if owned.is_none() {
        return Err(StorageError::NotFound);
    }
    let disabled = disable_tied_in(&txn, Tie::App(id.as_uuid()), Utc::now()).await?;
    let grants: Vec<Uuid> = oauth_grant::Entity::find()
        .select_only()
        .column(oauth_grant::Column::Id)
        .filter(oauth_grant::Column::AppId.eq(id.as_uuid()))
        .into_tuple()
        .all(&txn)
        .await?;
    // Foreign keys cascade too; deleting explicitly keeps the outcome the
    // same on a SQLite connection without foreign key enforcement.
    oauth_refresh_token::Entity::delete_many()
        .filter(oauth_refresh_token::Column::GrantId.is_in(grants))
        .exec(&txn)
        .await?;
    oauth_code::Entity::delete_many()
        .filter(oauth_code::Column::AppId.eq(id.as_uuid()))
        .exec(&txn)
        .await?;
    oauth_grant::Entity::delete_many()
        .filter(oauth_grant::Column::AppId.eq(id.as_uuid()))
        .exec(&txn)
        .await?;
    let res = oauth_app::Entity::delete_many()
        .filter(oauth_app::Column::Id.eq(id.as_uuid()))
        .filter(oauth_app::Column::MembershipId.eq(membership.as_uuid()))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    txn.commit().await?;
    Ok(disabled)
}

/// Replaces a confidential app's secret; the old one stops working at once.
pub async fn set_secret(
    db: &Database,
    membership: MembershipId,
    id: AppId,
    secret_hash: String,
) -> Result<(), StorageError> {
    let res = oauth_app::Entity::update_many()
        .col_expr(oauth_app::Column::SecretHash, Expr::value(Some(secret_hash)))
        .filter(oauth_app::Column::Id.eq(id.as_uuid()))
        .filter(oauth_app::Column::MembershipId.eq(membership.as_uuid()))
        .filter(oauth_app::Column::SecretHash.is_not_null())
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

pub struct NewCode<'a> {
    pub code_hash: String,
    pub app: AppId,
    pub user: UserId,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub scopes: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn create_code(db: &Database, c: NewCode<'_>) -> Result<(), StorageError> {
    oauth_code::ActiveModel {
        id: Set(Uuid::now_v7()),
        code_hash: Set(c.code_hash),
        app_id: Set(c.app.as_uuid()),
        user_id: Set(c.user.as_uuid()),
        redirect_uri: Set(c.redirect_uri.to_owned()),
        code_challenge: Set(c.code_challenge.to_owned()),
        scopes: Set(c.scopes),
        created_at: Set(Utc::now()),
        expires_at: Set(c.expires_at),
        used_at: Set(None),
        grant_id: Set(None),
    }
    .insert(db.conn())
    .await
    .map_err(|e| StorageError::unique(e, "authorization code collision; retry"))?;
    Ok(())
}

/// A refresh token to store with a new grant or a rotation.
pub struct NewRefresh {
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug)]
pub enum Exchange {
    Issued(oauth_grant::Model),
    /// The code or refresh token had been used before: its grant is now
    /// revoked.
    Reused,
    /// Unknown, expired, revoked, another app's, or failing the caller's
    /// check.
    Invalid,
}

/// What the caller decides about a code it presents: refused (wrong
/// redirect URI or PKCE verifier), or accepted with or without a first
/// refresh token.
pub enum CodeCheck {
    Refused,
    Accepted(Option<NewRefresh>),
}

/// Spends the authorization code with `code_hash` for `app`: if `check`
/// accepts it, a grant is created, with a first refresh token when the
/// check gives one. A code is spent even when the check fails, so a stolen
/// code cannot be tried against many verifiers.
pub async fn exchange_code(
    db: &Database,
    app: AppId,
    code_hash: &str,
    check: impl FnOnce(&oauth_code::Model) -> CodeCheck,
) -> Result<Exchange, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let Some(code) = oauth_code::Entity::find()
        .filter(oauth_code::Column::CodeHash.eq(code_hash))
        .filter(oauth_code::Column::AppId.eq(app.as_uuid()))
        .one(&txn)
        .await?
    else {
        return Ok(Exchange::Invalid);
    };
    if code.used_at.is_some() {
        if let Some(grant) = code.grant_id {
            revoke_grant_in(&txn, grant, now).await?;
        }
        txn.commit().await?;
        return Ok(Exchange::Reused);
    }
    // Conditional, so that of two concurrent exchanges only one wins.
    let spent = oauth_code::Entity::update_many()
        .col_expr(oauth_code::Column::UsedAt, Expr::value(Some(now)))
        .filter(oauth_code::Column::Id.eq(code.id))
        .filter(oauth_code::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected == 0 {
        return Ok(Exchange::Reused);
    }
    let refresh = match check(&code) {
        CodeCheck::Accepted(refresh) if code.expires_at > now => refresh,
        _ => {
            txn.commit().await?;
            return Ok(Exchange::Invalid);
        }
    };
    let grant = insert_grant(&txn, app, Some(code.user_id), None, &code.scopes, now).await?;
    oauth_code::Entity::update_many()
        .col_expr(oauth_code::Column::GrantId, Expr::value(Some(grant.id)))
        .filter(oauth_code::Column::Id.eq(code.id))
        .exec(&txn)
        .await?;
    if let Some(refresh) = refresh {
        insert_refresh(&txn, grant.id, refresh, now).await?;
    }
    txn.commit().await?;
    Ok(Exchange::Issued(grant))
}

async fn insert_grant(
    db: &impl ConnectionTrait,
    app: AppId,
    user: Option<Uuid>,
    membership: Option<Uuid>,
    scopes: &str,
    now: DateTime<Utc>,
) -> Result<oauth_grant::Model, StorageError> {
    Ok(oauth_grant::ActiveModel {
        id: Set(GrantId::new().as_uuid()),
        app_id: Set(app.as_uuid()),
        user_id: Set(user),
        membership_id: Set(membership),
        scopes: Set(scopes.to_owned()),
        created_at: Set(now),
        revoked_at: Set(None),
        last_used_at: Set(Some(now)),
    }
    .insert(db)
    .await?)
}

async fn insert_refresh(
    db: &impl ConnectionTrait,
    grant: Uuid,
    r: NewRefresh,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    oauth_refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        grant_id: Set(grant),
        token_hash: Set(r.token_hash),
        created_at: Set(now),
        expires_at: Set(r.expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(|e| StorageError::unique(e, "refresh token collision; retry"))?;
    Ok(())
}

/// A grant for the app's own membership (client_credentials).
pub async fn create_membership_grant(
    db: &Database,
    app: AppId,
    membership: MembershipId,
    scopes: &str,
) -> Result<oauth_grant::Model, StorageError> {
    insert_grant(db.conn(), app, None, Some(membership.as_uuid()), scopes, Utc::now()).await
}

/// Spends the refresh token with `token_hash` of `app` and stores `next`
/// as its successor in the same grant.
pub async fn rotate_refresh(
    db: &Database,
    app: AppId,
    token_hash: &str,
    next: NewRefresh,
) -> Result<Exchange, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let Some((token, Some(grant))) = oauth_refresh_token::Entity::find()
        .filter(oauth_refresh_token::Column::TokenHash.eq(token_hash))
        .find_also_related(oauth_grant::Entity)
        .one(&txn)
        .await?
    else {
        return Ok(Exchange::Invalid);
    };
    if grant.app_id != app.as_uuid() || grant.revoked_at.is_some() {
        return Ok(Exchange::Invalid);
    }
    if token.used_at.is_some() {
        revoke_grant_in(&txn, grant.id, now).await?;
        txn.commit().await?;
        return Ok(Exchange::Reused);
    }
    if token.expires_at <= now {
        return Ok(Exchange::Invalid);
    }
    let spent = oauth_refresh_token::Entity::update_many()
        .col_expr(oauth_refresh_token::Column::UsedAt, Expr::value(Some(now)))
        .filter(oauth_refresh_token::Column::Id.eq(token.id))
        .filter(oauth_refresh_token::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected == 0 {
        revoke_grant_in(&txn, grant.id, now).await?;
        txn.commit().await?;
        return Ok(Exchange::Reused);
    }
    insert_refresh(&txn, grant.id, next, now).await?;
    txn.commit().await?;
    Ok(Exchange::Issued(grant))
}

/// A grant whose tokens are still honoured.
pub async fn find_live_grant(db: &Database, id: GrantId) -> Result<Option<oauth_grant::Model>, StorageError> {
    Ok(oauth_grant::Entity::find_by_id(id.as_uuid())
        .filter(oauth_grant::Column::RevokedAt.is_null())
        .one(db.conn())
        .await?)
}

/// Revokes `grant` if it belongs to `app`; anything else is ignored, as RFC
/// 7009 wants.
pub async fn revoke_grant_of(db: &Database, app: AppId, grant: GrantId) -> Result<Disabled, StorageError> {
    let txn = db.begin_write().await?;
    let owned = oauth_grant::Entity::find_by_id(grant.as_uuid())
        .filter(oauth_grant::Column::AppId.eq(app.as_uuid()))
        .one(&txn)
        .await?;
    let mut disabled = Disabled::default();
    if let Some(g) = owned {
        disabled = revoke_grant_in(&txn, g.id, Utc::now()).await?;
    }
    txn.commit().await?;
    Ok(disabled)
}

/// Records that a grant's access token was accepted, at most once a minute
/// so that a busy app does not turn every read into a write.
pub async fn touch_grant(db: &Database, grant: &oauth_grant::Model) -> Result<(), StorageError> {
    let now = Utc::now();
    if grant
        .last_used_at
        .is_some_and(|t| now - t < chrono::Duration::minutes(1))
    {
        return Ok(());
    }
    oauth_grant::Entity::update_many()
        .col_expr(oauth_grant::Column::LastUsedAt, Expr::value(Some(now)))
        .filter(oauth_grant::Column::Id.eq(grant.id))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// One app a user authorized: its live grants taken together.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub app: oauth_app::Model,
    /// The union of the live grants' scopes, space-separated.
    pub scopes: String,
    /// When the oldest live grant was made.
    pub granted_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The apps `user` authorized and has not revoked, by app id. A grant
/// stays listed while it is not revoked, even when its tokens have run
/// out, because what the app created under it lives on until it is.
pub async fn authorizations_of(db: &Database, user: UserId) -> Result<Vec<Authorization>, StorageError> {
    let grants = oauth_grant::Entity::find()
        .filter(oauth_grant::Column::UserId.eq(user.as_uuid()))
        .filter(oauth_grant::Column::RevokedAt.is_null())
        .order_by_asc(oauth_grant::Column::AppId)
        .order_by_asc(oauth_grant::Column::Id)
        .all(db.conn())
        .await?;
    let app_ids: Vec<Uuid> = grants.iter().map(|g| g.app_id).collect();
    let apps = oauth_app::Entity::find()
        .filter(oauth_app::Column::Id.is_in(app_ids))
        .all(db.conn())
        .await?;
    let mut out: Vec<Authorization> = Vec::new();
    for g in grants {
        let Some(app) = apps.iter().find(|a| a.id == g.app_id) else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.app.id == g.app_id => {
                let mut scopes: Vec<&str> = last.scopes.split(' ').collect();
                for s in g.scopes.split(' ') {
                    if !s.is_empty() && !scopes.contains(&s) {
                        scopes.push(s);
                    }
                }
                last.scopes = scopes.join(" ");
                last.granted_at = last.granted_at.min(g.created_at);
                last.last_used_at = last.last_used_at.max(g.last_used_at);
            }
            _ => out.push(Authorization {
                app: app.clone(),
                scopes: g.scopes.clone(),
                granted_at: g.created_at,
                last_used_at: g.last_used_at,
            }),
        }
    }
    Ok(out)
}

/// Revokes every grant `user` gave `app`, with their refresh tokens and
/// what the app created under them. `None` when there was no live grant
/// (nothing to revoke, or another user's app authorization).
pub async fn revoke_authorization(
    db: &Database,
    user: UserId,
    app: AppId,
) -> Result<Option<(oauth_app::Model, Disabled)>, StorageError> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let grants: Vec<Uuid> = oauth_grant::Entity::find()
        .select_only()
        .column(oauth_grant::Column::Id)
        .filter(oauth_grant::Column::UserId.eq(user.as_uuid()))
        .filter(oauth_grant::Column::AppId.eq(app.as_uuid()))
        .filter(oauth_grant::Column::RevokedAt.is_null())
        .into_tuple()
        .all(&txn)
        .await?;
    let Some(found) = oauth_app::Entity::find_by_id(app.as_uuid()).one(&txn).await? else {
        return Ok(None);
    };
    if grants.is_empty() {
        return Ok(None);
    }
    let mut disabled = Disabled::default();
    for g in grants {
        disabled.extend(revoke_grant_in(&txn, g, now).await?);
    }
    // Codes issued but not yet exchanged would otherwise mint a new grant.
    oauth_code::Entity::delete_many()
        .filter(oauth_code::Column::AppId.eq(app.as_uuid()))
        .filter(oauth_code::Column::UserId.eq(user.as_uuid()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(Some((found, disabled)))
}

/// What an ended authorization had created, now disabled: `(row id,
/// membership id)` of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disabled {
    pub webhooks: Vec<(Uuid, Uuid)>,
    pub alert_rules: Vec<(Uuid, Uuid)>,
    pub share_links: Vec<(Uuid, Uuid)>,
}

impl Disabled {
    pub fn extend(&mut self, other: Disabled) {
        self.webhooks.extend(other.webhooks);
        self.alert_rules.extend(other.alert_rules);
        self.share_links.extend(other.share_links);
    }

    /// The memberships concerned, each once.
    pub fn memberships(&self) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = self
            .webhooks
            .iter()
            .chain(&self.alert_rules)
            .chain(&self.share_links)
            .map(|(_, m)| *m)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// How many rows of each kind `membership` lost.
    pub fn counts_in(&self, membership: Uuid) -> (usize, usize, usize) {
        let n = |v: &[(Uuid, Uuid)]| v.iter().filter(|(_, m)| *m == membership).count();
        (n(&self.webhooks), n(&self.alert_rules), n(&self.share_links))
    }
}

/// Whose rows to disable: one grant's, or an app's under any grant.
#[derive(Debug, Clone, Copy)]
pub enum Tie {
    Grant(Uuid),
    App(Uuid),
}

/// Disables, on `conn`, what an OAuth app created under an authorization
/// that has ended: webhooks stop (their pending deliveries fail at once, so
/// nothing already queued goes out), alert rules stop being evaluated,
/// share links are revoked. The rows stay, so their owners can see what the
/// app had set up and make their own if they want it back.
pub async fn disable_tied_in(
    conn: &impl ConnectionTrait,
    tie: Tie,
    now: DateTime<Utc>,
) -> Result<Disabled, StorageError> {
    let (hook_col, rule_col, link_col, id) = match tie {
        Tie::Grant(g) => (
            webhook::Column::GrantId,
            alert_rule::Column::GrantId,
            share_link::Column::GrantId,
            g,
        ),
        Tie::App(a) => (
            webhook::Column::AppId,
            alert_rule::Column::AppId,
            share_link::Column::AppId,
            a,
        ),
    };
    let hooks: Vec<(Uuid, Uuid)> = webhook::Entity::find()
        .select_only()
        .column(webhook::Column::Id)
        .column(webhook::Column::MembershipId)
        .filter(hook_col.eq(id))
        .filter(webhook::Column::Enabled.eq(true))
        .into_tuple()
        .all(conn)
        .await?;
    if !hooks.is_empty() {
        let ids: Vec<Uuid> = hooks.iter().map(|(h, _)| *h).collect();
        webhook::Entity::update_many()
            .col_expr(webhook::Column::Enabled, Expr::value(false))
            .col_expr(webhook::Column::UpdatedAt, Expr::value(now))
            .filter(webhook::Column::Id.is_in(ids.clone()))
            .exec(conn)
            .await?;
        // A delivery claimed right now still finds its endpoint disabled
        // when it is sent (`webhooks::send` checks), so none leaves late.
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Status, Expr::value(FAILED_DELIVERY))
            .col_expr(
                webhook_delivery::Column::NextAttemptAtMs,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
            .filter(webhook_delivery::Column::WebhookId.is_in(ids))
            .filter(webhook_delivery::Column::Status.eq(PENDING_DELIVERY))
            .exec(conn)
            .await?;
    }
    let rules: Vec<(Uuid, Uuid)> = alert_rule::Entity::find()
        .select_only()
        .column(alert_rule::Column::Id)
        .column(alert_rule::Column::MembershipId)
        .filter(rule_col.eq(id))
        .filter(alert_rule::Column::DisabledAtMs.is_null())
        .into_tuple()
        .all(conn)
        .await?;
    if !rules.is_empty() {
        alert_rule::Entity::update_many()
            .col_expr(
                alert_rule::Column::DisabledAtMs,
                Expr::value(Some(now.timestamp_millis())),
            )
            .filter(alert_rule::Column::Id.is_in(rules.iter().map(|(r, _)| *r)))
            .exec(conn)
            .await?;
    }
    let links: Vec<(Uuid, Uuid)> = share_link::Entity::find()
        .select_only()
        .column(share_link::Column::Id)
        .column(share_link::Column::FarmId)
        .filter(link_col.eq(id))
        .filter(share_link::Column::RevokedAt.is_null())
        .into_tuple()
        .all(conn)
        .await?;
    let mut share_links = Vec::with_capacity(links.len());
    if !links.is_empty() {
        share_link::Entity::update_many()
            .col_expr(share_link::Column::RevokedAt, Expr::value(Some(now)))
            .filter(share_link::Column::Id.is_in(links.iter().map(|(l, _)| *l)))
            .exec(conn)
            .await?;
        let farms = farm::Entity::find()
            .filter(farm::Column::Id.is_in(links.iter().map(|(_, f)| *f)))
            .all(conn)
            .await?;
        for (link, farm_id) in links {
            if let Some(f) = farms.iter().find(|f| f.id == farm_id) {
                share_links.push((link, f.membership_id));
            }
        }
    }
    Ok(Disabled {
        webhooks: hooks,
        alert_rules: rules,
        share_links,
    })
}

/// The grant of `app`'s refresh token with `token_hash`, used or not.
pub async fn grant_of_refresh(db: &Database, app: AppId, token_hash: &str) -> Result<Option<GrantId>, StorageError> {
    let found = oauth_refresh_token::Entity::find()
        .filter(oauth_refresh_token::Column::TokenHash.eq(token_hash))
        .find_also_related(oauth_grant::Entity)
        .one(db.conn())
        .await?;
    Ok(found
        .and_then(|(_, g)| g)
        .filter(|g| g.app_id == app.as_uuid())
        .map(|g| GrantId::from_uuid(g.id)))
}

/// Revokes `grant` with its refresh tokens and disables what was created
/// under it; every path that ends a grant comes through here.
async fn revoke_grant_in(db: &impl ConnectionTrait, grant: Uuid, now: DateTime<Utc>) -> Result<Disabled, StorageError> {
    oauth_grant::Entity::update_many()
        .col_expr(oauth_grant::Column::RevokedAt, Expr::value(Some(now)))
        .filter(oauth_grant::Column::Id.eq(grant))
        .filter(oauth_grant::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    // The refresh tokens die with the grant; deleting them also keeps the
    // table from growing with dead families.
    oauth_refresh_token::Entity::delete_many()
        .filter(oauth_refresh_token::Column::GrantId.eq(grant))
        .exec(db)
        .await?;
    disable_tied_in(db, Tie::Grant(grant), now).await
}

/// Deletes what can no longer be used: codes and refresh tokens that
/// expired more than a day ago, revoked grants' leftovers, and
/// client_credentials grants older than two days (their access tokens live
/// at most a day). Idempotent, so every node may run it.
pub async fn purge_stale(db: &Database) -> Result<u64, StorageError> {
    let now = Utc::now();
    let day_ago = now - chrono::Duration::days(1);
    let codes = oauth_code::Entity::delete_many()
        .filter(oauth_code::Column::ExpiresAt.lt(day_ago))
        .exec(db.conn())
        .await?;
    let tokens = oauth_refresh_token::Entity::delete_many()
        .filter(oauth_refresh_token::Column::ExpiresAt.lt(day_ago))
        .exec(db.conn())
        .await?;
    let grants = oauth_grant::Entity::delete_many()
        .filter(oauth_grant::Column::UserId.is_null())
        .filter(oauth_grant::Column::CreatedAt.lt(now - chrono::Duration::days(2)))
        .exec(db.conn())
        .await?;
    Ok(codes.rows_affected + tokens.rows_affected + grants.rows_affected)
}

//! `oauth_grants`: one authorization of an app, the family of its tokens;
//! written by `repo::oauth` when a code is exchanged, a client signs in
//! with its credentials, or a grant is revoked.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub app_id: Uuid,
    /// The user who approved the app (authorization code grants).
    pub user_id: Option<Uuid>,
    /// The app's own membership (client_credentials grants).
    pub membership_id: Option<Uuid>,
    pub scopes: String,
    pub created_at: DateTimeUtc,
    /// Once set, every token of the grant stops working.
    pub revoked_at: Option<DateTimeUtc>,
    /// When an access token of the grant was last accepted (to the minute).
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

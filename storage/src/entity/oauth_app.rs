//! `oauth_apps`: the OAuth2 clients a membership registered; written by
//! `repo::oauth` for the apps routes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_apps")]
pub struct Model {
    /// Also the app's public `client_id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub membership_id: Uuid,
    pub name: String,
    /// `public` or `confidential`.
    pub client_type: String,
    /// SHA-256 of a confidential client's secret, hex.
    pub secret_hash: Option<String>,
    /// JSON array of the registered redirect URIs, compared byte for byte.
    pub redirect_uris: String,
    /// The scopes the app may ask for, space-separated.
    pub scopes: String,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

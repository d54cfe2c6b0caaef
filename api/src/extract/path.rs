//! Typed path parameters. Each knows the name of its segment, so a malformed
//! id is reported as that parameter (`mid: must be a UUID`).
//!
//! The ids of tenant resources (membership, farm, subject, device) arrive
//! as `Claimed` ids, which only `authz` and `sharing` can open: a handler
//! reaches the resource through the proof they return, so a route that
//! skips the check has no id to use and does not compile. Other ids are
//! looked up inside a resource authorized already (`find_in(membership,
//! id)`), and stay plain.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{Ready, ready};
use vitalfarm_domain::{
    ApiKeyId, CommandId, ConsentId, ConsentRequestId, DeviceId, FarmId, MembershipId, ShareLinkId, SubjectId, UserId,
};

use vitalfarm_app::authz::Claimed;

use crate::error::{ApiError, AppError};

macro_rules! path_id {
    ($name:ident, $id:ty, $segment:literal) => {
        path_id!($name, $id, $id, $segment, std::convert::identity);
    };
    ($name:ident, $id:ty, $held:ty, $segment:literal, $wrap:expr) => {
        #[doc = concat!("The `{", $segment, "}` path segment.")]
        pub struct $name(pub $held);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Ready<Result<Self, ApiError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                ready(
                    req.match_info()
                        .get($segment)
                        .and_then(|s| s.parse::<$id>().ok())
                        .map(|id| $name($wrap(id)))
                        .ok_or_else(|| {
                            ApiError(AppError::InvalidParameter {
                                field: $segment.into(),
                                message: "must be a UUID".into(),
                            })
                        }),
                )
            }
        }
    };
}

/// A tenant resource's id, claimed until `authz` or `sharing` checks it.
macro_rules! claimed_path_id {
    ($name:ident, $id:ty, $segment:literal) => {
        path_id!($name, $id, Claimed<$id>, $segment, Claimed::new);
    };
}

claimed_path_id!(PathMembershipId, MembershipId, "mid");
path_id!(PathUserId, UserId, "uid");
path_id!(PathApiKeyId, ApiKeyId, "kid");
claimed_path_id!(PathFarmId, FarmId, "fid");
path_id!(PathShareLinkId, ShareLinkId, "lid");
claimed_path_id!(PathSubjectId, SubjectId, "sid");
claimed_path_id!(PathDeviceId, DeviceId, "did");
path_id!(PathCommandId, CommandId, "cid");
path_id!(PathConsentId, ConsentId, "id");
path_id!(PathConsentRequestId, ConsentRequestId, "id");
path_id!(PathAppId, vitalfarm_domain::AppId, "app_id");
path_id!(PathExportId, vitalfarm_domain::JobId, "eid");
path_id!(PathWebhookId, uuid::Uuid, "wid");
path_id!(PathInvitationId, uuid::Uuid, "id");

//! Typed path parameters. Each knows the name of its segment, so a malformed
//! id is reported as that parameter (`mid: must be a UUID`).

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{Ready, ready};
use vitalfarm_domain::{
    ApiKeyId, CommandId, ConsentId, ConsentRequestId, DeviceId, FarmId, MembershipId, ShareLinkId, SubjectId, UserId,
};

use crate::error::{ApiError, AppError};

macro_rules! path_id {
    ($name:ident, $id:ty, $segment:literal) => {
        #[doc = concat!("The `{", $segment, "}` path segment.")]
        pub struct $name(pub $id);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Ready<Result<Self, ApiError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                ready(
                    req.match_info()
                        .get($segment)
                        .and_then(|s| s.parse::<$id>().ok())
                        .map($name)
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

path_id!(PathMembershipId, MembershipId, "mid");
path_id!(PathUserId, UserId, "uid");
path_id!(PathApiKeyId, ApiKeyId, "kid");
path_id!(PathFarmId, FarmId, "fid");
path_id!(PathShareLinkId, ShareLinkId, "lid");
path_id!(PathSubjectId, SubjectId, "sid");
path_id!(PathDeviceId, DeviceId, "did");
path_id!(PathCommandId, CommandId, "cid");
path_id!(PathConsentId, ConsentId, "id");
path_id!(PathConsentRequestId, ConsentRequestId, "id");
path_id!(PathAppId, vitalfarm_domain::AppId, "app_id");
path_id!(PathExportId, vitalfarm_domain::JobId, "eid");
path_id!(PathWebhookId, uuid::Uuid, "wid");
path_id!(PathInvitationId, uuid::Uuid, "id");

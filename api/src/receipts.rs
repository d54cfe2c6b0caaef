//! A sharing receipt on its way out: the `Vitalfarm-Consent` header names
//! the consents a response was served under.

use actix_web::{CustomizeResponder, Responder, web};
use vitalfarm_app::sharing::{CONSENT_HEADER, Receipt};

/// Adds the receipt header to a response.
pub trait Attach {
    /// `responder` with the receipt header when there is one.
    fn attach<R: Responder>(&self, responder: R) -> CustomizeResponder<R>;
}

impl Attach for Receipt {
    fn attach<R: Responder>(&self, responder: R) -> CustomizeResponder<R> {
        let r = responder.customize();
        match self.header() {
            Some(value) => r.insert_header((CONSENT_HEADER, value)),
            None => r,
        }
    }
}

/// A JSON body with the receipt header.
pub fn json<T: serde::Serialize + 'static>(receipt: &Receipt, body: T) -> CustomizeResponder<web::Json<T>> {
    receipt.attach(web::Json(body))
}

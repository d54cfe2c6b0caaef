//! Credentials: password hashing, opaque secrets (API keys, refresh and
//! invitation tokens) and signed access tokens.

pub mod device;
pub mod jwt;
pub mod password;
pub mod secrets;

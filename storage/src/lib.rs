//! vitalfarm persistence. Entities are private to the shape of the tables;
//! repositories take the tenant (`MembershipId`) as an argument wherever a
//! row belongs to one, so a query that forgets the tenant does not compile.

pub mod blobs;
pub mod bulk;
pub mod db;
pub mod entity;
pub mod error;
pub mod export_objects;
pub mod farm_crypto;
mod nodelay;
pub mod page;
pub mod repo;

pub use db::{Database, DatabaseKind};
pub use error::{StorageError, stored_time};
pub use page::Page;

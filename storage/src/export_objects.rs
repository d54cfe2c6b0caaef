//! Export archives in the object store, beside the farm blobs but outside
//! every farm: `exports/{membership}/{job}.zip` can never collide with a
//! `{farm_id}/{blob_id}` key, and no farm's quota counts them. They are
//! written once, as a multipart upload fed in parts, so an archive of any
//! size passes through a bounded buffer.

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::blobs::{BlobError, BlobStore};

/// Parts of this size go to the store; S3 needs at least 5 MiB a part.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// The object key of an export.
pub fn key(membership: Uuid, job: Uuid) -> String {
    format!("exports/{membership}/{job}.zip")
}

/// An upload in progress; nothing is visible under the key until `finish`.
pub struct ExportWriter {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    location: Path,
    sha256: Sha256,
    size: u64,
    buffer: Vec<u8>,
    upload: Option<WriteMultipart>,
}

/// What `ExportWriter::finish` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub size: u64,
    /// Hex SHA-256 of the whole object.
    pub sha256: String,
}

impl ExportWriter {
    pub fn new(blobs: &BlobStore, key: &str) -> Self {
        Self {
            store: blobs.object_store().clone(),
            location: Path::from(key),
            sha256: Sha256::new(),
            size: 0,
            buffer: Vec::new(),
            upload: None,
        }
    }

    /// Appends `bytes`; waits (asynchronously) while two parts are in
    /// flight, so a fast producer cannot outrun the store.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.sha256.update(bytes);
        self.size += bytes.len() as u64;
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PART_SIZE {
            if self.upload.is_none() {
                let upload = self.store.put_multipart(&self.location).await?;
                self.upload = Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE));
            }
            if let Some(upload) = &mut self.upload {
                upload.wait_for_capacity(2).await?;
                upload.write(&std::mem::take(&mut self.buffer));
            }
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Completes the object.
    pub async fn finish(mut self) -> Result<Written, BlobError> {
        match self.upload.take() {
            None => {
                self.store
                    .put(&self.location, PutPayload::from(std::mem::take(&mut self.buffer)))
                    .await?;
            }
            Some(mut upload) => {
                upload.write(&std::mem::take(&mut self.buffer));
                upload.finish().await?;
            }
        }
        Ok(Written {
            size: self.size,
            sha256: hex::encode(self.sha256.finalize()),
        })
    }

    /// Gives up: removes whatever parts were sent.
    pub async fn abort(mut self) {
        if let Some(upload) = self.upload.take() {
            let _ = upload.abort().await;
        }
    }
}

/// Streams bytes `start..=end` (`None`: all) of the export at `key`.
pub async fn read(
    blobs: &BlobStore,
    key: &str,
    range: Option<(u64, u64)>,
) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
    let store = blobs.object_store();
    let location = Path::from(key);
    let options = object_store::GetOptions {
        range: range.map(|(start, end)| object_store::GetRange::Bounded(start..end + 1)),
        ..object_store::GetOptions::default()
    };
    let result = store.get_opts(&location, options).await?;
    Ok(result.into_stream().map(|r| r.map_err(BlobError::from)).boxed())
}

/// Removes the export at `key`; a missing object is already removed.
pub async fn delete(blobs: &BlobStore, key: &str) -> Result<(), BlobError> {
    match blobs.object_store().delete(&Path::from(key)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether an object exists at `key` (tests check erasure with it).
pub async fn exists(blobs: &BlobStore, key: &str) -> Result<bool, BlobError> {
    match blobs.object_store().head(&Path::from(key)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes every export object of `membership`; returns how many.
pub async fn delete_all_of(blobs: &BlobStore, membership: Uuid) -> Result<usize, BlobError> {
    let store = blobs.object_store();
    let prefix = Path::from(format!("exports/{membership}"));
    let mut listing = store.list(Some(&prefix));
    let mut locations = Vec::new();
    while let Some(meta) = listing.next().await {
        match meta {
            Ok(meta) => locations.push(meta.location),
            // A local store without the directory yet: nothing to remove.
            Err(object_store::Error::NotFound { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    drop(listing);
    let n = locations.len();
    for location in locations {
        match store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

//! Export archives in the object store, beside the farm blobs but outside
//! every farm: `exports/{membership}/{job}.zip` can never collide with a
//! `{farm_id}/{blob_id}` key, and no farm's quota counts them.
//!
//! An archive is encrypted at rest like a farm blob, with the membership's
//! farm data key, so erasing the membership (which destroys that key) makes
//! every copy unreadable at once. The blob format needs the plaintext
//! length up front, which a streamed archive does not know; so the archive
//! is cut into segments of `SEGMENT` plaintext bytes, each sealed as one
//! blob (`farm_crypto`) under its own id derived from the job id and the
//! segment's index, and the object is the segments one after another. Every
//! segment but the last is full, so where a byte lies is arithmetic, and a
//! range read fetches and opens only the segments it touches. Dropped,
//! reordered or swapped segments fail authentication (the id, hence the
//! key, depends on the index; the total size is on the job's record).

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::blobs::{BlobError, BlobStore};
use crate::farm_crypto::{BlobDecryptor, BlobEncryptor, BlobHeader, CHUNK_SIZE, DataKey};

/// Plaintext bytes per segment: memory per writer or reader is about two
/// of these.
const SEGMENT: usize = 8 * 1024 * 1024;
/// Ciphertext goes to the store in parts of at least this size (S3 needs
/// 5 MiB a part).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// The object key of an export.
pub fn key(membership: Uuid, job: Uuid) -> String {
    format!("exports/{membership}/{job}.zip")
}

/// The blob id segment `index` of export `job` is sealed under.
fn segment_id(job: Uuid, index: u64) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"vitalfarm/export-segment/v1");
    h.update(job.as_bytes());
    h.update(index.to_be_bytes());
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

fn stored_len(plain_len: usize) -> Result<u64, BlobError> {
    Ok(BlobHeader::new(CHUNK_SIZE, plain_len as u64)?.encrypted_len())
}

fn seal(key: &DataKey, job: Uuid, index: u64, plain: &[u8]) -> Result<Vec<u8>, BlobError> {
    let mut enc = BlobEncryptor::new(key, &segment_id(job, index), plain.len() as u64, CHUNK_SIZE)?;
    let mut out = enc.header().to_vec();
    out.extend(enc.update(plain)?);
    out.extend(enc.finish()?);
    Ok(out)
}

fn open(key: &DataKey, job: Uuid, index: u64, plain_len: usize, stored: &[u8]) -> Result<Vec<u8>, BlobError> {
    let header = BlobHeader::decode(stored.get(..BlobHeader::LEN).ok_or(BlobError::Integrity)?)
        .map_err(|_| BlobError::Integrity)?;
    if header.plain_len != plain_len as u64 {
        return Err(BlobError::Integrity);
    }
    let dec = BlobDecryptor::new(key, &segment_id(job, index), header)?;
    let mut at = BlobHeader::LEN;
    let mut plain = Vec::with_capacity(plain_len);
    for chunk in 0..header.chunk_count() {
        let len = dec.stored_chunk_len(chunk);
        let piece = stored.get(at..at + len).ok_or(BlobError::Integrity)?;
        plain.extend(dec.open_chunk(chunk, piece)?);
        at += len;
    }
    if at != stored.len() {
        return Err(BlobError::Integrity);
    }
    Ok(plain)
}

/// An upload in progress; nothing is visible under the key until `finish`.
pub struct ExportWriter {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    location: Path,
    key: DataKey,
    job: Uuid,
    sha256: Sha256,
    size: u64,
    /// Plaintext of the segment being filled.
    plain: Vec<u8>,
    segments: u64,
    /// Ciphertext not yet handed to the store.
    cipher: Vec<u8>,
    upload: Option<WriteMultipart>,
}

/// What `ExportWriter::finish` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// Plaintext size: what a download returns.
    pub size: u64,
    /// Hex SHA-256 of the plaintext.
    pub sha256: String,
}

impl ExportWriter {
    /// Starts the export of `job` at `key`, sealed with `data_key`.
    pub fn new(blobs: &BlobStore, key: &str, data_key: DataKey, job: Uuid) -> Self {
        Self {
            store: blobs.object_store().clone(),
            location: Path::from(key),
            key: data_key,
            job,
            sha256: Sha256::new(),
            size: 0,
            plain: Vec::new(),
            segments: 0,
            cipher: Vec::new(),
            upload: None,
        }
    }

    /// Appends `bytes`; waits (asynchronously) while two parts are in
    /// flight, so a fast producer cannot outrun the store.
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), BlobError> {
        self.sha256.update(bytes);
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = (SEGMENT - self.plain.len()).min(bytes.len());
            self.plain.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.plain.len() == SEGMENT {
                self.seal_segment()?;
                if self.cipher.len() >= PART_SIZE {
                    self.flush_part().await?;
                }
            }
        }
        Ok(())
    }

    fn seal_segment(&mut self) -> Result<(), BlobError> {
        let sealed = seal(&self.key, self.job, self.segments, &self.plain)?;
        self.cipher.extend(sealed);
        self.plain.clear();
        self.segments += 1;
        Ok(())
    }

    async fn flush_part(&mut self) -> Result<(), BlobError> {
        if self.upload.is_none() {
            let upload = self.store.put_multipart(&self.location).await?;
            self.upload = Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE));
        }
        if let Some(upload) = &mut self.upload {
            upload.wait_for_capacity(2).await?;
            upload.write(&std::mem::take(&mut self.cipher));
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Seals the last segment and completes the object.
    pub async fn finish(mut self) -> Result<Written, BlobError> {
        if !self.plain.is_empty() || self.segments == 0 {
            self.seal_segment()?;
        }
        match self.upload.take() {
            None => {
                self.store
                    .put(&self.location, PutPayload::from(std::mem::take(&mut self.cipher)))
                    .await?;
            }
            Some(mut upload) => {
                upload.write(&std::mem::take(&mut self.cipher));
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

struct ReadState {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    location: Path,
    key: DataKey,
    job: Uuid,
    size: u64,
    segment: u64,
    last_segment: u64,
    start: u64,
    end: u64,
    full_stored: u64,
    done: bool,
}

/// Streams the plaintext bytes `start..=end` (`None`: all) of the export of
/// `job` at `key`, `size` bytes long, each segment authenticated before any
/// of its bytes is yielded.
pub fn read(
    blobs: &BlobStore,
    key: &str,
    data_key: DataKey,
    job: Uuid,
    size: u64,
    range: Option<(u64, u64)>,
) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
    if size == 0 {
        return Ok(stream::empty().boxed());
    }
    let (start, end) = range.unwrap_or((0, size - 1));
    let end = end.min(size - 1);
    let seg = SEGMENT as u64;
    let state = ReadState {
        store: blobs.object_store().clone(),
        location: Path::from(key),
        key: data_key,
        job,
        size,
        segment: start / seg,
        last_segment: end / seg,
        start,
        end,
        full_stored: stored_len(SEGMENT)?,
        done: start > end,
    };
    Ok(stream::unfold(state, next_segment).boxed())
}

async fn next_segment(mut s: ReadState) -> Option<(Result<Bytes, BlobError>, ReadState)> {
    if s.done || s.segment > s.last_segment {
        return None;
    }
    let seg = SEGMENT as u64;
    let seg_start = s.segment * seg;
    let plain_len = usize::try_from((s.size - seg_start).min(seg)).unwrap_or(SEGMENT);
    let result = async {
        let from = s.segment * s.full_stored;
        let to = from + stored_len(plain_len)?;
        let stored = s.store.get_range(&s.location, from..to).await?;
        let plain = open(&s.key, s.job, s.segment, plain_len, &stored)?;
        let a = usize::try_from(s.start.saturating_sub(seg_start))
            .unwrap_or(0)
            .min(plain.len());
        let b = usize::try_from(s.end + 1 - seg_start)
            .unwrap_or(usize::MAX)
            .min(plain.len());
        Ok(Bytes::from(plain).slice(a..b.max(a)))
    }
    .await;
    if result.is_err() {
        s.done = true;
    }
    s.segment += 1;
    Some((result, s))
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

/// The stored bytes at `key` (tests check they are not the plaintext).
pub async fn raw(blobs: &BlobStore, key: &str) -> Result<Bytes, BlobError> {
    Ok(blobs.object_store().get(&Path::from(key)).await?.bytes().await?)
}

/// Removes every export object of `membership`, unfinished uploads (a
/// local store's staging files) included; returns how many finished ones.
pub async fn delete_all_of(blobs: &BlobStore, membership: Uuid) -> Result<usize, BlobError> {
    blobs.remove_prefix(&format!("exports/{membership}")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes([7; 32])
    }

    #[test]
    fn segments_round_trip_and_are_bound_to_their_place() {
        let job = Uuid::now_v7();
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sealed = seal(&key(), job, 3, &plain).unwrap();
        assert_eq!(sealed.len() as u64, stored_len(plain.len()).unwrap());
        assert_eq!(open(&key(), job, 3, plain.len(), &sealed).unwrap(), plain);
        assert!(open(&key(), job, 4, plain.len(), &sealed).is_err(), "another index");
        assert!(
            open(&key(), Uuid::now_v7(), 3, plain.len(), &sealed).is_err(),
            "another job"
        );
        assert!(
            open(&DataKey::from_bytes([8; 32]), job, 3, plain.len(), &sealed).is_err(),
            "another key"
        );
        assert!(
            open(&key(), job, 3, plain.len() - 1, &sealed).is_err(),
            "another length"
        );
        let mut tampered = sealed.clone();
        tampered[100] ^= 1;
        assert!(open(&key(), job, 3, plain.len(), &tampered).is_err());
        assert!(open(&key(), job, 3, plain.len(), &sealed[..sealed.len() - 1]).is_err());
    }
}

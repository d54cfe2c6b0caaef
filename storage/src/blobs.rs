//! Farm bytes in an object store: the embedded default is a local directory,
//! production any S3-compatible store. Every blob is encrypted with its
//! farm's data key (`farm_crypto`) before it leaves the process, stored at
//! `{farm_id}/{blob_id}` under the store's root, and authenticated chunk by chunk on the way
//! back, so a blob altered in storage is an error, never data.

use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vitalfarm_domain::FarmId;

use crate::farm_crypto::{BlobDecryptor, BlobEncryptor, BlobHeader, CHUNK_SIZE, CryptoError, DataKey};

/// Ciphertext is sent to the store in parts of this size: S3 needs at least
/// 5 MiB per part, and two parts in flight bound an upload's memory.
const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The stored bytes do not authenticate: altered, truncated or not ours.
    #[error("stored data failed its integrity check")]
    Integrity,
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("encryption: {0}")]
    Crypto(CryptoError),
    #[error("configuration: {0}")]
    Config(String),
}

impl From<CryptoError> for BlobError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Integrity => BlobError::Integrity,
            other => BlobError::Crypto(other),
        }
    }
}

/// Where farm blobs live.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    description: String,
    /// The directory of a local store. Its staging files (`<key>#<n>`, an
    /// upload in progress) are invisible to the store's own listing, so the
    /// sweeps walk the directory itself to find the ones a crash left.
    local_root: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore").field("store", &self.description).finish()
    }
}

impl BlobStore {
    /// `None` or `file:///dir`: a local directory (`default_dir` when
    /// `None`). `s3://bucket/prefix`: S3 or a compatible server, configured
    /// by the usual `AWS_*` variables (`AWS_ENDPOINT` for a custom endpoint,
    /// `AWS_ALLOW_HTTP=true` for plain HTTP).
    pub fn from_url(url: Option<&str>, default_dir: &FsPath) -> Result<Self, BlobError> {
        match url {
            None => Self::local(default_dir),
            Some(url) if url.starts_with("file://") => Self::local(FsPath::new(&url["file://".len()..])),
            Some(url) if url.starts_with("s3://") => {
                let rest = &url["s3://".len()..];
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(BlobError::Config("s3:// URL needs a bucket".into()));
                }
                let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build()?;
                let prefix = prefix.trim_matches('/');
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix))
                };
                Ok(Self {
                    store,
                    description: format!("s3://{bucket}/{prefix}"),
                    local_root: None,
                })
            }
            Some(other) => Err(BlobError::Config(format!("unsupported object store URL {other}"))),
        }
    }

    fn local(dir: &FsPath) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(|e| BlobError::Config(format!("creating {}: {e}", dir.display())))?;
        Ok(Self {
            // fsync before an object is published: a file becomes visible
            // only after its metadata commit, which must find the bytes on
            // disk even after a power cut.
            store: Arc::new(LocalFileSystem::new_with_prefix(dir)?.with_fsync(true)),
            description: format!("file://{}", dir.display()),
            local_root: Some(dir.to_path_buf()),
        })
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// The store itself, for objects that are not farm blobs (exports).
    pub(crate) fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn location(farm: FarmId, blob: Uuid) -> Path {
        Path::from(format!("{farm}/{blob}"))
    }

    /// Readiness: the store answers (a missing object is an answer).
    pub async fn ping(&self) -> Result<(), BlobError> {
        match self.store.head(&Path::from("readiness-probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts writing the encrypted blob of `plain_len` plaintext bytes.
    pub fn writer(&self, farm: FarmId, blob: Uuid, key: &DataKey, plain_len: u64) -> Result<BlobWriter, BlobError> {
        let encryptor = BlobEncryptor::new(key, blob.as_bytes(), plain_len, CHUNK_SIZE)?;
        let header = encryptor.header();
        let mut buffer = Vec::with_capacity(PART_SIZE.min(usize::try_from(plain_len).unwrap_or(PART_SIZE) + 1024));
        buffer.extend_from_slice(&header);
        Ok(BlobWriter {
            store: self.store.clone(),
            location: Self::location(farm, blob),
            encryptor,
            sha256: Sha256::new(),
            buffer,
            upload: None,
        })
    }

    /// Removes a blob's object; a missing object is already removed.
    pub async fn delete(&self, farm: FarmId, blob: Uuid) -> Result<(), BlobError> {
        match self.store.delete(&Self::location(farm, blob)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes every object of `farm`, finished or not: on a local store the
    /// farm's whole directory, staging files of uploads a crash cut short
    /// included. For an erased farm, whose key is already gone.
    pub async fn remove_farm(&self, farm: FarmId) -> Result<usize, BlobError> {
        self.remove_prefix(&farm.to_string()).await
    }

    /// Removes every object under `prefix` (a `/`-separated key prefix
    /// without a trailing `/`); returns how many objects the listing
    /// found. On a local store the directory goes as a whole, so staging
    /// files go with it. On S3 an unfinished multipart upload has no object
    /// to list: the bucket's lifecycle rule for incomplete multipart
    /// uploads removes its parts (see README, "Object store").
    pub async fn remove_prefix(&self, prefix: &str) -> Result<usize, BlobError> {
        let location = Path::from(prefix);
        let mut listing = self.store.list(Some(&location));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            match meta {
                Ok(meta) => found.push(meta.location),
                // A local store without the directory yet: nothing to remove.
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
        drop(listing);
        let n = found.len();
        for location in found {
            match self.store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(root) = &self.local_root {
            let dir = location.parts().fold(root.clone(), |dir, part| dir.join(part.as_ref()));
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BlobError::Config(format!("removing {}: {e}", dir.display()))),
            }
        }
        Ok(n)
    }

    /// On a local store: removes the staging files (`<key>#<n>`) last
    /// written before `cutoff`, which only an upload cut short by a crash
    /// leaves behind (a finished upload renames its file, an aborted one
    /// removes it). Returns how many. A store without such files (S3)
    /// returns 0.
    pub async fn sweep_staging(&self, cutoff: std::time::SystemTime) -> Result<usize, BlobError> {
        let Some(root) = self.local_root.clone() else {
            return Ok(0);
        };
        tokio::task::spawn_blocking(move || sweep_staging_under(&root, cutoff))
            .await
            .map_err(|e| BlobError::Config(format!("staging sweep: {e}")))?
    }

    /// The raw stored bytes of a blob (tests use it to tamper and to copy).
    pub async fn raw(&self, farm: FarmId, blob: Uuid) -> Result<Bytes, BlobError> {
        Ok(self.store.get(&Self::location(farm, blob)).await?.bytes().await?)
    }

    /// Overwrites the raw stored bytes of a blob (tests use it to tamper).
    pub async fn put_raw(&self, farm: FarmId, blob: Uuid, bytes: Bytes) -> Result<(), BlobError> {
        self.store
            .put(&Self::location(farm, blob), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Streams the plaintext bytes `start..=end` (`None`: the whole blob) of
    /// a blob holding `plain_len` bytes. Only the chunks the range touches
    /// are fetched and decrypted; each is authenticated before any of its
    /// bytes is yielded.
    pub async fn read(
        &self,
        farm: FarmId,
        blob: Uuid,
        key: &DataKey,
        plain_len: u64,
        range: Option<(u64, u64)>,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let location = Self::location(farm, blob);
        let head = self.store.get_range(&location, 0..BlobHeader::LEN as u64).await?;
        let header = BlobHeader::decode(&head).map_err(|_| BlobError::Integrity)?;
        if header.plain_len != plain_len {
            return Err(BlobError::Integrity);
        }
        let decryptor = BlobDecryptor::new(key, blob.as_bytes(), header)?;
        let (start, end) = match range {
            Some(r) => r,
            None if plain_len == 0 => (0, 0),
            None => (0, plain_len - 1),
        };
        let span = header.chunk_span(
            start.min(plain_len.saturating_sub(1)),
            end.min(plain_len.saturating_sub(1)),
        );
        let chunk_size = u64::from(header.chunk_size);
        let state = ReadState {
            store: self.store.clone(),
            location,
            decryptor,
            pending: Bytes::new(),
            next_offset: span.object_start,
            object_end: span.object_end_exclusive,
            chunk: span.first_chunk,
            last_chunk: span.last_chunk,
            start,
            end,
            chunk_size,
            empty: plain_len == 0,
            done: false,
        };
        Ok(stream::unfold(state, next_plain).boxed())
    }
}

/// Whether `name` is a local store's staging file: `#` and then digits
/// only, as the local store names them (and refuses as object keys).
fn is_staging_name(name: &str) -> bool {
    match name.rsplit_once('#') {
        Some((_, digits)) => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn sweep_staging_under(root: &FsPath, cutoff: std::time::SystemTime) -> Result<usize, BlobError> {
    let io = |e: std::io::Error| BlobError::Config(format!("staging sweep under {}: {e}", root.display()));
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io)?;
            let kind = entry.file_type().map_err(io)?;
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            if !kind.is_file() || !is_staging_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let modified = entry.metadata().and_then(|m| m.modified()).map_err(io)?;
            if modified < cutoff {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
        }
    }
    Ok(removed)
}

/// Stored bytes are fetched in windows of this size: one read (locally) or
/// one ranged GET (S3) per window, instead of object_store's 8 KiB reads.
const READ_WINDOW: u64 = 4 * 1024 * 1024;

struct ReadState {
    store: Arc<dyn ObjectStore>,
    location: Path,
    decryptor: BlobDecryptor,
    /// Stored bytes fetched but not yet decrypted.
    pending: Bytes,
    /// Where the next window starts in the stored object.
    next_offset: u64,
    object_end: u64,
    chunk: u64,
    last_chunk: u64,
    start: u64,
    end: u64,
    chunk_size: u64,
    empty: bool,
    done: bool,
}

/// Yields the plaintext of the next chunk, cut to the requested range.
async fn next_plain(mut s: ReadState) -> Option<(Result<Bytes, BlobError>, ReadState)> {
    if s.done || s.chunk > s.last_chunk {
        return None;
    }
    let need = s.decryptor.stored_chunk_len(s.chunk);
    if s.pending.len() < need {
        // Windows end on chunk boundaries, so a chunk never spans two.
        let stored_chunk = s.chunk_size + crate::farm_crypto::TAG_LEN as u64;
        let window = (READ_WINDOW / stored_chunk).max(1) * stored_chunk;
        let until = (s.next_offset + window).min(s.object_end);
        match s.store.get_range(&s.location, s.next_offset..until).await {
            Ok(bytes) => {
                s.next_offset = until;
                s.pending = bytes;
            }
            Err(e) => {
                s.done = true;
                return Some((Err(e.into()), s));
            }
        }
        if s.pending.len() < need {
            s.done = true;
            return Some((Err(BlobError::Integrity), s));
        }
    }
    let stored = s.pending.split_to(need);
    let plain = match s.decryptor.open_chunk(s.chunk, &stored) {
        Ok(p) => p,
        Err(e) => {
            s.done = true;
            return Some((Err(e.into()), s));
        }
    };
    let chunk_start = s.chunk * s.chunk_size;
    s.chunk += 1;
    if s.empty {
        // The single empty chunk authenticated the header: nothing to send.
        return Some((Ok(Bytes::new()), s));
    }
    let from = usize::try_from(s.start.saturating_sub(chunk_start))
        .unwrap_or(0)
        .min(plain.len());
    let to = usize::try_from((s.end + 1).saturating_sub(chunk_start))
        .unwrap_or(usize::MAX)
        .min(plain.len());
    let slice = Bytes::from(plain).slice(from..to.max(from));
    Some((Ok(slice), s))
}

/// An encrypted upload in progress.
pub struct BlobWriter {
    store: Arc<dyn ObjectStore>,
    location: Path,
    encryptor: BlobEncryptor,
    sha256: Sha256,
    buffer: Vec<u8>,
    upload: Option<WriteMultipart>,
}

impl BlobWriter {
    /// Encrypts and sends `plain`; blocks (asynchronously) when the store
    /// falls behind, so a fast client cannot fill memory.
    pub async fn write(&mut self, plain: &[u8]) -> Result<(), BlobError> {
        self.sha256.update(plain);
        let cipher = self.encryptor.update(plain)?;
        self.buffer.extend_from_slice(&cipher);
        if self.buffer.len() >= PART_SIZE {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn flush_part(&mut self) -> Result<(), BlobError> {
        if self.upload.is_none() {
            let upload = self.store.put_multipart(&self.location).await?;
            self.upload = Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE));
        }
        if let Some(upload) = &mut self.upload {
            upload.wait_for_capacity(2).await?;
            upload.write(&std::mem::take(&mut self.buffer));
        }
        Ok(())
    }

    /// Completes the blob; returns the hex SHA-256 of the plaintext. The
    /// object exists only after this returns.
    pub async fn finish(mut self) -> Result<String, BlobError> {
        let tail = self.encryptor.finish()?;
        self.buffer.extend_from_slice(&tail);
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
        Ok(hex::encode(self.sha256.finalize()))
    }

    /// Gives up: removes whatever was sent.
    pub async fn abort(mut self) {
        if let Some(upload) = self.upload.take() {
            let _ = upload.abort().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_told_from_keys() {
        assert!(is_staging_name("0193-blob#1"));
        assert!(is_staging_name("job.zip#12"));
        assert!(!is_staging_name("0193-blob"));
        assert!(!is_staging_name("a#b"));
        assert!(!is_staging_name("a#"));
    }
}

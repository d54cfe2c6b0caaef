//! Encryption at rest for farm blobs: pure, synchronous building blocks that
//! the blob store wraps around its reads and writes.
//!
//! Each farm has a random [`DataKey`] that is only ever stored wrapped by the
//! server's [`MasterKey`] ([`wrap`] / [`unwrap`]), so rotating or
//! losing the master key is a matter of rewrapping small strings, never of
//! re-encrypting files.
//!
//! Blob format, version 1 (all integers big-endian):
//!
//! ```text
//! header (16 bytes) = "VFB1" | chunk_size u32 | plain_len u64
//! chunk i           = AES-256-GCM(blob_key, nonce_i, aad = header, plaintext
//!                     bytes [i*cs, min((i+1)*cs, len))) || 16-byte tag
//! chunk count       = max(1, ceil(len / cs))
//! nonce_i           = i as u64 | 1u32 if i is the last chunk else 0u32
//! blob_key          = HKDF-SHA256(salt = empty, ikm = farm data key,
//!                     info = "vitalfarm/blob/v1" || blob id (16 bytes))
//! ```
//!
//! The design choices each close one attack on stored bytes: the per-blob key
//! makes counter nonces safe and stops chunks being spliced between blobs; the
//! index in the nonce stops reordering; the header as AAD authenticates the
//! length and chunk size with every chunk; the last-chunk flag plus the
//! authenticated length stop truncation; an empty blob still has one (empty)
//! chunk so that even its header is authenticated. Fixed-size chunks let a
//! byte-range read fetch and open only the chunks it touches
//! ([`BlobHeader::chunk_span`]).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, hkdf, rand};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Default plaintext bytes per chunk: large enough that the 16-byte tag is
/// negligible overhead, small enough that a short range read stays cheap.
pub const CHUNK_SIZE: u32 = 64 * 1024;

/// Largest chunk size a header may declare. A header is read before anything
/// is authenticated, so this bounds what a corrupted one can make a reader
/// allocate.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

/// Length of the AES-GCM authentication tag that ends every stored chunk.
pub const TAG_LEN: usize = 16;

const KEY_LEN: usize = 32;
const MAGIC: &[u8; 4] = b"VFB1";
const BLOB_KEY_INFO: &[u8] = b"vitalfarm/blob/v1";
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// Why an encryption or decryption step failed. Messages never carry key
/// material or plaintext, so they are safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Stored ciphertext did not authenticate: it was altered, truncated,
    /// reordered, spliced from another blob, or is opened with the wrong key.
    #[error("encrypted data failed authentication")]
    Integrity,
    /// A wrapped key did not open: wrong master key, wrong farm, or the
    /// wrapped string was altered.
    #[error("wrapped key does not open with this master key and farm")]
    WrongKey,
    /// Bytes or text that are not in the expected encoding at all.
    #[error("malformed encrypted data: {0}")]
    Malformed(&'static str),
    /// A length or index outside what the blob declares.
    #[error("length mismatch: {0}")]
    Length(&'static str),
    /// The operating system's random source failed.
    #[error("secure random source failed")]
    Random,
}

/// The server-wide key that wraps every farm's [`DataKey`]. Its bytes are
/// wiped when dropped and never shown by `Debug`.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// A fresh key from the system's secure random source.
    pub fn generate() -> Result<Self, CryptoError> {
        random_key().map(Self)
    }

    /// Takes ownership of raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Standard base64 of the key, the form kept in the key file.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Reads the key-file form; surrounding whitespace (a trailing newline)
    /// is ignored because editors add it.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        const BAD: CryptoError = CryptoError::Malformed("master key is not base64 of 32 bytes");
        let mut decoded = BASE64.decode(text.trim()).map_err(|_| BAD)?;
        let key = <[u8; KEY_LEN]>::try_from(decoded.as_slice()).map_err(|_| BAD);
        wipe(&mut decoded);
        key.map(Self)
    }

    /// First 16 hex characters of SHA-256 of the key. Stored beside each
    /// wrapped key so that a server started with the wrong master key can say
    /// so, instead of reporting every farm as corrupt.
    pub fn id(&self) -> String {
        let digest = digest::digest(&digest::SHA256, &self.0);
        hex::encode(&digest.as_ref()[..8])
    }

    fn aead_key(&self) -> Result<LessSafeKey, CryptoError> {
        aes_key(&self.0)
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// One farm's key for all its blobs. Exists in clear only in memory; at rest
/// it is kept as the output of [`wrap`]. Wiped when dropped and never
/// shown by `Debug`.
#[derive(Clone)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// A fresh key from the system's secure random source.
    pub fn generate() -> Result<Self, CryptoError> {
        random_key().map(Self)
    }

    /// Takes ownership of raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    fn blob_key(&self, blob_id: &[u8; 16]) -> Result<LessSafeKey, CryptoError> {
        // Empty salt is RFC 5869's default; the data key is already uniformly
        // random, so extract needs no salt to be sound.
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(&self.0);
        let info = [BLOB_KEY_INFO, blob_id.as_slice()];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| CryptoError::Length("blob key derivation length"))?;
        let mut bytes = [0u8; KEY_LEN];
        // Filled by hand rather than through `UnboundKey::from(okm)`, which
        // panics on failure instead of returning it.
        let filled = okm
            .fill(&mut bytes)
            .map_err(|_| CryptoError::Length("blob key derivation length"));
        let key = filled.and_then(|()| aes_key(&bytes));
        wipe(&mut bytes);
        key
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Encrypts a farm's data key under the master key for storage: standard
/// base64 of `nonce (12) || ciphertext (32) || tag (16)`. The farm id is the
/// AAD, so a wrapped key copied onto another farm's row will not open there.
pub fn wrap(master: &MasterKey, farm_id: &[u8; 16], key: &DataKey) -> Result<String, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce).map_err(|_| CryptoError::Random)?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&key.0);
    let sealed = master.aead_key().and_then(|aead| {
        aead.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(farm_id),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| CryptoError::Length("data key too long to seal"))
    });
    match sealed {
        Ok(tag) => {
            out.extend_from_slice(tag.as_ref());
            Ok(BASE64.encode(&out))
        }
        Err(err) => {
            // On failure the buffer may still hold the key in clear.
            wipe(&mut out);
            Err(err)
        }
    }
}

/// Reverses [`wrap`]. Fails with [`CryptoError::WrongKey`] when the
/// master key or farm id is not the one used to wrap, or the text was altered.
pub fn unwrap(master: &MasterKey, farm_id: &[u8; 16], wrapped: &str) -> Result<DataKey, CryptoError> {
    let mut bytes = BASE64
        .decode(wrapped.trim())
        .map_err(|_| CryptoError::Malformed("wrapped key is not base64"))?;
    if bytes.len() != WRAPPED_LEN {
        return Err(CryptoError::Malformed("wrapped key has the wrong length"));
    }
    let (nonce, sealed) = bytes.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed("wrapped key nonce"))?;
    let aead = master.aead_key()?;
    let opened = aead
        .open_in_place(nonce, Aad::from(farm_id), sealed)
        .map_err(|_| CryptoError::WrongKey)
        .and_then(|plain| {
            <[u8; KEY_LEN]>::try_from(&plain[..])
                .map_err(|_| CryptoError::Malformed("wrapped key has the wrong length"))
        });
    wipe(&mut bytes);
    opened.map(DataKey)
}

/// The 16-byte header that starts every stored blob.
///
/// Its methods never panic, whatever the field values; a header is checked
/// by [`Self::decode`], [`Self::validate`] and the encryptor and decryptor
/// constructors, so the numbers they work with are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobHeader {
    /// Plaintext bytes per chunk (the last chunk may hold fewer).
    pub chunk_size: u32,
    /// Plaintext length of the whole blob.
    pub plain_len: u64,
}

/// Where a plaintext byte range lives in the stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSpan {
    /// Index of the chunk holding the first requested byte.
    pub first_chunk: u64,
    /// Index of the chunk holding the last requested byte.
    pub last_chunk: u64,
    /// Offset in the stored object where `first_chunk` starts.
    pub object_start: u64,
    /// Offset in the stored object just past the tag of `last_chunk`.
    pub object_end_exclusive: u64,
    /// Plaintext bytes to drop from the front of `first_chunk`'s plaintext
    /// to reach the first requested byte.
    pub skip: usize,
}

impl BlobHeader {
    /// Encoded length of a header.
    pub const LEN: usize = 16;

    /// A header for `plain_len` bytes in chunks of `chunk_size`, checked by
    /// [`Self::validate`].
    pub fn new(chunk_size: u32, plain_len: u64) -> Result<Self, CryptoError> {
        let header = Self { chunk_size, plain_len };
        header.validate()?;
        Ok(header)
    }

    /// Refuses a chunk size outside `1..=MAX_CHUNK_SIZE` or a length whose
    /// stored form would not fit in a `u64`.
    pub fn validate(&self) -> Result<(), CryptoError> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(CryptoError::Length("chunk size out of range"));
        }
        if self.checked_encrypted_len().is_none() {
            return Err(CryptoError::Length("blob too large"));
        }
        Ok(())
    }

    /// The stored form of the header.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4..8].copy_from_slice(&self.chunk_size.to_be_bytes());
        out[8..].copy_from_slice(&self.plain_len.to_be_bytes());
        out
    }

    /// Parses exactly [`Self::LEN`] stored bytes and validates them. Success
    /// says nothing about authenticity: that is only known once a chunk opens
    /// under it.
    pub fn decode(bytes: &[u8]) -> Result<Self, CryptoError> {
        let bytes =
            <&[u8; Self::LEN]>::try_from(bytes).map_err(|_| CryptoError::Malformed("blob header is not 16 bytes"))?;
        if &bytes[..4] != MAGIC {
            return Err(CryptoError::Malformed("not a vitalfarm blob (bad magic)"));
        }
        let chunk_size = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let mut plain_len = [0u8; 8];
        plain_len.copy_from_slice(&bytes[8..]);
        let plain_len = u64::from_be_bytes(plain_len);
        Self::new(chunk_size, plain_len).map_err(|_| CryptoError::Malformed("blob header declares impossible sizes"))
    }

    /// Chunk size as used in arithmetic; a zero (invalid) one counts as 1 so
    /// that no method divides by zero.
    fn cs(&self) -> u64 {
        u64::from(self.chunk_size.max(1))
    }

    /// Number of stored chunks; at least one, even for an empty blob.
    pub fn chunk_count(&self) -> u64 {
        if self.plain_len == 0 {
            1
        } else {
            (self.plain_len - 1) / self.cs() + 1
        }
    }

    /// Length of the whole stored object: header plus every chunk and tag
    /// (`u64::MAX` for a header that [`Self::validate`] refuses as too large).
    pub fn encrypted_len(&self) -> u64 {
        self.checked_encrypted_len().unwrap_or(u64::MAX)
    }

    fn checked_encrypted_len(&self) -> Option<u64> {
        self.chunk_count()
            .checked_mul(TAG_LEN as u64)?
            .checked_add(self.plain_len)?
            .checked_add(Self::LEN as u64)
    }

    /// Plaintext length of chunk `index`, or `None` past the last chunk.
    pub fn chunk_plain_len(&self, index: u64) -> Option<usize> {
        let last = self.chunk_count() - 1;
        let len = match index {
            i if i < last => self.cs(),
            i if i == last => self.plain_len - last * self.cs(),
            _ => return None,
        };
        usize::try_from(len).ok()
    }

    /// Offset in the stored object where chunk `index` starts.
    fn chunk_offset(&self, index: u64) -> u64 {
        index
            .saturating_mul(self.cs() + TAG_LEN as u64)
            .saturating_add(Self::LEN as u64)
    }

    /// For the plaintext byte range `[start, end_inclusive]`: the first and
    /// last chunk index and the byte range of the stored object that holds
    /// them. Positions past the end are clamped to the last chunk, so
    /// `(0, 0)` on an empty blob names its single empty chunk (whose opening
    /// authenticates the header); callers check the range against
    /// `plain_len` themselves to answer "range not satisfiable".
    pub fn chunk_span(&self, start: u64, end_inclusive: u64) -> ChunkSpan {
        let cs = self.cs();
        let last_index = self.chunk_count() - 1;
        let first_chunk = (start / cs).min(last_index);
        let last_chunk = (end_inclusive / cs).min(last_index).max(first_chunk);
        let first_len = self.chunk_plain_len(first_chunk).unwrap_or(0);
        let into_first = start.saturating_sub(first_chunk * cs);
        let skip = usize::try_from(into_first).map_or(first_len, |n| n.min(first_len));
        let last_stored = self.chunk_plain_len(last_chunk).unwrap_or(0).saturating_add(TAG_LEN);
        ChunkSpan {
            first_chunk,
            last_chunk,
            object_start: self.chunk_offset(first_chunk),
            object_end_exclusive: self.chunk_offset(last_chunk).saturating_add(last_stored as u64),
            skip,
        }
    }
}

/// Encrypts a blob incrementally: feed plaintext in any pieces, get
/// ciphertext out. Write [`Self::header`] first, then every output of
/// [`Self::update`], then that of [`Self::finish`]. After an error the
/// encryptor must be discarded.
pub struct BlobEncryptor {
    key: LessSafeKey,
    header: BlobHeader,
    aad: [u8; BlobHeader::LEN],
    /// Plaintext of the chunk being filled; only ever partial, or the final
    /// chunk, which is held back until `finish` so it is sealed exactly once
    /// with the last-chunk flag.
    pending: Vec<u8>,
    next_index: u64,
    fed: u64,
}

impl BlobEncryptor {
    /// Starts a blob of exactly `plain_len` bytes (the upload's declared
    /// size) under the farm's `data_key` and this blob's id.
    pub fn new(data_key: &DataKey, blob_id: &[u8; 16], plain_len: u64, chunk_size: u32) -> Result<Self, CryptoError> {
        let header = BlobHeader::new(chunk_size, plain_len)?;
        let capacity = usize::try_from(plain_len.min(u64::from(chunk_size))).unwrap_or(0);
        Ok(Self {
            key: data_key.blob_key(blob_id)?,
            header,
            aad: header.encode(),
            pending: Vec::with_capacity(capacity),
            next_index: 0,
            fed: 0,
        })
    }

    /// The stored header, which must precede the chunks.
    pub fn header(&self) -> [u8; BlobHeader::LEN] {
        self.aad
    }

    /// Appends plaintext and returns the ciphertext of every chunk it
    /// completed (possibly none). Fails, consuming nothing, if the total fed
    /// would exceed the declared length.
    pub fn update(&mut self, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let remaining = self.header.plain_len - self.fed;
        if plain.len() as u64 > remaining {
            return Err(CryptoError::Length("more plaintext than the declared length"));
        }
        self.fed += plain.len() as u64;

        let cs = self.header.chunk_size as usize;
        let last_index = self.header.chunk_count() - 1;
        let mut out = Vec::with_capacity((self.pending.len() + plain.len()) / cs * (cs + TAG_LEN));
        let mut rest = plain;
        while !rest.is_empty() {
            if self.next_index == last_index {
                // Everything left belongs to the final chunk; the length
                // check above guarantees it fits.
                self.pending.extend_from_slice(rest);
                break;
            }
            if self.pending.is_empty() && rest.len() >= cs {
                // Whole chunks straight from the input skip a buffer copy.
                let (chunk, tail) = rest.split_at(cs);
                self.seal(&mut out, Some(chunk), false)?;
                rest = tail;
                continue;
            }
            let take = (cs - self.pending.len()).min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.pending.extend_from_slice(head);
            rest = tail;
            if self.pending.len() == cs {
                self.seal(&mut out, None, false)?;
            }
        }
        Ok(out)
    }

    /// Ciphertext of the final chunk. Fails if fewer bytes than the declared
    /// length were fed, since the header already promised that length.
    pub fn finish(mut self) -> Result<Vec<u8>, CryptoError> {
        if self.fed != self.header.plain_len {
            return Err(CryptoError::Length("less plaintext than the declared length"));
        }
        let mut out = Vec::with_capacity(self.pending.len() + TAG_LEN);
        self.seal(&mut out, None, true)?;
        Ok(out)
    }

    /// Seals `chunk`, or the pending buffer when `None` (which is then
    /// emptied), as the next chunk and appends it to `out`.
    fn seal(&mut self, out: &mut Vec<u8>, chunk: Option<&[u8]>, last: bool) -> Result<(), CryptoError> {
        let start = out.len();
        out.extend_from_slice(chunk.unwrap_or(&self.pending));
        let tag = self
            .key
            .seal_in_place_separate_tag(
                chunk_nonce(self.next_index, last),
                Aad::from(&self.aad),
                &mut out[start..],
            )
            .map_err(|_| CryptoError::Length("chunk too long to seal"))?;
        out.extend_from_slice(tag.as_ref());
        if chunk.is_none() {
            self.pending.clear();
        }
        self.next_index += 1;
        Ok(())
    }
}

/// Opens the chunks of one stored blob, for whole reads and for ranges alike:
/// chunks may be opened in any order and any subset.
pub struct BlobDecryptor {
    key: LessSafeKey,
    header: BlobHeader,
    aad: [u8; BlobHeader::LEN],
}

impl BlobDecryptor {
    /// Prepares to open a blob whose header was read (unauthenticated) from
    /// storage; the header is authenticated by every chunk opened.
    pub fn new(data_key: &DataKey, blob_id: &[u8; 16], header: BlobHeader) -> Result<Self, CryptoError> {
        header.validate()?;
        Ok(Self {
            key: data_key.blob_key(blob_id)?,
            header,
            aad: header.encode(),
        })
    }

    /// The header this decryptor authenticates against.
    pub fn header(&self) -> BlobHeader {
        self.header
    }

    /// Stored length (ciphertext and tag) of chunk `index`; 0 past the last
    /// chunk.
    pub fn stored_chunk_len(&self, index: u64) -> usize {
        self.header.chunk_plain_len(index).map_or(0, |len| len + TAG_LEN)
    }

    /// Opens stored chunk `index` and returns its plaintext. Stored bytes of
    /// the wrong length count as an [`CryptoError::Integrity`] failure, since
    /// that is what a truncated or padded object looks like.
    pub fn open_chunk(&self, index: u64, stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if index >= self.header.chunk_count() {
            return Err(CryptoError::Length("chunk index past the end of the blob"));
        }
        if stored.len() != self.stored_chunk_len(index) {
            return Err(CryptoError::Integrity);
        }
        let last = index == self.header.chunk_count() - 1;
        let mut buf = stored.to_vec();
        let plain_len = self
            .key
            .open_in_place(chunk_nonce(index, last), Aad::from(&self.aad), &mut buf)
            .map_err(|_| CryptoError::Integrity)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }

    /// Plaintext bytes `[start, end_inclusive]`, given exactly the stored
    /// bytes `object_start..object_end_exclusive` of
    /// [`BlobHeader::chunk_span`] for that range. Unlike `chunk_span` this
    /// does not clamp: it fails unless `start <= end_inclusive < plain_len`.
    pub fn open_range(&self, start: u64, end_inclusive: u64, stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if start > end_inclusive || end_inclusive >= self.header.plain_len {
            return Err(CryptoError::Length("range outside the blob"));
        }
        let span = self.header.chunk_span(start, end_inclusive);
        if stored.len() as u64 != span.object_end_exclusive - span.object_start {
            return Err(CryptoError::Integrity);
        }
        let want = usize::try_from(end_inclusive - start + 1)
            .map_err(|_| CryptoError::Length("range exceeds address space"))?;
        let mut out = Vec::with_capacity(want);
        let mut rest = stored;
        for index in span.first_chunk..=span.last_chunk {
            let (chunk, tail) = rest.split_at(self.stored_chunk_len(index));
            out.extend_from_slice(&self.open_chunk(index, chunk)?);
            rest = tail;
        }
        out.drain(..span.skip);
        out.truncate(want);
        Ok(out)
    }
}

/// Encrypts a whole in-memory blob: header followed by every chunk.
pub fn encrypt_blob(
    data_key: &DataKey,
    blob_id: &[u8; 16],
    plain: &[u8],
    chunk_size: u32,
) -> Result<Vec<u8>, CryptoError> {
    let mut enc = BlobEncryptor::new(data_key, blob_id, plain.len() as u64, chunk_size)?;
    let mut out = enc.header().to_vec();
    out.extend_from_slice(&enc.update(plain)?);
    out.extend_from_slice(&enc.finish()?);
    Ok(out)
}

/// Decrypts a whole in-memory stored blob, checking that it is exactly as
/// long as its header says so truncation and trailing bytes are caught.
pub fn decrypt_blob(data_key: &DataKey, blob_id: &[u8; 16], stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if stored.len() < BlobHeader::LEN {
        return Err(CryptoError::Integrity);
    }
    let (header, mut rest) = stored.split_at(BlobHeader::LEN);
    let header = BlobHeader::decode(header)?;
    if stored.len() as u64 != header.encrypted_len() {
        return Err(CryptoError::Integrity);
    }
    let dec = BlobDecryptor::new(data_key, blob_id, header)?;
    let mut out = Vec::with_capacity(usize::try_from(header.plain_len).unwrap_or(0));
    for index in 0..header.chunk_count() {
        let (chunk, tail) = rest.split_at(dec.stored_chunk_len(index));
        out.extend_from_slice(&dec.open_chunk(index, chunk)?);
        rest = tail;
    }
    Ok(out)
}

fn chunk_nonce(index: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&index.to_be_bytes());
    nonce[8..].copy_from_slice(&u32::from(last).to_be_bytes());
    Nonce::assume_unique_for_key(nonce)
}

fn aes_key(bytes: &[u8; KEY_LEN]) -> Result<LessSafeKey, CryptoError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::Length("AES-256 key must be 32 bytes"))
}

fn random_key() -> Result<[u8; KEY_LEN], CryptoError> {
    let mut key = [0u8; KEY_LEN];
    rand::fill(&mut key).map_err(|_| CryptoError::Random)?;
    Ok(key)
}

/// Best-effort erasure of secrets: `black_box` keeps the compiler from
/// dropping the writes as dead stores (no `unsafe` volatile writes allowed).
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SMALL: u32 = 16;
    const FARM: [u8; 16] = [7; 16];
    const BLOB: [u8; 16] = [1; 16];
    const OTHER_BLOB: [u8; 16] = [2; 16];

    fn data_key() -> DataKey {
        DataKey::from_bytes([0x42; 32])
    }

    fn plaintext(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    /// Encrypts through the incremental API, cutting the input into pieces
    /// whose sizes cycle through `pieces`.
    fn encrypt_in_pieces(key: &DataKey, id: &[u8; 16], plain: &[u8], cs: u32, pieces: &[usize]) -> Vec<u8> {
        let mut enc = BlobEncryptor::new(key, id, plain.len() as u64, cs).unwrap();
        let mut out = enc.header().to_vec();
        let mut rest = plain;
        for &piece in pieces.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at(piece.min(rest.len()));
            out.extend(enc.update(head).unwrap());
            rest = tail;
        }
        out.extend(enc.finish().unwrap());
        out
    }

    fn lengths(cs: u32) -> [usize; 6] {
        let cs = cs as usize;
        [0, 1, cs - 1, cs, cs + 1, 3 * cs + 7]
    }

    fn chunk_range(header: &BlobHeader, index: u64) -> std::ops::Range<usize> {
        let start = header.chunk_offset(index) as usize;
        start..start + header.chunk_plain_len(index).unwrap() + TAG_LEN
    }

    #[test]
    fn round_trips_at_chunk_boundaries() {
        let key = data_key();
        for cs in [SMALL, CHUNK_SIZE] {
            for len in lengths(cs) {
                let plain = plaintext(len);
                for pieces in [&[1usize, 3, 5, 7][..], &[13, 2], &[cs as usize + 3], &[usize::MAX]] {
                    let stored = encrypt_in_pieces(&key, &BLOB, &plain, cs, pieces);
                    let header = BlobHeader::decode(&stored[..BlobHeader::LEN]).unwrap();
                    assert_eq!(header, BlobHeader::new(cs, len as u64).unwrap());
                    assert_eq!(stored.len() as u64, header.encrypted_len(), "cs={cs} len={len}");
                    assert_eq!(decrypt_blob(&key, &BLOB, &stored).unwrap(), plain, "cs={cs} len={len}");
                }
                assert_eq!(
                    encrypt_blob(&key, &BLOB, &plain, cs).unwrap().len() as u64,
                    BlobHeader::new(cs, len as u64).unwrap().encrypted_len()
                );
            }
        }
    }

    #[test]
    fn empty_update_pieces_are_harmless() {
        let key = data_key();
        let plain = plaintext(40);
        let mut enc = BlobEncryptor::new(&key, &BLOB, 40, SMALL).unwrap();
        let mut out = enc.header().to_vec();
        out.extend(enc.update(&[]).unwrap());
        out.extend(enc.update(&plain[..16]).unwrap());
        out.extend(enc.update(&[]).unwrap());
        out.extend(enc.update(&plain[16..]).unwrap());
        out.extend(enc.finish().unwrap());
        assert_eq!(decrypt_blob(&key, &BLOB, &out).unwrap(), plain);
    }

    #[test]
    fn chunks_are_emitted_as_soon_as_complete_except_the_last() {
        let key = data_key();
        let mut enc = BlobEncryptor::new(&key, &BLOB, 40, SMALL).unwrap();
        assert!(enc.update(&plaintext(15)).unwrap().is_empty());
        assert_eq!(enc.update(&[0]).unwrap().len(), 16 + TAG_LEN);
        assert_eq!(enc.update(&plaintext(24)).unwrap().len(), 16 + TAG_LEN);
        assert_eq!(enc.finish().unwrap().len(), 8 + TAG_LEN);

        let mut enc = BlobEncryptor::new(&key, &BLOB, 32, SMALL).unwrap();
        assert_eq!(enc.update(&plaintext(32)).unwrap().len(), 16 + TAG_LEN);
        assert_eq!(enc.finish().unwrap().len(), 16 + TAG_LEN);
    }

    #[test]
    fn format_matches_the_documented_layout() {
        // Rebuilds the object from raw primitives so the layout in the module
        // doc is checked independently of the encryptor.
        let key = data_key();
        let plain = plaintext(20);
        let stored = encrypt_blob(&key, &BLOB, &plain, SMALL).unwrap();

        let mut header = b"VFB1".to_vec();
        header.extend_from_slice(&16u32.to_be_bytes());
        header.extend_from_slice(&20u64.to_be_bytes());
        assert_eq!(&stored[..16], &header[..]);

        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(&[0x42; 32]);
        let info = [&b"vitalfarm/blob/v1"[..], &BLOB[..]];
        let blob_key = LessSafeKey::new(UnboundKey::from(prk.expand(&info, &AES_256_GCM).unwrap()));
        let mut expected = header.clone();
        for (index, part, last) in [(0u8, &plain[..16], 0u8), (1, &plain[16..], 1)] {
            let nonce = [0, 0, 0, 0, 0, 0, 0, index, 0, 0, 0, last];
            let mut buf = part.to_vec();
            blob_key
                .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&header), &mut buf)
                .unwrap();
            expected.extend(buf);
        }
        assert_eq!(stored, expected);
    }

    #[test]
    fn every_range_decrypts_to_the_plaintext_slice() {
        let key = data_key();
        for len in [1usize, 15, 16, 17, 55, 64] {
            let plain = plaintext(len);
            let stored = encrypt_blob(&key, &BLOB, &plain, SMALL).unwrap();
            let header = BlobHeader::decode(&stored[..BlobHeader::LEN]).unwrap();
            let dec = BlobDecryptor::new(&key, &BLOB, header).unwrap();
            for start in 0..len as u64 {
                for end in start..len as u64 {
                    let span = header.chunk_span(start, end);
                    let object = &stored[span.object_start as usize..span.object_end_exclusive as usize];
                    // By hand, as a streaming reader would do it.
                    let mut got = Vec::new();
                    let mut rest = object;
                    for index in span.first_chunk..=span.last_chunk {
                        let (chunk, tail) = rest.split_at(dec.stored_chunk_len(index));
                        got.extend(dec.open_chunk(index, chunk).unwrap());
                        rest = tail;
                    }
                    assert!(rest.is_empty());
                    let want = &plain[start as usize..=end as usize];
                    assert_eq!(
                        &got[span.skip..span.skip + want.len()],
                        want,
                        "len={len} {start}..={end}"
                    );
                    assert_eq!(dec.open_range(start, end, object).unwrap(), want);
                }
            }
        }
    }

    #[test]
    fn ranges_with_the_default_chunk_size() {
        let key = data_key();
        let cs = CHUNK_SIZE as u64;
        let plain = plaintext(3 * cs as usize + 7);
        let stored = encrypt_blob(&key, &BLOB, &plain, CHUNK_SIZE).unwrap();
        let header = BlobHeader::decode(&stored[..BlobHeader::LEN]).unwrap();
        let dec = BlobDecryptor::new(&key, &BLOB, header).unwrap();
        let len = plain.len() as u64;
        for (start, end) in [
            (0, 0),
            (0, len - 1),
            (cs - 1, cs),
            (cs, 2 * cs - 1),
            (3 * cs, len - 1),
            (5, 2 * cs + 3),
        ] {
            let span = header.chunk_span(start, end);
            let object = &stored[span.object_start as usize..span.object_end_exclusive as usize];
            assert_eq!(
                dec.open_range(start, end, object).unwrap(),
                &plain[start as usize..=end as usize]
            );
        }
    }

    #[test]
    fn chunk_span_locates_and_clamps() {
        let header = BlobHeader::new(SMALL, 40).unwrap();
        assert_eq!(
            header.chunk_span(17, 39),
            ChunkSpan {
                first_chunk: 1,
                last_chunk: 2,
                object_start: 48,
                object_end_exclusive: 104,
                skip: 1
            }
        );
        // Past the end: clamped to the last chunk rather than pointing past
        // the object.
        assert_eq!(header.chunk_span(0, 1000).last_chunk, 2);
        assert_eq!(
            header.chunk_span(1000, 2000).object_end_exclusive,
            header.encrypted_len()
        );
        assert_eq!(header.chunk_span(1000, 2000).skip, 8);
        let empty = BlobHeader::new(SMALL, 0).unwrap();
        assert_eq!(
            empty.chunk_span(0, 0),
            ChunkSpan {
                first_chunk: 0,
                last_chunk: 0,
                object_start: 16,
                object_end_exclusive: 32,
                skip: 0
            }
        );
        // Invalid headers never panic.
        let zero = BlobHeader {
            chunk_size: 0,
            plain_len: u64::MAX,
        };
        let _ = (
            zero.chunk_count(),
            zero.encrypted_len(),
            zero.chunk_span(u64::MAX, 0),
            zero.chunk_plain_len(5),
        );
        assert!(zero.validate().is_err());
        assert!(BlobDecryptor::new(&data_key(), &BLOB, zero).is_err());

        let dec = BlobDecryptor::new(&data_key(), &BLOB, header).unwrap();
        assert_eq!(
            dec.open_range(0, 40, &[]),
            Err(CryptoError::Length("range outside the blob"))
        );
        assert!(dec.open_range(5, 4, &[]).is_err());
    }

    #[test]
    fn an_empty_blob_is_read_through_its_single_chunk() {
        let key = data_key();
        let stored = encrypt_blob(&key, &BLOB, &[], SMALL).unwrap();
        assert_eq!(stored.len(), 32);
        let header = BlobHeader::decode(&stored[..16]).unwrap();
        let span = header.chunk_span(0, 0);
        let dec = BlobDecryptor::new(&key, &BLOB, header).unwrap();
        let chunk = &stored[span.object_start as usize..span.object_end_exclusive as usize];
        assert_eq!(dec.open_chunk(0, chunk).unwrap(), Vec::<u8>::new());
        let mut forged = header;
        forged.plain_len = 0;
        forged.chunk_size = 17;
        let other = BlobDecryptor::new(&key, &BLOB, forged).unwrap();
        assert_eq!(other.open_chunk(0, chunk), Err(CryptoError::Integrity));
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let key = data_key();
        let stored = encrypt_blob(&key, &BLOB, &plaintext(40), SMALL).unwrap();
        let header = BlobHeader::decode(&stored[..BlobHeader::LEN]).unwrap();
        let dec = BlobDecryptor::new(&key, &BLOB, header).unwrap();
        for bit in 0..stored.len() * 8 {
            let mut bad = stored.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decrypt_blob(&key, &BLOB, &bad).is_err(), "bit {bit}");
            if bit / 8 >= BlobHeader::LEN {
                assert_eq!(
                    decrypt_blob(&key, &BLOB, &bad),
                    Err(CryptoError::Integrity),
                    "bit {bit}"
                );
            }
        }
        for index in 0..header.chunk_count() {
            let range = chunk_range(&header, index);
            for bit in 0..range.len() * 8 {
                let mut chunk = stored[range.clone()].to_vec();
                chunk[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(dec.open_chunk(index, &chunk), Err(CryptoError::Integrity));
            }
        }
    }

    #[test]
    fn a_header_flip_that_still_parses_fails_every_chunk() {
        let key = data_key();
        let stored = encrypt_blob(&key, &BLOB, &plaintext(40), SMALL).unwrap();
        let mut header = BlobHeader::decode(&stored[..BlobHeader::LEN]).unwrap();
        header.plain_len = 41;
        let dec = BlobDecryptor::new(&key, &BLOB, header).unwrap();
        assert_eq!(dec.open_chunk(0, &stored[16..48]), Err(CryptoError::Integrity));
    }

    #[test]
    fn swapped_chunks_are_detected() {
        let key = data_key();
        let stored = encrypt_blob(&key, &BLOB, &plaintext(48), SMALL).unwrap();
        let header = BlobHeader::decode(&stored[..BlobHeader::LEN]).unwrap();
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let mut bad = stored.clone();
            let (ra, rb) = (chunk_range(&header, a), chunk_range(&header, b));
            let (ca, cb) = (stored[ra.clone()].to_vec(), stored[rb.clone()].to_vec());
            bad[ra].copy_from_slice(&cb);
            bad[rb].copy_from_slice(&ca);
            assert_eq!(
                decrypt_blob(&key, &BLOB, &bad),
                Err(CryptoError::Integrity),
                "{a}<->{b}"
            );
        }
    }

    #[test]
    fn truncation_is_detected() {
        let key = data_key();
        let stored = encrypt_blob(&key, &BLOB, &plaintext(48), SMALL).unwrap();
        let header = BlobHeader::decode(&stored[..BlobHeader::LEN]).unwrap();
        let dec = BlobDecryptor::new(&key, &BLOB, header).unwrap();

        // A shortened last chunk.
        let short = &stored[..stored.len() - 1];
        assert_eq!(decrypt_blob(&key, &BLOB, short), Err(CryptoError::Integrity));
        let last = chunk_range(&header, 2);
        assert_eq!(
            dec.open_chunk(2, &stored[last.start..last.end - 1]),
            Err(CryptoError::Integrity)
        );

        // The last chunk dropped and the header lowered to match: the new
        // last chunk was sealed as a middle one under another header.
        let mut dropped = stored[..last.start].to_vec();
        dropped[8..16].copy_from_slice(&32u64.to_be_bytes());
        assert_eq!(decrypt_blob(&key, &BLOB, &dropped), Err(CryptoError::Integrity));

        // Trailing bytes are refused as well.
        let mut longer = stored.clone();
        longer.push(0);
        assert_eq!(decrypt_blob(&key, &BLOB, &longer), Err(CryptoError::Integrity));
        assert_eq!(decrypt_blob(&key, &BLOB, &stored[..10]), Err(CryptoError::Integrity));
    }

    #[test]
    fn the_last_chunk_flag_is_part_of_the_nonce() {
        // Same key, header and index: only the flag differs, so a reader that
        // took a middle chunk for the last one (a cut at a chunk boundary
        // whose header length was also forged) still fails.
        let key = data_key();
        let stored = encrypt_blob(&key, &BLOB, &plaintext(32), SMALL).unwrap();
        let dec = BlobDecryptor::new(&key, &BLOB, BlobHeader::new(SMALL, 32).unwrap()).unwrap();
        let aad = dec.header().encode();
        let mut as_middle = stored[16..48].to_vec();
        assert!(
            dec.key
                .open_in_place(chunk_nonce(0, false), Aad::from(&aad), &mut as_middle)
                .is_ok()
        );
        let mut as_last = stored[16..48].to_vec();
        assert!(
            dec.key
                .open_in_place(chunk_nonce(0, true), Aad::from(&aad), &mut as_last)
                .is_err()
        );
    }

    #[test]
    fn chunks_from_another_blob_are_refused() {
        let key = data_key();
        let plain = plaintext(48);
        let ours = encrypt_blob(&key, &BLOB, &plain, SMALL).unwrap();
        let theirs = encrypt_blob(&key, &OTHER_BLOB, &plain, SMALL).unwrap();
        let header = BlobHeader::decode(&ours[..BlobHeader::LEN]).unwrap();
        for index in 0..3 {
            let range = chunk_range(&header, index);
            let mut spliced = ours.clone();
            spliced[range.clone()].copy_from_slice(&theirs[range]);
            assert_eq!(decrypt_blob(&key, &BLOB, &spliced), Err(CryptoError::Integrity));
        }
        assert_eq!(decrypt_blob(&key, &OTHER_BLOB, &ours), Err(CryptoError::Integrity));
    }

    #[test]
    fn wrong_data_key_is_refused() {
        let stored = encrypt_blob(&data_key(), &BLOB, &plaintext(40), SMALL).unwrap();
        let other = DataKey::generate().unwrap();
        assert_eq!(decrypt_blob(&other, &BLOB, &stored), Err(CryptoError::Integrity));
        let empty = encrypt_blob(&data_key(), &BLOB, &[], SMALL).unwrap();
        assert_eq!(decrypt_blob(&other, &BLOB, &empty), Err(CryptoError::Integrity));
    }

    #[test]
    fn encryptor_enforces_the_declared_length() {
        let key = data_key();
        let mut enc = BlobEncryptor::new(&key, &BLOB, 10, SMALL).unwrap();
        assert_eq!(
            enc.update(&plaintext(11)),
            Err(CryptoError::Length("more plaintext than the declared length"))
        );
        enc.update(&plaintext(9)).unwrap();
        assert_eq!(
            enc.finish(),
            Err(CryptoError::Length("less plaintext than the declared length"))
        );
        assert!(BlobEncryptor::new(&key, &BLOB, 10, 0).is_err());
        assert!(BlobEncryptor::new(&key, &BLOB, 10, MAX_CHUNK_SIZE + 1).is_err());
        assert!(BlobEncryptor::new(&key, &BLOB, u64::MAX, SMALL).is_err());
    }

    #[test]
    fn header_decoding_rejects_garbage() {
        let good = BlobHeader::new(SMALL, 40).unwrap().encode();
        assert_eq!(BlobHeader::decode(&good).unwrap().plain_len, 40);
        assert!(BlobHeader::decode(&good[..15]).is_err());
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(
            BlobHeader::decode(&bad),
            Err(CryptoError::Malformed("not a vitalfarm blob (bad magic)"))
        );
        let mut zero_cs = good;
        zero_cs[4..8].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(BlobHeader::decode(&zero_cs), Err(CryptoError::Malformed(_))));
        let mut huge = good;
        huge[8..].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(BlobHeader::decode(&huge), Err(CryptoError::Malformed(_))));
    }

    #[test]
    fn decryptor_reports_chunk_lengths_and_bounds() {
        let dec = BlobDecryptor::new(&data_key(), &BLOB, BlobHeader::new(SMALL, 40).unwrap()).unwrap();
        assert_eq!(dec.stored_chunk_len(0), 32);
        assert_eq!(dec.stored_chunk_len(2), 8 + TAG_LEN);
        assert_eq!(dec.stored_chunk_len(3), 0);
        assert!(matches!(dec.open_chunk(3, &[]), Err(CryptoError::Length(_))));
        let empty = BlobDecryptor::new(&data_key(), &BLOB, BlobHeader::new(SMALL, 0).unwrap()).unwrap();
        assert_eq!(empty.stored_chunk_len(0), TAG_LEN);
    }

    #[test]
    fn wrapped_keys_open_only_with_their_master_and_farm() {
        let master = MasterKey::generate().unwrap();
        let key = DataKey::generate().unwrap();
        let wrapped = wrap(&master, &FARM, &key).unwrap();
        assert_eq!(BASE64.decode(&wrapped).unwrap().len(), WRAPPED_LEN);
        assert_eq!(unwrap(&master, &FARM, &wrapped).unwrap().0, key.0);
        // Random nonces: wrapping twice gives different strings.
        assert_ne!(wrap(&master, &FARM, &key).unwrap(), wrapped);

        let other_master = MasterKey::generate().unwrap();
        assert_eq!(
            unwrap(&other_master, &FARM, &wrapped).unwrap_err(),
            CryptoError::WrongKey
        );
        assert_eq!(unwrap(&master, &[8; 16], &wrapped).unwrap_err(), CryptoError::WrongKey);

        let mut raw = BASE64.decode(&wrapped).unwrap();
        raw[NONCE_LEN] ^= 1;
        assert_eq!(
            unwrap(&master, &FARM, &BASE64.encode(&raw)).unwrap_err(),
            CryptoError::WrongKey
        );
        assert!(matches!(
            unwrap(&master, &FARM, "not base64!"),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            unwrap(&master, &FARM, &BASE64.encode([0u8; 59])),
            Err(CryptoError::Malformed(_))
        ));
    }

    #[test]
    fn master_key_id_and_base64_are_stable() {
        // SHA-256 of 32 zero bytes is 66687aad f862bd77 ...
        let zero = MasterKey::from_bytes([0; 32]);
        assert_eq!(zero.id(), "66687aadf862bd77");
        assert_eq!(zero.id(), zero.clone().id());
        assert_eq!(zero.to_base64(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");

        let master = MasterKey::generate().unwrap();
        let text = format!("{}\n", master.to_base64());
        let read = MasterKey::from_base64(&text).unwrap();
        assert_eq!(read.0, master.0);
        assert_eq!(read.id(), master.id());
        assert_ne!(master.id(), zero.id());
        assert!(MasterKey::from_base64("AAAA").is_err());
        assert!(MasterKey::from_base64("***").is_err());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let master = MasterKey::from_bytes([0xAB; 32]);
        let key = DataKey::from_bytes([0xAB; 32]);
        assert_eq!(format!("{master:?}"), "MasterKey(..)");
        assert_eq!(format!("{key:?}"), "DataKey(..)");
        assert_eq!(format!("{:#?}", master), "MasterKey(..)");
        // 0xAB is 171 in an array's Debug output.
        assert!(!format!("{master:?}{key:?}{:?}", Some(&key)).contains("171"));
    }

    proptest! {
        #[test]
        fn random_plaintexts_round_trip(
            plain in proptest::collection::vec(any::<u8>(), 0..300),
            cs in 1u32..40,
            pieces in proptest::collection::vec(1usize..50, 1..8),
        ) {
            let key = data_key();
            let stored = encrypt_in_pieces(&key, &BLOB, &plain, cs, &pieces);
            prop_assert_eq!(stored.len() as u64, BlobHeader::new(cs, plain.len() as u64).unwrap().encrypted_len());
            prop_assert_eq!(decrypt_blob(&key, &BLOB, &stored).unwrap(), plain);
        }

        #[test]
        fn random_bit_flips_are_detected(
            plain in proptest::collection::vec(any::<u8>(), 0..300),
            cs in 1u32..40,
            flip in any::<proptest::sample::Index>(),
        ) {
            let key = data_key();
            let mut stored = encrypt_blob(&key, &BLOB, &plain, cs).unwrap();
            let bit = flip.index(stored.len() * 8);
            stored[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decrypt_blob(&key, &BLOB, &stored).is_err());
        }

        #[test]
        fn random_ranges_match(
            plain in proptest::collection::vec(any::<u8>(), 1..300),
            cs in 1u32..40,
            a in any::<proptest::sample::Index>(),
            b in any::<proptest::sample::Index>(),
        ) {
            let key = data_key();
            let stored = encrypt_blob(&key, &BLOB, &plain, cs).unwrap();
            let (a, b) = (a.index(plain.len()), b.index(plain.len()));
            let (start, end) = (a.min(b), a.max(b));
            let header = BlobHeader::decode(&stored[..BlobHeader::LEN]).unwrap();
            let span = header.chunk_span(start as u64, end as u64);
            let dec = BlobDecryptor::new(&key, &BLOB, header).unwrap();
            let object = &stored[span.object_start as usize..span.object_end_exclusive as usize];
            prop_assert_eq!(dec.open_range(start as u64, end as u64, object).unwrap(), &plain[start..=end]);
        }
    }
}

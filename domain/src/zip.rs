//! An incremental ZIP encoder (STORED, no compression) for exporting a farm
//! as one download: the caller streams each file's bytes straight through and
//! sends the headers this encoder hands back, so no file is ever held whole
//! in memory and the response can start before the last file is read.
//!
//! Layout (APPNOTE 6.3.x): per entry a local header, the data and a data
//! descriptor; then the central directory and the end records. Health data
//! is mostly already compressed or small, and STORED keeps the output size
//! known in advance and the CPU cost nil.

/// `(year, month, day, hour, minute, second)` in UTC. ZIP's MS-DOS format
/// keeps even seconds only and years 1980 to 2107: earlier times become
/// 1980-01-01 00:00:00 and later ones 2107-12-31 23:59:58.
pub type Timestamp = (u16, u8, u8, u8, u8, u8);

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END_SIG: u32 = 0x0605_4b50;
const ZIP64_EXTRA_ID: u16 = 0x0001;

/// Bit 3: CRC and sizes follow the data, since the CRC is known only then.
/// Bit 11: names are UTF-8, so non-ASCII names survive on every unpacker.
const FLAGS: u16 = (1 << 3) | (1 << 11);
const METHOD_STORED: u16 = 0;
const VERSION_DEFAULT: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// Made by "Unix" so that the external attributes carry a file mode;
/// without one, unzip on Unix would create files nobody may read.
const VERSION_MADE_BY: u16 = (3 << 8) | VERSION_ZIP64;
const UNIX_REGULAR_FILE_0644: u32 = 0o100_644 << 16;

const LOCAL_HEADER_LEN: usize = 30;
const CENTRAL_HEADER_LEN: usize = 46;
/// Local form: both sizes, always both, as APPNOTE 4.5.3 requires there.
const LOCAL_ZIP64_EXTRA_LEN: u16 = 4 + 16;
/// Central form: both sizes and the local header offset.
const CENTRAL_ZIP64_EXTRA_LEN: u16 = 4 + 24;
const ZIP64_END_LEN: usize = 56;
/// The ZIP64 end record's size field leaves out its first 12 bytes.
const ZIP64_END_SIZE_FIELD: u64 = 56 - 12;
const ZIP64_LOCATOR_LEN: usize = 20;
const END_LEN: usize = 22;

/// Values at or above these do not fit the classic fields (whose all-ones
/// value means "see the ZIP64 record"); tests lower them to reach ZIP64
/// without writing gigabytes.
#[derive(Debug, Clone, Copy)]
struct Limits {
    size: u64,
    offset: u64,
    entries: u64,
}

const CLASSIC_LIMITS: Limits = Limits {
    size: 0xFFFF_FFFF,
    offset: 0xFFFF_FFFF,
    entries: 0xFFFF,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    #[error("an entry is still open; finish it first")]
    EntryOpen,
    #[error("no entry is open")]
    NoEntry,
    #[error("entry name must not be empty")]
    EmptyName,
    #[error("entry name must be at most {max} bytes long")]
    NameTooLong { max: usize },
    #[error("entry name must name a file, not end with '/'")]
    DirectoryName,
    #[error("entry name must not contain '..' as a name")]
    ParentSegment,
    #[error("entry timestamp is not a valid date and time")]
    InvalidTimestamp,
    #[error("entry declared {declared} bytes but received at least {received}")]
    TooMuchData { declared: u64, received: u64 },
    #[error("entry declared {declared} bytes but received {received}")]
    SizeMismatch { declared: u64, received: u64 },
}

/// What the central directory needs to know about one finished entry.
#[derive(Debug)]
struct Record {
    name: String,
    time: u16,
    date: u16,
    crc: u32,
    size: u64,
    offset: u64,
    zip64: bool,
}

#[derive(Debug)]
struct OpenEntry {
    record: Record,
    /// `false` for an entry opened by `start_unsized_entry`: its size is
    /// whatever arrives.
    sized: bool,
    received: u64,
    hasher: crc32fast::Hasher,
}

/// Every method that returns an error leaves the encoder as it was, so a
/// caller's mistake can never produce a half-recorded entry.
#[derive(Debug)]
pub struct ZipEncoder {
    /// Bytes of archive emitted so far, headers and passed-through data.
    offset: u64,
    records: Vec<Record>,
    current: Option<OpenEntry>,
    limits: Limits,
}

impl Default for ZipEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ZipEncoder {
    pub fn new() -> Self {
        Self::with_limits(CLASSIC_LIMITS)
    }

    fn with_limits(limits: Limits) -> Self {
        Self {
            offset: 0,
            records: Vec::new(),
            current: None,
            limits,
        }
    }

    /// Opens an entry and returns its local header. `size` is the exact
    /// number of bytes that will follow; it decides ZIP64 up front, since the
    /// local header cannot be rewritten once sent. A leading `/` is dropped
    /// from `name`: archive names must be relative.
    pub fn start_entry(&mut self, name: &str, size: u64, modified: Timestamp) -> Result<Vec<u8>, ZipError> {
        self.open(name, Some(size), modified)
    }

    /// Opens an entry whose size is not known yet (generated text such as
    /// NDJSON): its size is the bytes passed to `entry_data` until
    /// `finish_entry`. Such an entry is always ZIP64, since the local header
    /// must say so before the size is known; every ZIP64-aware unpacker
    /// reads it, and the data descriptor carries the real size.
    pub fn start_unsized_entry(&mut self, name: &str, modified: Timestamp) -> Result<Vec<u8>, ZipError> {
        self.open(name, None, modified)
    }

    fn open(&mut self, name: &str, size: Option<u64>, modified: Timestamp) -> Result<Vec<u8>, ZipError> {
        if self.current.is_some() {
            return Err(ZipError::EntryOpen);
        }
        let name = entry_name(name)?;
        let (time, date) = dos_datetime(modified)?;
        let name_len = u16::try_from(name.len()).map_err(|_| ZipError::NameTooLong {
            max: usize::from(u16::MAX),
        })?;
        let zip64 = size.is_none_or(|size| size >= self.limits.size) || self.offset >= self.limits.offset;

        let mut out = Vec::with_capacity(LOCAL_HEADER_LEN + name.len() + usize::from(LOCAL_ZIP64_EXTRA_LEN));
        put32(&mut out, LOCAL_HEADER_SIG);
        put16(&mut out, version_needed(zip64));
        put16(&mut out, FLAGS);
        put16(&mut out, METHOD_STORED);
        put16(&mut out, time);
        put16(&mut out, date);
        // With bit 3 set, CRC and sizes are zero here (APPNOTE 4.4.4); under
        // ZIP64 the all-ones marker points at the extra field instead, which
        // macOS Archive Utility needs in order to expect 8-byte sizes in the
        // data descriptor.
        put32(&mut out, 0);
        let size_marker = if zip64 { u32::MAX } else { 0 };
        put32(&mut out, size_marker);
        put32(&mut out, size_marker);
        put16(&mut out, name_len);
        put16(&mut out, if zip64 { LOCAL_ZIP64_EXTRA_LEN } else { 0 });
        out.extend_from_slice(name.as_bytes());
        if zip64 {
            put16(&mut out, ZIP64_EXTRA_ID);
            put16(&mut out, LOCAL_ZIP64_EXTRA_LEN - 4);
            put64(&mut out, 0);
            put64(&mut out, 0);
        }

        self.current = Some(OpenEntry {
            record: Record {
                name: name.to_owned(),
                time,
                date,
                crc: 0,
                size: size.unwrap_or(0),
                offset: self.offset,
                zip64,
            },
            sized: size.is_some(),
            received: 0,
            hasher: crc32fast::Hasher::new(),
        });
        self.offset += len64(&out);
        Ok(out)
    }

    /// Accounts for a piece of the open entry's data, which the caller sends
    /// on unchanged. More data than declared is refused at once, before the
    /// caller sends bytes the headers do not allow for.
    pub fn entry_data(&mut self, data: &[u8]) -> Result<(), ZipError> {
        let entry = self.current.as_mut().ok_or(ZipError::NoEntry)?;
        let received = entry.received.saturating_add(len64(data));
        if entry.sized && received > entry.record.size {
            return Err(ZipError::TooMuchData {
                declared: entry.record.size,
                received,
            });
        }
        entry.hasher.update(data);
        entry.received = received;
        self.offset += len64(data);
        Ok(())
    }

    /// Closes the open entry and returns its data descriptor. Fewer bytes
    /// than declared is an error and leaves the entry open.
    pub fn finish_entry(&mut self) -> Result<Vec<u8>, ZipError> {
        let entry = self.current.as_ref().ok_or(ZipError::NoEntry)?;
        if entry.sized && entry.received != entry.record.size {
            return Err(ZipError::SizeMismatch {
                declared: entry.record.size,
                received: entry.received,
            });
        }
        let Some(OpenEntry {
            mut record,
            hasher,
            received,
            ..
        }) = self.current.take()
        else {
            return Err(ZipError::NoEntry);
        };
        record.crc = hasher.finalize();
        record.size = received;

        let mut out = Vec::with_capacity(24);
        put32(&mut out, DATA_DESCRIPTOR_SIG);
        put32(&mut out, record.crc);
        if record.zip64 {
            put64(&mut out, record.size);
            put64(&mut out, record.size);
        } else {
            put32(&mut out, classic32(record.size));
            put32(&mut out, classic32(record.size));
        }
        self.offset += len64(&out);
        self.records.push(record);
        Ok(out)
    }

    /// Returns the central directory and end records; the archive is
    /// complete once these bytes are sent.
    pub fn finish(self) -> Result<Vec<u8>, ZipError> {
        if self.current.is_some() {
            return Err(ZipError::EntryOpen);
        }
        let cd_offset = self.offset;
        let mut out = Vec::with_capacity(
            self.records
                .iter()
                .map(|r| CENTRAL_HEADER_LEN + r.name.len() + usize::from(CENTRAL_ZIP64_EXTRA_LEN))
                .sum::<usize>()
                + ZIP64_END_LEN
                + ZIP64_LOCATOR_LEN
                + END_LEN,
        );
        for record in &self.records {
            put_central_header(&mut out, record);
        }
        let cd_size = len64(&out);
        let entries = len64(&self.records);
        let zip64 = entries >= self.limits.entries || cd_offset >= self.limits.offset || cd_size >= self.limits.offset;

        if zip64 {
            let zip64_end_offset = cd_offset + cd_size;
            put32(&mut out, ZIP64_END_SIG);
            put64(&mut out, ZIP64_END_SIZE_FIELD);
            put16(&mut out, VERSION_MADE_BY);
            put16(&mut out, VERSION_ZIP64);
            put32(&mut out, 0); // this disk
            put32(&mut out, 0); // disk where the central directory starts
            put64(&mut out, entries); // on this disk
            put64(&mut out, entries); // in total
            put64(&mut out, cd_size);
            put64(&mut out, cd_offset);

            put32(&mut out, ZIP64_LOCATOR_SIG);
            put32(&mut out, 0); // disk holding the ZIP64 end record
            put64(&mut out, zip64_end_offset);
            put32(&mut out, 1); // disks in total
        }

        // Under ZIP64 every classic field is set to all ones, as APPNOTE
        // 4.4.1.4 advises, so no reader mixes the two records' values.
        let (entries16, cd_size32, cd_offset32) = if zip64 {
            (u16::MAX, u32::MAX, u32::MAX)
        } else {
            (
                u16::try_from(entries).unwrap_or(u16::MAX),
                classic32(cd_size),
                classic32(cd_offset),
            )
        };
        put32(&mut out, END_SIG);
        put16(&mut out, 0); // this disk
        put16(&mut out, 0); // disk where the central directory starts
        put16(&mut out, entries16); // on this disk
        put16(&mut out, entries16); // in total
        put32(&mut out, cd_size32);
        put32(&mut out, cd_offset32);
        put16(&mut out, 0); // comment length
        Ok(out)
    }
}

fn put_central_header(out: &mut Vec<u8>, record: &Record) {
    // `start_entry` already refused names whose length does not fit.
    let name_len = u16::try_from(record.name.len()).unwrap_or(u16::MAX);
    put32(out, CENTRAL_HEADER_SIG);
    put16(out, VERSION_MADE_BY);
    put16(out, version_needed(record.zip64));
    put16(out, FLAGS);
    put16(out, METHOD_STORED);
    put16(out, record.time);
    put16(out, record.date);
    put32(out, record.crc);
    let (size32, offset32) = if record.zip64 {
        (u32::MAX, u32::MAX)
    } else {
        (classic32(record.size), classic32(record.offset))
    };
    put32(out, size32); // compressed
    put32(out, size32); // uncompressed
    put16(out, name_len);
    put16(out, if record.zip64 { CENTRAL_ZIP64_EXTRA_LEN } else { 0 });
    put16(out, 0); // comment length
    put16(out, 0); // disk where the entry starts
    put16(out, 0); // internal attributes
    put32(out, UNIX_REGULAR_FILE_0644);
    put32(out, offset32);
    out.extend_from_slice(record.name.as_bytes());
    if record.zip64 {
        // Field order is fixed by APPNOTE 4.5.3: uncompressed size,
        // compressed size, local header offset.
        put16(out, ZIP64_EXTRA_ID);
        put16(out, CENTRAL_ZIP64_EXTRA_LEN - 4);
        put64(out, record.size);
        put64(out, record.size);
        put64(out, record.offset);
    }
}

fn entry_name(raw: &str) -> Result<&str, ZipError> {
    let name = raw.trim_start_matches('/');
    if name.is_empty() {
        return Err(ZipError::EmptyName);
    }
    if name.ends_with('/') {
        return Err(ZipError::DirectoryName);
    }
    // Unpackers differ in how well they guard against "zip slip"; an export
    // of someone's health data must not be the archive that tests them.
    if name.split(['/', '\\']).any(|segment| segment == "..") {
        return Err(ZipError::ParentSegment);
    }
    Ok(name)
}

/// MS-DOS date and time as the classic headers store them: local time by
/// convention, two-second resolution, years 1980 to 2107.
fn dos_datetime(modified: Timestamp) -> Result<(u16, u16), ZipError> {
    let (year, month, day, hour, minute, second) = modified;
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return Err(ZipError::InvalidTimestamp);
    }
    if year < 1980 {
        return Ok((0, (1 << 5) | 1));
    }
    if year > 2107 {
        return Ok(((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31));
    }
    // A leap second would overflow the two-second field.
    let second = second.min(59);
    let time = (u16::from(hour) << 11) | (u16::from(minute) << 5) | u16::from(second / 2);
    let date = ((year - 1980) << 9) | (u16::from(month) << 5) | u16::from(day);
    Ok((time, date))
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn version_needed(zip64: bool) -> u16 {
    if zip64 { VERSION_ZIP64 } else { VERSION_DEFAULT }
}

/// For values the ZIP64 decision already proved to fit.
fn classic32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn len64<T>(items: &[T]) -> u64 {
    u64::try_from(items.len()).unwrap_or(u64::MAX)
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{Cursor, Read};

    const WHEN: Timestamp = (2026, 3, 14, 15, 9, 26);

    struct File {
        name: &'static str,
        data: Vec<u8>,
        modified: Timestamp,
        chunk: usize,
    }

    fn file(name: &'static str, data: Vec<u8>) -> File {
        File {
            name,
            data,
            modified: WHEN,
            chunk: 4096,
        }
    }

    /// Drives the encoder as the export stream does and collects the bytes.
    fn encode(mut encoder: ZipEncoder, files: &[File]) -> Vec<u8> {
        let mut archive = Vec::new();
        for f in files {
            let header = encoder.start_entry(f.name, len64(&f.data), f.modified).unwrap();
            archive.extend_from_slice(&header);
            for piece in f.data.chunks(f.chunk.max(1)) {
                encoder.entry_data(piece).unwrap();
                archive.extend_from_slice(piece);
            }
            archive.extend_from_slice(&encoder.finish_entry().unwrap());
        }
        archive.extend_from_slice(&encoder.finish().unwrap());
        archive
    }

    /// Reads everything back with the `zip` crate, which checks each CRC
    /// as it reaches the end of an entry.
    fn read_back(archive: Vec<u8>) -> Vec<(String, Vec<u8>, u32, zip::DateTime)> {
        let mut reader = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
        (0..reader.len())
            .map(|i| {
                let mut entry = reader.by_index(i).unwrap();
                assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
                assert_eq!(entry.unix_mode(), Some(0o100_644));
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                assert_eq!(entry.size(), len64(&data));
                let name = entry.name().unwrap().into_owned();
                (name, data, entry.crc32(), entry.last_modified().unwrap())
            })
            .collect()
    }

    fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
        let mut state = seed.max(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    fn find(haystack: &[u8], signature: u32) -> Vec<usize> {
        let needle = signature.to_le_bytes();
        haystack
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i)
            .collect()
    }

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([bytes[at], bytes[at + 1]])
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn unsized_entries_take_the_size_that_arrived() {
        let mut encoder = ZipEncoder::new();
        let mut archive = Vec::new();
        archive.extend(encoder.start_entry("a.txt", 3, WHEN).unwrap());
        encoder.entry_data(b"abc").unwrap();
        archive.extend(b"abc");
        archive.extend(encoder.finish_entry().unwrap());
        archive.extend(encoder.start_unsized_entry("dir/b.ndjson", WHEN).unwrap());
        for piece in [&b"{\"x\":1}\n"[..], b"", b"{\"x\":2}\n"] {
            encoder.entry_data(piece).unwrap();
            archive.extend(piece);
        }
        archive.extend(encoder.finish_entry().unwrap());
        archive.extend(encoder.start_unsized_entry("empty", WHEN).unwrap());
        archive.extend(encoder.finish_entry().unwrap());
        archive.extend(encoder.finish().unwrap());
        let entries = read_back(archive);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a.txt", "dir/b.ndjson", "empty"]);
        assert_eq!(entries[1].1, b"{\"x\":1}\n{\"x\":2}\n");
        assert!(entries[2].1.is_empty());
    }

    #[test]
    fn round_trips_through_the_zip_crate() {
        let big = pseudo_random(1024 * 1024 + 17, 7);
        let files = [
            File {
                chunk: 7919,
                ..file("/ecg/2026/run.csv", big.clone())
            },
            file("notes/café résumé.txt", "bonjour\n".into()),
            file("日本語/データ.txt", "心電図".into()),
            file("empty.txt", Vec::new()),
            File {
                modified: (2000, 2, 29, 23, 59, 58),
                ..file("one.bin", vec![0x42])
            },
        ];
        let entries = read_back(encode(ZipEncoder::new(), &files));

        assert_eq!(entries.len(), files.len());
        for (f, (name, data, crc, modified)) in files.iter().zip(&entries) {
            assert_eq!(name, f.name.trim_start_matches('/'));
            assert_eq!(data, &f.data, "{name}");
            assert_eq!(*crc, crc32fast::hash(&f.data), "{name}");
            let (year, month, day, hour, minute, second) = f.modified;
            assert_eq!(
                (
                    modified.year(),
                    modified.month(),
                    modified.day(),
                    modified.hour(),
                    modified.minute(),
                    modified.second()
                ),
                (year, month, day, hour, minute, second & !1),
                "{name}"
            );
        }
    }

    #[test]
    fn headers_carry_the_flags_and_sizes_follow_the_data() {
        let archive = encode(ZipEncoder::new(), &[file("a.txt", b"hello".to_vec())]);
        assert_eq!(u32_at(&archive, 0), LOCAL_HEADER_SIG);
        assert_eq!(u16_at(&archive, 4), 20);
        assert_eq!(u16_at(&archive, 6), 0x0808);
        assert_eq!(u16_at(&archive, 8), 0);
        // CRC and both sizes are zero in the local header.
        assert_eq!(&archive[14..26], &[0; 12]);
        // Header (30 + name 5), data (5), then a 16-byte descriptor.
        let descriptor = 40;
        assert_eq!(u32_at(&archive, descriptor), DATA_DESCRIPTOR_SIG);
        assert_eq!(u32_at(&archive, descriptor + 4), crc32fast::hash(b"hello"));
        assert_eq!(u32_at(&archive, descriptor + 8), 5);
        assert_eq!(u32_at(&archive, descriptor + 12), 5);
        assert_eq!(u32_at(&archive, descriptor + 16), CENTRAL_HEADER_SIG);
        assert!(find(&archive, ZIP64_END_SIG).is_empty());
    }

    #[test]
    fn an_empty_archive_is_just_the_end_record() {
        let archive = ZipEncoder::new().finish().unwrap();
        assert_eq!(archive.len(), 22);
        assert_eq!(zip::ZipArchive::new(Cursor::new(archive)).unwrap().len(), 0);
    }

    #[test]
    fn fewer_bytes_than_declared_is_an_error_and_keeps_the_entry_open() {
        let mut encoder = ZipEncoder::new();
        encoder.start_entry("a.txt", 5, WHEN).unwrap();
        encoder.entry_data(b"hell").unwrap();
        assert_eq!(
            encoder.finish_entry(),
            Err(ZipError::SizeMismatch {
                declared: 5,
                received: 4
            })
        );
        encoder.entry_data(b"o").unwrap();
        assert!(encoder.finish_entry().is_ok());
    }

    #[test]
    fn more_bytes_than_declared_is_refused_before_it_is_counted() {
        let mut encoder = ZipEncoder::new();
        let mut archive = encoder.start_entry("a.txt", 5, WHEN).unwrap();
        encoder.entry_data(b"hel").unwrap();
        archive.extend_from_slice(b"hel");
        assert_eq!(
            encoder.entry_data(b"lo!"),
            Err(ZipError::TooMuchData {
                declared: 5,
                received: 6
            })
        );
        encoder.entry_data(b"lo").unwrap();
        archive.extend_from_slice(b"lo");
        archive.extend_from_slice(&encoder.finish_entry().unwrap());
        archive.extend_from_slice(&encoder.finish().unwrap());
        assert_eq!(read_back(archive)[0].1, b"hello");
    }

    #[test]
    fn out_of_order_calls_are_errors() {
        let mut encoder = ZipEncoder::new();
        assert_eq!(encoder.entry_data(b"x"), Err(ZipError::NoEntry));
        assert_eq!(encoder.finish_entry(), Err(ZipError::NoEntry));
        encoder.start_entry("a", 0, WHEN).unwrap();
        assert_eq!(encoder.start_entry("b", 0, WHEN), Err(ZipError::EntryOpen));
        assert_eq!(ZipEncoder::finish(encoder), Err(ZipError::EntryOpen));
    }

    #[test]
    fn names_must_be_relative_files() {
        let mut encoder = ZipEncoder::new();
        for (name, error) in [
            ("", ZipError::EmptyName),
            ("/", ZipError::EmptyName),
            ("//", ZipError::EmptyName),
            ("a/", ZipError::DirectoryName),
            ("../a", ZipError::ParentSegment),
            ("a/../../b", ZipError::ParentSegment),
            (r"a\..\b", ZipError::ParentSegment),
        ] {
            assert_eq!(encoder.start_entry(name, 0, WHEN), Err(error), "{name:?}");
        }
        let long = "a".repeat(usize::from(u16::MAX) + 1);
        assert_eq!(
            encoder.start_entry(&long, 0, WHEN),
            Err(ZipError::NameTooLong { max: 65535 })
        );
        // None of the refusals opened an entry.
        assert_eq!(encoder.finish_entry(), Err(ZipError::NoEntry));
        // Dots inside a name are ordinary characters.
        encoder.start_entry("/a/..b/.c", 0, WHEN).unwrap();
    }

    #[test]
    fn timestamps_are_clamped_to_the_dos_range_and_checked() {
        assert_eq!(dos_datetime((1970, 1, 1, 0, 0, 0)), Ok((0, 0x21)));
        assert_eq!(dos_datetime((1979, 12, 31, 23, 59, 59)), Ok((0, 0x21)));
        assert_eq!(dos_datetime((1980, 1, 1, 0, 0, 1)), Ok((0, 0x21)));
        assert_eq!(
            dos_datetime((2200, 1, 1, 0, 0, 0)),
            dos_datetime((2107, 12, 31, 23, 59, 59))
        );
        assert_eq!(
            dos_datetime((2016, 12, 31, 23, 59, 60)),
            dos_datetime((2016, 12, 31, 23, 59, 59))
        );
        for bad in [
            (2026, 0, 1, 0, 0, 0),
            (2026, 13, 1, 0, 0, 0),
            (2026, 1, 0, 0, 0, 0),
            (2026, 4, 31, 0, 0, 0),
            (2026, 2, 29, 0, 0, 0),
            (1900, 2, 29, 0, 0, 0),
            (2026, 1, 1, 24, 0, 0),
            (2026, 1, 1, 0, 60, 0),
            (2026, 1, 1, 0, 0, 61),
        ] {
            assert_eq!(dos_datetime(bad), Err(ZipError::InvalidTimestamp), "{bad:?}");
        }
        assert!(dos_datetime((2000, 2, 29, 0, 0, 0)).is_ok());

        let archive = encode(
            ZipEncoder::new(),
            &[File {
                modified: (1970, 1, 1, 12, 0, 0),
                ..file("old.txt", b"x".to_vec())
            }],
        );
        let modified = read_back(archive)[0].3;
        assert_eq!(
            (modified.year(), modified.month(), modified.day(), modified.hour()),
            (1980, 1, 1, 0)
        );
    }

    /// Low limits so that, in order: "small" is classic, "big" is ZIP64 by
    /// its size, "late" is ZIP64 by its offset, and four entries make the
    /// end records ZIP64 too.
    const LOW_LIMITS: Limits = Limits {
        size: 100,
        offset: 200,
        entries: 4,
    };

    fn zip64_files() -> [File; 4] {
        [
            file("small.txt", b"small".to_vec()),
            File {
                chunk: 33,
                ..file("big.bin", pseudo_random(150, 3))
            },
            file("late.txt", b"late".to_vec()),
            file("empty", Vec::new()),
        ]
    }

    #[test]
    fn zip64_archives_round_trip_through_the_zip_crate() {
        let files = zip64_files();
        let entries = read_back(encode(ZipEncoder::with_limits(LOW_LIMITS), &files));
        assert_eq!(entries.len(), 4);
        for (f, (name, data, crc, _)) in files.iter().zip(&entries) {
            assert_eq!(name, f.name);
            assert_eq!(data, &f.data);
            assert_eq!(*crc, crc32fast::hash(&f.data));
        }
    }

    #[test]
    fn zip64_records_are_where_appnote_puts_them() {
        let archive = encode(ZipEncoder::with_limits(LOW_LIMITS), &zip64_files());
        let locals = find(&archive, LOCAL_HEADER_SIG);
        assert_eq!(locals.len(), 4);

        // "small": classic header, 16-byte descriptor.
        let small = locals[0];
        assert_eq!(u16_at(&archive, small + 4), 20);
        assert_eq!(u16_at(&archive, small + 28), 0);

        // "big": ZIP64 by size; markers, a local extra with both sizes, and
        // a 24-byte descriptor with 8-byte sizes.
        let big = locals[1];
        assert_eq!(u16_at(&archive, big + 4), 45);
        assert_eq!(u32_at(&archive, big + 18), u32::MAX);
        assert_eq!(u32_at(&archive, big + 22), u32::MAX);
        assert_eq!(u16_at(&archive, big + 28), 20);
        let extra = big + 30 + "big.bin".len();
        assert_eq!(u16_at(&archive, extra), ZIP64_EXTRA_ID);
        assert_eq!(u16_at(&archive, extra + 2), 16);
        let descriptor = extra + 20 + 150;
        assert_eq!(u32_at(&archive, descriptor), DATA_DESCRIPTOR_SIG);
        assert_eq!(u64_at(&archive, descriptor + 8), 150);
        assert_eq!(u64_at(&archive, descriptor + 16), 150);
        assert_eq!(descriptor + 24, locals[2]);

        // "late": small, but its header starts past the offset limit.
        assert!(u64::try_from(locals[2]).unwrap() >= LOW_LIMITS.offset);
        assert_eq!(u16_at(&archive, locals[2] + 4), 45);

        // Central headers: ZIP64 entries point at their extra field for
        // sizes and offset, which hold the real values.
        let centrals = find(&archive, CENTRAL_HEADER_SIG);
        assert_eq!(centrals.len(), 4);
        let late = centrals[2];
        assert_eq!(u32_at(&archive, late + 42), u32::MAX);
        let extra = late + 46 + "late.txt".len();
        assert_eq!(u16_at(&archive, extra), ZIP64_EXTRA_ID);
        assert_eq!(u64_at(&archive, extra + 4), 4);
        assert_eq!(u64_at(&archive, extra + 12), 4);
        assert_eq!(u64_at(&archive, extra + 20), u64::try_from(locals[2]).unwrap());
        assert_eq!(u32_at(&archive, centrals[0] + 42), 0);
        assert_eq!(u16_at(&archive, centrals[0] + 30), 0);

        // End: ZIP64 end record, its locator, then the classic end record
        // with every field at its marker.
        let end64 = *find(&archive, ZIP64_END_SIG).last().unwrap();
        let locator = *find(&archive, ZIP64_LOCATOR_SIG).last().unwrap();
        let end = archive.len() - 22;
        assert_eq!(locator, end64 + 56);
        assert_eq!(end, locator + 20);
        assert_eq!(u32_at(&archive, end), END_SIG);
        assert_eq!(u64_at(&archive, locator + 8), u64::try_from(end64).unwrap());
        assert_eq!(u64_at(&archive, end64 + 32), 4);
        assert_eq!(u64_at(&archive, end64 + 48), u64::try_from(centrals[0]).unwrap());
        assert_eq!(u16_at(&archive, end + 10), u16::MAX);
        assert_eq!(u32_at(&archive, end + 16), u32::MAX);
    }

    #[test]
    fn many_entries_alone_make_the_end_records_zip64() {
        let limits = Limits {
            entries: 3,
            ..CLASSIC_LIMITS
        };
        let files = [
            file("a", b"1".to_vec()),
            file("b", b"2".to_vec()),
            file("c", b"3".to_vec()),
        ];
        let archive = encode(ZipEncoder::with_limits(limits), &files);
        assert_eq!(find(&archive, ZIP64_END_SIG).len(), 1);
        // No entry needed ZIP64 itself.
        assert!(
            find(&archive, LOCAL_HEADER_SIG)
                .iter()
                .all(|&at| u16_at(&archive, at + 4) == 20)
        );
        let names: Vec<_> = read_back(archive).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_sizes_and_pieces_round_trip(
            sizes in prop::collection::vec(0usize..3000, 0..6),
            chunk in 1usize..700,
            low in any::<bool>(),
        ) {
            let names = ["a", "b/c", "d é", "e/f/g", "h", "i"];
            let files: Vec<File> = sizes
                .iter()
                .zip(names)
                .enumerate()
                .map(|(i, (&len, name))| File {
                    chunk,
                    ..file(name, pseudo_random(len, u32::try_from(i).unwrap() + 1))
                })
                .collect();
            let limits = if low {
                Limits { size: 1000, offset: 2000, entries: 3 }
            } else {
                CLASSIC_LIMITS
            };
            let entries = read_back(encode(ZipEncoder::with_limits(limits), &files));
            prop_assert_eq!(entries.len(), files.len());
            for (f, (name, data, _, _)) in files.iter().zip(&entries) {
                prop_assert_eq!(name.as_str(), f.name);
                prop_assert_eq!(data, &f.data);
            }
        }
    }
}

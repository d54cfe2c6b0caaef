//! Where the suite's mail goes: a real SMTP server, and a folder its
//! messages are read back from.
//!
//! With `VITALFARM_TEST_SMTP=host:port` and `VITALFARM_TEST_SMTP_MAILDIR=dir`
//! (CI runs `.ci/smtp_sink.py`, an aiosmtpd handler) that server is used.
//! Otherwise the kit starts its own small SMTP receiver on a free loopback
//! port, once per test process, on threads of its own (each test has its
//! own tokio runtime, which ends with the test). Both write each message as
//! a file into a folder named after the envelope sender, and every test
//! server sends from an address of its own, so parallel tests never read
//! each other's mail.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct MailSink {
    /// `host:port` of the SMTP server.
    pub addr: String,
    /// The folder holding one sub-folder of messages per envelope sender.
    pub dir: PathBuf,
}

static SINK: OnceLock<MailSink> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The sink of this test process.
pub fn sink() -> &'static MailSink {
    SINK.get_or_init(|| {
        if let (Ok(addr), Ok(dir)) = (
            std::env::var("VITALFARM_TEST_SMTP"),
            std::env::var("VITALFARM_TEST_SMTP_MAILDIR"),
        ) {
            return MailSink {
                addr,
                dir: PathBuf::from(dir),
            };
        }
        start_embedded().expect("the test SMTP receiver starts")
    })
}

/// The folder name of an envelope sender: the same rule as
/// `.ci/smtp_sink.py`.
pub fn sender_folder(sender: &str) -> String {
    sender
        .trim()
        .trim_matches(['<', '>'])
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn start_embedded() -> std::io::Result<MailSink> {
    // Kept for the life of the process: the tests read from it.
    let dir = tempfile::Builder::new().prefix("vft-mail-").tempdir()?.keep();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let root = dir.clone();
    std::thread::Builder::new().name("test-smtp".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            let _ = std::thread::Builder::new()
                .name("test-smtp-conn".into())
                .spawn(move || {
                    let _ = session(stream, &root);
                });
        }
    })?;
    Ok(MailSink { addr, dir })
}

/// One SMTP session (RFC 5321, the subset a client like lettre uses:
/// EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
fn session(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 vitalfarm-test-sink ESMTP\r\n")?;
    let mut sender = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-vitalfarm-test-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 vitalfarm-test-sink\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            let rest = &line.trim_end()["MAIL FROM:".len()..];
            sender = rest.split_whitespace().next().unwrap_or_default().to_owned();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            sender.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut message = Vec::new();
            loop {
                let mut raw = Vec::new();
                if reader.read_until(b'\n', &mut raw)? == 0 {
                    return Ok(());
                }
                if raw == b".\r\n" || raw == b".\n" {
                    break;
                }
                // Dot-stuffing: a leading dot was doubled by the client.
                let body = if raw.starts_with(b"..") { &raw[1..] } else { &raw[..] };
                message.extend_from_slice(body);
            }
            store(root, &sender, &message)?;
            b"250 OK: queued\r\n"
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        out.write_all(reply)?;
    }
}

fn store(root: &Path, sender: &str, message: &[u8]) -> std::io::Result<()> {
    let dir = root.join(sender_folder(sender));
    std::fs::create_dir_all(&dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("{nanos:020}-{:08}.eml", SEQ.fetch_add(1, Ordering::Relaxed));
    // Written aside and renamed, so a reader never sees half a message.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, message)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// The messages in `dir`, oldest first.
pub fn read_all(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).replace("\r\n", "\n"))
        .collect()
}

/// The value of header `name` in `message` (the first one).
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let head = message.split("\n\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// The body of `message`.
pub fn body(message: &str) -> &str {
    message.split_once("\n\n").map_or("", |(_, b)| b)
}

/// Every secret with `prefix` in `text`, in order.
pub fn tokens(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let tail = &rest[at..];
        let end = tail[prefix.len()..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(tail.len(), |e| e + prefix.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

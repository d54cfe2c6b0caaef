//! Outgoing mail: address verification, invitations and password resets.
//!
//! With `smtp_url` set, messages go out through that SMTP server (lettre,
//! rustls). Without it (the embedded default) each message is written to
//! `data_dir/outbox/` as an `.eml` file and its path logged, so a local
//! service needs no mail server and its operator can still follow the
//! links. Messages carry single-use secrets: they are never logged, only
//! the outbox path or the fact that a message of some kind went out.
//!
//! Sending happens off the request's path (`send_later`): neither an SMTP
//! server's latency nor its failure shows in an answer, and the answers
//! that must not reveal whether an address has an account (password reset)
//! take the same time either way.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::{Body, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;

/// One message to one recipient, plain text.
pub struct Mail {
    /// What the message is, for logs and file names (`verify_email`, ...).
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub body: String,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .context("invalid configuration: `mail_from` (VITALFARM_MAIL_FROM)")?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("invalid configuration: `smtp_url` (VITALFARM_SMTP_URL): {e}"))?
                    .build(),
            ),
            None => Transport::Outbox(config.data_dir.join("outbox")),
        };
        Ok(Self { from, transport })
    }

    fn message(&self, mail: &Mail) -> anyhow::Result<Message> {
        let to: Mailbox = mail.to.parse().context("recipient address")?;
        // Plain 7- or 8-bit text with short lines (wrapped here: a company
        // name can be long), never quoted-printable or base64: the tokens
        // stand whole on lines of their own, readable and greppable in the
        // outbox file as they are.
        use lettre::message::header::ContentTransferEncoding as Cte;
        let text = wrap(&mail.body, MAX_LINE_BYTES);
        let encoding = if text.is_ascii() { Cte::SevenBit } else { Cte::EightBit };
        let body = Body::new_with_encoding(text, encoding)
            .map_err(|_| anyhow::anyhow!("mail body cannot be sent as plain text"))?;
        Ok(Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(body)?)
    }

    /// Sends `mail` now.
    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let message = self.message(&mail)?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.context("SMTP delivery")?;
                tracing::info!(kind = mail.kind, "mail sent");
            }
            Transport::Outbox(dir) => {
                let path = write_outbox(dir, mail.kind, &message.formatted()).await?;
                tracing::info!(kind = mail.kind, path = %path.display(), "mail written to the outbox (no smtp_url configured)");
            }
        }
        Ok(())
    }

    /// Sends `mail` in the background; a failure is logged (without the
    /// message) and the user can ask for the mail again.
    pub fn send_later(self: &Arc<Self>, mail: Mail) {
        let mailer = Arc::clone(self);
        tokio::spawn(async move {
            let kind = mail.kind;
            if let Err(e) = mailer.send(mail).await {
                tracing::warn!(kind, error = %format!("{e:#}"), "sending mail failed");
            }
        });
    }
}

impl Mailer {
    /// Removes every outbox message that names one of `needles` (the
    /// addresses and names of an erased membership): the outbox lives in the
    /// data directory, and erased means no copy stays readable there. Mail
    /// already handed to an SMTP server is beyond reach and is not ours to
    /// keep. Returns how many messages were removed.
    pub async fn forget(&self, needles: &[String]) -> anyhow::Result<usize> {
        let Transport::Outbox(dir) = &self.transport else {
            return Ok(0);
        };
        let needles: Vec<String> = needles
            .iter()
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.to_lowercase())
            .collect();
        if needles.is_empty() {
            return Ok(0);
        }
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| format!("reading the outbox {}", dir.display())),
        };
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            let Ok(bytes) = tokio::fs::read(&path).await else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes).to_lowercase();
            if needles.iter().any(|n| text.contains(n.as_str())) {
                tokio::fs::remove_file(&path)
                    .await
                    .with_context(|| format!("removing {}", path.display()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Lines of a plain-text body stay below this many bytes (lettre sends a
/// body as 7- or 8-bit text only when every line is shorter than 76).
const MAX_LINE_BYTES: usize = 72;

/// Wraps each line of `text` at spaces so that no line is longer than
/// `width` bytes; a single word longer than that is cut at a character
/// boundary.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split('\n') {
        let mut current = String::new();
        for word in line.split(' ') {
            let mut word = word;
            loop {
                let sep = usize::from(!current.is_empty());
                if current.len() + sep + word.len() <= width {
                    if sep == 1 {
                        current.push(' ');
                    }
                    current.push_str(word);
                    break;
                }
                if !current.is_empty() {
                    out.push_str(&current);
                    out.push('\n');
                    current.clear();
                    continue;
                }
                let mut cut = width.min(word.len());
                while !word.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push_str(&word[..cut]);
                out.push('\n');
                word = &word[cut..];
            }
        }
        out.push_str(&current);
        out.push('\n');
    }
    out.pop();
    out
}

/// Writes one message into the outbox, readable by the owner only (it
/// holds a secret), under a name that sorts by time.
async fn write_outbox(dir: &std::path::Path, kind: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("creating the outbox {}", dir.display()))?;
    // The messages hold live tokens: the folder is the service user's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).await?;
    }
    let name = format!(
        "{}-{kind}-{}.eml",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        uuid::Uuid::now_v7().simple()
    );
    let path = dir.join(name);
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(&path)
        .await
        .with_context(|| format!("writing {}", path.display()))?;
    tokio::io::AsyncWriteExt::write_all(&mut f, bytes).await?;
    tokio::io::AsyncWriteExt::flush(&mut f).await?;
    Ok(path)
}

/// The messages vitalfarm sends. `base` is the service's public URL.
pub mod messages {
    use super::Mail;

    pub fn verify_email(base: &str, to: &str, token: &str, ttl_hours: u64) -> Mail {
        Mail {
            kind: "verify_email",
            to: to.to_owned(),
            subject: "Confirm your email address for vitalfarm".into(),
            body: format!(
                "Someone (we hope you) signed up for vitalfarm with this address.\n\
                 \n\
                 To confirm that it is yours, send this verification token:\n\
                 \n\
                 {token}\n\
                 \n\
                 to {base}/v1/auth/verify-email as {{\"token\": \"...\"}} (your\n\
                 vitalfarm app does this for you when you paste it).\n\
                 \n\
                 The token works once, for {ttl_hours} hours. Until the address is\n\
                 confirmed, the account can sign in but cannot join a company or\n\
                 receive consent requests. If you did not sign up, ignore this mail.\n"
            ),
        }
    }

    pub fn password_reset(base: &str, to: &str, token: &str, ttl_minutes: u64) -> Mail {
        Mail {
            kind: "password_reset",
            to: to.to_owned(),
            subject: "Reset your vitalfarm password".into(),
            body: format!(
                "Someone (we hope you) asked to reset the password of the vitalfarm\n\
                 account with this address.\n\
                 \n\
                 To choose a new password, send this reset token with it:\n\
                 \n\
                 {token}\n\
                 \n\
                 to {base}/v1/auth/password-reset/confirm as\n\
                 {{\"token\": \"...\", \"new_password\": \"...\"}}.\n\
                 \n\
                 The token works once, for {ttl_minutes} minutes; using it signs out\n\
                 every session of the account. If you did not ask for this, ignore\n\
                 this mail: your password stays as it is.\n"
            ),
        }
    }

    /// An invitation to someone without an account: the token completes it.
    pub fn invitation_new_account(base: &str, to: &str, company: &str, role: &str, token: &str) -> Mail {
        Mail {
            kind: "invitation",
            to: to.to_owned(),
            subject: "You are invited to a company on vitalfarm".into(),
            body: format!(
                "The company \"{company}\" invited this address to join it on vitalfarm\n\
                 with the role {role}.\n\
                 \n\
                 To accept, create your account with this invitation token:\n\
                 \n\
                 {token}\n\
                 \n\
                 at {base}/v1/auth/accept-invitation as\n\
                 {{\"invitation_token\": \"...\", \"password\": \"...\", \"display_name\": \"...\"}}.\n\
                 \n\
                 If you do not know this company, ignore this mail.\n"
            ),
        }
    }

    /// An invitation to an existing account: accepted after signing in.
    pub fn invitation_existing_account(base: &str, to: &str, company: &str, role: &str) -> Mail {
        Mail {
            kind: "invitation",
            to: to.to_owned(),
            subject: "You are invited to a company on vitalfarm".into(),
            body: format!(
                "The company \"{company}\" invited your vitalfarm account to join it\n\
                 with the role {role}.\n\
                 \n\
                 Sign in and accept or decline it: GET {base}/v1/me/invitations, then\n\
                 POST {base}/v1/me/invitations/{{id}}/accept (or /decline). Nothing\n\
                 changes until you accept. If you do not know this company, decline.\n"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_stay_whole_in_the_formatted_message() {
        let config = Config::default();
        let mailer = Mailer::from_config(&config).unwrap();
        let token = format!("vf_ev_{}", "A".repeat(43));
        let mail = messages::verify_email("http://127.0.0.1:8080", "ana@acme.example", &token, 48);
        let text = String::from_utf8(mailer.message(&mail).unwrap().formatted()).unwrap();
        assert!(text.contains(&token));
        assert!(text.contains("Content-Transfer-Encoding: 7bit"));
        let mail = messages::invitation_new_account("http://x", "a@b.example", "Café Ünïcode", "admin", &token);
        let text = String::from_utf8(mailer.message(&mail).unwrap().formatted()).unwrap();
        assert!(text.contains(&token), "{text}");
        let long = format!("A company with a long name {}", "ÿ".repeat(150));
        let mail = messages::invitation_new_account("http://x", "a@b.example", &long, "admin", &token);
        let text = String::from_utf8(mailer.message(&mail).unwrap().formatted()).unwrap();
        assert!(text.contains(&token), "{text}");
        assert!(text.contains("Content-Transfer-Encoding: 8bit"), "{text}");
    }

    #[test]
    fn wrapping_keeps_words_and_cuts_only_giants() {
        assert_eq!(wrap("a b c", 3), "a b\nc");
        assert_eq!(wrap("abcdef", 4), "abcd\nef");
        assert_eq!(wrap("x\n\ny", 10), "x\n\ny");
        assert_eq!(wrap("ééé", 3), "é\né\né");
    }
}

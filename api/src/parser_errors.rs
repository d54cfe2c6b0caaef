//! Problem documents for the requests actix-http refuses before any of our
//! code runs. Its HTTP/1 parser answers a malformed `Content-Length`, a URI
//! it cannot hold or a head beyond its buffer with an empty-bodied 400 or
//! 431 (and a head that never arrives with a 408), written straight to the
//! connection: no middleware sees them. Each connection is therefore served
//! through [`ProblemHeads`], which recognises such an answer on its way out
//! and gives it the problem document of its status.
//!
//! Recognised means: a complete 4xx head, alone in one write, whose
//! `Content-Length` is 0 and which closes the connection. Every error our
//! handlers and middleware produce carries a problem body
//! (`crate::error::problem_bodies`), so an empty 4xx that ends the
//! connection can only be the parser's.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose parser rejections leave with a problem document.
pub struct ProblemHeads<T> {
    inner: T,
    /// A rewritten answer still to be written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ProblemHeads<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }

    /// The connection underneath (for socket options).
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncWrite + Unpin> ProblemHeads<T> {
    /// Writes what is left of a rewritten answer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemHeads<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemHeads<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        if let Some(answer) = with_problem(buf) {
            self.pending = answer;
            // The caller's bytes are taken; what the socket does not take
            // now goes out on the next write, flush or shutdown.
            if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `out` with a problem document when it is a parser's bodiless 4xx that
/// closes the connection; `None` for anything else.
fn with_problem(out: &[u8]) -> Option<Vec<u8>> {
    let rest = out.strip_prefix(b"HTTP/1.1 4")?;
    let head_len = out.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if head_len != out.len() {
        return None;
    }
    let code: u16 = std::str::from_utf8(rest.get(..2)?).ok()?.parse().ok()?;
    let status = StatusCode::from_u16(400 + code).ok()?;
    let head = std::str::from_utf8(&out[..head_len - 4]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut kept = Vec::new();
    let (mut empty, mut closes) = (false, false);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            empty = value == "0";
        } else if name.eq_ignore_ascii_case("content-type") {
            return None;
        } else {
            closes |= name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close");
            kept.push(line);
        }
    }
    if !(empty && closes) {
        return None;
    }
    let mut problem = crate::error::problem_for_status(status)?.problem();
    problem.status = status.as_u16();
    let body = serde_json::to_vec(&problem).ok()?;
    let mut answer = Vec::with_capacity(head_len + body.len() + 80);
    answer.extend_from_slice(status_line.as_bytes());
    answer.extend_from_slice(b"\r\n");
    for line in kept {
        answer.extend_from_slice(line.as_bytes());
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"content-type: application/problem+json\r\n");
    answer.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    answer.extend_from_slice(&body);
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bodiless_4xx_that_closes_is_rewritten() {
        let parser = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(with_problem(parser).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("content-type: application/problem+json"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 431);

        let keeps = [
            // Our own answers carry bodies or keep the connection.
            &b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\nextra",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 400 Bad Req",
        ];
        for out in keeps {
            assert_eq!(with_problem(out), None, "{}", String::from_utf8_lossy(out));
        }
    }
}

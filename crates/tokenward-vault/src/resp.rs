//! A minimal Redis client: one connection, RESP2, the handful of commands the cache uses.
//!
//! Why not the `redis` crate: the cache needs GET, SET with PX, DEL, AUTH and SELECT, and a
//! client whose failure modes are ours to decide (every error is a cache miss). The `redis`
//! crate is BSD-3-Clause, outside the workspace's license list, and brings a large dependency
//! tree for features we do not use. Replies are size-bounded, so a hostile or broken server
//! cannot make us allocate without limit.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// The largest bulk reply accepted (cached values are envelopes of a few hundred bytes).
const MAX_BULK: usize = 64 * 1024;
/// The most elements accepted in an array reply.
const MAX_ARRAY: usize = 100_000;
/// The longest status or error line accepted.
const MAX_LINE: usize = 4096;

/// One RESP2 reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// A failure talking to Redis. It never carries a cached value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RespError {
    #[error("redis i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("redis timed out")]
    Timeout,
    #[error("redis protocol error: {0}")]
    Protocol(&'static str),
    #[error("redis error reply: {0}")]
    Server(String),
    #[error("invalid redis url: {0}")]
    Url(&'static str),
}

/// Where and how to connect, parsed from `redis://[:password@]host:port[/db]`.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) address: String,
    password: Option<String>,
    db: Option<u32>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("address", &self.address)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, RespError> {
        let rest = url.strip_prefix("redis://").ok_or(RespError::Url(
            "must start with redis:// (TLS is not supported)",
        ))?;
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, rest),
        };
        let password = userinfo
            .map(|u| u.split_once(':').map_or(u, |(_, p)| p).to_owned())
            .filter(|p| !p.is_empty());
        let (address, db) = match rest.split_once('/') {
            Some((address, "")) => (address, None),
            Some((address, db)) => (
                address,
                Some(
                    db.parse()
                        .map_err(|_| RespError::Url("bad database number"))?,
                ),
            ),
            None => (rest, None),
        };
        if address.is_empty() {
            return Err(RespError::Url("missing host"));
        }
        let address = if address.contains(':') {
            address.to_owned()
        } else {
            format!("{address}:6379")
        };
        Ok(Target {
            address,
            password,
            db,
        })
    }
}

/// One open connection.
pub(crate) struct Connection {
    stream: BufStream<TcpStream>,
    timeout: Duration,
}

impl Connection {
    pub(crate) async fn open(
        target: &Target,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, RespError> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(&target.address))
            .await
            .map_err(|_| RespError::Timeout)??;
        stream.set_nodelay(true)?;
        let mut connection = Connection {
            stream: BufStream::new(stream),
            timeout,
        };
        if let Some(password) = &target.password {
            connection
                .expect_ok(&[b"AUTH", password.as_bytes()])
                .await?;
        }
        if let Some(db) = target.db {
            connection
                .expect_ok(&[b"SELECT", db.to_string().as_bytes()])
                .await?;
        }
        Ok(connection)
    }

    /// Sends one command and reads its reply, within the timeout.
    pub(crate) async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, RespError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            let mut frame = Vec::with_capacity(64);
            frame.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for arg in args {
                frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                frame.extend_from_slice(arg);
                frame.extend_from_slice(b"\r\n");
            }
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            read_reply(&mut self.stream, 0).await
        })
        .await
        .map_err(|_| RespError::Timeout)?
    }

    async fn expect_ok(&mut self, args: &[&[u8]]) -> Result<(), RespError> {
        match self.call(args).await? {
            Reply::Simple(_) => Ok(()),
            Reply::Error(e) => Err(RespError::Server(e)),
            _ => Err(RespError::Protocol("unexpected reply")),
        }
    }
}

async fn read_line(stream: &mut BufStream<TcpStream>) -> Result<String, RespError> {
    let mut line = Vec::new();
    let mut limited = (&mut *stream).take(MAX_LINE as u64 + 2);
    limited.read_until(b'\n', &mut line).await?;
    if line.last() != Some(&b'\n') {
        return Err(RespError::Protocol("line too long or connection closed"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| RespError::Protocol("line is not UTF-8"))
}

fn read_reply(
    stream: &mut BufStream<TcpStream>,
    depth: u8,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Reply, RespError>> + Send + '_>> {
    Box::pin(async move {
        if depth > 4 {
            return Err(RespError::Protocol("reply nested too deep"));
        }
        let line = read_line(stream).await?;
        let (kind, rest) = line
            .split_at_checked(1)
            .ok_or(RespError::Protocol("empty line"))?;
        match kind {
            "+" => Ok(Reply::Simple(rest.to_owned())),
            "-" => Ok(Reply::Error(rest.to_owned())),
            ":" => rest
                .parse()
                .map(Reply::Integer)
                .map_err(|_| RespError::Protocol("bad integer")),
            "$" => {
                let len: i64 = rest
                    .parse()
                    .map_err(|_| RespError::Protocol("bad length"))?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let len = usize::try_from(len).map_err(|_| RespError::Protocol("bad length"))?;
                if len > MAX_BULK {
                    return Err(RespError::Protocol("bulk reply too large"));
                }
                let mut buf = vec![0u8; len + 2];
                stream.read_exact(&mut buf).await?;
                if buf.get(len..) != Some(b"\r\n".as_slice()) {
                    return Err(RespError::Protocol("bulk reply not terminated"));
                }
                buf.truncate(len);
                Ok(Reply::Bulk(Some(buf)))
            }
            "*" => {
                let n: i64 = rest
                    .parse()
                    .map_err(|_| RespError::Protocol("bad length"))?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                let n = usize::try_from(n).map_err(|_| RespError::Protocol("bad length"))?;
                if n > MAX_ARRAY {
                    return Err(RespError::Protocol("array reply too large"));
                }
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    items.push(read_reply(stream, depth + 1).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(RespError::Protocol("unknown reply type")),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::Target;

    #[test]
    fn parses_urls() {
        let t = Target::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(
            (t.address.as_str(), t.db, t.password.is_none()),
            ("127.0.0.1:6379", None, true)
        );
        let t = Target::parse("redis://:pw@localhost/3").unwrap();
        assert_eq!((t.address.as_str(), t.db), ("localhost:6379", Some(3)));
        assert_eq!(t.password.as_deref(), Some("pw"));
        assert!(!format!("{t:?}").contains("pw"));
        assert!(Target::parse("rediss://x").is_err());
        assert!(Target::parse("redis://x/notanumber").is_err());
        assert!(Target::parse("redis:///0").is_err());
    }
}

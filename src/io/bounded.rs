//! Reading an HTTP answer with a bound on its size: a witness, a probed
//! URL or any other server that answers without end (or with more than
//! it should) costs at most the bound in memory, never the daemon.

/// How much of a witness's answer is read (an etcd range over the
/// cluster's node rows is a few KiB for 16 nodes).
pub const WITNESS_ANSWER: usize = 1 << 20;
/// How much of a probed page is read for its body checks.
pub const PROBED_PAGE: usize = 1 << 20;

/// Why an answer was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is longer than {limit} bytes; reading stopped there")]
    TooLong { limit: usize },
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// The body of `response`, at most `limit` bytes: a longer one (by its
/// Content-Length, or as it arrives) is an error, and reading stops at once.
pub async fn body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLong { limit });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > limit {
            return Err(BodyError::TooLong { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on loopback that answers one request with a 200 and
    /// `head` then `chunks` of 64 KiB, chunked (no length), until the
    /// client goes away or `chunks` run out.
    async fn serve(chunks: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
            for _ in 0..chunks {
                if s.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n").await;
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn an_endless_answer_stops_at_the_limit_and_a_short_one_is_read() {
        let client = reqwest::Client::new();
        // 4 GiB announced by no length: stopped after 1 MiB.
        let url = serve(65_536).await;
        let response = client.get(&url).send().await.unwrap();
        let e = body(response, 1 << 20).await.unwrap_err();
        assert!(
            matches!(e, BodyError::TooLong { limit } if limit == 1 << 20),
            "{e}"
        );
        let url = serve(3).await;
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(body(response, 1 << 20).await.unwrap().len(), 3 * 0x10000);
    }
}

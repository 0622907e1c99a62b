//! The one size-capped body reader.

/// Why a size-capped body read stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body (announced by `Content-Length`, or as received) is larger than the cap.
    #[error("the answer is over the {limit}-byte cap")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The connection failed (or timed out) while the body was read.
    #[error("reading the answer: {}", crate::log::describe(.0))]
    Transport(#[source] reqwest::Error),
}

/// Reads a response body of at most `limit` bytes, chunk by chunk: an announced
/// `Content-Length` over the cap is refused before reading, and a body that grows past it is
/// refused as soon as it does, so no more than `limit` bytes are ever buffered (an endless body
/// ends at the cap).
pub async fn read_capped(resp: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp
        .content_length()
        .is_some_and(|l| usize::try_from(l).map_or(true, |l| l > limit))
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(c) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len().saturating_add(c.len()) > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&c);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server answering with `head` and then `body` chunks from `chunks` (endless
    /// when it never returns `None`).
    async fn serve<F>(head: &'static str, chunks: F) -> String
    where
        F: FnMut(usize) -> Option<Vec<u8>> + Send + Clone + 'static,
    {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut chunks = chunks.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    if s.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut i = 0;
                    while let Some(c) = chunks(i) {
                        i += 1;
                        if s.write_all(&c).await.is_err() {
                            return;
                        }
                    }
                    let _ = s.shutdown().await;
                });
            }
        });
        format!("http://{addr}/")
    }

    fn client() -> reqwest::Client {
        crate::HttpClientBuilder::new("t")
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn an_endless_body_stops_at_the_cap() {
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = served.clone();
        let url = serve(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let data = vec![b'x'; 4096];
                let mut c = format!("{:x}\r\n", data.len()).into_bytes();
                c.extend_from_slice(&data);
                c.extend_from_slice(b"\r\n");
                Some(c)
            },
        )
        .await;
        let mut resp = client().get(url).send().await.unwrap();
        // The body never ends: the read must end by itself, at the cap. (How much the server
        // got to write is up to the kernel's loopback buffers, so it is not asserted.)
        let e = tokio::time::timeout(Duration::from_secs(30), read_capped(&mut resp, 64 * 1024))
            .await
            .expect("reading an endless body ends at the cap")
            .unwrap_err();
        assert!(matches!(e, BodyError::TooLarge { limit: 65536 }), "{e:?}");
        assert_eq!(e.to_string(), "the answer is over the 65536-byte cap");
        assert!(
            served.load(std::sync::atomic::Ordering::Relaxed) > 16,
            "the server sent more than the cap"
        );
    }

    #[tokio::test]
    async fn an_announced_length_over_the_cap_is_refused_before_reading() {
        let url = serve("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", |_| {
            None
        })
        .await;
        let mut resp = client().get(url).send().await.unwrap();
        let e = read_capped(&mut resp, 1000).await.unwrap_err();
        assert!(matches!(e, BodyError::TooLarge { limit: 1000 }), "{e:?}");
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_read_whole_and_a_cut_one_is_a_transport_error() {
        let url = serve("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", |i| {
            (i == 0).then(|| b"hello".to_vec())
        })
        .await;
        let mut resp = client().get(url).send().await.unwrap();
        assert_eq!(read_capped(&mut resp, 5).await.unwrap(), b"hello");

        let url = serve("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", |i| {
            (i == 0).then(|| b"short".to_vec())
        })
        .await;
        let mut resp = client().get(url).send().await.unwrap();
        let e = read_capped(&mut resp, 1000).await.unwrap_err();
        assert!(matches!(e, BodyError::Transport(_)), "{e:?}");
        assert!(!e.to_string().contains("127.0.0.1"), "no URL: {e}");
    }
}

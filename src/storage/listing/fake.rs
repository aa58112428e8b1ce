//! Test support: an S3 endpoint on loopback whose listing fails midway.

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;

use crate::storage::Storage;

/// Answers a `ListObjectsV2` request: the first page holds `keys` and says more follow;
/// asking for the next page gets a 500, as an outage would.
fn answer(stream: std::net::TcpStream, keys: &[String]) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let mut stream = stream;
    if request.contains("continuation-token") {
        return stream.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let contents: String = keys
        .iter()
        .map(|k| {
            format!(
                "<Contents><Key>{k}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>2</Size></Contents>"
            )
        })
        .collect();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><KeyCount>{}</KeyCount><IsTruncated>true</IsTruncated>{contents}<NextContinuationToken>more</NextContinuationToken></ListBucketResult>",
        keys.len()
    );
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

impl Storage {
    /// Test support: serves `s3://<bucket>` from an S3 endpoint on loopback whose listing
    /// gives `keys` (full keys, in order) and then fails: the next page's request gets a 500
    /// (one quick retry). Nothing is sent beyond 127.0.0.1.
    pub(crate) fn serve_listing_that_fails(&self, bucket: &str, keys: &[&str]) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("an address").port();
        let keys: Arc<Vec<String>> = Arc::new(keys.iter().map(|k| k.to_string()).collect());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &keys);
            }
        });
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig {
                    init_backoff: std::time::Duration::from_millis(10),
                    max_backoff: std::time::Duration::from_millis(20),
                    base: 2.0,
                },
                max_retries: 1,
                retry_timeout: std::time::Duration::from_secs(2),
            })
            .build()
            .expect("an S3 store");
        self.serve_bucket(bucket, Arc::new(store));
    }
}

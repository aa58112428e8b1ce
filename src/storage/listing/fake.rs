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
        self.serve_bucket(bucket, Arc::new(crate::storage::loopback_s3(bucket, port)));
    }
}

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};

use super::*;
use crate::storage::{Role, StorageOptions};

fn loc(s: &str) -> Location {
    Location::parse(s).unwrap()
}

/// Every page of `dir`, `n` entries at a time.
fn pages(s: &Storage, dir: &Location, n: usize) -> Vec<Vec<Listed>> {
    let mut listing = s.list_sorted(dir).unwrap();
    let mut out = Vec::new();
    loop {
        let page = listing.next_page(n).unwrap();
        if page.is_empty() {
            return out;
        }
        out.push(page);
    }
}

#[test]
fn s3_listing_is_streamed_in_byte_order() {
    let s = Storage::new(StorageOptions::default());
    s.serve_bucket("mem", Arc::new(InMemory::new()) as Arc<dyn ObjectStore>);
    let out = s.with_role(Role::Output);
    let names = [
        "ab/c.json",
        "ab-c.json",
        "b.txt",
        "a.json",
        "ab.json",
        "Z.json",
        "é.json",
        "ab/d/e",
    ];
    for n in names {
        out.put(&loc(&format!("s3://mem/p/metas/v0/{n}")), n.as_bytes())
            .unwrap();
    }
    out.put(&loc("s3://mem/p/metas/v00/x.json"), b"x").unwrap();
    let dir = loc("s3://mem/p/metas/v0");
    let mut all = s.list(&dir).unwrap();
    all.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    for n in [1, 2, 3, 100] {
        let got = pages(&s, &dir, n);
        assert!(got.iter().all(|p| !p.is_empty() && p.len() <= n), "{n}");
        assert_eq!(got.concat(), all, "pages of {n}");
    }
    let err = s.list_sorted(&loc("s3://mem/p/metas/v9")).err().unwrap();
    assert!(err.not_found, "{err}");
}

#[test]
fn s3_listing_failing_midway_is_an_error() {
    let s = Storage::new(StorageOptions::default());
    s.serve_listing_that_fails("flaky", &["p/m/a.json", "p/m/b.json"]);
    let mut listing = s.list_sorted(&loc("s3://flaky/p/m")).unwrap();
    let first: Vec<String> = listing
        .next_page(2)
        .unwrap()
        .into_iter()
        .map(|l| l.rel)
        .collect();
    assert_eq!(first, ["a.json", "b.json"]);
    let err = listing.next_page(2).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("s3://flaky/p/m"), "{err}");
    // the listing ends there
    assert!(listing.next_page(2).unwrap().is_empty());
}

/// The S3 server of the integration tests (`SHARDFLOW_TEST_S3_ENDPOINT`, moto), if any.
fn s3_endpoint() -> Option<String> {
    let endpoint = std::env::var("SHARDFLOW_TEST_S3_ENDPOINT").ok();
    let addr = endpoint.as_deref().map(|e| {
        e.trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    });
    if addr.is_some_and(|a| std::net::TcpStream::connect(a).is_ok()) {
        return endpoint;
    }
    let msg = format!("S3 TEST SKIPPED: no S3 server at SHARDFLOW_TEST_S3_ENDPOINT={endpoint:?}");
    let required = std::env::var("SHARDFLOW_REQUIRE_S3").is_ok_and(|v| v == "1");
    assert!(!required, "{msg} (SHARDFLOW_REQUIRE_S3=1)");
    eprintln!("\n*** {msg} ***\n");
    None
}

/// Creates `bucket` on the test server (an unsigned `PUT /<bucket>`, which moto accepts).
fn make_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn s3_server_listing_in_small_pages_equals_the_collected_listing() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let bucket = format!("pages-unit-{}", std::process::id());
    make_bucket(&endpoint, &bucket);
    let store: Arc<dyn ObjectStore> = Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&bucket)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .unwrap(),
    );
    let s = Storage::new(StorageOptions::default());
    s.serve_bucket(&bucket, store.clone());
    // more than S3's page of 1,000 keys, with names around `/` in byte order
    let keys: Vec<String> = (0..1100)
        .map(|i| {
            let head = ["ab", "ab-", "ab.", "ab/", "a", "b/", "é", "ab!"][i % 8];
            let tail = [".json", "-x", "/y", "0"][i % 4];
            format!("in/metas/v0/{head}{:x}{tail}", i / 8)
        })
        .chain(["in/metas/v00/x.json".to_string()])
        .collect();
    let rt = s.runtime().unwrap();
    rt.block_on(
        futures::stream::iter(keys.iter().map(|k| {
            let store = store.clone();
            let path = object_store::path::Path::parse(k).unwrap();
            async move { store.put(&path, k.clone().into_bytes().into()).await }
        }))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>(),
    )
    .unwrap();
    let dir = loc(&format!("s3://{bucket}/in/metas/v0"));
    let mut all = s.list(&dir).unwrap();
    assert_eq!(all.len(), 1100);
    all.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    assert_eq!(pages(&s, &dir, 7).concat(), all);
}

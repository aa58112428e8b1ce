use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::ObjectStore;

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

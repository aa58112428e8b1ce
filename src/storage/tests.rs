use std::io::Write;

use object_store::memory::InMemory;

use super::*;

/// A storage layer whose `s3://mem` bucket is an in-memory store.
fn with_memory() -> (Storage, Arc<InMemory>) {
    with_memory_opts(StorageOptions {
        part_size_bytes: 5 << 20,
        parts_in_flight: 2,
        ..StorageOptions::default()
    })
}

fn with_memory_opts(opts: StorageOptions) -> (Storage, Arc<InMemory>) {
    let storage = Storage::new(opts);
    let mem = Arc::new(InMemory::new());
    for role in [Role::Input, Role::Output] {
        storage.shared.stores.lock().unwrap().insert(
            (role, Scheme::S3, "mem".into()),
            mem.clone() as Arc<dyn ObjectStore>,
        );
    }
    (storage, mem)
}

/// The bytes of `loc` through [`Storage::fetch`].
fn fetched(s: &Storage, loc: &Location) -> Vec<u8> {
    let mut clip = s.fetch(loc).open().unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut clip.reader, &mut out).unwrap();
    assert_eq!(out.len() as u64, clip.len);
    out
}

fn loc(s: &str) -> Location {
    Location::parse(s).unwrap()
}

#[test]
fn remote_write_read_list_and_sizes() {
    let (s, _mem) = with_memory();
    let out = s.with_role(Role::Output);
    out.put(&loc("s3://mem/p/metas/v0/b.json"), b"bee").unwrap();
    out.put(&loc("s3://mem/p/metas/v0/a/c.json"), b"sea!")
        .unwrap();
    out.put(&loc("s3://mem/p/other.json"), b"x").unwrap();
    let mut listed = s.list(&loc("s3://mem/p/metas/v0")).unwrap();
    listed.sort();
    let rels: Vec<(&str, u64)> = listed.iter().map(|l| (l.rel.as_str(), l.size)).collect();
    assert_eq!(rels, [("a/c.json", 4), ("b.json", 3)]);
    let err = s.list(&loc("s3://mem/p/metas/v9")).unwrap_err();
    assert!(err.not_found, "{err}");
    assert!(err.to_string().contains("s3://mem/p/metas/v9"), "{err}");
    assert!(!s.is_empty_dir(&loc("s3://mem/p")).unwrap());
    assert!(s.is_empty_dir(&loc("s3://mem/q")).unwrap());
    let locs = [
        loc("s3://mem/p/metas/v0/b.json"),
        loc("s3://mem/p/missing"),
        loc("s3://mem/p/metas/v0/a/c.json"),
    ];
    let got = s.read_many(&locs);
    assert_eq!(got[0].as_ref().unwrap().as_ref(), b"bee");
    let missing = got[1].as_ref().unwrap_err();
    assert!(missing.not_found && missing.to_string().contains("s3://mem/p/missing"));
    assert_eq!(got[2].as_ref().unwrap().as_ref(), b"sea!");
    let sizes = s.size_many(&locs);
    assert_eq!(sizes[0].as_ref().unwrap(), &3);
    assert!(sizes[1].is_err());
    assert_eq!(fetched(&s, &locs[2]), b"sea!");
}

#[test]
fn remote_large_object_goes_up_in_parts_and_appears_only_when_finished() {
    let (s, mem) = with_memory();
    let target = loc("s3://mem/out/big.tar");
    let data: Vec<u8> = (0..(12 << 20)).map(|i| (i % 251) as u8).collect();
    let mut w = s.writer(&target).unwrap();
    for chunk in data.chunks(700_001) {
        w.write_all(chunk).unwrap();
    }
    // two 5 MiB parts have gone up; the object is not visible yet
    assert!(s.size(&target).unwrap_err().not_found);
    assert_eq!(w.finish().unwrap(), data.len() as u64);
    assert_eq!(s.read(&target).unwrap().as_ref(), data.as_slice());
    drop(mem);
}

#[test]
fn remote_abort_and_drop_publish_nothing() {
    let (s, _mem) = with_memory();
    for (i, abort) in [true, false].into_iter().enumerate() {
        let target = loc(&format!("s3://mem/out/{i}.tar"));
        let mut w = s.writer(&target).unwrap();
        w.write_all(&vec![7u8; 6 << 20]).unwrap();
        if abort {
            w.abort();
        } else {
            drop(w);
        }
        assert!(s.size(&target).unwrap_err().not_found);
    }
    assert!(s.is_empty_dir(&loc("s3://mem/out")).unwrap());
}

#[test]
fn local_writer_renames_on_finish_and_cleans_up_on_abort() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::new(StorageOptions::default());
    let target = Location::Local(dir.path().join("a/b/x.tar"));
    let mut w = s.writer(&target).unwrap();
    w.write_all(b"hello").unwrap();
    assert!(dir.path().join("a/b/.x.tar.partial").exists());
    assert!(!dir.path().join("a/b/x.tar").exists());
    assert_eq!(w.finish().unwrap(), 5);
    assert_eq!(
        std::fs::read(dir.path().join("a/b/x.tar")).unwrap(),
        b"hello"
    );
    assert!(!dir.path().join("a/b/.x.tar.partial").exists());
    let other = Location::Local(dir.path().join("a/b/y.tar"));
    let mut w = s.writer(&other).unwrap();
    w.write_all(b"half").unwrap();
    w.abort();
    let names: Vec<_> = std::fs::read_dir(dir.path().join("a/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["x.tar"]);
    assert!(!s.is_empty_dir(&Location::Local(dir.path().into())).unwrap());
    assert!(s
        .is_empty_dir(&Location::Local(dir.path().join("nope")))
        .unwrap());
}

#[test]
fn local_list_size_and_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("m/sub")).unwrap();
    std::fs::write(dir.path().join("m/sub/a#1.json"), b"{}").unwrap();
    std::fs::write(dir.path().join("m/b.json"), b"[]").unwrap();
    let s = Storage::new(StorageOptions::default());
    let mut listed = s.list(&Location::Local(dir.path().join("m"))).unwrap();
    listed.sort();
    let rels: Vec<(&str, u64)> = listed.iter().map(|l| (l.rel.as_str(), l.size)).collect();
    assert_eq!(
        rels,
        [("b.json", 2), ("sub/a#1.json", 2)],
        "names with # are kept"
    );
    let missing = Location::Local(dir.path().join("m/none.mp4"));
    let e = s.size(&missing).unwrap_err();
    assert!(e.not_found && e.to_string().contains("none.mp4"), "{e}");
    let e = s
        .size(&Location::Local(dir.path().join("m/sub")))
        .unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert_eq!(
        s.size(&Location::Local(dir.path().join("m/b.json")))
            .unwrap(),
        2
    );
    assert!(
        s.list(&Location::Local(dir.path().join("zz")))
            .unwrap_err()
            .not_found
    );
}

#[test]
fn large_objects_stream_in_ranges_and_small_ones_are_prefetched() {
    let (s, _mem) = with_memory();
    let big: Vec<u8> = (0..PREFETCH_MAX + 3 * STREAM_CHUNK / 2)
        .map(|i| (i % 253) as u8)
        .collect();
    let target = loc("s3://mem/clips/big.mp4");
    s.put(&target, &big).unwrap();
    let mut clip = s.fetch(&target).open().unwrap();
    assert_eq!(clip.len, big.len() as u64);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut clip.reader, &mut got).unwrap();
    assert!(got == big, "streamed bytes differ");
    let small = loc("s3://mem/clips/small.mp4");
    s.put(&small, b"tiny").unwrap();
    assert_eq!(fetched(&s, &small), b"tiny");
    let e = s
        .fetch(&loc("s3://mem/clips/none.mp4"))
        .open()
        .err()
        .unwrap();
    assert!(e.not_found, "{e}");
}

#[test]
fn a_local_clip_that_shrinks_while_read_is_an_error_not_a_short_tar_member() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.mp4");
    std::fs::write(&p, vec![1u8; 10_000]).unwrap();
    let s = Storage::new(StorageOptions::default());
    let mut clip = s.fetch(&Location::Local(p.clone())).open().unwrap();
    assert_eq!(clip.len, 10_000);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(100)
        .unwrap();
    let mut buf = Vec::new();
    let e = std::io::Read::read_to_end(&mut clip.reader, &mut buf).unwrap_err();
    assert!(
        e.to_string().contains("ended") && e.to_string().contains("c.mp4"),
        "{e}"
    );
    let dir_err = s
        .fetch(&Location::Local(dir.path().into()))
        .open()
        .err()
        .unwrap();
    assert!(
        dir_err.to_string().contains("not a regular file"),
        "{dir_err}"
    );
}

#[test]
fn copies_too_large_for_the_server_are_streamed_in_parts() {
    let (s, _mem) = with_memory_opts(StorageOptions {
        part_size_bytes: 5 << 20,
        parts_in_flight: 2,
        server_copy_max_bytes: 1 << 20,
        ..StorageOptions::default()
    });
    let out = s.with_role(Role::Output);
    let big: Vec<u8> = (0..(12 << 20) + 7).map(|i| (i % 253) as u8).collect();
    out.put(&loc("s3://mem/v0/big.tar"), &big).unwrap();
    out.put(&loc("s3://mem/v0/small.tar"), b"small").unwrap();
    // the big one's size is given (as a re-shard knows it from its records), the others asked
    let pairs = [
        (
            loc("s3://mem/v0/big.tar"),
            loc("s3://mem/v1/big.tar"),
            Some(big.len() as u64),
        ),
        (
            loc("s3://mem/v0/missing.tar"),
            loc("s3://mem/v1/missing.tar"),
            None,
        ),
        (
            loc("s3://mem/v0/small.tar"),
            loc("s3://mem/v1/small.tar"),
            None,
        ),
    ];
    let results = out.copy_many(&pairs);
    results[0].as_ref().unwrap();
    let err = results[1].as_ref().unwrap_err();
    assert!(err.to_string().contains("v0/missing.tar"), "{err}");
    results[2].as_ref().unwrap();
    assert!(fetched(&out, &loc("s3://mem/v1/big.tar")) == big);
    assert_eq!(fetched(&out, &loc("s3://mem/v1/small.tar")), b"small");
    assert!(
        out.size(&loc("s3://mem/v1/missing.tar"))
            .unwrap_err()
            .not_found
    );
}

#[test]
fn bounded_reads_refuse_files_over_the_limit_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small.json"), dir.path().join("big.json"));
    std::fs::write(&small, b"{}").unwrap();
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let (s, _mem) = with_memory();
    s.put(&loc("s3://mem/m/small.json"), b"{}").unwrap();
    s.put(&loc("s3://mem/m/big.json"), &[b' '; 5000]).unwrap();
    let locs = [
        Location::Local(small),
        Location::Local(big),
        loc("s3://mem/m/small.json"),
        loc("s3://mem/m/big.json"),
        loc("s3://mem/m/missing.json"),
    ];
    let got = s.read_many_max(&locs, 4096);
    assert_eq!(got[0].as_ref().unwrap().as_ref().unwrap().as_ref(), b"{}");
    assert_eq!(got[1].as_ref().unwrap().as_ref().unwrap_err(), &(1 << 20));
    assert_eq!(got[2].as_ref().unwrap().as_ref().unwrap().as_ref(), b"{}");
    assert_eq!(got[3].as_ref().unwrap().as_ref().unwrap_err(), &5000);
    assert!(got[4].as_ref().unwrap_err().not_found);
}

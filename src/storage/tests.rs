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
    let names = |d: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.path().join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let tmp = names("a/b");
    assert_eq!(tmp.len(), 1);
    assert!(
        tmp[0].starts_with(".x.tar.") && tmp[0].ends_with(".partial"),
        "{tmp:?}"
    );
    assert!(!dir.path().join("a/b/x.tar").exists());
    assert_eq!(w.finish().unwrap(), 5);
    assert_eq!(
        std::fs::read(dir.path().join("a/b/x.tar")).unwrap(),
        b"hello"
    );
    assert_eq!(names("a/b"), ["x.tar"]);
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

#[test]
fn io_errors_are_classified_by_who_is_at_fault() {
    use std::io::{Error, ErrorKind as K};
    for (k, want) in [
        (K::NotFound, ErrorKind::NotFound),
        (K::NotADirectory, ErrorKind::NotFound),
        (K::PermissionDenied, ErrorKind::Denied),
        (K::InvalidInput, ErrorKind::Other),
        (K::IsADirectory, ErrorKind::Other),
        (K::InvalidFilename, ErrorKind::Other),
        (K::Other, ErrorKind::Transient),
        (K::TimedOut, ErrorKind::Transient),
        (K::StaleNetworkFileHandle, ErrorKind::Transient),
        (K::UnexpectedEof, ErrorKind::Transient),
    ] {
        assert_eq!(ErrorKind::of_io(&Error::from(k)), want, "{k:?}");
    }
    // Linux errno values: ENOENT, EACCES, ELOOP, ENAMETOOLONG; EIO, ESTALE, EMFILE
    for (errno, want) in [
        (2, ErrorKind::NotFound),
        (13, ErrorKind::Denied),
        (40, ErrorKind::Other),
        (36, ErrorKind::Other),
        (5, ErrorKind::Transient),
        (116, ErrorKind::Transient),
        (24, ErrorKind::Transient),
    ] {
        let e = Error::from_raw_os_error(errno);
        assert_eq!(ErrorKind::of_io(&e), want, "{e}");
    }
}

#[test]
fn local_clip_checks_blame_the_clip_only_when_it_is_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::new(StorageOptions::default());
    let missing = Location::Local(dir.path().join("none.mp4"));
    let e = s.stat_many(&[missing]).pop().unwrap().unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.not_found && !e.is_transient());
    // a directory is not a regular file: the clip's fault, not an outage
    let d = Location::Local(dir.path().to_path_buf());
    let e = s
        .stat_many(std::slice::from_ref(&d))
        .pop()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Other, "{e}");
    let Err(e) = s.fetch(&d).open() else {
        panic!("a directory opened as a clip")
    };
    assert_eq!(e.kind, ErrorKind::Other, "{e}");
    // a path through a file
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    let through = Location::Local(dir.path().join("f/clip.mp4"));
    let e = s.stat_many(&[through]).pop().unwrap().unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

#[test]
fn object_store_errors_are_classified_by_who_is_at_fault() {
    use object_store::client::{HttpError, HttpErrorKind};
    use object_store::Error as E;
    type Source = Box<dyn std::error::Error + Send + Sync>;
    let msg = |m: &str| -> Source { Box::new(std::io::Error::other(m.to_string())) };
    let kind = |e: E| ErrorKind::of_object_store(&e);
    let path = || "clips/a.mp4".to_string();
    assert_eq!(
        kind(E::NotFound {
            path: path(),
            source: msg("404")
        }),
        ErrorKind::NotFound
    );
    for e in [
        E::PermissionDenied {
            path: path(),
            source: msg("403"),
        },
        E::Unauthenticated {
            path: path(),
            source: msg("401"),
        },
    ] {
        assert_eq!(kind(e), ErrorKind::Denied);
    }
    for k in [
        HttpErrorKind::Connect,
        HttpErrorKind::Request,
        HttpErrorKind::Timeout,
        HttpErrorKind::Interrupted,
    ] {
        let source: Source = Box::new(HttpError::new(k, std::io::Error::other("refused")));
        assert_eq!(
            kind(E::Generic {
                store: "S3",
                source
            }),
            ErrorKind::Transient,
            "{k:?}"
        );
    }
    let status = |code: &str| {
        E::Generic {
        store: "S3",
        source: msg(&format!(
            "Error performing GET http://127.0.0.1/b/k in 1s, after 10 retries - Server returned non-2xx status code: {code}: "
        )),
    }
    };
    for code in [
        "500 Internal Server Error",
        "503 Service Unavailable",
        "429 Too Many Requests",
    ] {
        assert_eq!(kind(status(code)), ErrorKind::Transient, "{code}");
    }
    assert_eq!(kind(status("400 Bad Request")), ErrorKind::Other);
    assert_eq!(
        kind(E::Generic {
            store: "S3",
            source: msg("bad XML")
        }),
        ErrorKind::Other
    );
    assert_eq!(
        kind(E::NotSupported { source: msg("no") }),
        ErrorKind::Other
    );
}

#[test]
fn an_unreachable_store_is_an_outage_not_a_missing_clip() {
    let s = Storage::new(StorageOptions::default());
    s.serve_unreachable_bucket("down");
    let clip = loc("s3://down/clips/a.mp4");
    let e = s
        .stat_many(std::slice::from_ref(&clip))
        .pop()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.is_transient() && !e.not_found);
    assert!(e.to_string().contains("s3://down/clips/a.mp4"), "{e}");
    let Err(e) = s.fetch(&clip).open() else {
        panic!("an unreachable clip opened")
    };
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.to_string().contains("s3://down/clips/a.mp4"), "{e}");
    assert!(s.read(&clip).unwrap_err().is_transient());
    assert!(s.list(&loc("s3://down/clips")).unwrap_err().is_transient());
    // a reachable store: a missing object is the clip's fault
    let (m, _mem) = with_memory();
    let e = m.size(&loc("s3://mem/none.mp4")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

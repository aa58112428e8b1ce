use super::*;
use crate::layout::Stream;
use crate::storage::StorageOptions;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Writers into `dir`; the samples of [`sample`] carry mtime 1_700_000_000.
fn writers(dir: impl AsRef<Path>) -> TarWriters {
    let s = Storage::new(StorageOptions::default());
    TarWriters::new(s.clone(), s, Location::Local(dir.as_ref().to_path_buf()))
}

fn local_tar(dir: &Path, t: &TarId, stream: Stream) -> PathBuf {
    let loc =
        layout::StreamNames::REFERENCE.tar_path(&Location::Local(dir.to_path_buf()), t, stream);
    loc.as_local().unwrap().to_path_buf()
}

fn tar_id(t: u32) -> TarId {
    TarId {
        bin_order: 0,
        bin: "resolution_720/aspect_ratio_16_9/frames_0_120".into(),
        part: 0,
        tar: t,
    }
}

fn sample(dir: &Path, t: u32, index: u32, len: u32, clip: Option<&[u8]>) -> EncodedSample {
    let clip_path = dir.join(format!("clip{t}_{index}.mp4"));
    if let Some(bytes) = clip {
        std::fs::write(&clip_path, bytes).unwrap();
    }
    EncodedSample {
        tar: tar_id(t),
        index,
        tar_len: len,
        key: format!("k{t}_{index}"),
        meta_rel_path: format!("k{t}_{index}.json"),
        clip_path: clip_path.to_string_lossy().into_owned(),
        json: format!("{{\"i\": {index}}}").into_bytes(),
        pickle: vec![index as u8; 3],
        windows_embedded: 1,
        tokens_embedded: 5,
        mtime: 1_700_000_000,
        gone: None,
        ..Default::default()
    }
}

fn members(path: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
            let mode = e.header().mode().unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, mode, data)
        })
        .collect()
}

#[test]
fn out_of_order_samples_are_written_in_position_order_and_renamed_when_complete() {
    let out = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let mut w = writers(out.path());
    let final_video = local_tar(out.path(), &tar_id(0), Stream::Video);
    assert!(w
        .push(sample(clips.path(), 0, 2, 3, Some(b"two")))
        .unwrap()
        .is_none());
    assert!(w
        .push(sample(clips.path(), 0, 0, 3, Some(b"zero")))
        .unwrap()
        .is_none());
    assert!(!final_video.exists(), "tar visible before it is complete");
    let done = w
        .push(sample(clips.path(), 0, 1, 3, Some(b"one")))
        .unwrap()
        .unwrap();
    assert_eq!(done.samples, 3);
    assert_eq!(done.windows_embedded, 3);
    assert_eq!(done.tokens_embedded, 15);
    assert!(w.unfinished().is_empty());
    let video = members(&final_video);
    let names: Vec<&str> = video.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(names, ["k0_0.mp4", "k0_1.mp4", "k0_2.mp4"]);
    assert_eq!(video[1].2, b"one");
    assert!(video.iter().all(|m| m.1 == 0o444));
    let metas = members(&local_tar(out.path(), &tar_id(0), Stream::Metas));
    assert_eq!(
        metas[2],
        ("k0_2.json".to_string(), 0o444, b"{\"i\": 2}".to_vec())
    );
    let pickles = members(&local_tar(out.path(), &tar_id(0), Stream::T5Xxl));
    assert_eq!(pickles[0].0, "k0_0.pickle");
    let total: u64 = Stream::ALL
        .into_iter()
        .map(|k| {
            std::fs::metadata(local_tar(out.path(), &tar_id(0), k))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(done.bytes, total);
    // no temporary file left behind
    let dir = final_video.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn unreadable_clip_is_skipped_in_all_three_tars() {
    let out = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let mut w = writers(out.path());
    assert!(w
        .push(sample(clips.path(), 1, 0, 2, None))
        .unwrap()
        .is_none());
    let done = w
        .push(sample(clips.path(), 1, 1, 2, Some(b"ok")))
        .unwrap()
        .unwrap();
    assert_eq!(done.samples, 1);
    assert_eq!(done.rejects.len(), 1);
    assert_eq!(done.rejects[0].kind, RejectKind::ClipUnreadable);
    for kind in Stream::ALL {
        let m = members(&local_tar(out.path(), &tar_id(1), kind));
        assert_eq!(
            m.iter().map(|m| m.0.clone()).collect::<Vec<_>>(),
            [format!("k1_1.{}", kind.ext())]
        );
    }
}

#[test]
fn python_tarfile_reads_our_tars() {
    let out = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let mut w = writers(out.path());
    for i in 0..2 {
        w.push(sample(
            clips.path(),
            2,
            i,
            2,
            Some(&vec![i as u8; 1000 + i as usize]),
        ))
        .unwrap();
    }
    let path = local_tar(out.path(), &tar_id(2), Stream::Video);
    let script = "import sys, tarfile\n\
        t = tarfile.open(sys.argv[1])\n\
        for m in t.getmembers():\n\
        \x20   assert m.isreg() and m.mode == 0o444, m\n\
        \x20   print(m.name, len(t.extractfile(m).read()))\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "k2_0.mp4 1000\nk2_1.mp4 1001\n"
    );
}

#[test]
fn dataflow_writes_each_tar_once() {
    use crate::ops::exchange_by_bin::ExchangeByBin;
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::{Inspect, ToStream};
    let out = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let samples: Vec<EncodedSample> = (0..12)
        .map(|i| sample(clips.path(), i % 3, i / 3, 4, Some(b"v")))
        .collect();
    let done = Arc::new(Mutex::new(Vec::new()));
    let (done2, out_dir) = (done.clone(), out.path().to_path_buf());
    let progress = Arc::new(crate::report::Progress::default());
    let progress2 = progress.clone();
    timely::execute(timely::Config::process(2), move |worker| {
        let done = done2.clone();
        let mine: Vec<EncodedSample> = samples
            .iter()
            .filter(|s| s.index as usize % 2 == worker.index())
            .cloned()
            .collect();
        let writers = writers(out_dir.clone());
        worker.dataflow::<u64, _, _>(|scope| {
            mine.to_stream(scope)
                .exchange_by_bin()
                .write_tar(
                    writers,
                    &JobContext::new(progress2.clone(), Default::default()),
                )
                .inspect(move |d| done.lock().unwrap().push((d.tar.tar, d.samples)));
        });
    })
    .unwrap();
    let mut d = done.lock().unwrap().clone();
    d.sort();
    assert_eq!(d, [(0, 4), (1, 4), (2, 4)]);
    assert_eq!(
        progress.written.load(std::sync::atomic::Ordering::Relaxed),
        12
    );
    let m = members(&local_tar(out.path(), &tar_id(1), Stream::Metas));
    assert_eq!(
        m.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        ["k1_0.json", "k1_1.json", "k1_2.json", "k1_3.json"]
    );
}

#[test]
fn the_writer_completes_pickles_from_earlier_embeddings_in_window_order() {
    use crate::formats::npy_pickle::{read_array_list, write_array_list};
    use crate::record::EmbeddingRef;
    use half::f16;
    let out = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let arr =
        |rows: usize, v: f32| F16Array::new((rows, 2), vec![f16::from_f32(v); rows * 2]).unwrap();
    let (old0, old1, new) = (arr(1, 1.0), arr(2, 2.0), arr(3, 3.0));
    // an earlier t5_xxl tar holding one sample with two windows
    let old_tar = out.path().join("old.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&old_tar).unwrap());
    let pickle = write_array_list(&[old0.view(), old1.view()]);
    let mut h = tar::Header::new_gnu();
    h.set_size(pickle.len() as u64);
    h.set_mode(0o444);
    b.append_data(&mut h, "old.pickle", pickle.as_slice())
        .unwrap();
    b.finish().unwrap();
    let at = old_tar.to_string_lossy().into_owned();
    let r = |window| {
        Some(EmbeddingRef {
            tar: at.clone(),
            key: "old".into(),
            window,
        })
    };
    let storage = Storage::new(StorageOptions::default());
    let mut w = writers(out.path().join("v1")).with_reuse(EmbeddingSource::new(storage.clone()));
    // windows 0 and 2 reused (the earlier windows swapped), window 1 encoded now
    let mut s = sample(clips.path(), 0, 0, 2, Some(b"clip"));
    s.pickle = write_array_list(&[new.view()]);
    s.reuse = vec![r(1), None, r(0)];
    w.push(s).unwrap();
    // a reference the earlier tar cannot satisfy fails the triple, naming the tar
    let mut s = sample(clips.path(), 0, 1, 2, Some(b"clip"));
    s.pickle = write_array_list::<F16Array>(&[]);
    s.reuse = vec![r(5)];
    let err = w.push(s).unwrap_err().to_string();
    assert!(err.contains("old.tar") && err.contains("2 arrays"), "{err}");

    let mut w = writers(out.path().join("v2")).with_reuse(EmbeddingSource::new(storage));
    let mut s = sample(clips.path(), 0, 0, 1, Some(b"clip"));
    s.pickle = write_array_list(&[new.view()]);
    s.reuse = vec![r(1), None, r(0)];
    w.push(s).unwrap().unwrap();
    let pickles = members(&local_tar(
        &out.path().join("v2"),
        &tar_id(0),
        Stream::T5Xxl,
    ));
    assert_eq!(pickles[0].0, "k0_0.pickle");
    assert_eq!(read_array_list(&pickles[0].2).unwrap(), [old1, new, old0]);
}

#[test]
fn a_clip_the_storage_cannot_reach_fails_the_triple_without_a_reject() {
    let out = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let mut w = writers(out.path());
    w.input.serve_unreachable_bucket("down");
    let mut s = sample(clips.path(), 1, 0, 2, None);
    s.clip_path = "s3://down/clips/k1_0.mp4".into();
    let e = w.push(s).unwrap_err().to_string();
    assert!(e.contains("s3://down/clips/k1_0.mp4"), "{e}");
    assert!(e.contains("k1_0.json") && e.contains("--resume"), "{e}");
    // the triple is abandoned: nothing of it exists, and its later samples are dropped
    assert!(w
        .push(sample(clips.path(), 1, 1, 2, Some(b"ok")))
        .unwrap()
        .is_none());
    assert!(w.unfinished().is_empty());
    for kind in Stream::ALL {
        assert!(!local_tar(out.path(), &tar_id(1), kind).exists());
    }
}

#[test]
fn written_tars_carry_their_sha256_and_copied_ones_the_earlier_records() {
    let out = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let mut w = writers(out.path());
    let sha_of_file = |p: &Path| crate::hash::sha256_of(std::fs::File::open(p).unwrap()).unwrap();
    // a triple written whole: each digest is that of the finished file
    let mut done = None;
    for i in 0..2 {
        done = w
            .push(sample(clips.path(), 0, i, 2, Some(b"mp4 bytes")))
            .unwrap();
    }
    let done = done.expect("complete");
    for stream in Stream::ALL {
        let file = local_tar(out.path(), &tar_id(0), stream);
        assert_eq!(done.sha256[stream], Some(sha_of_file(&file)), "{stream:?}");
    }
    // a triple whose video tar is copied: the earlier record's checksum is carried as it is
    // (not recomputed: this one is made up); whose t5_xxl tar is copied from a record without
    // one: the copy is read for it
    let copied_video = local_tar(out.path(), &tar_id(1), Stream::Video);
    let copied_t5 = local_tar(out.path(), &tar_id(1), Stream::T5Xxl);
    for p in [&copied_video, &copied_t5] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"an earlier tar").unwrap();
    }
    let carried = "c".repeat(64);
    let mut s = sample(clips.path(), 1, 0, 1, None);
    s.copied[Stream::Video] = Some(crate::record::CopiedTar {
        size: 14,
        sha256: Some(carried.clone()),
    });
    s.copied[Stream::T5Xxl] = Some(crate::record::CopiedTar {
        size: 14,
        sha256: None,
    });
    let done = w.push(s).unwrap().expect("complete");
    assert_eq!(done.files_copied, 2);
    assert_eq!(done.sha256[Stream::Video], Some(carried));
    assert_eq!(done.sha256[Stream::T5Xxl], Some(sha_of_file(&copied_t5)));
    let metas = local_tar(out.path(), &tar_id(1), Stream::Metas);
    assert_eq!(done.sha256[Stream::Metas], Some(sha_of_file(&metas)));
}

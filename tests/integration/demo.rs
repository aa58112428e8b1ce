//! `shardflow demo`: a fresh install's proof. It writes the sample dataset and tiny model built
//! into the binary, shards them into the reference's dataset, and the Python it prints reads
//! the result.

use std::path::Path;

use crate::common::*;

/// The Python lines the demo prints after "read it in Python", unindented.
fn python_guide(stdout: &str) -> String {
    let lines: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("read it in Python"))
        .skip(1)
        .collect();
    assert!(!lines.is_empty(), "no Python guide in:\n{stdout}");
    lines
        .iter()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn demo_writes_the_reference_dataset_and_its_python_guide_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = shardflow(dir.path(), &["demo", "out", "--workers", "2"]);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dataset = dir.path().join("out/dataset");
    assert!(
        stdout.starts_with(&format!(
            "wrote {}/v0: 23 clips in 13 tars (12 bins)",
            dataset.display()
        )),
        "{stdout}"
    );
    // the built-in copies are the repository's sample and model, byte for byte
    for (got, want) in [
        ("out/input", "sample-dataset/clips"),
        ("out/t5-tiny", "t5-tiny"),
    ] {
        let want_dir = data(want);
        let sub = want.strip_prefix("sample-dataset/").unwrap_or("");
        for file in files_below(&dir.path().join(got).join(sub)) {
            let name = file.file_name().unwrap();
            assert_eq!(
                std::fs::read(&file).unwrap(),
                std::fs::read(want_dir.join(name)).unwrap(),
                "{}",
                file.display()
            );
        }
    }
    let line = compare_strict(&data("sample-dataset-expected"), &dataset);
    assert!(line.ends_with("OK"), "{line}");
    let c = reconciled_counts(&dataset.join("v0"));
    assert_eq!(c["written"], 23);
    assert_eq!(c["rejected"]["invalid_json"], 1);

    // the check it suggests passes
    assert!(stdout.contains(&format!(
        "shardflow verify {} --checksums",
        dataset.display()
    )));
    let verify = shardflow(dir.path(), &["verify", "out/dataset", "--checksums"]);
    assert_ok(&verify);

    // the Python it prints runs and reads every written sample's embeddings and metadata
    let script = dir.path().join("read.py");
    std::fs::write(&script, python_guide(&stdout)).unwrap();
    let read = stdout_of(
        std::process::Command::new("python3").arg(&script),
        "the demo's Python",
    );
    let rows: Vec<&str> = read.lines().collect();
    assert_eq!(rows.len(), 23, "{read}");
    let mut arrays = 0;
    for row in rows {
        // "<span_uuid> <num_frames> [(tokens, 16), ...]": the tiny T5's width is 16; a clip
        // whose windows have no caption has no array
        let fields: Vec<&str> = row.splitn(3, ' ').collect();
        assert_eq!(fields[0].len(), 36, "{row}");
        assert!(fields[1].parse::<u64>().is_ok(), "{row}");
        assert!(fields[2].starts_with('['), "{row}");
        arrays += fields[2].matches(", 16)").count();
    }
    // one array per embedded caption window
    assert_eq!(arrays, 31, "{read}");
}

#[test]
fn demo_refuses_a_folder_in_use() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/notes.txt"), "mine").unwrap();
    let out = shardflow(dir.path(), &["demo", "out"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(files_below(&dir.path().join("out")).len(), 1);
    // an empty folder is fine
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    assert_ok(&shardflow(dir.path(), &["demo", "empty"]));
}

/// Without a GPU (or without the CUDA backend), `--device cuda` says why and exits 2.
#[test]
fn demo_on_cuda_without_a_gpu_is_a_clear_error() {
    if Path::new("/dev/nvidia0").exists() {
        eprintln!("skipped: this host has a GPU");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = shardflow(dir.path(), &["demo", "out", "--device", "cuda"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: ") && stderr.contains("CUDA"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // said before anything is written
    assert!(!dir.path().join("out").exists());
}

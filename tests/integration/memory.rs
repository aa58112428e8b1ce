//! Memory does not grow with clip size: a 1 GiB clip (a sparse file) streams from disk into
//! its tar; the peak RSS of the real binary stays far below the clip's size.

use crate::common::*;

#[test]
fn a_one_gib_clip_streams_through_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    copy_tree(&data("sample-dataset"), &input);
    const CLIP: u64 = 1 << 30;
    run_tool(
        "edit_input.py",
        [
            "add-clip",
            input.to_str().unwrap(),
            "huge",
            &CLIP.to_string(),
            "sparse",
        ],
    );
    // peak RSS of the child, from the kernel's accounting
    let model = data("t5-tiny");
    let remap = format!("{SAMPLE_ROOT}={}", input.display());
    let out = tool("peak_rss.py")
        .args([SHARDFLOW, "shard"])
        .args(["--input-clip-path", input.to_str().unwrap()])
        .args(["--output-dataset-path", "out", "--workers", "2"])
        .args(["--t5-model", model.to_str().unwrap()])
        .args([
            "--remap-clip-location",
            &remap,
            "--max-rejected-fraction",
            "0.05",
        ])
        .current_dir(tmp.path())
        .env("SHARDFLOW_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<u64> = stdout
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields[0], 0, "{}", String::from_utf8_lossy(&out.stderr));
    let peak_mib = fields[1] / 1024;
    eprintln!("peak RSS with a 1 GiB clip: {peak_mib} MiB");
    assert!(
        peak_mib < 256,
        "peak RSS {peak_mib} MiB: the clip was held in memory"
    );
    let c = reconciled_counts(&tmp.path().join("out/v0"));
    assert_eq!(c["written"], 24);
    // the clip is in its tar whole
    let size = run_tool(
        "read_dataset.py",
        [
            "member-sizes",
            tmp.path().join("out/v0").to_str().unwrap(),
            "huge.mp4",
        ],
    );
    assert_eq!(size.trim(), CLIP.to_string());
}

//! Memory does not grow with clip size: a 1 GiB clip (a sparse file) streams from disk into
//! its tar; the peak RSS of the real binary stays far below the clip's size.

use std::process::Command;

use crate::common::*;

#[test]
fn a_one_gib_clip_streams_through_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    copy_tree(&data("sample-dataset"), &input);
    const CLIP: u64 = 1 << 30;
    python(
        r#"
import json, os, sys
root, size = sys.argv[1], int(sys.argv[2])
metas = os.path.join(root, "metas/v0")
for name in sorted(os.listdir(metas)):
    try:
        m = json.load(open(os.path.join(metas, name)))
    except Exception:
        continue
    if isinstance(m, dict) and m.get("valid") and min(m["width"], m["height"]) >= 720 and m["windows"] \
            and all(isinstance(w.get("qwen_caption"), str) for w in m["windows"]):
        break
with open(os.path.join(root, "clips/huge.mp4"), "wb") as f:
    f.write(b"\0\0\0\x18ftypmp42")
    f.truncate(size)
m["span_uuid"] = "huge"
m["clip_location"] = m["clip_location"].rsplit("/", 1)[0] + "/huge.mp4"
m["num_bytes"] = size
open(os.path.join(metas, "huge.json"), "w").write(json.dumps(m, indent=4))
"#,
        &[input.to_str().unwrap(), &CLIP.to_string()],
    );
    // peak RSS of the child, from the kernel's accounting
    let script = r#"
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(r.stderr)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"#;
    let model = data("t5-tiny");
    let remap = format!("{SAMPLE_ROOT}={}", input.display());
    let out = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_shardflow"), "shard"])
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
    let size = python(
        "import tarfile,sys,glob\nfor p in glob.glob(sys.argv[1] + '/**/video/**/*.tar', recursive=True):\n  for m in tarfile.open(p):\n    if m.name == 'huge.mp4': print(m.size)",
        &[tmp.path().join("out/v0").to_str().unwrap()],
    );
    assert_eq!(size.trim(), CLIP.to_string());
}

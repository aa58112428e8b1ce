//! Adversarial use of the real binary: jobs racing for one output, special files and symlink
//! loops in the input, symlinks out of the allowed roots, leftovers of killed runs.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Waits for `child` at most `limit`; a hang fails the test (and kills the child).
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `shard` of `input` into `<cwd>/out` with every reject tolerated, under a watchdog: a job
/// that hangs fails the test.
fn shard_bounded(cwd: &Path, input: &Path, what: &str) -> Output {
    let child = shardflow_command(cwd)
        .args(["shard", "--input-clip-path", input.to_str().unwrap()])
        .args(["--output-dataset-path", "out", "--t5-model"])
        .arg(data("t5-tiny"))
        .args([
            "--remap-clip-location",
            &format!("{SAMPLE_ROOT}={}", input.display()),
            "--max-rejected-fraction",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child, Duration::from_secs(120), what)
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success(), "mkfifo {}", p.display());
}

/// The sample dataset copied to `<dir>/in`.
fn sample_in(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    copy_tree(&data("sample-dataset"), &input);
    input
}

/// Metadata files of the sample that are valid and captioned, sorted.
fn valid_metas(input: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(input.join("metas/v0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            std::fs::read_to_string(p)
                .is_ok_and(|t| t.contains("\"valid\": true") && t.contains("\"qwen_caption\""))
        })
        .collect();
    v.sort();
    v
}

/// The clip a metadata file names, inside the copied sample.
fn clip_of(input: &Path, meta: &Path) -> PathBuf {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
    let loc = v["clip_location"].as_str().unwrap();
    input.join(loc.strip_prefix(&format!("{SAMPLE_ROOT}/")).unwrap())
}

fn rejects(version_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(version_dir.join("_shardflow/rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn partials(dir: &Path) -> Vec<PathBuf> {
    files_below(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect()
}

/// xorshift64*: seeded choices without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// N jobs with random options started together on one output, over several seeds: exactly
/// one runs, the others stop at once with exit 2 and write nothing, and the dataset verifies.
/// The barrier: every job reads its config from a FIFO, and the FIFOs are written only once
/// all jobs have started, so they all leave start-up together.
#[test]
fn jobs_started_together_on_one_output_exactly_one_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_in(tmp.path());
    let model = data("t5-tiny");
    for seed in 0..4u64 {
        let mut state = (seed + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let out = tmp.path().join(format!("out-{seed}"));
        let jobs = 2 + (next(&mut state) % 3) as usize;
        let mut children = Vec::new();
        let mut fifos = Vec::new();
        for j in 0..jobs {
            let size = [0.01, 0.05, 0.3, 500.0][(next(&mut state) % 4) as usize];
            let workers = 1 + next(&mut state) % 3;
            let batch = [1, 4, 16][(next(&mut state) % 3) as usize];
            let index = if next(&mut state).is_multiple_of(2) {
                "index = [\"dali\"]\n"
            } else {
                ""
            };
            let fifo = tmp.path().join(format!("job-{seed}-{j}.toml"));
            mkfifo(&fifo);
            let config = format!(
                "input_clip_path = {:?}\noutput_dataset_path = {:?}\nt5_model = {:?}\nremap_clip_location = [\"{SAMPLE_ROOT}={}\"]\nmax_rejected_fraction = 0.05\ntarget_tar_size_mb = {size:?}\nworkers = {workers}\nbatch_size = {batch}\n{index}",
                input.display().to_string(),
                out.display().to_string(),
                model.display().to_string(),
                input.display()
            );
            let child = shardflow_command(tmp.path())
                .args(["shard", "--config", fifo.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            children.push(child);
            fifos.push((fifo, config));
        }
        // every job is now blocked opening its config: release them together
        let writers: Vec<_> = fifos
            .into_iter()
            .map(|(fifo, config)| std::thread::spawn(move || std::fs::write(fifo, config).unwrap()))
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| wait_bounded(c, Duration::from_secs(300), "a racing job"))
            .collect();
        let ok: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
        assert_eq!(
            ok.len(),
            1,
            "seed {seed}: {} of {jobs} jobs ran; exit codes {:?}",
            ok.len(),
            outs.iter().map(|o| o.status.code()).collect::<Vec<_>>()
        );
        for o in outs.iter().filter(|o| !o.status.success()) {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "seed {seed}: {err}");
            assert!(
                err.contains("locked") || err.contains("not empty"),
                "seed {seed}: {err}"
            );
        }
        assert_eq!(partials(&out), Vec::<PathBuf>::new(), "seed {seed}");
        let verify = shardflow(tmp.path(), &["verify", out.join("v0").to_str().unwrap()]);
        assert!(
            verify.status.success(),
            "seed {seed}: verify failed:\n{}\n{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        assert_eq!(
            reconciled_counts(&out.join("v0"))["written"],
            23,
            "seed {seed}"
        );
    }
}

/// A job holding the lock makes a second one stop at once, whatever its options.
#[test]
fn a_second_job_on_a_locked_output_stops_with_exit_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_in(tmp.path());
    let lock = tmp.path().join("out/v0/_shardflow/lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // `flock` (util-linux) holds the lock the way a running job does, for as long as it runs
    let holder = Command::new("flock")
        .args([
            "--exclusive",
            "--no-fork",
            lock.to_str().unwrap(),
            "sleep",
            "30",
        ])
        .spawn()
        .unwrap();
    let mut holder = Guard(holder);
    let started = Instant::now();
    loop {
        let probe = Command::new("flock")
            .args(["--nonblock", "--shared", lock.to_str().unwrap(), "true"])
            .status()
            .unwrap();
        if !probe.success() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "flock never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for extra in [&[][..], &["--resume"][..], &["--append"][..]] {
        let out = shard(tmp.path(), &input, "out", extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains("locked"), "{extra:?}: {err}");
        let files = files_below(&tmp.path().join("out"));
        assert_eq!(files, vec![lock.clone()], "{extra:?}");
    }
    let _ = holder.0.kill();
    let _ = holder.0.wait();
    // once released, the output is usable
    assert_ok(&shard(tmp.path(), &input, "out", &[]));
}

/// Kills the child when dropped (a failing assertion must not leave it running).
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A FIFO among the metadata files or in place of a clip is rejected, not waited for.
#[test]
fn a_fifo_as_metadata_or_clip_is_rejected_not_waited_for() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_in(tmp.path());
    let victim = valid_metas(&input)[0].clone();
    mkfifo(&input.join("metas/v0/zz-fifo.json"));
    let clip = clip_of(&input, &victim);
    std::fs::remove_file(&clip).unwrap();
    mkfifo(&clip);
    let out = shard_bounded(tmp.path(), &input, "a job with FIFOs");
    assert_ok(&out);
    let v0 = tmp.path().join("out/v0");
    let c = reconciled_counts(&v0);
    assert_eq!(c["listed"], 29);
    assert_eq!(c["written"], 22);
    let rejects = rejects(&v0);
    let fifo_meta = rejects
        .iter()
        .find(|r| r.to_string().contains("zz-fifo.json"))
        .expect("the FIFO metadata file is rejected");
    assert_eq!(fifo_meta["reason"], "unreadable_meta", "{fifo_meta}");
    assert!(
        fifo_meta.to_string().contains("not a regular file"),
        "{fifo_meta}"
    );
    let stem = victim.file_stem().unwrap().to_string_lossy().into_owned();
    let fifo_clip = rejects
        .iter()
        .find(|r| r.to_string().contains(&stem))
        .expect("the clip that is a FIFO is rejected");
    assert!(
        fifo_clip.to_string().contains("not a regular file"),
        "{fifo_clip}"
    );
}

/// Symlinks back to the metadata folder list each file once; each link is one reject.
#[test]
fn symlink_loops_in_the_metadata_are_listed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_in(tmp.path());
    let metas = input.join("metas/v0");
    std::os::unix::fs::symlink(".", metas.join("loop-a")).unwrap();
    std::os::unix::fs::symlink(".", metas.join("loop-b")).unwrap();
    let out = shard_bounded(tmp.path(), &input, "a job with symlink loops");
    assert_ok(&out);
    let v0 = tmp.path().join("out/v0");
    let c = reconciled_counts(&v0);
    assert_eq!(c["listed"], 30, "{c}");
    assert_eq!(c["written"], 23, "{c}");
    assert_eq!(c["invalid"], 2, "{c}");
    let rejects = rejects(&v0);
    assert_eq!(rejects.len(), 3, "{rejects:?}");
    for link in ["loop-a", "loop-b"] {
        assert!(
            rejects
                .iter()
                .any(|r| r.to_string().contains(link) && r.to_string().contains("already listed")),
            "{link}: {rejects:?}"
        );
    }
}

/// `--allowed-clip-roots` holds for the real path: a symlink inside the root that leads out
/// of it is rejected; relative roots, input paths and clip locations work.
#[test]
fn allowed_roots_follow_symlinks_and_take_relative_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_in(tmp.path());
    // relative clip locations, resolved against the (relative) input path
    for p in files_below(&input.join("metas/v0")) {
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace(&format!("{SAMPLE_ROOT}/"), "")).unwrap();
    }
    let victim = valid_metas(&input)[0].clone();
    let stem = victim.file_stem().unwrap().to_string_lossy().into_owned();
    let clip = input.join(format!("clips/{stem}.mp4"));
    std::fs::remove_file(&clip).unwrap();
    let outside = tmp.path().join("secret.txt");
    std::fs::write(&outside, b"not a clip: outside the allowed root").unwrap();
    std::os::unix::fs::symlink(&outside, &clip).unwrap();
    let out = shardflow(
        tmp.path(),
        &[
            "shard",
            "--input-clip-path",
            "in",
            "--output-dataset-path",
            "out",
            "--t5-model",
            data("t5-tiny").to_str().unwrap(),
            "--allowed-clip-roots",
            "in/clips",
            "--max-rejected-fraction",
            "1",
        ],
    );
    assert_ok(&out);
    let v0 = tmp.path().join("out/v0");
    let c = reconciled_counts(&v0);
    assert_eq!(c["written"], 22, "{c}");
    assert_eq!(c["rejected"]["clip_outside_allowed_roots"], 1, "{c}");
    let rejects = rejects(&v0);
    let r = rejects
        .iter()
        .find(|r| r["reason"] == "clip_outside_allowed_roots")
        .unwrap();
    assert!(r.to_string().contains(&stem), "{r}");
    // the file outside the root is in no tar
    for tar in files_below(&v0)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/video/"))
    {
        let bytes = std::fs::read(&tar).unwrap();
        assert!(
            !bytes
                .windows(20)
                .any(|w| w == &b"not a clip: outside the allowed root"[..20]),
            "{} holds the file outside the root",
            tar.display()
        );
    }
}

/// Temporary files a killed run left are cleared by `--append` and by `--resume`.
#[test]
fn append_and_resume_clear_leftover_partials() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_in(tmp.path());
    assert_ok(&shard(tmp.path(), &input, "out", &[]));
    let v0 = tmp.path().join("out/v0");
    let bin_part = files_below(&v0)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/video/part_000000/"))
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let done_part = files_below(&v0.join("_shardflow/done"))[0]
        .parent()
        .unwrap()
        .to_path_buf();
    for extra in ["--append", "--resume"] {
        let leftovers = [
            bin_part.join(".000007.tar.4242-0.partial"),
            done_part.join(".000007.json.4242-1.partial"),
        ];
        for l in &leftovers {
            std::fs::write(l, b"left by a killed run").unwrap();
        }
        assert_ok(&shard(tmp.path(), &input, "out", &[extra]));
        assert_eq!(partials(&v0), Vec::<PathBuf>::new(), "{extra}");
    }
    let verify = shardflow(tmp.path(), &["verify", v0.to_str().unwrap()]);
    assert_ok(&verify);
}

/// A caption field no window has (a misspelt `--captioning-algorithm`) is refused before
/// anything is written; `--allow-no-captions` writes the clips without embeddings.
#[test]
fn a_caption_field_no_window_has_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_in(tmp.path());
    let out = shard(
        tmp.path(),
        &input,
        "out",
        &["--captioning-algorithm", "nosuch"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("nosuch_caption") && err.contains("--allow-no-captions"),
        "{err}"
    );
    // not even the lock file or its folders
    assert!(!tmp.path().join("out").exists());

    let out = shard(
        tmp.path(),
        &input,
        "out",
        &["--captioning-algorithm", "nosuch", "--allow-no-captions"],
    );
    assert_ok(&out);
    let c = reconciled_counts(&tmp.path().join("out/v0"));
    assert_eq!(c["windows_embedded"], 0, "{c}");
    assert_eq!(c["written"], 23, "{c}");
}

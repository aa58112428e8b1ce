//! Differential test against the plain-Python oracle (`tests/tools/reference_shard.py`).
//!
//! For several seeds and option sets: generate an unseen dataset with real H.264 clips
//! (`tests/tools/make_dataset.py`, needs ffmpeg), mutate its metadata for edge cases (the Python
//! helper `MUTATE_PY` below), run `shardflow shard` and the oracle with the same options, and
//! require `compare_datasets.py --strict-bytes --check-headers --strict-csv-order` to print OK,
//! plus byte-identical `wdinfo.json` files and `wdinfo_list.csv`.
//!
//! Needs `python3` on PATH with numpy, safetensors and tokenizers (CI puts `.venv/bin` first), and
//! ffmpeg/ffprobe. Extra random seeds:
//! `SHARDFLOW_ORACLE_SEEDS=7,8,9 cargo test --test integration oracle::`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> PathBuf {
    repo().join("tests/tools").join(name)
}

fn tiny_model() -> PathBuf {
    repo().join("tests/data/t5-tiny")
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// The last `n` lines of a command's output.
fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a command; an error carries its exit status and the tails of stdout and stderr.
fn run(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot start {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            tail(&out.stdout, 30),
            tail(&out.stderr, 30)
        ))
    }
}

fn python() -> Command {
    Command::new("python3")
}

/// A generated input dataset and how both implementations must be told where its clips are.
struct Dataset {
    tmp: TempDir,
    dir: PathBuf,
    label: String,
    /// Extra arguments for the oracle (a remap that finds the clip files).
    oracle_args: Vec<String>,
    /// Extra arguments for shardflow.
    shardflow_args: Vec<String>,
    /// Whether `MUTATE_PY` ran (exact tar-size boundary bins exist).
    mutated: bool,
}

/// `make_dataset.py generate --seed SEED GEN_ARGS`, then optionally `MUTATE_PY` with `flags`.
/// `root`: a placeholder `--clip-location-root`, remapped to the real directory in both runs.
fn dataset(seed: u64, gen_args: &[&str], root: Option<&str>, mutate: Option<&[&str]>) -> Dataset {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    let mut label = format!("seed={seed} generate={gen_args:?}");
    let mut cmd = python();
    cmd.arg(tool("make_dataset.py"))
        .arg("generate")
        .arg(&dir)
        .arg("--seed")
        .arg(seed.to_string())
        .args(gen_args);
    if let Some(r) = root {
        cmd.args(["--clip-location-root", r]);
        label += &format!(" clip-root={r}");
    }
    if let Err(e) = run(
        &mut cmd,
        "make_dataset.py generate (needs ffmpeg + ffprobe)",
    ) {
        panic!("[{label}] {e}");
    }
    let (mut oracle_args, mut shardflow_args) = (Vec::new(), Vec::new());
    if let Some(r) = root {
        let remap = format!("{r}={}", s(&dir));
        for v in [&mut oracle_args, &mut shardflow_args] {
            v.push("--remap-clip-location".to_string());
            v.push(remap.clone());
        }
    }
    if let Some(flags) = mutate {
        label += &format!(" mutate={flags:?}");
        let mut cmd = python();
        cmd.arg("-c")
            .arg(MUTATE_PY)
            .arg(&dir)
            .arg(seed.to_string())
            .args(flags);
        if let Err(e) = run(&mut cmd, "metadata mutation") {
            panic!("[{label}] {e}");
        }
        if flags.contains(&"relative") {
            // shardflow resolves relative clip_locations against the input root; the reference
            // opens them relative to its working directory, so the oracle is pointed there.
            oracle_args.push("--remap-clip-location".to_string());
            oracle_args.push(format!("clips/={}/clips/", s(&dir)));
        }
    }
    Dataset {
        tmp,
        dir,
        label,
        oracle_args,
        shardflow_args,
        mutated: mutate.is_some(),
    }
}

/// All `wdinfo.json` paths under `dir`, relative to it, sorted.
fn wdinfos(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            wdinfos(&p, base, out);
        } else if p.file_name().is_some_and(|n| n == "wdinfo.json") {
            out.push(p.strip_prefix(base).unwrap().to_path_buf());
        }
    }
    out.sort();
}

fn data_list_len(version_dir: &Path, bin: &str) -> Option<usize> {
    let text = std::fs::read_to_string(version_dir.join(bin).join("wdinfo.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["data_list"].as_array().map(|a| a.len())
}

/// Runs the oracle and shardflow on `ds` with `model` and `opts`; Ok(summary) or Err(report).
fn check(ds: &Dataset, model: &Path, model_label: &str, opts: &[&str]) -> Result<String, String> {
    let label = format!("{} model={model_label} opts={opts:?}", ds.label);
    let fail = |e: String| format!("[{label}]\n{e}");
    let work = tempfile::tempdir_in(ds.tmp.path()).unwrap();
    let (ref_cwd, sf_cwd) = (work.path().join("oracle"), work.path().join("shardflow"));
    std::fs::create_dir_all(&ref_cwd).unwrap();
    std::fs::create_dir_all(&sf_cwd).unwrap();
    let common = |cmd: &mut Command| {
        cmd.args([
            "--input-clip-path",
            &s(&ds.dir),
            "--output-dataset-path",
            "out",
        ])
        .args(["--annotation-version", "v0", "--t5-model", &s(model)])
        .args(opts);
    };

    let mut oracle = python();
    oracle.arg(tool("reference_shard.py")).current_dir(&ref_cwd);
    common(&mut oracle);
    oracle.args(&ds.oracle_args);
    run(&mut oracle, "reference_shard.py").map_err(fail)?;

    let mut sf = Command::new(env!("CARGO_BIN_EXE_shardflow"));
    sf.arg("shard")
        .current_dir(&sf_cwd)
        .env("SHARDFLOW_LOG", "warn");
    common(&mut sf);
    // rejects are compared with the oracle's, not judged here
    sf.args(["--workers", "2", "--max-rejected-fraction", "1"])
        .args(&ds.shardflow_args);
    run(&mut sf, "shardflow shard").map_err(fail)?;

    let mut cmp = python();
    cmp.arg(tool("compare_datasets.py"))
        .arg(ref_cwd.join("out"))
        .arg(sf_cwd.join("out"))
        .args(["--strict-bytes", "--check-headers", "--strict-csv-order"]);
    let out = cmp
        .output()
        .map_err(|e| fail(format!("cannot run compare_datasets.py: {e}")))?;
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    if !out.status.success() || !last.ends_with(": OK") {
        return Err(fail(format!(
            "compare_datasets.py ORACLE SHARDFLOW did not print OK:\n{}\n{}",
            tail(&out.stdout, 40),
            tail(&out.stderr, 10)
        )));
    }

    // Both were given the same output path, so the summaries must match byte for byte.
    let (rv, sv) = (ref_cwd.join("out/v0"), sf_cwd.join("out/v0"));
    let mut files = Vec::new();
    wdinfos(&rv, &rv, &mut files);
    files.push(PathBuf::from("wdinfo_list.csv"));
    for f in &files {
        let a = std::fs::read(rv.join(f)).unwrap();
        match std::fs::read(sv.join(f)) {
            Ok(b) if a == b => {}
            Ok(b) => {
                return Err(fail(format!(
                    "{} differs:\n--- oracle\n{}\n--- shardflow\n{}",
                    f.display(),
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b)
                )))
            }
            Err(e) => {
                return Err(fail(format!(
                    "{}: missing in shardflow output: {e}",
                    f.display()
                )))
            }
        }
    }

    // The case must exercise what it is meant to.
    if !last.contains(" samples") || last.contains(" 0 samples") {
        return Err(fail(format!("vacuous comparison: {last}")));
    }
    let small_parts = opts
        .windows(2)
        .any(|w| w[0] == "--max-tars-per-part" && w[1].parse::<u32>().unwrap() <= 3);
    if small_parts
        && !files
            .iter()
            .any(|f| data_list_len(&rv, &s(f.parent().unwrap())).unwrap_or(0) > 3)
    {
        return Err(fail(
            "no bin with several parts: the case does not test parts".to_string(),
        ));
    }
    if ds.mutated
        && opts
            .windows(2)
            .any(|w| w == ["--target-tar-size-mb", "0.0625"])
    {
        let pair_sum_eq = data_list_len(&rv, "resolution_1080/aspect_ratio_1_1/frames_0_120");
        let pair_sum_gt = data_list_len(&rv, "resolution_1080/aspect_ratio_4_3/frames_0_120");
        if (pair_sum_eq, pair_sum_gt) != (Some(1), Some(2)) {
            return Err(fail(format!(
                "boundary bins: {pair_sum_eq:?} / {pair_sum_gt:?} tars, expected 1 / 2"
            )));
        }
    }
    Ok(format!("[{label}] {last}"))
}

/// Runs every case and fails with all the failures at once.
fn run_cases(cases: Vec<Result<String, String>>) {
    let mut failures = Vec::new();
    for c in cases {
        match c {
            Ok(msg) => eprintln!("ok {msg}"),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ from the oracle:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

const SMALL_PARTS: &[&str] = &["--target-tar-size-mb", "0.0625", "--max-tars-per-part", "2"];

/// The hand-designed dataset "a": every bin, bin boundaries, windows, captions, nesting, exact
/// 1 MiB tar boundaries, inflated `num_bytes`, with the default, 1 MiB and tiny tar targets.
#[test]
fn oracle_dataset_a() {
    let ds = dataset(11, &["--size", "a"], None, None);
    let model = tiny_model();
    run_cases(vec![
        check(&ds, &model, "t5-tiny", &[]),
        check(
            &ds,
            &model,
            "t5-tiny",
            &["--target-tar-size-mb", "1", "--max-tars-per-part", "3"],
        ),
        check(
            &ds,
            &model,
            "t5-tiny",
            &["--target-tar-size-mb", "0.05", "--max-tars-per-part", "2"],
        ),
    ]);
}

/// Random datasets (multi-window clips) with mutated metadata: long, non-ASCII, astral and
/// Python-whitespace captions, NaN/Infinity and unknown keys, bin boundaries, exact tar-size
/// boundaries, multi-part bins, listing-order traps, relative and remapped clip locations, and
/// another captioning algorithm.
#[test]
fn oracle_random_seeds() {
    let model = tiny_model();
    let random = ["--size", "random", "--count", "40"];
    let mut cases = Vec::new();

    let ds = dataset(101, &random, None, Some(&[]));
    cases.push(check(&ds, &model, "t5-tiny", &[]));
    cases.push(check(&ds, &model, "t5-tiny", SMALL_PARTS));

    let ds = dataset(202, &random, None, Some(&["relative"]));
    cases.push(check(&ds, &model, "t5-tiny", SMALL_PARTS));
    cases.push(check(
        &ds,
        &model,
        "t5-tiny",
        &["--target-tar-size-mb", "0.03", "--max-tars-per-part", "1"],
    ));

    let ds = dataset(
        303,
        &random,
        Some("/cosmos-curate-fixtures/random-303"),
        Some(&["algo=gemma"]),
    );
    let opts = [
        "--captioning-algorithm",
        "gemma",
        "--target-tar-size-mb",
        "0.0625",
        "--max-tars-per-part",
        "2",
    ];
    cases.push(check(&ds, &model, "t5-tiny", &opts));

    let extra = std::env::var("SHARDFLOW_ORACLE_SEEDS").unwrap_or_default();
    for seed in extra.split(',').filter(|x| !x.trim().is_empty()) {
        let seed: u64 = seed
            .trim()
            .parse()
            .expect("SHARDFLOW_ORACLE_SEEDS: comma-separated integers");
        let ds = dataset(seed, &random, None, Some(&[]));
        cases.push(check(&ds, &model, "t5-tiny", SMALL_PARTS));
    }
    run_cases(cases);
}

/// A tiny random T5 v1.1 (gated-GELU, untied embeddings) in one safetensors file and sharded
/// into two with an index.
#[test]
fn oracle_gated_gelu_t5() {
    let ds = dataset(404, &["--size", "random", "--count", "40"], None, Some(&[]));
    let (single, sharded) = (
        ds.tmp.path().join("t5-gated"),
        ds.tmp.path().join("t5-gated-sharded"),
    );
    let mut cmd = python();
    cmd.arg("-c")
        .arg(GATED_T5_PY)
        .arg(&single)
        .arg(&sharded)
        .arg(tiny_model().join("tokenizer.json"));
    if let Err(e) = run(&mut cmd, "writing the gated T5 models") {
        panic!("{e}");
    }
    run_cases(vec![
        check(&ds, &single, "gated-gelu (model.safetensors)", SMALL_PARTS),
        check(&ds, &sharded, "gated-gelu (2 shards + index)", &[]),
    ]);
}

/// `python3 -c MUTATE_PY DATASET SEED [relative] [algo=NAME]`: rewrites `metas/v0/` of a
/// `--size random` dataset (40 clips) with edge cases; keeps `json.dumps(indent=4)` formatting.
const MUTATE_PY: &str = r####"
import json, random, sys
from pathlib import Path

# argv: DATASET SEED [flags]; flags: relative | algo=NAME
d = Path(sys.argv[1])
seed = int(sys.argv[2])
flags = sys.argv[3:]
algo = next((f.split("=", 1)[1] for f in flags if f.startswith("algo=")), None)
rng = random.Random(seed * 1000003 + 17)
base = d / "metas" / "v0"
files = sorted(p for p in base.rglob("*") if p.is_file())
metas = [json.loads(p.read_text()) for p in files]
for p in files:
    p.unlink()
order = list(range(len(metas)))
rng.shuffle(order)
pick = iter(order)

WORDS = ("camera pans across street people walk cars drive buildings sky trees wind birds robot arm picks "
         "red cube blue bin kitchen chef vegetables dog beach waves rocks drone mountains river night city").split()


def words(n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


SPECIAL = [
    "A" + " " + words(900) + ".",                                       # > 512 tokens
    "x" * 3000,                                                         # one huge word
    "雪の中を走る犬と、遠くに見える山々。" * 40,                          # CJK, > 512 tokens of <unk>s
    "Emoji 😀 🚗💨 🐕‍🦺 🇩🇪 and astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 🀄 \U0010fffd end.",
    "\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u205f\u3000 Python strips all of these. \t\n\x0b\x0c\r\x1f\x85",
    "\u200b zero width space and BOM are not whitespace \ufeff",
    "",
    "   \n\t  ",
    "Special tokens </s> inside <pad> and <extra_id_5> and <unk> text.",
    "Combining e\u0301 n\u0303, NFKC ﬁ ① ½ Ⅻ ＦＵＬＬ ｗｉｄｔｈ, Ångström.",
    "مرحبا بالعالم שלום עולם नमस्ते दुनिया สวัสดีชาวโลก Ελληνικά Кошка.",
    "Controls \x00 \x01 \x7f \x1b[0m and \\ backslash \"quotes\" / slash.",
    "  Une caméra suit un cycliste à travers la forêt enneigée.  ",
]

# 1. unknown keys with Python-only float spellings, inserted in the middle of the object
EXTRA = {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "neg_zero": -0.0, "big": 1e16,
         "tiny": 1e-05, "third": 1 / 3, "small": 2.5e-300, "denorm": 5e-324, "int_big": 2 ** 64 + 1,
         "neg_int": -7, "nested": [[], {}, [1, 2.0, "x", None, True, False]], "ключ": "значение 😀"}
for _ in range(3):
    i = next(pick)
    m2 = {}
    for k, v in metas[i].items():
        m2[k] = v
        if k == "video_codec":
            m2["extra_fields"] = EXTRA
    m2["zz_after_valid"] = {"a": 1.5, "b": [0.1, 1e100]}
    metas[i] = m2

# 2. bin boundaries (metadata only; bins never look at the mp4)
BOUNDS = [(780, 1200, 10), (782, 1200, 20), (880, 1000, 120), (882, 1000, 121), (1160, 1000, 255),
          (1162, 1000, 256), (1674, 1080, 1023), (1242, 800, 1024), (7200, 720, 0), (7220, 720, 50),
          (1276, 718, 50), (1916, 1078, 100000), (1080, 1920, 121), (2560, 1080, 130)]
for w, h, n in BOUNDS:
    m = metas[next(pick)]
    m["width"], m["height"], m["num_frames"] = w, h, n

# 3. exact tar-size boundaries at 0.0625 MiB = 65536 bytes, in bins of their own
for (w, h), sizes in (((1080, 1080), (40000, 25536)), ((1440, 1080), (40000, 25537))):
    for nb in sizes:
        m = metas[next(pick)]
        m["width"], m["height"], m["num_frames"], m["num_bytes"] = w, h, 60, nb
metas[next(pick)]["num_bytes"] = 10 ** 6             # larger than the small target: a tar of its own
metas[next(pick)]["num_bytes"] = 600 * 1024 * 1024   # larger than the default target

# 4. invalid clips and missing captions (last window only; the reference crashes otherwise):
#    one single-window clip (pickle of []) and one multi-window clip
for _ in range(2):
    metas[next(pick)]["valid"] = False
rest = list(pick)
for want in (lambda n: n == 1, lambda n: n > 1):
    i = next(j for j in rest if want(len(metas[j]["windows"])))
    rest.remove(i)
    metas[i]["windows"][-1].pop("qwen_caption", None)
pick = iter(rest)

# 5. captions: every special caption once, on windows of clips that are written with their captions
wins = [(i, w) for i in rest for w in metas[i]["windows"] if "qwen_caption" in w]
rng.shuffle(wins)
assert len(wins) >= len(SPECIAL), len(wins)
for (i, w), cap in zip(wins, SPECIAL):
    w["qwen_caption"] = cap

# 6. another captioning algorithm
if algo:
    key = f"{algo}_caption"
    for m in metas:
        for w in m["windows"]:
            nw = {}
            for k, v in w.items():
                nw[k] = v
                if k == "qwen_caption":
                    nw[key] = f"{algo} says: " + " ".join(v.split()[:40][::-1])
            w.clear()
            w.update(nw)
    metas[next(pick)]["windows"][-1].pop(key, None)

# 7. relative clip locations
if "relative" in flags:
    for m in metas:
        m["clip_location"] = "clips/" + m["clip_location"].rsplit("/", 1)[1]

# 8. file names: flat, nested, sort-order traps, odd extensions, hidden file, junk
names = {i: f"{m['span_uuid']}.json" for i, m in enumerate(metas)}
a, b, c, e, f, g, h = (next(pick) for _ in range(7))
names[a] = f"{metas[b]['span_uuid'][:8]}/{metas[a]['span_uuid']}.json"   # dir = 8-hex prefix of b ('-' < '/')
names[c] = f"{metas[e]['span_uuid']}/{metas[c]['span_uuid']}.json"       # dir = stem of e ('.' < '/')
names[f] = f"deep/er/{metas[f]['span_uuid']}"                              # no extension
names[g] = f"{metas[g]['span_uuid']}.txt"                                  # every file counts
names[h] = f".{metas[h]['span_uuid']}.json"                                # hidden file
for i, m in enumerate(metas):
    p = base / names[i]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(m, indent=4))
(base / "zz_corrupt.json").write_text('{"span_uuid": "broken", ')
(base / "zz_array.json").write_text("[1, 2, 3]")
print(f"mutated {len(metas)} metas in {d}")
"####;

/// `python3 -c GATED_T5_PY SINGLE_DIR SHARDED_DIR TOKENIZER_JSON`: a tiny random T5 v1.1 encoder.
const GATED_T5_PY: &str = r####"
import json, shutil, sys
from pathlib import Path
import numpy as np
from safetensors.numpy import save_file

# argv: OUT_SINGLE OUT_SHARDED TOKENIZER_JSON
single, sharded, tok = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
d_model, d_kv, heads, d_ff, layers, vocab = 24, 8, 6, 40, 3, 32128
cfg = {"architectures": ["T5EncoderModel"], "d_ff": d_ff, "d_kv": d_kv, "d_model": d_model,
       "decoder_start_token_id": 0, "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1,
       "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": True,
       "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5", "num_decoder_layers": layers,
       "num_heads": heads, "num_layers": layers, "pad_token_id": 0, "relative_attention_max_distance": 128,
       "relative_attention_num_buckets": 32, "tie_word_embeddings": False, "vocab_size": vocab}
rng = np.random.default_rng(20240611)
inner = heads * d_kv


def n(shape, std):
    return (rng.standard_normal(shape) * std).astype(np.float32)


t = {"shared.weight": n((vocab, d_model), 1.0)}
t["encoder.embed_tokens.weight"] = t["shared.weight"].copy()
for i in range(layers):
    p = f"encoder.block.{i}.layer.0."
    t[p + "SelfAttention.q.weight"] = n((inner, d_model), (d_model * d_kv) ** -0.5)
    t[p + "SelfAttention.k.weight"] = n((inner, d_model), d_model ** -0.5)
    t[p + "SelfAttention.v.weight"] = n((inner, d_model), d_model ** -0.5)
    t[p + "SelfAttention.o.weight"] = n((d_model, inner), inner ** -0.5)
    if i == 0:
        t[p + "SelfAttention.relative_attention_bias.weight"] = n((32, heads), 1.0)
    t[p + "layer_norm.weight"] = rng.uniform(0.5, 1.5, d_model).astype(np.float32)
    p = f"encoder.block.{i}.layer.1."
    t[p + "DenseReluDense.wi_0.weight"] = n((d_ff, d_model), d_model ** -0.5)
    t[p + "DenseReluDense.wi_1.weight"] = n((d_ff, d_model), d_model ** -0.5)
    t[p + "DenseReluDense.wo.weight"] = n((d_model, d_ff), d_ff ** -0.5)
    t[p + "layer_norm.weight"] = rng.uniform(0.5, 1.5, d_model).astype(np.float32)
t["encoder.final_layer_norm.weight"] = rng.uniform(0.5, 1.5, d_model).astype(np.float32)
for out in (single, sharded):
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    shutil.copy(tok, out / "tokenizer.json")
save_file(t, str(single / "model.safetensors"), metadata={"format": "pt"})
keys = sorted(t)
parts = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
wmap = {}
for j, ks in enumerate(parts):
    fname = f"model-{j + 1:05d}-of-{len(parts):05d}.safetensors"
    save_file({k: t[k] for k in ks}, str(sharded / fname), metadata={"format": "pt"})
    wmap.update({k: fname for k in ks})
total = sum(v.nbytes for v in t.values())
(sharded / "model.safetensors.index.json").write_text(
    json.dumps({"metadata": {"total_size": total}, "weight_map": wmap}, indent=2))
print("wrote", single, sharded)
"####;

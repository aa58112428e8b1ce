//! The synthetic input of `shardflow bench`: `clips/<uuid>.mp4` of deterministic pseudo-random
//! bytes and `metas/<version>/<uuid>.json` shaped as the split pipeline writes them, spread
//! over several bins, with captions of a realistic length mix.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::ShardError;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// Clips (one metadata file each).
    pub clips: u64,
    /// Caption windows per clip.
    pub windows_per_clip: u32,
    /// Fewest and most words of a caption.
    pub caption_words: (u32, u32),
    /// Mean clip size in bytes (each clip is within ±10 % of it).
    pub clip_bytes: u64,
    /// Seed: the same seed writes the same files.
    pub seed: u64,
    /// `clip_location` is `<root>/clips/<uuid>.mp4`; `None`: `clips/<uuid>.mp4`, relative to
    /// the input (which shardflow resolves against `--input-clip-path`; a tool that reads
    /// the location as is, as the reference does, needs the root).
    pub clip_root: Option<String>,
}

/// What was generated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generated {
    /// Clips written.
    pub clips: u64,
    /// Caption windows, all captioned.
    pub windows: u64,
    /// Bytes of all clips.
    pub clip_bytes: u64,
}

/// A small, stable pseudo-random generator (splitmix64): the same seed gives the same dataset
/// on every platform and version, without a dependency.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// The words captions are made of.
const VOCABULARY: &[&str] = &[
    "the",
    "a",
    "video",
    "shows",
    "car",
    "driving",
    "along",
    "highway",
    "at",
    "night",
    "city",
    "street",
    "with",
    "people",
    "walking",
    "past",
    "shops",
    "camera",
    "pans",
    "slowly",
    "over",
    "green",
    "field",
    "under",
    "blue",
    "sky",
    "dog",
    "runs",
    "across",
    "park",
    "while",
    "children",
    "play",
    "near",
    "fountain",
    "worker",
    "assembles",
    "parts",
    "in",
    "factory",
    "robot",
    "arm",
    "picks",
    "box",
    "from",
    "conveyor",
    "belt",
    "rain",
    "falls",
    "on",
    "wet",
    "pavement",
    "bright",
    "lights",
    "reflect",
    "and",
    "traffic",
    "moves",
    "steadily",
    "toward",
    "bridge",
    "birds",
    "fly",
    "above",
    "river",
    "as",
    "sun",
    "sets",
    "behind",
    "mountains",
];

/// `(width, height)` pairs over the default spec's resolutions and aspect ratios (SPEC §3):
/// 720 and 1080, 16:9, 9:16, 1:1, 4:3 and 3:4.
const SIZES: &[(i64, i64)] = &[
    (1280, 720),
    (1920, 1080),
    (720, 1280),
    (1080, 1080),
    (1440, 1080),
    (960, 1280),
];

/// Frame counts over the default spec's frame bins: 0-120, 121-255, 256-1023, 1024+.
const FRAMES: &[i64] = &[72, 96, 150, 240, 300, 720, 1200];

/// A caption of `min..=max` words: the mean of two uniform draws, so most captions are of
/// middling length and a few are near either bound (as captioners write them).
pub fn caption(rng: &mut SplitMix, min: u32, max: u32) -> String {
    let (min, max) = (u64::from(min.min(max)), u64::from(max.max(min)));
    let words = (rng.range(min, max) + rng.range(min, max)).div_ceil(2);
    let mut out = String::new();
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        let w = VOCABULARY[rng.range(0, VOCABULARY.len() as u64 - 1) as usize];
        if i == 0 {
            let mut c = w.chars();
            out.extend(c.next().map(|c| c.to_ascii_uppercase()));
            out.push_str(c.as_str());
        } else {
            out.push_str(w);
        }
    }
    out.push('.');
    out
}

/// One window of a metadata file.
#[derive(Serialize)]
struct Window {
    start_frame: i64,
    end_frame: i64,
    qwen_caption: String,
}

/// A metadata file, in the split pipeline's key order.
#[derive(Serialize)]
struct Meta {
    span_uuid: String,
    source_video: String,
    duration_span: [f64; 2],
    width_source: i64,
    height_source: i64,
    framerate_source: f64,
    clip_location: String,
    width: i64,
    height: i64,
    framerate: f64,
    num_frames: i64,
    video_codec: &'static str,
    num_bytes: u64,
    aesthetic_score: f64,
    windows: Vec<Window>,
    valid: bool,
}

/// A uuid-shaped id from the generator.
fn uuid(rng: &mut SplitMix) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// Writes `spec`'s dataset into `dir` (`clips/` and `metas/<version>/`); `clip_location`s are
/// relative (`clips/<uuid>.mp4`), resolved against the input as the shard job does.
pub fn generate(spec: &SyntheticSpec, dir: &Path, version: &str) -> Result<Generated, ShardError> {
    let clips_dir = dir.join("clips");
    let metas_dir = dir.join("metas").join(version);
    for d in [&clips_dir, &metas_dir] {
        std::fs::create_dir_all(d).map_err(|e| ShardError::io(d, e))?;
    }
    let mut rng = SplitMix::new(spec.seed);
    let mut out = Generated::default();
    let windows = i64::from(spec.windows_per_clip.max(1));
    for i in 0..spec.clips {
        let span_uuid = uuid(&mut rng);
        let (width, height) = SIZES[i as usize % SIZES.len()];
        let num_frames = FRAMES[rng.range(0, FRAMES.len() as u64 - 1) as usize].max(windows);
        let framerate = if rng.range(0, 1) == 0 { 24.0 } else { 30.0 };
        let spread = spec.clip_bytes / 10;
        let size = rng.range(spec.clip_bytes - spread, spec.clip_bytes + spread);
        let step = num_frames / windows;
        let windows: Vec<Window> = (0..windows)
            .map(|w| Window {
                start_frame: w * step,
                end_frame: if w + 1 == windows {
                    num_frames - 1
                } else {
                    (w + 1) * step - 1
                },
                qwen_caption: caption(&mut rng, spec.caption_words.0, spec.caption_words.1),
            })
            .collect();
        out.windows += windows.len() as u64;
        let start = rng.range(0, 600) as f64;
        let meta = Meta {
            source_video: format!("/raw/bench/video_{:04}.mp4", i / 10),
            duration_span: [start, start + num_frames as f64 / framerate],
            width_source: width * 2,
            height_source: height * 2,
            framerate_source: framerate,
            clip_location: match &spec.clip_root {
                Some(root) => format!("{}/clips/{span_uuid}.mp4", root.trim_end_matches('/')),
                None => format!("clips/{span_uuid}.mp4"),
            },
            width,
            height,
            framerate,
            num_frames,
            video_codec: "h264",
            num_bytes: size,
            aesthetic_score: rng.range(300, 700) as f64 / 100.0,
            windows,
            valid: true,
            span_uuid,
        };
        let clip = clips_dir.join(format!("{}.mp4", meta.span_uuid));
        write_random(&clip, size, &mut rng)?;
        let path = metas_dir.join(format!("{}.json", meta.span_uuid));
        let json = serde_json::to_string_pretty(&meta).expect("metadata serialises");
        std::fs::write(&path, json).map_err(|e| ShardError::io(&path, e))?;
        out.clips += 1;
        out.clip_bytes += size;
    }
    Ok(out)
}

/// Writes `size` pseudo-random bytes to `path`.
fn write_random(path: &Path, size: u64, rng: &mut SplitMix) -> Result<(), ShardError> {
    let io = |e| ShardError::io(path, e);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            let bytes = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        f.write_all(&buf[..n]).map_err(io)?;
        left -= n as u64;
    }
    f.flush().map_err(io)
}

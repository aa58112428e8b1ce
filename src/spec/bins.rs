//! Bins (SPEC §3): which `resolution_*/aspect_ratio_*/<length>_*` folder a clip belongs to.
//!
//! Every spec is a [`BinTable`]: resolution thresholds on the short side, aspect-ratio
//! intervals on `width / height`, length intervals on the frame count or the duration, and a
//! path template. The two built-in specs are the reference's: `frames` (v1.0.0, the default)
//! and `duration` (later versions); a user-defined table comes from the config file's `[bins]`
//! section and is validated there ([`table`]).

pub mod table;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The clip properties a bin depends on, taken from the metadata.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClipDims {
    /// `width` in pixels.
    pub width: i64,
    /// `height` in pixels.
    pub height: i64,
    /// `num_frames`, the clip's total frame count.
    pub num_frames: i64,
    /// `framerate` in frames per second.
    pub framerate: f64,
}

/// Which binning rules to apply.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum BinSpec {
    /// The reference v1.0.0 rules: resolution, aspect ratio and total frame count.
    #[default]
    Frames,
    /// The later reference's rules: duration bins, and `lt_720` for low resolutions.
    Duration,
    /// A user-defined table (validated).
    Custom(Arc<BinTable>),
}

/// What the length bins measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthKind {
    /// `num_frames`.
    NumFrames,
    /// `num_frames / framerate` in seconds; a clip without a positive framerate is in no bin.
    DurationS,
}

/// A resolution bin: clips whose short side is at least `min_short_side` (the first such bin
/// in table order, thresholds descending).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolutionBin {
    /// Smallest short side, in pixels.
    pub min_short_side: i64,
    /// The `{resolution}` in the path.
    pub name: String,
}

/// An aspect-ratio bin: `above < width / height <= up_to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AspectBin {
    /// Exclusive lower bound.
    pub above: f64,
    /// Inclusive upper bound.
    pub up_to: f64,
    /// The `{aspect_ratio}` in the path.
    pub name: String,
}

/// A length bin: `from <= length <= to` (`to` absent: unbounded); the first match wins, so two
/// bins may share a boundary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LengthBin {
    /// Inclusive lower bound (frames or seconds).
    pub from: f64,
    /// Inclusive upper bound; absent for the last, open-ended bin.
    pub to: Option<f64>,
    /// The `{length}` in the path.
    pub name: String,
}

/// A complete bin table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BinTable {
    /// Resolution bins, thresholds descending; a clip below every threshold is in no bin.
    pub resolution: Vec<ResolutionBin>,
    /// Aspect-ratio bins, ascending.
    pub aspect_ratio: Vec<AspectBin>,
    /// What the length bins measure.
    pub length: LengthKind,
    /// Length bins, ascending.
    pub length_bins: Vec<LengthBin>,
    /// Path template with `{resolution}`, `{aspect_ratio}` and `{length}`.
    pub path: String,
}

fn aspects() -> Vec<AspectBin> {
    [
        (0.0, 0.65, "9_16"),
        (0.65, 0.88, "3_4"),
        (0.88, 1.16, "1_1"),
        (1.16, 1.55, "4_3"),
        (1.55, 10.0, "16_9"),
    ]
    .into_iter()
    .map(|(above, up_to, name)| AspectBin {
        above,
        up_to,
        name: name.into(),
    })
    .collect()
}

fn resolutions(names: &[(i64, &str)]) -> Vec<ResolutionBin> {
    names
        .iter()
        .map(|(min, name)| ResolutionBin {
            min_short_side: *min,
            name: name.to_string(),
        })
        .collect()
}

fn lengths(bins: &[(f64, Option<f64>, &str)]) -> Vec<LengthBin> {
    bins.iter()
        .map(|(from, to, name)| LengthBin {
            from: *from,
            to: *to,
            name: name.to_string(),
        })
        .collect()
}

impl BinTable {
    /// The reference v1.0.0 spec (SPEC §3).
    pub fn frames() -> BinTable {
        BinTable {
            resolution: resolutions(&[(1080, "1080"), (720, "720")]),
            aspect_ratio: aspects(),
            length: LengthKind::NumFrames,
            length_bins: lengths(&[
                (0.0, Some(120.0), "0_120"),
                (121.0, Some(255.0), "121_255"),
                (256.0, Some(1023.0), "256_1023"),
                (1024.0, None, "1024_inf"),
            ]),
            path: "resolution_{resolution}/aspect_ratio_{aspect_ratio}/frames_{length}".into(),
        }
    }

    /// The later reference's duration spec (SPEC §3).
    pub fn duration() -> BinTable {
        BinTable {
            resolution: resolutions(&[(1080, "1080"), (720, "720"), (0, "lt_720")]),
            aspect_ratio: aspects(),
            length: LengthKind::DurationS,
            length_bins: lengths(&[
                (5.0, Some(10.0), "5_10"),
                (10.0, Some(30.0), "10_30"),
                (30.0, None, "30_inf"),
            ]),
            path: "resolution_{resolution}/aspect_ratio_{aspect_ratio}/duration_{length}".into(),
        }
    }

    /// The bin path of a clip, or `None` when it falls in no bin.
    pub fn bin_of(&self, d: &ClipDims) -> Option<String> {
        let short = d.width.min(d.height);
        let res = self.resolution.iter().find(|r| short >= r.min_short_side)?;
        // as Python divides two ints
        let r = d.width as f64 / d.height as f64;
        let aspect = self
            .aspect_ratio
            .iter()
            .find(|a| r > a.above && r <= a.up_to)?;
        let length = match self.length {
            LengthKind::NumFrames => d.num_frames as f64,
            LengthKind::DurationS => {
                if d.framerate.is_nan() || d.framerate <= 0.0 {
                    return None;
                }
                d.num_frames as f64 / d.framerate
            }
        };
        let len = self
            .length_bins
            .iter()
            .find(|b| length >= b.from && b.to.is_none_or(|to| length <= to))?;
        Some(
            self.path
                .replace("{resolution}", &res.name)
                .replace("{aspect_ratio}", &aspect.name)
                .replace("{length}", &len.name),
        )
    }
}

impl BinSpec {
    /// The bin path of a clip, e.g. `resolution_720/aspect_ratio_16_9/frames_121_255`, or
    /// `None` when the clip falls in no bin and is dropped. Dimensions must be positive
    /// (the caller rejects other values as bad input).
    pub fn bin_of(&self, d: &ClipDims) -> Option<String> {
        match self {
            BinSpec::Frames => FRAMES.with(|t| t.bin_of(d)),
            BinSpec::Duration => DURATION.with(|t| t.bin_of(d)),
            BinSpec::Custom(t) => t.bin_of(d),
        }
    }

    /// The spec by name: `frames` or `duration`.
    pub fn parse(name: &str) -> Result<BinSpec, String> {
        match name {
            "frames" => Ok(BinSpec::Frames),
            "duration" => Ok(BinSpec::Duration),
            other => Err(format!(
                "unknown bin spec {other:?}: expected frames or duration (or a [bins] table in the config file)"
            )),
        }
    }

    /// The spec's name (`custom` for a table).
    pub fn name(&self) -> &'static str {
        match self {
            BinSpec::Frames => "frames",
            BinSpec::Duration => "duration",
            BinSpec::Custom(_) => "custom",
        }
    }

    /// The table, for fingerprints and reports.
    pub fn table(&self) -> BinTable {
        match self {
            BinSpec::Frames => BinTable::frames(),
            BinSpec::Duration => BinTable::duration(),
            BinSpec::Custom(t) => (**t).clone(),
        }
    }
}

thread_local! {
    static FRAMES: BinTable = BinTable::frames();
    static DURATION: BinTable = BinTable::duration();
}

#[cfg(test)]
mod tests;

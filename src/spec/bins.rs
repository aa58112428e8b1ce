//! Bins (SPEC §3): which `resolution_*/aspect_ratio_*/frames_*` folder a clip belongs to.

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinSpec {
    /// The reference v1.0.0 rules: resolution, aspect ratio and total frame count.
    #[default]
    Frames,
}

/// Aspect-ratio bins as half-open intervals `(lo, hi]` on `width / height`.
const ASPECT_BINS: [(f64, f64, &str); 5] = [
    (0.0, 0.65, "9_16"),
    (0.65, 0.88, "3_4"),
    (0.88, 1.16, "1_1"),
    (1.16, 1.55, "4_3"),
    (1.55, 10.0, "16_9"),
];

/// Frame-count bins as inclusive ranges; `None` is unbounded above.
const FRAME_BINS: [(i64, Option<i64>, &str); 4] = [
    (0, Some(120), "0_120"),
    (121, Some(255), "121_255"),
    (256, Some(1023), "256_1023"),
    (1024, None, "1024_inf"),
];

impl BinSpec {
    /// The bin path of a clip, e.g. `resolution_720/aspect_ratio_16_9/frames_121_255`, or
    /// `None` when the clip falls in no bin and is dropped. Dimensions must be positive
    /// (the caller rejects other values as bad input).
    pub fn bin_of(&self, d: &ClipDims) -> Option<String> {
        match self {
            BinSpec::Frames => {
                let res = resolution(d.width.min(d.height))?;
                let aspect = aspect_ratio(d.width as f64 / d.height as f64)?;
                let frames = FRAME_BINS
                    .iter()
                    .find(|(lo, hi, _)| d.num_frames >= *lo && hi.is_none_or(|h| d.num_frames <= h))
                    .map(|b| b.2)?;
                Some(format!(
                    "resolution_{res}/aspect_ratio_{aspect}/frames_{frames}"
                ))
            }
        }
    }
}

fn resolution(short_side: i64) -> Option<&'static str> {
    if short_side >= 1080 {
        Some("1080")
    } else if short_side >= 720 {
        Some("720")
    } else {
        None
    }
}

fn aspect_ratio(r: f64) -> Option<&'static str> {
    ASPECT_BINS
        .iter()
        .find(|(lo, hi, _)| r > *lo && r <= *hi)
        .map(|b| b.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(w: i64, h: i64, n: i64) -> Option<String> {
        BinSpec::Frames.bin_of(&ClipDims {
            width: w,
            height: h,
            num_frames: n,
            framerate: 24.0,
        })
    }

    #[test]
    fn resolution_thresholds() {
        assert_eq!(
            bin(1920, 1080, 10).unwrap(),
            "resolution_1080/aspect_ratio_16_9/frames_0_120"
        );
        assert_eq!(
            bin(1916, 1078, 10).unwrap(),
            "resolution_720/aspect_ratio_16_9/frames_0_120"
        );
        assert_eq!(
            bin(1280, 720, 10).unwrap(),
            "resolution_720/aspect_ratio_16_9/frames_0_120"
        );
        assert_eq!(bin(1278, 719, 10), None);
        assert_eq!(bin(854, 480, 240), None);
        assert_eq!(
            bin(780, 1200, 40).unwrap(),
            "resolution_720/aspect_ratio_9_16/frames_0_120"
        );
    }

    #[test]
    fn aspect_boundaries_are_half_open() {
        // exactly on an upper bound belongs to the lower bin
        assert_eq!(aspect_ratio(0.65), Some("9_16"));
        assert_eq!(aspect_ratio(0.88), Some("3_4"));
        assert_eq!(aspect_ratio(1.16), Some("1_1"));
        assert_eq!(aspect_ratio(1.55), Some("4_3"));
        assert_eq!(aspect_ratio(10.0), Some("16_9"));
        assert_eq!(aspect_ratio(10.000001), None);
        assert_eq!(aspect_ratio(0.0), None);
        assert_eq!(aspect_ratio(0.6500001), Some("3_4"));
        // integer division as Python does it: 780/1200 == 0.65 exactly in f64
        assert_eq!(
            bin(780, 1200, 1).unwrap(),
            "resolution_720/aspect_ratio_9_16/frames_0_120"
        );
        assert_eq!(
            bin(1160, 1000, 1).unwrap(),
            "resolution_720/aspect_ratio_1_1/frames_0_120"
        );
        assert_eq!(bin(7220, 720, 12), None);
        assert_eq!(
            bin(7200, 720, 12).unwrap(),
            "resolution_720/aspect_ratio_16_9/frames_0_120"
        );
    }

    #[test]
    fn frame_boundaries_are_inclusive() {
        let f = |n| bin(1280, 720, n).map(|b| b.rsplit('/').next().unwrap().to_string());
        assert_eq!(f(0).unwrap(), "frames_0_120");
        assert_eq!(f(120).unwrap(), "frames_0_120");
        assert_eq!(f(121).unwrap(), "frames_121_255");
        assert_eq!(f(255).unwrap(), "frames_121_255");
        assert_eq!(f(256).unwrap(), "frames_256_1023");
        assert_eq!(f(1023).unwrap(), "frames_256_1023");
        assert_eq!(f(1024).unwrap(), "frames_1024_inf");
        assert_eq!(f(i64::MAX).unwrap(), "frames_1024_inf");
        assert_eq!(f(-1), None);
    }

    #[test]
    fn every_aspect_bin_reachable() {
        let cases = [
            (720, 1280, "9_16"),
            (960, 1280, "3_4"),
            (1080, 1080, "1_1"),
            (1440, 1080, "4_3"),
            (1920, 1080, "16_9"),
        ];
        for (w, h, a) in cases {
            let b = bin(w, h, 200).unwrap();
            assert!(b.contains(&format!("aspect_ratio_{a}/")), "{w}x{h} -> {b}");
        }
    }
}

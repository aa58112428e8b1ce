//! The config file's `[bins]` section: a user-defined [`BinTable`], validated so that a typo
//! cannot silently drop or merge clips. Every problem is reported at once with its key path.
//!
//! ```toml
//! [bins]
//! length = "duration_s"          # or "num_frames"
//! path = "resolution_{resolution}/aspect_ratio_{aspect_ratio}/duration_{length}"
//! resolution = [ { min_short_side = 1080, name = "1080" }, { min_short_side = 0, name = "lt_1080" } ]
//! length_bins = [ { from = 0.0, to = 10.0, name = "0_10" }, { from = 10.0, name = "10_inf" } ]
//! # aspect_ratio = [ { above = 0.0, up_to = 1.0, name = "portrait" }, ... ]
//! ```
//!
//! Omitted lists take the reference's (the frames spec's resolutions and aspect ratios; the
//! length bins of the frames or duration spec, after `length`).

use serde::Deserialize;

use super::{AspectBin, BinTable, LengthBin, LengthKind, ResolutionBin};

/// The `[bins]` section as written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinsFile {
    /// What the length bins measure: `num_frames` (default) or `duration_s`
    /// (`num_frames / framerate`; clips without a positive framerate are in no bin).
    pub length: Option<LengthKind>,
    /// Path template using `{resolution}`, `{aspect_ratio}` and `{length}` once each (default:
    /// `resolution_{resolution}/aspect_ratio_{aspect_ratio}/frames_{length}`, `duration_`
    /// for durations).
    pub path: Option<String>,
    /// Accept gaps between consecutive intervals; clips in a gap are in no bin and counted as
    /// dropped (default false: a gap is an error).
    pub allow_gaps: Option<bool>,
    /// Resolution bins, thresholds strictly descending; a short side under the last
    /// threshold is in no bin.
    pub resolution: Option<Vec<ResolutionBin>>,
    /// Aspect-ratio bins `(above, up_to]`, ascending.
    pub aspect_ratio: Option<Vec<AspectBin>>,
    /// Length bins `[from, to]`, ascending; consecutive bins may share a boundary (the first
    /// wins); only the last may omit `to`.
    pub length_bins: Option<Vec<LengthBin>>,
}

impl BinsFile {
    /// The validated table, or every problem found.
    pub fn resolve(self) -> Result<BinTable, Vec<String>> {
        let length = self.length.unwrap_or(LengthKind::NumFrames);
        let base = match length {
            LengthKind::NumFrames => BinTable::frames(),
            LengthKind::DurationS => BinTable::duration(),
        };
        let table = BinTable {
            resolution: self.resolution.unwrap_or(BinTable::frames().resolution),
            aspect_ratio: self.aspect_ratio.unwrap_or(base.aspect_ratio),
            length,
            length_bins: self.length_bins.unwrap_or(base.length_bins),
            path: self.path.unwrap_or(base.path),
        };
        let errors = validate(&table, self.allow_gaps.unwrap_or(false));
        if errors.is_empty() {
            Ok(table)
        } else {
            Err(errors)
        }
    }
}

/// A name must be one path component of plain characters.
fn check_name(errors: &mut Vec<String>, key: &str, name: &str) {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok {
        errors.push(format!(
            "{key}.name: {name:?} must be non-empty and hold only letters, digits, '_', '-' and '.'"
        ));
    }
}

fn validate(t: &BinTable, allow_gaps: bool) -> Vec<String> {
    let mut errors = Vec::new();
    if t.resolution.is_empty() {
        errors.push("bins.resolution: at least one bin is needed".into());
    }
    for (i, r) in t.resolution.iter().enumerate() {
        let key = format!("bins.resolution[{i}]");
        check_name(&mut errors, &key, &r.name);
        if r.min_short_side < 0 {
            errors.push(format!(
                "{key}.min_short_side: {} is negative",
                r.min_short_side
            ));
        }
        if i > 0 && r.min_short_side >= t.resolution[i - 1].min_short_side {
            errors.push(format!(
                "{key}.min_short_side: {} must be below the previous bin's {} (thresholds descend; the first match wins)",
                r.min_short_side,
                t.resolution[i - 1].min_short_side
            ));
        }
    }
    if t.aspect_ratio.is_empty() {
        errors.push("bins.aspect_ratio: at least one bin is needed".into());
    }
    for (i, a) in t.aspect_ratio.iter().enumerate() {
        let key = format!("bins.aspect_ratio[{i}]");
        check_name(&mut errors, &key, &a.name);
        if !(a.above >= 0.0 && a.above < a.up_to && a.up_to.is_finite()) {
            errors.push(format!(
                "{key}: (above {}, up_to {}] must satisfy 0 <= above < up_to",
                a.above, a.up_to
            ));
        }
        if i > 0 {
            let prev = &t.aspect_ratio[i - 1];
            if a.above < prev.up_to {
                errors.push(format!(
                    "{key}.above: {} overlaps the previous bin, which ends at {}",
                    a.above, prev.up_to
                ));
            } else if a.above > prev.up_to && !allow_gaps {
                errors.push(format!(
                    "{key}.above: {} leaves a gap after the previous bin, which ends at {} (set bins.allow_gaps = true if intended)",
                    a.above, prev.up_to
                ));
            }
        }
    }
    if t.length_bins.is_empty() {
        errors.push("bins.length_bins: at least one bin is needed".into());
    }
    // whole frames: [0,120] then [121,255] leave no gap
    let step = match t.length {
        LengthKind::NumFrames => 1.0,
        LengthKind::DurationS => 0.0,
    };
    for (i, b) in t.length_bins.iter().enumerate() {
        let key = format!("bins.length_bins[{i}]");
        check_name(&mut errors, &key, &b.name);
        let to_ok = b.to.is_none_or(|to| to >= b.from && to.is_finite());
        if !(b.from >= 0.0 && b.from.is_finite() && to_ok) {
            errors.push(format!(
                "{key}: [from {}, to {}] must satisfy 0 <= from <= to",
                b.from,
                b.to.map_or("unbounded".into(), |t| t.to_string())
            ));
        }
        if i > 0 {
            let prev = &t.length_bins[i - 1];
            match prev.to {
                None => errors.push(format!(
                    "{key}: follows an unbounded bin ({}), so no clip can reach it",
                    prev.name
                )),
                Some(end) if b.from < end => errors.push(format!(
                    "{key}.from: {} overlaps the previous bin, which ends at {end}",
                    b.from
                )),
                Some(end) if b.from > end + step && !allow_gaps => errors.push(format!(
                    "{key}.from: {} leaves a gap after the previous bin, which ends at {end} (set bins.allow_gaps = true if intended)",
                    b.from
                )),
                _ => {}
            }
        }
    }
    // a name used twice would merge two bins into one folder
    for (list, names) in [
        (
            "resolution",
            t.resolution.iter().map(|r| &r.name).collect::<Vec<_>>(),
        ),
        (
            "aspect_ratio",
            t.aspect_ratio.iter().map(|a| &a.name).collect(),
        ),
        (
            "length_bins",
            t.length_bins.iter().map(|b| &b.name).collect(),
        ),
    ] {
        let mut seen = std::collections::HashSet::new();
        for (i, n) in names.iter().enumerate() {
            if !seen.insert(*n) {
                errors.push(format!("bins.{list}[{i}].name: {n:?} is used twice"));
            }
        }
    }
    if t.length == LengthKind::NumFrames {
        for (i, b) in t.length_bins.iter().enumerate() {
            let whole = |x: f64| x.fract() == 0.0;
            if !whole(b.from) || !b.to.is_none_or(whole) {
                errors.push(format!(
                    "bins.length_bins[{i}]: frame counts are whole numbers; use whole bounds"
                ));
            }
        }
    }
    for p in ["{resolution}", "{aspect_ratio}", "{length}"] {
        if t.path.matches(p).count() != 1 {
            errors.push(format!("bins.path: {:?} must use {p} exactly once", t.path));
        }
    }
    let rest = t
        .path
        .replace("{resolution}", "")
        .replace("{aspect_ratio}", "")
        .replace("{length}", "");
    let safe = !t.path.starts_with('/')
        && !t.path.ends_with('/')
        && !t.path.split('/').any(|c| c.is_empty() || c == "..")
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if !safe {
        errors.push(format!(
            "bins.path: {:?} must be a relative path of plain characters, without empty or '..' components",
            t.path
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BinTable, Vec<String>> {
        #[derive(Deserialize)]
        struct F {
            bins: BinsFile,
        }
        let f: F = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        f.bins.resolve()
    }

    #[test]
    fn built_in_tables_validate() {
        assert!(validate(&BinTable::frames(), false).is_empty());
        assert!(validate(&BinTable::duration(), false).is_empty());
    }

    #[test]
    fn defaults_fill_what_is_omitted() {
        let t = parse("[bins]\nlength = \"duration_s\"\n").unwrap();
        assert_eq!(
            t,
            BinTable {
                resolution: BinTable::frames().resolution,
                ..BinTable::duration()
            }
        );
        assert_eq!(parse("[bins]\n").unwrap(), BinTable::frames());
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let errs = parse(
            r#"[bins]
length = "duration_s"
path = "res_{resolution}/x_{length}/../{length}"
resolution = [ { min_short_side = 720, name = "720" }, { min_short_side = 1080, name = "a/b" } ]
aspect_ratio = [ { above = 0.0, up_to = 1.0, name = "p" }, { above = 1.2, up_to = 3.0, name = "l" }, { above = 2.0, up_to = 4.0, name = "l" } ]
length_bins = [ { from = 0.0, name = "open" }, { from = 5.0, to = 1.0, name = "bad" } ]
"#,
        )
        .unwrap_err();
        let all = errs.join("\n");
        for want in [
            "bins.resolution[1].min_short_side",
            "bins.resolution[1].name",
            "bins.aspect_ratio[1].above: 1.2 leaves a gap",
            "bins.aspect_ratio[2].above: 2 overlaps",
            "bins.length_bins[1]: [from 5, to 1]",
            "bins.length_bins[1]: follows an unbounded bin",
            "bins.path: \"res_{resolution}/x_{length}/../{length}\" must use {aspect_ratio} exactly once",
            "bins.aspect_ratio[2].name",
            "must use {length} exactly once",
            "without empty or '..' components",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }

    #[test]
    fn gaps_are_accepted_when_asked_and_frames_are_whole() {
        let gap = r#"[bins]
length_bins = [ { from = 0.0, to = 100.0, name = "short" }, { from = 200.0, name = "long" } ]
"#;
        assert!(parse(gap).unwrap_err()[0].contains("gap"));
        let t = parse(&gap.replace("[bins]\n", "[bins]\nallow_gaps = true\n")).unwrap();
        let d = |n| super::super::ClipDims {
            width: 1280,
            height: 720,
            num_frames: n,
            framerate: 24.0,
        };
        assert_eq!(t.bin_of(&d(150)), None);
        assert_eq!(
            t.bin_of(&d(200)).unwrap(),
            "resolution_720/aspect_ratio_16_9/frames_long"
        );
        // [0,100] then [101,..] is contiguous for whole frames
        let whole = r#"[bins]
length_bins = [ { from = 0.0, to = 100.0, name = "a" }, { from = 101.0, name = "b" } ]
"#;
        assert!(parse(whole).is_ok());
        // fractional frame bounds would leave whole frame counts in no bin
        let frac = whole.replace("100.0", "100.5").replace("101.0", "101.4");
        assert!(parse(&frac).unwrap_err()[0].contains("whole bounds"));
    }
}

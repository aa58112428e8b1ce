//! Checks of the cosmos-predict2.5 layout's members (see [`crate::formats::predict25`]): a
//! `.json` with `t2w_windows` must agree with its own `windows` and `num_frames`, and its
//! `.pickle` must hold one dict per window, `{}` exactly where the window has no caption.

use crate::formats::predict25::{CAPTION_KEY, EMBEDDING_KEY, NB_FRAMES_KEY, WINDOWS_KEY};
use crate::formats::pyjson::PyValue;

/// What verification keeps of a cosmos-predict2.5 `.json` member.
pub(super) struct TrainerMeta {
    /// What is wrong with `nb_frames` and `t2w_windows`.
    pub(super) problems: Vec<String>,
    /// Per `t2w_windows` entry, whether it has a caption.
    pub(super) captioned: Vec<bool>,
}

/// The trainer's keys of `json` checked against the rest of it, or `None` when it has
/// neither (a reference-layout member). `field` is `<algorithm>_caption`.
pub(super) fn trainer_meta(json: &PyValue, field: &str) -> Option<TrainerMeta> {
    let (nb, t2w) = (json.get(NB_FRAMES_KEY), json.get(WINDOWS_KEY));
    if nb.is_none() && t2w.is_none() {
        return None;
    }
    let mut problems = Vec::new();
    let num_frames = json.get("num_frames").and_then(PyValue::as_i64);
    match nb.and_then(PyValue::as_i64) {
        Some(n) if Some(n) == num_frames => {}
        _ => problems.push(format!(
            "{NB_FRAMES_KEY} {} is not num_frames {}",
            nb.map_or("missing".into(), |v| format!("{v:?}")),
            num_frames.map_or("missing".into(), |n| n.to_string())
        )),
    }
    let windows = json
        .get("windows")
        .and_then(PyValue::as_array)
        .unwrap_or_default();
    let Some(t2w) = t2w.and_then(PyValue::as_array) else {
        problems.push(format!("{WINDOWS_KEY} is missing or not a list"));
        return Some(TrainerMeta {
            problems,
            captioned: vec![],
        });
    };
    if t2w.len() != windows.len() {
        problems.push(format!(
            "{} {WINDOWS_KEY} for {} windows",
            t2w.len(),
            windows.len()
        ));
    }
    let mut captioned = Vec::with_capacity(t2w.len());
    for (i, (t, w)) in t2w.iter().zip(windows).enumerate() {
        let at = |m: String| format!("{WINDOWS_KEY}[{i}]: {m}");
        let Some(entries) = t.as_object() else {
            problems.push(at("not an object".into()));
            captioned.push(false);
            continue;
        };
        // the trainer drops a sample whose window holds any other key
        for (k, _) in entries {
            if !["start_frame", "end_frame", CAPTION_KEY].contains(&k.as_str()) {
                problems.push(at(format!("key {k:?} is not one the trainer accepts")));
            }
        }
        let frame = |v: &PyValue, k: &str| v.get(k).and_then(PyValue::as_i64);
        if frame(t, "start_frame") != frame(w, "start_frame") {
            problems.push(at("start_frame differs from the window's".into()));
        }
        if frame(t, "end_frame") != frame(w, "end_frame").map(|e| e + 1) {
            problems.push(at(
                "end_frame is not the window's end_frame + 1 (exclusive)".into(),
            ));
        }
        if let Some(end) = frame(t, "end_frame") {
            if num_frames.is_some_and(|n| end > n) {
                problems.push(at(format!("end_frame {end} is past the clip's frames")));
            }
        }
        let caption = t.get(CAPTION_KEY);
        match (caption, w.get(field)) {
            (Some(PyValue::Str(a)), Some(PyValue::Str(b))) if a == b => {}
            (None, None) => {}
            _ => problems.push(at(format!("{CAPTION_KEY} is not the window's {field}"))),
        }
        captioned.push(caption.is_some());
    }
    Some(TrainerMeta {
        problems,
        captioned,
    })
}

/// What is wrong with a `.pickle` member of per-window dicts (each dict's keys, in order)
/// for windows captioned as `captioned`.
pub(super) fn check_dicts(dicts: &[Vec<String>], captioned: &[bool]) -> Vec<String> {
    let mut problems = Vec::new();
    if dicts.len() != captioned.len() {
        problems.push(format!(
            "{} dicts for {} windows (one per window, indexed by window)",
            dicts.len(),
            captioned.len()
        ));
    }
    for (i, (keys, &c)) in dicts.iter().zip(captioned).enumerate() {
        let want: &[&str] = if c { &[EMBEDDING_KEY] } else { &[] };
        if keys.iter().map(String::as_str).ne(want.iter().copied()) {
            problems.push(format!(
                "[{i}]: keys {keys:?}, expected {want:?} (window {})",
                if c { "captioned" } else { "without a caption" }
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::pyjson::parse;

    #[test]
    fn reference_metadata_is_not_checked() {
        let json = parse(br#"{"num_frames": 3, "windows": []}"#).unwrap();
        assert!(trainer_meta(&json, "qwen_caption").is_none());
    }

    #[test]
    fn agreeing_keys_pass_and_each_disagreement_is_named() {
        let good = br#"{"num_frames": 10, "windows": [{"start_frame": 0, "end_frame": 4, "qwen_caption": "a"}, {"start_frame": 5, "end_frame": 9}], "nb_frames": 10, "t2w_windows": [{"start_frame": 0, "end_frame": 5, "qwen2p5_7b_caption": "a"}, {"start_frame": 5, "end_frame": 10}]}"#;
        let m = trainer_meta(&parse(good).unwrap(), "qwen_caption").unwrap();
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert_eq!(m.captioned, [true, false]);
        let text = std::str::from_utf8(good).unwrap();
        for (bad, want) in [
            (
                text.replace("\"nb_frames\": 10", "\"nb_frames\": 9"),
                "nb_frames",
            ),
            (
                text.replace("\"end_frame\": 5, \"q", "\"end_frame\": 4, \"q"),
                "exclusive",
            ),
            (
                text.replace(
                    "\"qwen2p5_7b_caption\": \"a\"",
                    "\"qwen2p5_7b_caption\": \"b\"",
                ),
                "is not the window's",
            ),
            (
                text.replace("\"end_frame\": 10}", "\"end_frame\": 10, \"x\": 1}"),
                "\"x\"",
            ),
            (
                text.replace(", {\"start_frame\": 5, \"end_frame\": 10}]", "]"),
                "1 t2w_windows for 2",
            ),
        ] {
            let m = trainer_meta(&parse(bad.as_bytes()).unwrap(), "qwen_caption").unwrap();
            assert!(
                m.problems.iter().any(|p| p.contains(want)),
                "{want}: {:?}",
                m.problems
            );
        }
    }

    #[test]
    fn dicts_must_follow_the_captions() {
        let k = || vec![EMBEDDING_KEY.to_string()];
        assert!(check_dicts(&[k(), vec![]], &[true, false]).is_empty());
        assert!(!check_dicts(&[k(), k()], &[true, false]).is_empty());
        assert!(!check_dicts(&[vec![]], &[true]).is_empty());
        assert!(check_dicts(&[k()], &[true, false])[0].contains("1 dicts for 2"));
    }
}

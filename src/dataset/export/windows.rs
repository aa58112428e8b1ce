//! Which windows of a clip become entries of a cosmos-predict2 directory dataset, and under
//! which names: the pure part of [`super::export`].

use crate::formats::pyjson::PyValue;
use crate::text::python_strip;

/// One window to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `<span_uuid>_<window index>`: the file stem of its three files.
    pub id: String,
    /// The window's index in the clip's `windows`.
    pub window: usize,
    /// First frame.
    pub start: u64,
    /// Last frame, inclusive (as the metadata stores it).
    pub end: u64,
    /// The caption, `.strip()`-ed as the embedder saw it.
    pub caption: String,
    /// Its embedding's index among the clip's embedded arrays (the captioned windows, in
    /// window order).
    pub embedding: usize,
    /// The window is the whole clip: its mp4 is copied, not cut.
    pub whole: bool,
}

impl Entry {
    /// Frames in the window.
    pub fn frames(&self) -> u64 {
        self.end - self.start + 1
    }

    /// The entry's three files, relative to the export directory: video, embedding, prompt.
    pub fn files(&self) -> [String; 3] {
        [
            format!("videos/{}.mp4", self.id),
            format!("t5_xxl/{}.pickle", self.id),
            format!("metas/{}.txt", self.id),
        ]
    }
}

/// A clip's windows, sorted out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClipPlan {
    /// The windows to export, in window order.
    pub entries: Vec<Entry>,
    /// Windows without a caption (never embedded).
    pub uncaptioned: u64,
    /// Captioned windows shorter than the minimum.
    pub too_short: u64,
}

/// The id of window `window` of clip `span_uuid`; `None` when the clip id cannot name a
/// file (empty, hidden, or holding a path separator).
pub fn entry_id(span_uuid: &str, window: usize) -> Option<String> {
    let bad =
        span_uuid.is_empty() || span_uuid.starts_with('.') || span_uuid.contains(['/', '\\', '\0']);
    (!bad).then(|| format!("{span_uuid}_{window}"))
}

/// Sorts out the windows of the clip metadata `meta` (its sample key is `key`, used when it
/// has no `span_uuid`): a window is captioned when it has a string under `caption_field`
/// (`<algorithm>_caption`), as the embedder decides; captioned windows of at least
/// `min_frames` frames are exported. The error says what in the metadata is unusable.
pub fn plan_clip(
    meta: &PyValue,
    key: &str,
    caption_field: &str,
    min_frames: u64,
) -> Result<ClipPlan, String> {
    let span_uuid = match meta.get("span_uuid") {
        Some(PyValue::Str(s)) => s.as_str(),
        _ => key,
    };
    let num_frames = meta
        .get("num_frames")
        .and_then(PyValue::as_i64)
        .ok_or("key \"num_frames\" is not an integer")?;
    let windows = meta
        .get("windows")
        .and_then(PyValue::as_array)
        .ok_or("key \"windows\" is not a list")?;
    let mut plan = ClipPlan::default();
    let mut embedding = 0;
    for (i, w) in windows.iter().enumerate() {
        let Some(PyValue::Str(caption)) = w.get(caption_field) else {
            plan.uncaptioned += 1;
            continue;
        };
        let this = embedding;
        embedding += 1;
        let frame = |k: &str| {
            w.get(k)
                .and_then(PyValue::as_i64)
                .ok_or_else(|| format!("windows[{i}]: key \"{k}\" is missing or not an integer"))
        };
        let (start, end) = (frame("start_frame")?, frame("end_frame")?);
        if start < 0 || end < start {
            return Err(format!(
                "windows[{i}]: frames {start}..={end} are not a range of frames"
            ));
        }
        let whole = start == 0 && end + 1 >= num_frames;
        if !whole && end >= num_frames {
            return Err(format!(
                "windows[{i}]: end_frame {end} is past the clip's last frame ({})",
                num_frames - 1
            ));
        }
        let (start, end) = (start as u64, end as u64);
        if end - start + 1 < min_frames {
            plan.too_short += 1;
            continue;
        }
        let id = entry_id(span_uuid, i)
            .ok_or_else(|| format!("span_uuid {span_uuid:?} cannot name a file"))?;
        plan.entries.push(Entry {
            id,
            window: i,
            start,
            end,
            caption: python_strip(caption).to_string(),
            embedding: this,
            whole,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::pyjson::parse;

    #[test]
    fn ids_name_the_clip_and_window_and_refuse_paths() {
        assert_eq!(entry_id("abc-1", 3).as_deref(), Some("abc-1_3"));
        for bad in ["", ".hidden", "a/b", "a\\b", "..", "a\0"] {
            assert_eq!(entry_id(bad, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn captioned_long_enough_windows_are_exported_with_their_embedding_index() {
        let meta = parse(
            br#"{"span_uuid": "u", "num_frames": 720, "windows": [
                {"start_frame": 0, "end_frame": 255, "qwen_caption": "  a cat \n"},
                {"start_frame": 256, "end_frame": 511},
                {"start_frame": 512, "end_frame": 520, "qwen_caption": "short"},
                {"start_frame": 521, "end_frame": 719, "qwen_caption": "", "vila_caption": "v"}]}"#,
        )
        .unwrap();
        let plan = plan_clip(&meta, "key", "qwen_caption", 10).unwrap();
        assert_eq!((plan.uncaptioned, plan.too_short), (1, 1));
        let got: Vec<_> = plan
            .entries
            .iter()
            .map(|e| {
                (
                    e.id.as_str(),
                    e.start,
                    e.end,
                    e.caption.as_str(),
                    e.embedding,
                    e.whole,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("u_0", 0, 255, "a cat", 0, false),
                // the short window is still embedded: it takes index 1
                ("u_3", 521, 719, "", 2, false)
            ]
        );
        assert_eq!(plan.entries[0].frames(), 256);
        assert_eq!(
            plan.entries[1].files(),
            ["videos/u_3.mp4", "t5_xxl/u_3.pickle", "metas/u_3.txt"]
        );
        // another algorithm's captions, and no minimum
        let plan = plan_clip(&meta, "key", "vila_caption", 0).unwrap();
        assert_eq!(plan.uncaptioned, 3);
        assert_eq!(plan.entries[0].id, "u_3");
    }

    #[test]
    fn a_window_of_the_whole_clip_is_whole_and_bad_frames_are_errors() {
        let whole = parse(br#"{"num_frames": 40, "windows": [{"start_frame": 0, "end_frame": 39, "qwen_caption": "x"}]}"#).unwrap();
        let plan = plan_clip(&whole, "k", "qwen_caption", 0).unwrap();
        assert!(plan.entries[0].whole);
        // no span_uuid: the sample key names it
        assert_eq!(plan.entries[0].id, "k_0");
        for (bad, says) in [
            (&br#"{"num_frames": 40, "windows": [{"start_frame": 1, "end_frame": 40, "qwen_caption": "x"}]}"#[..], "past the clip"),
            (br#"{"num_frames": 40, "windows": [{"start_frame": 5, "end_frame": 4, "qwen_caption": "x"}]}"#, "not a range"),
            (br#"{"num_frames": 40, "windows": [{"end_frame": 4, "qwen_caption": "x"}]}"#, "start_frame"),
            (br#"{"windows": []}"#, "num_frames"),
            (br#"{"num_frames": 4}"#, "windows"),
            (br#"{"span_uuid": "a/b", "num_frames": 4, "windows": [{"start_frame": 0, "end_frame": 3, "qwen_caption": "x"}]}"#, "cannot name"),
        ] {
            let e = plan_clip(&parse(bad).unwrap(), "k", "qwen_caption", 0).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}

//! The members of the cosmos-predict2.5 layout ([`OutputLayout::CosmosPredict25`]): what
//! NVIDIA's cosmos-predict2.5 trainer reads, as its code reads it:
//!
//! - `VideoParsing` (`datasets/augmentors/video_parsing.py`) takes `metas["nb_frames"]` and
//!   `metas["framerate"]`, and picks one window of `metas["t2w_windows"]` by index (never the
//!   last when there are several), decoding frames `range(start_frame, end_frame)`: the end
//!   is exclusive.
//! - `TextTransformForVideo` (`text_transforms_for_video.py`) takes that window of
//!   `t2w_windows` again, and drops the sample when the window holds a key other than
//!   `start_frame`, `end_frame` and `qwen2p5_7b_caption` (or its `_short`, `_medium`,
//!   `_user` variants), when it has no caption, or when the caption is empty. Then it reads
//!   the embedding as `pickle[chunk_index]["t2w_qwen2p5_7b"]`: one dict per window, indexed
//!   by window number.
//!
//! So every window of the input is a window here, with the same index; a window without a
//! caption keeps its frames but no caption key, and its embedding is the placeholder `{}`.
//! The trainer never reads a placeholder: it drops the sample at the missing caption first
//! (and would drop it at the missing dict key too), so a sample never trains on a made-up
//! embedding. The reference's own metadata keys all stay, in their order.

use crate::formats::npy_pickle::{write_array_list, write_window_dicts, F16Array, F16ArrayRef};
use crate::formats::pyjson::PyValue;
use crate::layout::OutputLayout;

/// The caption key of a `t2w_windows` entry, which the trainer's `t2w_qwen2p5_7b` caption
/// type reads whatever model wrote the caption.
pub const CAPTION_KEY: &str = "qwen2p5_7b_caption";

/// The key of a window's embedding in its dict.
pub const EMBEDDING_KEY: &str = "t2w_qwen2p5_7b";

/// The metadata key holding the windows the trainer reads.
pub const WINDOWS_KEY: &str = "t2w_windows";

/// The metadata key holding the clip's frame count.
pub const NB_FRAMES_KEY: &str = "nb_frames";

/// Adds `nb_frames` (the clip's `num_frames`) and `t2w_windows` to the metadata object
/// `json`, in place, keeping every other key: one entry per entry of `windows`, with its
/// `start_frame`, its `end_frame` plus one (the input's is inclusive, the trainer's
/// exclusive) and, when the window has a string under `caption_field`
/// (`<algorithm>_caption`), that caption as [`CAPTION_KEY`]. The error names what is missing
/// or mistyped, or the window whose frames are not within the clip's `num_frames`.
pub fn add_trainer_keys(json: &mut PyValue, caption_field: &str) -> Result<(), String> {
    let num_frames = json
        .get("num_frames")
        .and_then(PyValue::as_i64)
        .ok_or("key \"num_frames\" is not an integer")?;
    let windows = json
        .get("windows")
        .and_then(PyValue::as_array)
        .ok_or("key \"windows\" is not a list")?;
    let mut t2w = Vec::with_capacity(windows.len());
    for (i, w) in windows.iter().enumerate() {
        let frame = |key: &str| {
            w.get(key)
                .and_then(PyValue::as_i64)
                .ok_or_else(|| format!("windows[{i}]: key \"{key}\" is missing or not an integer"))
        };
        let (start, end) = (frame("start_frame")?, frame("end_frame")?);
        if end < start || start < 0 {
            return Err(format!(
                "windows[{i}]: frames {start}..={end} are not a range of frames"
            ));
        }
        // the trainer decodes every frame of a window it draws: one past the clip fails it
        if end >= num_frames {
            return Err(format!(
                "windows[{i}]: end_frame {end} is past the clip's last frame ({})",
                num_frames - 1
            ));
        }
        let mut entry = vec![
            ("start_frame".to_string(), PyValue::int(start)),
            ("end_frame".to_string(), PyValue::int(end + 1)),
        ];
        if let Some(PyValue::Str(c)) = w.get(caption_field) {
            entry.push((CAPTION_KEY.to_string(), PyValue::Str(c.clone())));
        }
        t2w.push(PyValue::Object(entry));
    }
    json.try_set(NB_FRAMES_KEY, PyValue::int(num_frames))
        .map_err(|e| e.to_string())?;
    json.try_set(WINDOWS_KEY, PyValue::Array(t2w))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The `.pickle` member of a sample in `layout`: `arrays` are the captioned windows'
/// embeddings in window order, `captioned` says which windows have a caption (ignored by the
/// reference layout, which stores the arrays alone). Errors when they disagree.
pub fn embedding_member(
    layout: OutputLayout,
    arrays: &[F16Array],
    captioned: &[bool],
) -> Result<Vec<u8>, String> {
    match layout {
        OutputLayout::Reference => Ok(write_array_list(arrays)),
        OutputLayout::CosmosPredict25 => {
            let with = captioned.iter().filter(|c| **c).count();
            if with != arrays.len() {
                return Err(format!(
                    "{} embeddings for {with} captioned windows",
                    arrays.len()
                ));
            }
            let mut next = arrays.iter();
            let windows: Vec<Option<F16ArrayRef>> = captioned
                .iter()
                .map(|&c| {
                    if c {
                        next.next().map(F16Array::view)
                    } else {
                        None
                    }
                })
                .collect();
            Ok(write_window_dicts(EMBEDDING_KEY, &windows))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::npy_pickle::{read_array_list, read_window_arrays, read_window_dicts};
    use crate::formats::pyjson::{dumps, parse};

    #[test]
    fn metadata_gains_the_trainer_keys_and_keeps_the_rest() {
        let mut json = parse(
            br#"{"span_uuid": "a", "num_frames": 240, "windows": [{"start_frame": 0, "end_frame": 119, "qwen_caption": "x", "qwen_lm_enhanced_caption": "y"}, {"start_frame": 120, "end_frame": 239}], "valid": false}"#,
        )
        .unwrap();
        add_trainer_keys(&mut json, "qwen_caption").unwrap();
        assert_eq!(
            dumps(&json),
            r#"{"span_uuid": "a", "num_frames": 240, "windows": [{"start_frame": 0, "end_frame": 119, "qwen_caption": "x", "qwen_lm_enhanced_caption": "y"}, {"start_frame": 120, "end_frame": 239}], "valid": false, "nb_frames": 240, "t2w_windows": [{"start_frame": 0, "end_frame": 120, "qwen2p5_7b_caption": "x"}, {"start_frame": 120, "end_frame": 240}]}"#
        );
        // another captioner's field
        let mut json =
            parse(br#"{"num_frames": 5, "windows": [{"start_frame": 0, "end_frame": 4, "vila_caption": "v"}]}"#)
                .unwrap();
        add_trainer_keys(&mut json, "vila_caption").unwrap();
        assert!(dumps(&json).ends_with(
            r#""t2w_windows": [{"start_frame": 0, "end_frame": 5, "qwen2p5_7b_caption": "v"}]}"#
        ));
    }

    #[test]
    fn bad_windows_are_named() {
        for (text, want) in [
            (&br#"{"windows": []}"#[..], "num_frames"),
            (br#"{"num_frames": 1}"#, "\"windows\""),
            (
                br#"{"num_frames": 1, "windows": [{"start_frame": 0}]}"#,
                "windows[0]: key \"end_frame\"",
            ),
            (
                br#"{"num_frames": 9, "windows": [{"start_frame": 3, "end_frame": 1}]}"#,
                "not a range",
            ),
            (
                br#"{"num_frames": 9, "windows": [{"start_frame": -1, "end_frame": 1}]}"#,
                "not a range",
            ),
            (
                br#"{"num_frames": 9, "windows": [{"start_frame": 0, "end_frame": 9}]}"#,
                "past the clip's last frame (8)",
            ),
        ] {
            let mut json = parse(text).unwrap();
            let e = add_trainer_keys(&mut json, "qwen_caption").unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn one_dict_per_window_with_placeholders() {
        let a = F16Array::from_bits((2, 3), &[1, 2, 3, 4, 5, 6]).unwrap();
        let b = F16Array::from_bits((1, 3), &[7, 8, 9]).unwrap();
        let arrays = [a.clone(), b.clone()];
        let bytes =
            embedding_member(OutputLayout::CosmosPredict25, &arrays, &[true, false, true]).unwrap();
        let dicts = read_window_dicts(&bytes).unwrap();
        assert_eq!(dicts.len(), 3);
        assert_eq!(dicts[0], vec![(EMBEDDING_KEY.to_string(), a.clone())]);
        assert!(dicts[1].is_empty());
        assert_eq!(dicts[2], vec![(EMBEDDING_KEY.to_string(), b.clone())]);
        assert_eq!(read_window_arrays(&bytes).unwrap(), arrays);
        assert!(read_array_list(&bytes).is_err());
        // the reference layout is the plain list
        let plain = embedding_member(OutputLayout::Reference, &arrays, &[]).unwrap();
        assert_eq!(plain, write_array_list(&arrays));
        assert_eq!(read_window_arrays(&plain).unwrap(), arrays);
        assert!(read_window_dicts(&plain).is_err());
        // one window, none
        let one = embedding_member(OutputLayout::CosmosPredict25, &arrays[..1], &[true]).unwrap();
        assert_eq!(read_window_dicts(&one).unwrap().len(), 1);
        let none = embedding_member(OutputLayout::CosmosPredict25, &[], &[false]).unwrap();
        assert_eq!(read_window_dicts(&none).unwrap(), vec![vec![]]);
        assert_eq!(
            embedding_member(OutputLayout::CosmosPredict25, &[], &[]).unwrap(),
            write_array_list::<F16Array>(&[])
        );
        let e = embedding_member(OutputLayout::CosmosPredict25, &arrays, &[true]).unwrap_err();
        assert!(e.contains("2 embeddings for 1"), "{e}");
    }
}

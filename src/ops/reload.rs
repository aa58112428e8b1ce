//! Reading planned clips' metadata again, in full. The planner keeps slim records (no
//! `.json` member, no captions: the bulk of a record), so its memory per clip stays small;
//! the `batch` operator reloads clips a few at a time, just before they are tokenized, so
//! full records exist only for the clips about to be encoded.

use crate::ops::read_meta::MetaReader;
use crate::record::{ListedFile, MetaOutcome, PlannedClip, Reject, RejectKind};

/// Reads planned clips' metadata again and checks it is what was planned.
#[derive(Clone, Debug)]
pub struct Reloader {
    /// A reader that keeps full records and does not check clips again.
    pub reader: MetaReader,
}

impl Reloader {
    /// The clips with their full metadata. A clip whose metadata file changed (or vanished)
    /// since planning is marked [`PlannedClip::gone`]; its writer records the reject in its
    /// place, so the plan's tars still complete and the counts still add up.
    ///
    /// A file the storage failed to serve (an outage after all retries, not a change of the
    /// input) is no reject: the first such failure comes back with the clips, and the caller
    /// stops the job with it, so that `--resume` writes the clip once the storage is back.
    pub fn reload(&self, clips: Vec<PlannedClip>) -> (Vec<PlannedClip>, Option<String>) {
        let files: Vec<ListedFile> = clips
            .iter()
            .map(|c| ListedFile {
                seq: c.meta.seq,
                rel_path: c.meta.rel_path.clone(),
                size: 0,
                error: None,
                failed: false,
            })
            .collect();
        let outcomes = self.reader.read_batch(&files);
        let mut outage = None;
        let clips = clips
            .into_iter()
            .zip(outcomes)
            .map(|(mut c, o)| {
                let failed = matches!(o, MetaOutcome::Failed { .. });
                let why = match o {
                    MetaOutcome::Clip(m) if m.meta_hash == c.meta.meta_hash => {
                        // the clip was checked when planning, not again
                        let (clip_size, clip_stamp) = (c.meta.clip_size, c.meta.clip_stamp);
                        c.meta = m;
                        c.meta.clip_size = clip_size;
                        c.meta.clip_stamp = clip_stamp;
                        return c;
                    }
                    MetaOutcome::Clip(_) => "its content changed".to_string(),
                    MetaOutcome::Invalid { .. } => "it is now marked valid: false".to_string(),
                    MetaOutcome::Reject(r) => r.message,
                    MetaOutcome::Failed { message, .. } => {
                        // the job stops: the clip goes on marked gone, and is never written
                        // nor counted (the failed job writes no tar after this)
                        outage.get_or_insert(message.clone());
                        message
                    }
                };
                if !failed {
                    tracing::error!(
                        "{}: metadata changed while the job ran ({why}); the clip is not written",
                        c.meta.rel_path
                    );
                }
                c.gone = Some(Reject {
                    meta: c.meta.rel_path.clone(),
                    span_uuid: Some(c.meta.span_uuid.clone()),
                    kind: RejectKind::ChangedDuringJob,
                    message: format!("metadata changed while the job ran ({why}); not written"),
                });
                c
            })
            .collect();
        (clips, outage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::BinSpec;
    use crate::storage::{Location, Storage, StorageOptions};

    const META: &str = r#"{"span_uuid": "c1", "clip_location": "c1.mp4", "width": 1280, "height": 720, "framerate": 24.0, "num_frames": 72, "num_bytes": 100, "windows": [{"start_frame": 0, "end_frame": 71, "qwen_caption": "a cat"}], "valid": true}"#;

    fn reader(dir: &std::path::Path, slim: bool) -> MetaReader {
        MetaReader {
            storage: Storage::new(StorageOptions::default()),
            meta_dir: Location::Local(dir.join("metas/v0")),
            input_root: Location::Local(dir.to_path_buf()),
            remaps: vec![],
            caption_field: "qwen_caption".into(),
            bins: BinSpec::Frames,
            layout: crate::layout::OutputLayout::Reference,
            allowed_roots: vec![],
            slim,
            check_clips: slim,
        }
    }

    #[test]
    fn slim_records_reload_in_full_and_changes_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("metas/v0")).unwrap();
        std::fs::write(dir.path().join("c1.mp4"), vec![0u8; 100]).unwrap();
        for name in ["a.json", "b.json", "c.json"] {
            std::fs::write(
                dir.path().join("metas/v0").join(name),
                META.replace("\"c1\"", &format!("\"{}\"", &name[..1])),
            )
            .unwrap();
        }
        let listed = |seq, name: &str| ListedFile {
            seq,
            rel_path: name.into(),
            size: 0,
            error: None,
            failed: false,
        };
        let slim = reader(dir.path(), true).read_batch(&[
            listed(0, "a.json"),
            listed(1, "b.json"),
            listed(2, "c.json"),
        ]);
        let planned: Vec<PlannedClip> = slim
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                let MetaOutcome::Clip(meta) = o else {
                    panic!("{o:?}")
                };
                assert!(meta.json.is_empty() && meta.captions.is_empty(), "slim");
                let mut c = crate::ops::test_support::planned_clip(i as u64, &[], b"");
                c.meta = meta;
                c
            })
            .collect();
        // b changes, c disappears after planning
        std::fs::write(
            dir.path().join("metas/v0/b.json"),
            META.replace("a cat", "a dog"),
        )
        .unwrap();
        std::fs::remove_file(dir.path().join("metas/v0/c.json")).unwrap();
        let (out, outage) = Reloader {
            reader: reader(dir.path(), false),
        }
        .reload(planned);
        assert_eq!(outage, None, "a changed or vanished file is no outage");
        assert_eq!(out[0].gone, None);
        assert_eq!(out[0].meta.captions, [Some("a cat".to_string())]);
        assert!(String::from_utf8(out[0].meta.json.clone())
            .unwrap()
            .starts_with("{\"span_uuid\": \"a\""));
        let b = out[1].gone.as_ref().unwrap();
        assert_eq!(b.kind, RejectKind::ChangedDuringJob);
        assert!(b.message.contains("content changed"), "{b:?}");
        let c = out[2].gone.as_ref().unwrap();
        assert!(c.message.contains("cannot read"), "{c:?}");
    }
}

//! One timely operator per file. Each is an extension trait (or a source function) over a
//! plain struct that holds the logic and is unit-tested without a dataflow.
//!
//! `list → read_meta → plan_stream (or assign_tars) → batch → encode → exchange_by_bin → write_tar → finalize`
//!
//! Each operator gets its worker's [`JobContext`](crate::job::JobContext): the stage clock,
//! the process's [`Milestones`](crate::job::Milestones) (planned, first caption encoded, first
//! tar completed, for the report), the progress counters and the job's
//! [`FailureSignal`](crate::job::FailureSignal) (once it is set, the encoder and writers stop).

pub mod assign_tars;
pub mod batch;
pub mod encode;
pub mod exchange_by_bin;
pub mod finalize;
pub mod list;
pub mod plan_stream;
pub mod read_meta;
pub mod reload;
pub mod write_tar;

/// Records for the operators' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::record::{ClipMeta, PlannedClip, TarId};

    /// Clip `rank` at position `rank` of tar 0 of bin `b`, with these window captions and
    /// `.json` member.
    pub fn planned_clip(rank: u64, captions: &[Option<&str>], json: &[u8]) -> PlannedClip {
        PlannedClip {
            rank,
            tar: TarId {
                bin_order: 0,
                bin: "b".into(),
                part: 0,
                tar: 0,
            },
            index: rank as u32,
            tar_len: 100,
            meta: Box::new(ClipMeta {
                seq: rank,
                rel_path: format!("{rank}.json"),
                span_uuid: format!("u{rank}"),
                bin: Some("b".into()),
                num_bytes: 1,
                clip_path: "c.mp4".into(),
                captions: captions.iter().map(|c| c.map(str::to_string)).collect(),
                json: json.to_vec(),
                warnings: vec![],
                meta_hash: 0,
                ..Default::default()
            }),
            mtime: 1_700_000_000,
            gone: None,
            ..Default::default()
        }
    }
}

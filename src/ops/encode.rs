//! `encode`: runs the text encoder over a batch and builds each clip's `.pickle` and `.json`
//! members (SPEC §4–§6). A `.pickle` with windows reused from an earlier version holds only
//! the arrays encoded here; the tar writer completes it.

use std::sync::Arc;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use crate::error::JobFailure;
use crate::formats::npy_pickle::{self, F16Array};
use crate::formats::predict25;
use crate::job::{JobContext, Milestone};
use crate::layout::OutputLayout;
use crate::metrics::Metrics;
use crate::model::{to_f16, TextEncoder};
use crate::ops::batch::EncodeBatch;
use crate::record::{EmbeddingRef, EncodedSample};

/// Turns batches into samples with one encoder.
#[derive(Clone)]
pub struct SampleEncoder {
    encoder: Arc<dyn TextEncoder>,
    layout: OutputLayout,
}

impl SampleEncoder {
    /// Wraps a loaded encoder (shared: every worker's clone uses the same weights); the
    /// samples are in the reference layout.
    pub fn new(encoder: Arc<dyn TextEncoder>) -> Self {
        SampleEncoder {
            encoder,
            layout: OutputLayout::Reference,
        }
    }

    /// Builds the `.pickle` members in `layout`.
    pub fn with_layout(mut self, layout: OutputLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Encodes every window of the batch in one forward pass and assembles the samples.
    /// Windows marked for reuse are left to the writer ([`EncodedSample::reuse`]); a clip
    /// marked inconsistently is an error (the job fails).
    pub fn encode(&self, batch: EncodeBatch) -> Result<Vec<EncodedSample>, String> {
        let seqs: Vec<&[u32]> = batch
            .ids
            .iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .map(Vec::as_slice)
            .collect();
        let mut outputs = if seqs.is_empty() {
            Vec::new()
        } else {
            self.encoder.encode_batch(&seqs)
        }
        .into_iter();
        let d_model = self.encoder.d_model();
        let mut samples = Vec::with_capacity(batch.clips.len());
        for (clip, ids) in batch.clips.into_iter().zip(batch.ids.iter()) {
            let mut arrays: Vec<F16Array> = Vec::with_capacity(ids.len());
            let mut reuse: Vec<Option<EmbeddingRef>> = vec![None; ids.len()];
            if clip.needs_embeddings() {
                for (i, seq) in ids.iter().enumerate() {
                    if seq.is_empty() {
                        let r = clip.reuse.get(i).and_then(Option::as_ref).ok_or_else(|| {
                            format!(
                                "{}: window {i} has neither ids nor an embedding to reuse",
                                clip.meta.span_uuid
                            )
                        })?;
                        reuse[i] = Some(r.clone());
                        continue;
                    }
                    let rows = outputs.next().expect("one output per sequence");
                    debug_assert_eq!(rows.len(), seq.len() * d_model);
                    arrays.push(
                        F16Array::new((seq.len(), d_model), to_f16(&rows))
                            .expect("encoder returns len × d_model rows"),
                    );
                }
            }
            let reused = reuse.iter().flatten().count() as u32;
            if reused == 0 {
                // the pickle is complete
                reuse.clear();
            }
            let captioned: Vec<bool> = match self.layout {
                OutputLayout::Reference => Vec::new(),
                _ => clip.meta.captions.iter().map(Option::is_some).collect(),
            };
            let pickle = if !clip.needs_embeddings() {
                Vec::new()
            } else if reuse.is_empty() {
                predict25::embedding_member(self.layout, &arrays, &captioned)
                    .map_err(|e| format!("{}: {e}", clip.meta.span_uuid))?
            } else {
                // the arrays encoded now; the writer adds the reused ones and lays them out
                npy_pickle::write_array_list(&arrays)
            };
            samples.push(EncodedSample {
                index: clip.index,
                tar_len: clip.tar_len,
                key: clip.meta.span_uuid.clone(),
                meta_rel_path: clip.meta.rel_path.clone(),
                clip_path: clip.meta.clip_path.clone(),
                json: clip.meta.json.clone(),
                pickle,
                reuse,
                windows_embedded: ids.iter().filter(|s| !s.is_empty()).count() as u32,
                tokens_embedded: ids.iter().map(|s| s.len() as u64).sum(),
                mtime: clip.mtime,
                gone: clip.gone,
                meta_hash: clip.meta.meta_hash,
                clip_size: clip.meta.clip_size,
                clip_stamp: clip.meta.clip_stamp,
                caption_hashes: clip.meta.caption_hashes,
                windows_reused: reused,
                copied: clip.copied,
                tar: clip.tar,
                captioned,
            });
        }
        Ok(samples)
    }
}

/// The `encode` operator.
pub trait Encode<'scope> {
    /// Encodes each batch on the worker that cut it.
    fn encode(
        self,
        encoder: SampleEncoder,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<EncodedSample>>;
}

impl<'scope> Encode<'scope> for Stream<'scope, u64, Vec<EncodeBatch>> {
    fn encode(
        self,
        encoder: SampleEncoder,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<EncodedSample>> {
        let ctx = ctx.clone();
        self.unary(Pipeline, "Encode", move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    // after a fatal error the job cannot complete: the rest is skipped
                    if ctx.failure.is_set() {
                        data.clear();
                        return;
                    }
                    for batch in data.drain(..) {
                        let samples = {
                            let _t = ctx.clock.time("encode");
                            encoder.encode(batch)
                        };
                        match samples {
                            Ok(s) => {
                                // a batch whose windows were all reused encoded nothing
                                if s.iter().any(|s| s.windows_embedded > 0) {
                                    ctx.milestones.reach(Milestone::FirstCaptionEncoded);
                                }
                                let m = &ctx.progress.metrics;
                                let windows = s.iter().map(|s| s.windows_embedded as u64).sum();
                                Metrics::add(&m.windows_encoded, windows);
                                Metrics::add(
                                    &m.tokens_encoded,
                                    s.iter().map(|s| s.tokens_embedded).sum(),
                                );
                                output.session(&cap).give_iterator(s.into_iter())
                            }
                            Err(e) => {
                                tracing::error!("{e}");
                                ctx.failure.fail(JobFailure::Encode(e));
                            }
                        }
                    }
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::npy_pickle::read_array_list;
    use crate::formats::pyjson::PyValue;
    use crate::model::FakeEncoder;
    use crate::record::PlannedClip;

    /// Any encoder does: what is checked is how rows become members.
    fn encoder() -> FakeEncoder {
        FakeEncoder::new(16)
    }

    fn clip(rank: u64, captions: &[Option<&str>]) -> PlannedClip {
        let json = crate::formats::pyjson::dumps(&PyValue::Object(vec![
            ("caption".into(), PyValue::Str("é".into())),
            ("valid".into(), PyValue::Bool(false)),
        ]));
        crate::ops::test_support::planned_clip(rank, captions, json.as_bytes())
    }

    #[test]
    fn batch_encoding_equals_one_at_a_time_and_members_are_exact() {
        let enc = encoder();
        let captions = [
            "A red car at night.",
            "  Two dogs play in the snow, chasing a ball  ",
            "short",
        ];
        let clips = vec![
            clip(0, &[Some(captions[0]), None, Some(captions[1])]),
            clip(1, &[]),
            clip(2, &[Some(captions[2])]),
        ];
        let ids: Vec<Vec<Vec<u32>>> = clips
            .iter()
            .map(|c| {
                c.meta
                    .captions
                    .iter()
                    .flatten()
                    .map(|t| enc.tokenize(t))
                    .collect()
            })
            .collect();
        let samples = SampleEncoder::new(Arc::new(enc.clone()))
            .encode(EncodeBatch {
                clips,
                ids: ids.clone(),
            })
            .unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(
            samples[0].json,
            "{\"caption\": \"\\u00e9\", \"valid\": false}".as_bytes()
        );
        assert_eq!(
            samples[1].pickle,
            npy_pickle::write_array_list::<F16Array>(&[])
        );
        assert_eq!(samples[1].windows_embedded, 0);
        for (s, seqs) in samples.iter().zip(&ids) {
            let arrays = read_array_list(&s.pickle).unwrap();
            assert_eq!(arrays.len(), seqs.len());
            assert_eq!(
                s.tokens_embedded,
                seqs.iter().map(|q| q.len() as u64).sum::<u64>()
            );
            for (a, seq) in arrays.iter().zip(seqs) {
                let alone = to_f16(&enc.encode_batch(&[seq.as_slice()])[0]);
                assert_eq!(a.shape, (seq.len(), 16));
                assert_eq!(a.data, alone, "{}", s.key);
            }
        }
    }

    #[test]
    fn dataflow_encodes_every_batch() {
        use std::sync::{Arc, Mutex};
        use timely::dataflow::operators::{Inspect, ToStream};
        let enc = Mutex::new(encoder());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        timely::execute(timely::Config::process(2), move |worker| {
            let enc = enc.lock().unwrap().clone();
            let seen = seen2.clone();
            let me = worker.index() as u64;
            worker.dataflow::<u64, _, _>(|scope| {
                let batch = EncodeBatch {
                    clips: vec![clip(me, &[Some("x")])],
                    ids: vec![vec![enc.tokenize("x")]],
                };
                vec![batch]
                    .to_stream(scope)
                    .encode(SampleEncoder::new(Arc::new(enc)), &JobContext::default())
                    .inspect(move |s| seen.lock().unwrap().push(s.key.clone()));
            });
        })
        .unwrap();
        let mut v = seen.lock().unwrap().clone();
        v.sort();
        assert_eq!(v, ["u0", "u1"]);
    }
}

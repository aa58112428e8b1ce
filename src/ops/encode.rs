//! `encode`: runs the T5 encoder over a batch and builds each clip's `.pickle` and `.json`
//! members (SPEC §4–§6).

use burn::tensor::backend::Backend;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use crate::formats::npy_pickle::{self, F16Array};
use crate::formats::npy_pickle::F16ArrayRef;
use crate::formats::pyjson;
use crate::model::{to_f16, TextEncoder};
use crate::ops::batch::EncodeBatch;
use crate::ops::StageClock;
use crate::record::EncodedSample;

/// Turns batches into samples with one encoder.
#[derive(Clone)]
pub struct SampleEncoder<B: Backend> {
    encoder: TextEncoder<B>,
}

impl<B: Backend> SampleEncoder<B> {
    /// Wraps a loaded encoder.
    pub fn new(encoder: TextEncoder<B>) -> Self {
        SampleEncoder { encoder }
    }

    /// Encodes every window of the batch in one forward pass and assembles the samples.
    pub fn encode(&self, batch: EncodeBatch) -> Vec<EncodedSample> {
        let seqs: Vec<&[u32]> = batch.ids.iter().flatten().map(Vec::as_slice).collect();
        let mut outputs = if seqs.is_empty() {
            Vec::new()
        } else {
            self.encoder.encode_batch(&seqs)
        }
        .into_iter();
        let d_model = self.encoder.d_model();
        batch
            .clips
            .into_iter()
            .zip(batch.ids.iter())
            .map(|(clip, ids)| {
                let arrays: Vec<F16Array> = ids
                    .iter()
                    .map(|seq| {
                        let rows = outputs.next().expect("one output per sequence");
                        debug_assert_eq!(rows.len(), seq.len() * d_model);
                        F16Array::new((seq.len(), d_model), to_f16(&rows)).expect("encoder returns len × d_model rows")
                    })
                    .collect();
                EncodedSample {
                    index: clip.index,
                    tar_len: clip.tar_len,
                    key: clip.meta.span_uuid.clone(),
                    meta_rel_path: clip.meta.rel_path.clone(),
                    clip_path: clip.meta.clip_path.clone(),
                    json: pyjson::dumps(&clip.meta.json).into_bytes(),
                    pickle: npy_pickle::write_array_list(&arrays.iter().map(F16Array::view).collect::<Vec<F16ArrayRef>>()),
                    windows_embedded: arrays.len() as u32,
                    tokens_embedded: ids.iter().map(|s| s.len() as u64).sum(),
                    tar: clip.tar,
                }
            })
            .collect()
    }
}

/// The `encode` operator.
pub trait Encode<'scope> {
    /// Encodes each batch on the worker that cut it.
    fn encode<B: Backend>(self, encoder: SampleEncoder<B>, clock: StageClock) -> Stream<'scope, u64, Vec<EncodedSample>>;
}

impl<'scope> Encode<'scope> for Stream<'scope, u64, Vec<EncodeBatch>> {
    fn encode<B: Backend>(self, encoder: SampleEncoder<B>, clock: StageClock) -> Stream<'scope, u64, Vec<EncodedSample>> {
        self.unary(Pipeline, "Encode", move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    for batch in data.drain(..) {
                        let samples = {
                            let _t = clock.time("encode");
                            encoder.encode(batch)
                        };
                        output.session(&cap).give_iterator(samples.into_iter());
                    }
                });
            }
        })
    }
}

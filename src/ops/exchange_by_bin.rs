//! `exchange_by_bin`: routes every sample to the one worker that owns its tar triple, so
//! each tar file has exactly one writer, within a process or across processes.

use timely::dataflow::operators::Exchange;
use timely::dataflow::Stream;

use crate::hash::stable_hash;
use crate::record::{EncodedSample, TarId};

/// The routing key of a tar triple: a stable hash of (bin, part, tar), the same in every
/// process and every run.
pub fn tar_route(tar: &TarId) -> u64 {
    let mut key = Vec::with_capacity(tar.bin.len() + 8);
    key.extend_from_slice(tar.bin.as_bytes());
    key.extend_from_slice(&tar.part.to_le_bytes());
    key.extend_from_slice(&tar.tar.to_le_bytes());
    stable_hash(&key)
}

/// The `exchange_by_bin` operator.
pub trait ExchangeByBin {
    /// Sends each sample to the worker that owns its tar.
    fn exchange_by_bin(self) -> Self;
}

impl ExchangeByBin for Stream<'_, u64, Vec<EncodedSample>> {
    fn exchange_by_bin(self) -> Self {
        self.exchange(|s: &EncodedSample| tar_route(&s.tar))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(bin: &str, part: u32, t: u32) -> TarId {
        TarId {
            bin_order: 0,
            bin: bin.into(),
            part,
            tar: t,
        }
    }

    #[test]
    fn route_ignores_bin_order_and_is_stable() {
        let a = tar("resolution_720/aspect_ratio_16_9/frames_0_120", 0, 1);
        let mut b = a.clone();
        b.bin_order = 7;
        assert_eq!(tar_route(&a), tar_route(&b));
        assert_ne!(
            tar_route(&a),
            tar_route(&tar("resolution_720/aspect_ratio_16_9/frames_0_120", 1, 0))
        );
        // pinned so that processes built separately agree
        assert_eq!(
            tar_route(&tar("x", 0, 0)),
            stable_hash(b"x\0\0\0\0\0\0\0\0")
        );
    }

    #[test]
    fn tars_spread_over_workers() {
        let mut counts = [0usize; 4];
        for t in 0..400 {
            counts[(tar_route(&tar("b", t / 100, t % 100)) % 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 50), "{counts:?}");
    }

    #[test]
    fn dataflow_sends_each_tar_to_one_worker() {
        use std::collections::HashMap;
        use std::sync::{Arc, Mutex};
        use timely::dataflow::operators::{Inspect, ToStream};
        let seen: Arc<Mutex<HashMap<u32, Vec<usize>>>> = Arc::default();
        let seen2 = seen.clone();
        timely::execute(timely::Config::process(3), move |worker| {
            let seen = seen2.clone();
            let me = worker.index();
            worker.dataflow::<u64, _, _>(|scope| {
                let samples: Vec<EncodedSample> = (0..30)
                    .map(|i| EncodedSample {
                        tar: tar("b", 0, i % 6),
                        index: i / 6,
                        tar_len: 5,
                        key: format!("k{i}"),
                        meta_rel_path: String::new(),
                        clip_path: String::new(),
                        json: vec![],
                        pickle: vec![],
                        windows_embedded: 0,
                        tokens_embedded: 0,
                        mtime: 0,
                        gone: None,
                        ..Default::default()
                    })
                    .collect();
                samples
                    .to_stream(scope)
                    .exchange_by_bin()
                    .inspect(move |s| seen.lock().unwrap().entry(s.tar.tar).or_default().push(me));
            });
        })
        .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 6);
        for (t, workers) in seen.iter() {
            assert_eq!(workers.len(), 15, "tar {t}");
            assert!(
                workers.iter().all(|w| *w == workers[0]),
                "tar {t} on several workers: {workers:?}"
            );
        }
    }
}

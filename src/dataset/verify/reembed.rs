//! Re-embedding a sample of stored windows with the model.

use std::collections::{HashMap, HashSet};

use super::{Problem, StoredWindow};
use crate::dataset::index::split_name;

use crate::dataset::read::visit_tar;
use crate::formats::npy_pickle::read_window_arrays;
use crate::layout::{self, Stream, StreamNames};
use crate::model::TextEncoder;
use crate::storage::{Location, Storage};
use crate::text::shown;

/// The sampled `.pickle` members of one tar, by key.
type Pickles = HashMap<String, Vec<u8>>;

/// Re-embeds `windows` with `encoder` (each caption tokenized and encoded alone, in fp32) and
/// compares them with the stored float16 arrays: every value within
/// `tolerance · (1 + |stored|)`. Returns the problems.
pub fn reembed_sample(
    storage: &Storage,
    root: &Location,
    names: StreamNames,
    windows: &[StoredWindow],
    tolerance: f32,
    encoder: &dyn TextEncoder,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    // windows of one tar are checked together: each tar is read once, keeping only the
    // pickles of the sampled keys
    let mut order: Vec<&StoredWindow> = windows.iter().collect();
    order.sort_by(|a, b| (&a.bin, &a.tar).cmp(&(&b.bin, &b.tar)));
    let mut read: Option<(&str, &str, Pickles)> = None;
    for w in order {
        let path = format!(
            "{}:{}[{}]",
            names.tar_rel(&w.bin, Stream::T5Xxl, &w.tar),
            layout::member_name(&shown(&w.key), Stream::T5Xxl),
            w.window
        );
        if read
            .as_ref()
            .is_none_or(|(b, t, _)| (*b, *t) != (w.bin.as_str(), w.tar.as_str()))
        {
            let loc = root.join(&names.tar_rel(&w.bin, Stream::T5Xxl, &w.tar));
            let keys: HashSet<&str> = windows
                .iter()
                .filter(|o| (&o.bin, &o.tar) == (&w.bin, &w.tar))
                .map(|o| o.key.as_str())
                .collect();
            let mut kept = HashMap::new();
            visit_tar(
                storage,
                &loc,
                &mut |name: &str| keys.contains(split_name(name).0),
                &mut |name: &str, data: Vec<u8>| {
                    kept.insert(split_name(name).0.to_string(), data);
                },
            );
            read = Some((&w.bin, &w.tar, kept));
        }
        let kept = &read.as_ref().expect("just read").2;
        let stored = kept
            .get(&w.key)
            .and_then(|d| read_window_arrays(d).ok())
            .and_then(|mut a| (w.window < a.len()).then(|| a.swap_remove(w.window)));
        let Some(stored) = stored else {
            problems.push(Problem {
                path,
                message: "cannot be read again".into(),
            });
            continue;
        };
        let ids = encoder.tokenize(&w.caption);
        let values = encoder.encode_batch(&[ids.as_slice()]).remove(0);
        let rows = ids.len();
        if rows != stored.shape.0 || values.len() != stored.data.len() {
            problems.push(Problem {
                path,
                message: format!(
                    "{} rows stored, the model gives {rows} for its caption",
                    stored.shape.0
                ),
            });
            continue;
        }
        // a NaN anywhere (stored or computed) is a difference, not something to fold away
        let mut worst = 0.0f32;
        for (s, v) in stored.data.iter().zip(&values) {
            let e = (s.to_f32() - v).abs() / (1.0 + s.to_f32().abs());
            if e.is_nan() {
                worst = f32::NAN;
                break;
            }
            worst = worst.max(e);
        }
        if worst.is_nan() || worst > tolerance {
            problems.push(Problem {
                path,
                message: format!(
                    "differs from the model's embedding of its caption (relative error {worst:.3e} > {tolerance})"
                ),
            });
        }
    }
    problems
}

//! Re-embedding a sample of stored windows with the model.

use super::{Problem, StoredWindow};
use crate::dataset::index::split_name;
use crate::dataset::layout::Layout;
use crate::dataset::read::read_tar;
use crate::formats::npy_pickle::read_array_list;
use crate::storage::{Location, Storage};

/// Re-embeds `n` windows picked at random (seeded) with `embed` (caption → `(rows, values)`
/// in fp32) and compares them with the stored float16 arrays: every value within
/// `tolerance · (1 + |stored|)`. Returns the problems.
pub fn reembed_sample(
    storage: &Storage,
    root: &Location,
    windows: &[StoredWindow],
    n: usize,
    seed: u64,
    tolerance: f32,
    embed: &dyn Fn(&str) -> (usize, Vec<f32>),
) -> Vec<Problem> {
    let mut state = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut picked: Vec<&StoredWindow> = Vec::new();
    let mut pool: Vec<&StoredWindow> = windows.iter().collect();
    while picked.len() < n && !pool.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        picked.push(pool.swap_remove((state % pool.len() as u64) as usize));
    }
    let mut problems = Vec::new();
    for w in picked {
        let loc = Layout::tar(root, &w.bin, 1, &w.tar);
        let path = format!("{}/t5_xxl/{}:{}.pickle[{}]", w.bin, w.tar, w.key, w.window);
        let r = read_tar(storage, &loc, true);
        let stored = r
            .members
            .iter()
            .find(|m| split_name(&m.name).0 == w.key)
            .and_then(|m| read_array_list(m.data.as_deref()?).ok())
            .and_then(|mut a| (w.window < a.len()).then(|| a.swap_remove(w.window)));
        let Some(stored) = stored else {
            problems.push(Problem {
                path,
                message: "cannot be read again".into(),
            });
            continue;
        };
        let (rows, values) = embed(&w.caption);
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
        let worst = stored
            .data
            .iter()
            .zip(&values)
            .map(|(s, v)| (s.to_f32() - v).abs() / (1.0 + s.to_f32().abs()))
            .fold(0.0f32, f32::max);
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

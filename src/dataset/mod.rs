//! Tools for written datasets: random-access indexes ([`index`]), finding the tars of a
//! dataset ([`layout`]), whether it is a finished dataset at all ([`complete`]), `verify`
//! ([`verify`]), `inspect` ([`inspect`]) and `export` ([`export`]).

pub mod complete;
pub mod export;
pub mod index;
pub mod inspect;
pub mod layout;
pub mod read;
pub mod reindex;
pub mod verify;
pub mod versions;

/// Runs `f` over `items` on `threads` threads; results in input order.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                *results[i].lock().expect("not poisoned") = Some(f(item));
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("not poisoned")
                .expect("every item ran")
        })
        .collect()
}

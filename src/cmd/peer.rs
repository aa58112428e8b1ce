//! A cluster job's lost peer: one clear message, exit code 3, and process 0's output lock
//! released on the way out.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use shardflow::storage::OutputLock;

/// The output lock process 0 holds while its job runs.
pub(crate) fn held_lock() -> MutexGuard<'static, Option<OutputLock>> {
    static HELD: Mutex<Option<OutputLock>> = Mutex::new(None);
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Releases the held output lock when a panic unwinds past it, as it would if it were a local.
pub(crate) struct ReleaseOnUnwind;

impl Drop for ReleaseOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            drop(held_lock().take());
        }
    }
}

/// Releases the output lock (if this process holds one) before a lost-peer exit, so that
/// `--resume` can start at once instead of waiting out an object-store lock's lease; given
/// up after `within` (a store out of reach), as the exit must stay prompt.
pub(crate) fn release_held_lock(within: Duration) {
    let Some(lock) = held_lock().take() else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(lock);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(within);
}

/// When another process of a cluster job dies or stops answering, timely's network threads
/// panic. Turn that into one clear message and a prompt exit (code 3) instead of a cascade of
/// panics; no report is written, so nothing claims to be complete.
pub(crate) fn install_peer_failure_hook() {
    // the first failing thread speaks and exits; the others wait here for the exit
    static EXITING: Mutex<()> = Mutex::new(());
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current().name().unwrap_or("").to_string();
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if thread.starts_with("timely:") || msg.contains("timely communication error") {
            let _exiting = EXITING.lock().unwrap_or_else(PoisonError::into_inner);
            eprintln!(
                "error: lost contact with another process of the job ({msg}); stopping. The output is incomplete: no report was written"
            );
            release_held_lock(Duration::from_secs(5));
            std::process::exit(3);
        }
        default(info);
    }));
}

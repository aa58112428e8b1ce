//! Running a dataflow's workers and joining them.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use timely::worker::Worker;

use crate::error::JobError;

/// Runs `func` on every worker `config` describes and returns each local worker's result, in
/// worker order. With `connect_timeout`, a cluster whose processes have not all connected
/// in that time is given up with [`JobError::ConnectTimeout`] (timely itself would retry
/// forever; its connecting thread is left behind, so the caller should end the process).
pub fn execute<T, F>(
    config: timely::Config,
    connect_timeout: Option<Duration>,
    func: F,
) -> Result<Vec<T>, JobError>
where
    T: Send + 'static,
    F: Fn(&mut Worker) -> T + Send + Sync + 'static,
{
    let guards = match connect_timeout {
        None => timely::execute(config, func),
        Some(timeout) => {
            // connecting blocks: wait for it on another thread
            let (tx, rx) = mpsc::channel();
            let connecting = std::thread::spawn(move || {
                let _ = tx.send(timely::execute(config, func));
            });
            match rx.recv_timeout(timeout) {
                Ok(guards) => guards,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(JobError::ConnectTimeout {
                        timeout_s: timeout.as_secs(),
                    })
                }
                Err(RecvTimeoutError::Disconnected) => match connecting.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => unreachable!("the connecting thread sends before it ends"),
                },
            }
        }
    }
    .map_err(JobError::Start)?;
    guards
        .join()
        .into_iter()
        .map(|r| r.map_err(JobError::WorkerPanicked))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_worker_order() {
        let got = execute(timely::Config::process(3), None, |w| w.index()).unwrap();
        assert_eq!(got, [0, 1, 2]);
        let got = execute(
            timely::Config::process(2),
            Some(Duration::from_secs(60)),
            |w| w.index() * 10,
        )
        .unwrap();
        assert_eq!(got, [0, 10]);
    }
}

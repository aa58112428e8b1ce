//! Running a dataflow's workers and joining them; a cluster's connections between processes.

use std::any::Any;
use std::net::TcpStream;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::networking::create_sockets;
use timely::communication::{AllocatorBuilder, Hooks};
use timely::worker::Worker;
use timely::{CommunicationConfig, WorkerConfig};

use crate::error::JobError;

/// How the processes of a cluster job connect, and when one of them counts as lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Links {
    /// A cluster whose processes have not all connected in this time is given up (timely
    /// itself would retry forever).
    pub connect_timeout: Duration,
    /// A connection to another process that has not been answered for this long fails (TCP
    /// keepalive, and on Linux TCP_USER_TIMEOUT): a host or link that went down silently
    /// would otherwise leave the others waiting for it forever (TCP retransmits for about 15
    /// minutes, and an idle connection never notices).
    pub peer_timeout: Duration,
}

/// Runs `func` on every worker `config` describes and returns each local worker's result, in
/// worker order. A cluster (`links`) whose processes have not all connected within the
/// connect timeout is given up with [`JobError::ConnectTimeout`] (its connecting thread is
/// left behind, so the caller should end the process); its connections fail once a peer has
/// not answered for the peer timeout, which panics timely's network threads (the binary turns
/// that into exit code 3).
pub fn execute<T, F>(
    config: timely::Config,
    links: Option<Links>,
    func: F,
) -> Result<Vec<T>, JobError>
where
    T: Send + 'static,
    F: Fn(&mut Worker) -> T + Send + Sync + 'static,
{
    let guards = match links {
        None => timely::execute(config, func),
        Some(links) => {
            // connecting blocks: wait for it on another thread
            let (tx, rx) = mpsc::channel();
            let connecting = std::thread::spawn(move || {
                let started =
                    build(config, links.peer_timeout).and_then(|(builders, others, worker)| {
                        timely::execute::execute_from(builders, others, worker, func)
                    });
                let _ = tx.send(started);
            });
            match rx.recv_timeout(links.connect_timeout) {
                Ok(guards) => guards,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(JobError::ConnectTimeout {
                        timeout_s: links.connect_timeout.as_secs(),
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

/// What timely's `try_build` makes of `config`, except that a cluster's connections are
/// watched for a lost peer ([`watch`]); the connections and their handshake are timely's own.
type Built = (Vec<AllocatorBuilder>, Box<dyn Any + Send>, WorkerConfig);

fn build(config: timely::Config, peer_timeout: Duration) -> Result<Built, String> {
    let timely::Config {
        communication,
        worker,
    } = config;
    let CommunicationConfig::Cluster {
        threads,
        process,
        addresses,
        zerocopy: false,
        ..
    } = communication
    else {
        return communication
            .try_build()
            .map(|(builders, others)| (builders, others, worker));
    };
    let failed = |e: std::io::Error| format!("failed to initialize networking: {e}");
    let sockets = create_sockets(addresses, process, false).map_err(failed)?;
    for stream in sockets.iter().flatten() {
        watch(stream, peer_timeout).map_err(failed)?;
    }
    let hooks = Hooks::default();
    let local =
        ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) =
        initialize_networking_from_sockets(local, sockets, process, threads, hooks)
            .map_err(failed)?;
    let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
    Ok((builders, Box::new(guard), worker))
}

/// Makes `stream` fail once its peer has not answered for about `peer_timeout`: keepalive
/// probes from half of it on an idle connection, and TCP_USER_TIMEOUT for data left
/// unacknowledged (where keepalive does not probe). An error ends timely's reading or writing
/// thread, and with it the job.
fn watch(stream: &TcpStream, peer_timeout: Duration) -> std::io::Result<()> {
    let secs = peer_timeout.as_secs().max(1);
    let idle = (secs / 2).max(1);
    let interval = (secs / 10).max(1);
    let probes = u32::try_from((secs - idle) / interval)
        .unwrap_or(u32::MAX)
        .max(1);
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(idle))
            .with_interval(Duration::from_secs(interval))
            .with_retries(probes),
    )?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(Duration::from_secs(secs)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_worker_order() {
        let got = execute(timely::Config::process(3), None, |w| w.index()).unwrap();
        assert_eq!(got, [0, 1, 2]);
        let links = Links {
            connect_timeout: Duration::from_secs(60),
            peer_timeout: Duration::from_secs(30),
        };
        let got = execute(timely::Config::process(2), Some(links), |w| w.index() * 10).unwrap();
        assert_eq!(got, [0, 10]);
    }

    /// Two processes of one cluster (as threads of the test) connect on loopback through
    /// [`build`] and exchange data: each record moves to the next worker, so that half of
    /// them cross between the processes.
    #[test]
    fn a_cluster_runs_over_watched_connections() {
        use timely::dataflow::operators::{Exchange, Inspect, ToStream};
        let ports: Vec<u16> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let links = Links {
            connect_timeout: Duration::from_secs(60),
            peer_timeout: Duration::from_secs(10),
        };
        let run = |process: usize| {
            let config = timely::Config {
                communication: CommunicationConfig::Cluster {
                    threads: 2,
                    process,
                    addresses: addresses.clone(),
                    report: false,
                    zerocopy: false,
                },
                worker: WorkerConfig::default(),
            };
            std::thread::spawn(move || {
                execute(config, Some(links), |w| {
                    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
                    let (index, sink) = (w.index(), seen.clone());
                    w.dataflow::<u64, _, _>(|scope| {
                        let mine: Vec<u64> =
                            (0..8u64).filter(|x| *x as usize % 4 == index).collect();
                        mine.to_stream(scope)
                            .container::<Vec<u64>>()
                            .exchange(|x: &u64| *x + 1)
                            .inspect(move |x: &u64| sink.borrow_mut().push(*x));
                    });
                    while w.step_or_park(None) {}
                    let mut seen = seen.take();
                    seen.sort();
                    (w.index(), seen)
                })
                .unwrap()
            })
        };
        let (p0, p1) = (run(0), run(1));
        let mut all = p0.join().unwrap();
        all.extend(p1.join().unwrap());
        let workers: Vec<usize> = all.iter().map(|(w, _)| *w).collect();
        assert_eq!(workers, [0, 1, 2, 3]);
        for (w, seen) in all {
            let expected: Vec<u64> = (0..8u64).filter(|x| (*x as usize + 1) % 4 == w).collect();
            assert_eq!(seen, expected, "worker {w}");
        }
    }

    #[test]
    fn watched_connections_carry_the_peer_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        watch(&stream, Duration::from_secs(30)).unwrap();
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            Duration::from_secs(15)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 5);
        #[cfg(target_os = "linux")]
        assert_eq!(
            socket.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(30))
        );
        // the shortest timeout still probes
        watch(&stream, Duration::from_secs(1)).unwrap();
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(1));
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 1);
    }
}

//! `shardflow launch`: N local processes of one job on loopback ports.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args)]
pub(crate) struct LaunchArgs {
    /// Number of local processes.
    #[arg(long)]
    pub(crate) processes: usize,
    /// Arguments of `shardflow shard` (after `--`), or `reshard` followed by its arguments;
    /// `--processes`, `--process` and `--hostfile` are added for each process, and the port of
    /// a `--metrics-listen` is offset by the process index (each process serves its own).
    #[arg(last = true, required = true)]
    pub(crate) shard_args: Vec<String>,
}

/// Starts `processes` local `shard` processes on free loopback ports and waits for them; if
/// one fails, the others are stopped and the first failure's exit code is returned.
pub(crate) fn run_launch(args: LaunchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.processes >= 1, "--processes must be at least 1");
    // reserve ports by binding, then release them for the processes to take
    let listeners: Vec<std::net::TcpListener> = (0..args.processes)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("finding free loopback ports")?;
    let hosts: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<Result<_, _>>()?;
    drop(listeners);
    let hostfile = std::env::temp_dir().join(format!("shardflow-hosts-{}.txt", std::process::id()));
    std::fs::write(&hostfile, hosts.join("\n") + "\n")
        .with_context(|| format!("writing {}", hostfile.display()))?;
    let exe = std::env::current_exe().context("locating the shardflow executable")?;
    // SIGTERM / SIGINT sent to `launch` go on to its processes, which stop as `shard` does
    // (a second one ends them at once). They run in their own process group, so that a
    // Ctrl-C, or a signal to this process's group, reaches each of them once: through here
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, signalled.clone())
            .context("installing signal handlers")?;
    }
    let mut stopping = false;
    let mut children = Vec::new();
    for i in 0..args.processes {
        // `launch -- reshard ...` runs `reshard`; anything else is `shard`'s arguments
        let (sub, rest) = match args.shard_args.first().map(String::as_str) {
            Some(s @ ("shard" | "reshard")) => (s, &args.shard_args[1..]),
            _ => ("shard", &args.shard_args[..]),
        };
        let child = std::process::Command::new(&exe)
            .arg(sub)
            .args(per_process(rest, i)?)
            .args([
                "--processes",
                &args.processes.to_string(),
                "--process",
                &i.to_string(),
            ])
            .arg("--hostfile")
            .arg(&hostfile)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting process {i}"))?;
        children.push(Some(child));
    }
    let mut failure: Option<(usize, i32)> = None;
    while children.iter().any(Option::is_some) {
        if signalled.swap(false, Ordering::SeqCst) {
            tracing::warn!("signalled: stopping the job's processes");
            stopping = true;
            for child in children.iter_mut().flatten() {
                terminate(child);
            }
        }
        for (i, slot) in children.iter_mut().enumerate() {
            if let Some(child) = slot {
                if let Some(status) = child.try_wait()? {
                    *slot = None;
                    if !status.success() && failure.is_none() {
                        failure = Some((i, status.code().unwrap_or(1)));
                    }
                }
            }
        }
        // stopping on a signal, each process ends on its own (process 0 writes the report)
        if let Some((i, _)) = failure.filter(|_| !stopping) {
            for child in children.iter_mut().flatten() {
                let _ = child.kill();
            }
            for mut child in children.iter_mut().filter_map(Option::take) {
                let _ = child.wait();
            }
            tracing::error!("process {i} failed; stopped the others");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&hostfile);
    Ok(match failure {
        Some((_, code)) => ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)),
        None => ExitCode::SUCCESS,
    })
}

/// Sends SIGTERM to `child` (std has no safe `kill(2)` and this crate forbids unsafe code, so
/// through the `kill` command); where that cannot be run, it is killed outright.
fn terminate(child: &mut std::process::Child) {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !sent {
        let _ = child.kill();
    }
}

/// Process `i`'s arguments: those given, with the port of `--metrics-listen ADDR` (or
/// `--metrics-listen=ADDR`) plus `i`, so that the local processes do not all bind one port.
/// Port 0 (any free port) and an address that does not parse (the process reports it) are
/// passed as given.
fn per_process(args: &[String], i: usize) -> anyhow::Result<Vec<String>> {
    const FLAG: &str = "--metrics-listen";
    let offset = |value: &str| -> anyhow::Result<String> {
        let Ok(mut addr) = value.parse::<std::net::SocketAddr>() else {
            return Ok(value.to_string());
        };
        if addr.port() != 0 {
            let port = u16::try_from(usize::from(addr.port()) + i)
                .ok()
                .with_context(|| format!("{FLAG} {value}: no port {i} above it for process {i}"))?;
            addr.set_port(port);
        }
        Ok(addr.to_string())
    };
    let mut out = Vec::with_capacity(args.len());
    let mut next_is_addr = false;
    for a in args {
        if std::mem::take(&mut next_is_addr) {
            out.push(offset(a)?);
        } else if a == FLAG {
            next_is_addr = true;
            out.push(a.clone());
        } else if let Some(v) = a.strip_prefix(FLAG).and_then(|r| r.strip_prefix('=')) {
            out.push(format!("{FLAG}={}", offset(v)?));
        } else {
            out.push(a.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::per_process;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_process_gets_its_own_metrics_port() {
        let given = args(&["--workers", "2", "--metrics-listen", "127.0.0.1:9184"]);
        assert_eq!(per_process(&given, 0).unwrap(), given);
        assert_eq!(
            per_process(&given, 2).unwrap(),
            args(&["--workers", "2", "--metrics-listen", "127.0.0.1:9186"])
        );
        assert_eq!(
            per_process(&args(&["--metrics-listen=[::1]:80"]), 1).unwrap(),
            args(&["--metrics-listen=[::1]:81"])
        );
        let any = args(&["--metrics-listen", "127.0.0.1:0"]);
        assert_eq!(per_process(&any, 3).unwrap(), any);
        let odd = args(&["--metrics-listen", "nowhere"]);
        assert_eq!(per_process(&odd, 3).unwrap(), odd);
        assert!(per_process(&args(&["--metrics-listen", "127.0.0.1:65535"]), 1).is_err());
    }
}

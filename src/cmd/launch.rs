//! `shardflow launch`: N local processes of one job on loopback ports.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args)]
pub(crate) struct LaunchArgs {
    /// Number of local processes.
    #[arg(long)]
    pub(crate) processes: usize,
    /// Arguments of `shardflow shard` (after `--`), or `reshard` followed by its arguments;
    /// `--processes`, `--process` and `--hostfile` are added for each process.
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
    let mut children = Vec::new();
    for i in 0..args.processes {
        // `launch -- reshard ...` runs `reshard`; anything else is `shard`'s arguments
        let (sub, rest) = match args.shard_args.first().map(String::as_str) {
            Some(s @ ("shard" | "reshard")) => (s, &args.shard_args[1..]),
            _ => ("shard", &args.shard_args[..]),
        };
        let child = std::process::Command::new(&exe)
            .arg(sub)
            .args(rest)
            .args([
                "--processes",
                &args.processes.to_string(),
                "--process",
                &i.to_string(),
            ])
            .arg("--hostfile")
            .arg(&hostfile)
            .spawn()
            .with_context(|| format!("starting process {i}"))?;
        children.push(Some(child));
    }
    let mut failure: Option<(usize, i32)> = None;
    while children.iter().any(Option::is_some) {
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
        if let Some((i, _)) = failure {
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

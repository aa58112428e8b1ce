//! The test's own hosts: network namespaces on one bridge, and a TCP forwarder that lets them
//! reach the S3 server on the root namespace's loopback. Everything made is removed on drop.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runs `ip` (or another iproute2 tool) with `args`; its stderr on failure.
fn run(tool: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{tool} {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .trim_end_matches('.')
        ))
    }
}

/// Network namespaces, each a host with one address on a private /24, joined by a bridge in
/// the root namespace that holds the subnet's first address (the `gateway`). Names and subnet
/// are unique per test; dropping it removes the namespaces (and with them the veth pairs) and
/// the bridge, also when the test failed.
pub struct Hosts {
    /// The namespaces, one per host.
    pub namespaces: Vec<String>,
    /// The namespace end of each host's veth pair.
    pub links: Vec<String>,
    /// Each host's address.
    pub addresses: Vec<Ipv4Addr>,
    /// The root namespace's address on the bridge.
    pub gateway: Ipv4Addr,
    bridge: Option<String>,
    /// The root-namespace ends of the veth pairs (gone with the namespaces; removed again in
    /// case a namespace was not made).
    host_ends: Vec<String>,
}

impl Hosts {
    /// Makes `n` hosts, or says why it cannot (not root, no `ip`).
    pub fn make(n: usize) -> Result<Hosts, String> {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let seq = MADE.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // interface names have at most 15 bytes: pid (7 digits at most), sequence, host
        let tag = format!("{pid}{}", char::from(b'a' + (seq % 26) as u8));
        let taken = Command::new("ip")
            .args(["-o", "-4", "addr", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let third = (0..250)
            .map(|k| ((pid as usize * 7 + seq * 13 + k) % 250 + 1) as u8)
            .find(|t| !taken.contains(&format!(" 10.213.{t}.")))
            .ok_or("no free 10.213.x.0/24 subnet")?;
        let mut hosts = Hosts {
            namespaces: Vec::new(),
            links: Vec::new(),
            addresses: Vec::new(),
            gateway: Ipv4Addr::new(10, 213, third, 1),
            bridge: None,
            host_ends: Vec::new(),
        };
        let bridge = format!("sfb{tag}");
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        hosts.bridge = Some(bridge.clone());
        let gateway = format!("{}/24", hosts.gateway);
        run("ip", &["addr", "add", &gateway, "dev", &bridge])?;
        run("ip", &["link", "set", &bridge, "up"])?;
        for i in 0..n {
            let ns = format!("shardflow-test-{tag}-{i}");
            run("ip", &["netns", "add", &ns])?;
            hosts.namespaces.push(ns.clone());
            let (host_end, link) = (format!("sfh{tag}{i}"), format!("sfn{tag}{i}"));
            run(
                "ip",
                &[
                    "link", "add", &host_end, "type", "veth", "peer", "name", &link, "netns", &ns,
                ],
            )?;
            hosts.host_ends.push(host_end.clone());
            hosts.links.push(link.clone());
            run("ip", &["link", "set", &host_end, "master", &bridge, "up"])?;
            let address = Ipv4Addr::new(10, 213, third, 10 + i as u8);
            let cidr = format!("{address}/24");
            run("ip", &["-n", &ns, "addr", "add", &cidr, "dev", &link])?;
            run("ip", &["-n", &ns, "link", "set", &link, "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            hosts.addresses.push(address);
        }
        Ok(hosts)
    }

    /// Delays every packet leaving each host by `ms` (netem, loading `sch_netem` if need be);
    /// when the kernel has no netem, says loudly that the links run without delay, and why.
    pub fn delay(&self, ms: u32) {
        let delay = format!("{ms}ms");
        for (ns, link) in self.namespaces.iter().zip(&self.links) {
            let args = [
                "netns", "exec", ns, "tc", "qdisc", "add", "dev", link, "root", "netem", "delay",
                &delay,
            ];
            let added = run("ip", &args).or_else(|e| match run("modprobe", &["sch_netem"]) {
                Ok(()) => run("ip", &args),
                Err(m) => Err(format!("{e}; {m}")),
            });
            if let Err(e) = added {
                eprintln!(
                    "\n*** LINK DELAY SKIPPED: {e}. The kernel has no netem qdisc, and iproute2 \
                     has no other way to delay packets (tbf only limits the rate); the hosts are \
                     linked without added delay ***\n"
                );
                return;
            }
        }
    }

    /// Takes host `i`'s link down or up.
    pub fn set_link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        run(
            "ip",
            &[
                "-n",
                &self.namespaces[i],
                "link",
                "set",
                &self.links[i],
                state,
            ],
        )
        .unwrap();
    }

    /// `command` run in host `i`'s namespace (`ip netns exec`, which execs it: the child is
    /// the command itself).
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespaces[i], program]);
        cmd
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            if let Err(e) = run("ip", &["netns", "del", ns]) {
                eprintln!("could not remove the test namespace {ns}: {e}");
            }
        }
        for end in &self.host_ends {
            // normally gone with its namespace
            let _ = run("ip", &["link", "del", end]);
        }
        if let Some(bridge) = &self.bridge {
            if let Err(e) = run("ip", &["link", "del", bridge]) {
                eprintln!("could not remove the test bridge {bridge}: {e}");
            }
        }
    }
}

/// Forwards every TCP connection made to `addr` (on an address the test made) to `to`: the
/// S3 server listens on the root namespace's loopback, which no other namespace reaches.
/// Stops accepting on drop.
pub struct Forwarder {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Forwarder {
    /// Listens on a free port of `on` and forwards to `to`.
    pub fn start(on: Ipv4Addr, to: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind((IpAddr::V4(on), 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(to) {
                            pipe(client, server);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Forwarder { addr, stop }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies `a` to `b` and `b` to `a`, each way on its own thread, passing on the end of each.
fn pipe(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    for (mut from, mut to) in [(a, b2), (b, a2)] {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

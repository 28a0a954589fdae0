//! A throwaway lab per scenario: namespace `a` (where vrfexec runs) with two veths, v1 and v2,
//! both 10.77.0.1/24 and fd77::1/64, to peers p1 and p2 that both are 10.77.0.2 and fd77::2 and
//! answer TCP port 7000 with their own name. Only the bound device decides who answers.
//! Everything lives in fresh network namespaces and a fresh cgroup below the test's own
//! cgroup2 mount; Drop kills every process in that cgroup and removes all of it.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

static SERIAL: AtomicU32 = AtomicU32::new(0);

pub struct Lab {
    pub a: String,
    pub peers: [String; 2],
    /// The scenario's cgroup (absolute path under the cgroup2 mount).
    pub cgroup: PathBuf,
    /// The cgroup2 mount point.
    pub cg2: PathBuf,
    servers: Vec<Child>,
}

pub fn cgroup2_mount() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if !right.starts_with("cgroup2 ") {
            return None;
        }
        left.split(' ').nth(4).map(PathBuf::from)
    })
}

pub fn own_cgroup() -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
}

pub fn sh(script: &str) -> Result<String, String> {
    let out = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{script}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lab {
    pub fn new() -> Result<Lab, String> {
        let cg2 = cgroup2_mount().ok_or("no cgroup2 mount visible")?;
        let own = own_cgroup().ok_or("no cgroup v2 path in /proc/self/cgroup")?;
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let id = format!("vxh{}x{n}", std::process::id());
        let cgroup = cg2
            .join(own.trim_start_matches('/'))
            .join(format!("vrfexec-test-{id}"));
        let mut lab = Lab {
            a: format!("{id}a"),
            peers: [format!("{id}p1"), format!("{id}p2")],
            cgroup,
            cg2,
            servers: Vec::new(),
        };
        fs::create_dir(&lab.cgroup).map_err(|e| format!("mkdir {}: {e}", lab.cgroup.display()))?;
        let a = lab.a.clone();
        let mut script = format!("set -e; ip netns add {a}; ip -n {a} link set lo up\n");
        script +=
            &format!("ip netns exec {a} sysctl -qw net.ipv4.ping_group_range='0 2147483647'\n");
        for (i, peer) in lab.peers.iter().enumerate() {
            let v = format!("v{}", i + 1);
            script += &format!(
                "ip netns add {peer}; ip -n {peer} link set lo up\n\
                 ip -n {a} link add {v} type veth peer name e0 netns {peer}\n\
                 ip -n {a} addr add 10.77.0.1/24 dev {v}; ip -n {a} addr add fd77::1/64 dev {v} nodad\n\
                 ip -n {peer} addr add 10.77.0.2/24 dev e0; ip -n {peer} addr add fd77::2/64 dev e0 nodad\n\
                 ip -n {a} link set {v} up; ip -n {peer} link set e0 up\n"
            );
        }
        sh(&script)?;
        for (i, peer) in lab.peers.clone().iter().enumerate() {
            let name = format!("p{}", i + 1);
            let child = lab
                .command(&[
                    "ip",
                    "netns",
                    "exec",
                    peer,
                    "socat",
                    "TCP6-LISTEN:7000,ipv6only=0,fork,reuseaddr",
                    &format!("SYSTEM:echo {name}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("socat: {e}"))?;
            lab.servers.push(child);
        }
        // Wait until both servers answer (from their own namespace).
        let deadline = Instant::now() + Duration::from_secs(10);
        for peer in lab.peers.clone() {
            loop {
                let probe = sh(&format!(
                    "ip netns exec {peer} socat -T1 - TCP:127.0.0.1:7000 </dev/null"
                ));
                if probe.map(|s| s.starts_with('p')).unwrap_or(false) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("server in {peer} did not start"));
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(lab)
    }

    /// A command started inside the scenario's cgroup (so vrfexec places itself below it).
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"")
            .arg(&self.cgroup)
            .args(argv)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs argv in namespace `a` the way iproute2 users do: `ip netns exec` (which hides the
    /// cgroup2 mount), or with nsenter (which keeps it visible).
    pub fn run_in_a(&self, visible_cgroup2: bool, argv: &[&str]) -> Output {
        let netns_arg = format!("--net=/run/netns/{}", self.a);
        let mut full: Vec<&str> = if visible_cgroup2 {
            vec!["nsenter", &netns_arg]
        } else {
            vec!["ip", "netns", "exec", &self.a]
        };
        full.extend_from_slice(argv);
        match self.command(&full).output() {
            Ok(out) => out,
            Err(e) => Output {
                status: std::os::unix::process::ExitStatusExt::from_raw(127 << 8),
                stdout: Vec::new(),
                stderr: e.to_string().into_bytes(),
            },
        }
    }

    /// The cgroup vrfexec uses for `leaf` (None: `default`) when run in namespace `a`.
    pub fn vrf_cgroup(&self, leaf: Option<&str>) -> PathBuf {
        let base = self.cgroup.join(format!("{}-ns", self.a)).join("vrf");
        match leaf {
            Some(leaf) => base.join(leaf),
            None => base,
        }
    }

    /// Every directory below the scenario's cgroup, relative to it.
    pub fn cgroup_tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.cgroup, &self.cgroup, &mut out);
        out.sort();
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.display().to_string());
            }
            walk(base, &path, out);
        }
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

impl Drop for Lab {
    fn drop(&mut self) {
        // cgroup.kill (Linux 5.14) ends every process in the subtree, daemons included.
        let _ = fs::write(self.cgroup.join("cgroup.kill"), "1");
        for child in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let populated = fs::read_to_string(self.cgroup.join("cgroup.events"))
                .map(|e| e.contains("populated 1"))
                .unwrap_or(false);
            if !populated {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        remove_tree(&self.cgroup);
        // vrfexec's lock files for this lab's cgroups (/run/vrfexec, named after the path).
        if let Some(name) = self.cgroup.file_name().and_then(|n| n.to_str()) {
            let needle = format!("%2f{name}%2f");
            if let Ok(entries) = fs::read_dir("/run/vrfexec") {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().contains(&needle) {
                        let _ = fs::remove_file(entry.path());
                    }
                }
            }
            // Gone if nothing else uses it (the host's own vrfexec runs would keep it).
            let _ = fs::remove_dir("/run/vrfexec");
        }
        for ns in std::iter::once(&self.a).chain(self.peers.iter()) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

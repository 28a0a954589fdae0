//! What the process verbs share: `identify` (which VRF a process runs in), `pids` (the
//! processes in a VRF) and `move` (put a running process into a VRF).
//!
//! All of them read the placement from the cgroup tree, as iproute2 does (`vrf_identify()`,
//! `ipvrf_pids()` in ip/ipvrf.c), so processes placed by either tool are found, whatever the
//! caller's cgroup: `pids` walks the whole tree for `.../vrf/NAME` directories.
use std::{ffi::OsString, fmt::Write as _, fs, os::unix::fs::MetadataExt as _, path::Path};

use procfs_core::{process::Stat, FromRead as _};
use serde::Serialize;

pub use crate::vrf::place::Subject;
use crate::{
    error::{Error, Result},
    log::Log,
    sys::netlink::{LinkSource, RtNetlink},
    vrf::{
        cgroup::{self, CGROUP_PROCS, VRF_DIR},
        place,
        target::{self, Binding, Target},
    },
};

/// The kernel's PF_KTHREAD flag in /proc/PID/stat.
const PF_KTHREAD: u32 = libc::PF_KTHREAD.unsigned_abs();

/// Parses a PID argument: decimal digits, 1 to i32::MAX.
pub fn parse_pid(word: &str) -> Result<u32> {
    let valid = !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
    match word.parse::<u32>() {
        Ok(pid) if valid && pid > 0 && i32::try_from(pid).is_ok() => Ok(pid),
        _ => Err(Error::Usage(format!(
            "invalid PID '{word}': expected a process ID (a positive number)"
        ))),
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Identity {
    pub pid: u32,
    /// The VRF, or null for the default VRF.
    pub vrf: Option<String>,
    /// The process's cgroup v2 path.
    pub cgroup: String,
}

/// Text: the VRF name, or nothing for the default VRF (as `ip vrf identify`). JSON: an object.
pub fn render_identity(identity: &Identity, json: bool) -> String {
    if json {
        return serde_json::to_string(identity)
            .map(|s| s + "\n")
            .unwrap_or_default();
    }
    match &identity.vrf {
        Some(vrf) => format!("{vrf}\n"),
        None => String::new(),
    }
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProcessEntry {
    pub pid: u32,
    pub comm: String,
}

pub fn pids(name: &OsString, json: bool, links: &mut dyn LinkSource) -> Result<String> {
    let vrf = match Target::vrf(name)? {
        Target::Default => return Err(Error::Usage("`pids` takes a VRF name, not default".into())),
        target => target,
    };
    // Like iproute2: the name must be a VRF here.
    let binding = target::resolve(&vrf, links)?;
    let leaf = binding.leaf.unwrap_or_default();
    let root = cgroup::CgroupRoot::open()?;
    let (access, _) = root.access_root();
    let netns_dir = cgroup::netns_name("self")?.map(|n| format!("{n}-ns"));
    let mut found = Vec::new();
    walk_vrf_dirs(access, &leaf, netns_dir.as_deref(), 0, &mut found);
    found.sort();
    found.dedup();
    Ok(render_pids(&found, json))
}

/// iproute2's `recurse_dir()`: in every directory that has a `vrf` child, read
/// `vrf/NAME/cgroup.procs` (only below `<netns>-ns` when run in a named netns); descend into
/// everything else.
fn walk_vrf_dirs(
    dir: &Path,
    leaf: &str,
    netns_dir: Option<&str>,
    depth: usize,
    out: &mut Vec<ProcessEntry>,
) {
    // cgroup trees are shallow; the bound guards against a pathological one.
    if depth > 64 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        if entry.file_name() == VRF_DIR {
            let here = dir.file_name().and_then(|n| n.to_str());
            if netns_dir.is_none() || here == netns_dir {
                let leaf_dir = entry.path().join(leaf);
                read_procs(&leaf_dir.join(CGROUP_PROCS), out);
                // --strict runs live in the VRF cgroup's `strict` child.
                read_procs(&leaf_dir.join(cgroup::STRICT_DIR).join(CGROUP_PROCS), out);
            }
            continue;
        }
        walk_vrf_dirs(&entry.path(), leaf, netns_dir, depth + 1, out);
    }
}

fn read_procs(path: &Path, out: &mut Vec<ProcessEntry>) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    for pid in text.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim_end().to_owned())
            .unwrap_or_else(|_| "<terminated?>".to_owned());
        out.push(ProcessEntry { pid, comm });
    }
}

/// Text: `ip vrf pids`' `%5s  %s` lines. JSON: an array of {pid, comm}.
pub fn render_pids(entries: &[ProcessEntry], json: bool) -> String {
    if json {
        return serde_json::to_string(entries)
            .map(|s| s + "\n")
            .unwrap_or_default();
    }
    let mut out = String::new();
    for e in entries {
        let _ = writeln!(out, "{:>5}  {}", e.pid, e.comm);
    }
    out
}

/// `move PID VRF|default`: the sockets the process creates from now on use the VRF.
pub fn move_process(pid: &str, vrf: &OsString, log: &Log) -> Result<()> {
    let pid = parse_pid(pid)?;
    let target = Target::vrf(vrf)?;
    // Hold the process by a pidfd (Linux 5.3) from before anything is read about it, so a
    // PID that is recycled meanwhile is noticed instead of moving a stranger.
    let process = Pidfd::open(pid)?;
    let proc_dir = format!("/proc/{pid}");
    let stat = fs::File::open(format!("{proc_dir}/stat"))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NoSuchProcess(pid),
            _ => Error::os(format!("cannot read {proc_dir}/stat"), e),
        })
        .and_then(|file| {
            Stat::from_read(file).map_err(|e| {
                Error::os(
                    format!("cannot parse {proc_dir}/stat"),
                    std::io::Error::other(e),
                )
            })
        })?;
    if stat.flags & PF_KTHREAD != 0 {
        return Err(Error::refused(
            format!("cannot move PID {pid}"),
            format!(
                "it is a kernel thread ({}), and only user processes can be moved",
                stat.comm
            ),
        ));
    }
    // The ifindex is only meaningful in the namespace it was looked up in.
    let same_netns = match (
        fs::metadata("/proc/self/ns/net"),
        fs::metadata(format!("{proc_dir}/ns/net")),
    ) {
        (Ok(own), Ok(theirs)) => own.dev() == theirs.dev() && own.ino() == theirs.ino(),
        (_, Err(e)) => return Err(Error::os(format!("cannot read {proc_dir}/ns/net"), e)),
        (Err(e), _) => return Err(Error::os("cannot read /proc/self/ns/net", e)),
    };
    if !same_netns {
        return Err(Error::refused(
            format!("cannot move PID {pid}"),
            "it is in another network namespace",
        )
        .hint("run vrfexec move inside it (ip netns exec NAME vrfexec move ...)"));
    }
    if target != Target::Default {
        crate::sys::privilege::check_bpf_capabilities()?;
    }
    let binding = match &target {
        Target::Default => Binding::UNBOUND,
        _ => target::resolve(&target, &mut RtNetlink::open()?)?,
    };
    let subject = Subject::process(pid)?;
    log.step(format_args!("moving PID {pid} from {}", subject.cgroup));
    process.still_there(pid)?;
    place::place(&subject, &binding, false, log)?;
    // Alive now, it was alive at the write: its number cannot have been given to another.
    process.still_there(pid).map_err(|_| {
        Error::refused(
            format!("cannot move PID {pid}"),
            "it exited while it was being moved",
        )
        .hint(format!(
            "if the number was reused at once, check the new process with `vrfexec identify {pid}`"
        ))
    })
}

/// A process held by a pidfd, where the kernel has them.
struct Pidfd(Option<std::os::fd::OwnedFd>);

impl Pidfd {
    fn open(pid: u32) -> Result<Self> {
        let pid = libc::pid_t::try_from(pid).map_err(|_| Error::NoSuchProcess(pid))?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let err = match crate::sys::fd::owned(rc) {
            Ok(fd) => return Ok(Self(Some(fd))),
            Err(err) => err,
        };
        match err.raw_os_error() {
            // Before 5.3: no pidfd; the PID is checked by /proc as before.
            Some(libc::ENOSYS) => Ok(Self(None)),
            Some(libc::ESRCH) => Err(Error::NoSuchProcess(pid.unsigned_abs())),
            _ => Err(Error::os(format!("cannot open PID {pid}"), err)),
        }
    }

    /// Fails if the process has exited.
    fn still_there(&self, pid: u32) -> Result<()> {
        let Some(fd) = &self.0 else {
            return Ok(());
        };
        use std::os::fd::AsRawFd as _;
        // SAFETY: signal 0 with no siginfo only checks the process; the fd is ours.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::NoSuchProcess(pid))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_parse_strictly() {
        assert_eq!(parse_pid("1").expect("1"), 1);
        assert_eq!(parse_pid("4194304").expect("max"), 4_194_304);
        for bad in [
            "",
            "0",
            "-1",
            "+5",
            "12a",
            "abc",
            " 7",
            "99999999999",
            "2147483648",
        ] {
            let err = parse_pid(bad).expect_err(bad);
            assert_eq!(err.exit_code(), 125);
            assert!(err.to_string().contains("invalid PID"), "{bad}: {err}");
        }
    }

    #[test]
    fn identity_text_is_the_vrf_or_nothing_and_json_is_an_object() {
        let red = Identity {
            pid: 42,
            vrf: Some("red".into()),
            cgroup: "/x/vrf/red".into(),
        };
        assert_eq!(render_identity(&red, false), "red\n");
        assert_eq!(
            render_identity(&red, true),
            "{\"pid\":42,\"vrf\":\"red\",\"cgroup\":\"/x/vrf/red\"}\n"
        );
        let default = Identity {
            pid: 1,
            vrf: None,
            cgroup: "/init.scope".into(),
        };
        assert_eq!(render_identity(&default, false), "");
        assert!(render_identity(&default, true).contains("\"vrf\":null"));
    }

    #[test]
    fn pids_render_like_iproute2() {
        let entries = vec![
            ProcessEntry {
                pid: 7,
                comm: "sleep".into(),
            },
            ProcessEntry {
                pid: 12345,
                comm: "curl".into(),
            },
        ];
        assert_eq!(render_pids(&entries, false), "    7  sleep\n12345  curl\n");
        assert_eq!(
            render_pids(&entries, true),
            "[{\"pid\":7,\"comm\":\"sleep\"},{\"pid\":12345,\"comm\":\"curl\"}]\n"
        );
        assert_eq!(render_pids(&[], false), "");
    }

    #[test]
    fn walk_finds_vrf_cgroups_at_any_depth_and_honours_netns() {
        let base = std::env::temp_dir().join(format!("vrfexec-walk-{}", std::process::id()));
        let mk = |rel: &str, procs: &str| {
            let dir = base.join(rel);
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(dir.join(CGROUP_PROCS), procs).expect("write");
        };
        mk("a/vrf/red", "1\n");
        mk("b/c/vrf/red", "2\n");
        mk("b/r-ns/vrf/red", "3\n");
        mk("b/c/vrf/blue", "4\n");
        let mut all = Vec::new();
        walk_vrf_dirs(&base, "red", None, 0, &mut all);
        let mut pids: Vec<u32> = all.iter().map(|e| e.pid).collect();
        pids.sort();
        assert_eq!(pids, [1, 2, 3]);
        let mut in_ns = Vec::new();
        walk_vrf_dirs(&base, "red", Some("r-ns"), 0, &mut in_ns);
        assert_eq!(in_ns.iter().map(|e| e.pid).collect::<Vec<_>>(), [3]);
        fs::remove_dir_all(&base).expect("cleanup");
    }
}

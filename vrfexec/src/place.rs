//! Putting a process into a VRF: the steps `exec` (this process) and `move` (another one)
//! share. The cgroup is computed from the *placed* process's own cgroup and named network
//! namespace, so a moved service stays inside its systemd unit, as vrfexec itself does.
use std::os::fd::AsFd as _;

use crate::{
    bpf, cgroup,
    error::{Error, Result},
    privilege,
    target::Binding,
    Log,
};

/// The process to place and where it is now.
pub struct Subject {
    pub pid: u32,
    /// Its cgroup v2 path.
    pub cgroup: String,
    /// Its named network namespace, if any.
    pub netns: Option<String>,
}

impl Subject {
    pub fn current() -> Result<Self> {
        Self::from_proc("self", std::process::id())
    }

    pub fn process(pid: u32) -> Result<Self> {
        Self::from_proc(&pid.to_string(), pid)
    }

    fn from_proc(proc_dir: &str, pid: u32) -> Result<Self> {
        let path = format!("/proc/{proc_dir}/cgroup");
        let text = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NoSuchProcess(pid)
            } else {
                Error::os(format!("cannot read {path}"), e)
            }
        })?;
        let cgroup = cgroup::unified_path(&text)
            .map_err(|e| Error::os(format!("cannot parse {path}"), e))?
            .ok_or_else(|| Error::Cgroup {
                what: "no cgroup v2 path in",
                path: path.clone().into(),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
                hint: "vrfexec needs cgroup v2 (the unified hierarchy)",
            })?;
        Ok(Self {
            pid,
            cgroup,
            netns: cgroup::netns_name(proc_dir),
        })
    }
}

/// Creates the VRF cgroup for `subject`, attaches the program for `binding` (unless it is the
/// default VRF) and moves the subject in. On failure, directories made here are removed.
pub fn place(subject: &Subject, binding: &Binding, log: &Log) -> Result<()> {
    let cgroup_path = cgroup::vrf_cgroup(
        &subject.cgroup,
        subject.netns.as_deref(),
        binding.leaf.as_deref(),
    );
    let root = cgroup::CgroupRoot::open()?;
    let placement = root.create(&cgroup_path)?;
    log.step(format_args!("cgroup: {}", placement.display().display()));
    if binding.ifindex != 0 {
        let memlock = privilege::raise_memlock_if_needed()?;
        let mut program = bpf::load(binding.ifindex)?;
        let dir = placement.open_dir()?;
        program.attach_legacy(dir.as_fd())?;
        memlock.restore();
        log.step(format_args!(
            "attached cgroup/sock_create (ifindex {})",
            binding.ifindex
        ));
    }
    placement.join(subject.pid)?;
    placement.keep();
    Ok(())
}

//! Putting a process into a VRF: the steps `exec` (this process) and `move` (another one)
//! share. The cgroup is computed from the *placed* process's own cgroup and named network
//! namespace, so a moved service stays inside its systemd unit, as vrfexec itself does.
use std::os::fd::AsFd as _;

use super::{bpf, cgroup, lock, target::Binding};
use crate::{
    error::{Error, Result},
    log::Log,
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
        let text = crate::sys::read_proc(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NoSuchProcess(pid)
            } else {
                Error::os(format!("cannot read {path}"), e)
            }
        })?;
        let cgroup = cgroup::unified_path(&text)
            .map_err(|e| Error::os(format!("cannot parse {path}"), e))?
            .ok_or_else(|| {
                Error::refused(
                    format!("cannot place PID {pid} in a cgroup"),
                    format!("{path} has no cgroup v2 line (0::)"),
                )
                .hint("vrfexec needs cgroup v2 (the unified hierarchy); boot with it")
            })?;
        Ok(Self {
            pid,
            cgroup,
            netns: cgroup::netns_name(proc_dir)?,
        })
    }
}

/// The warm path or the cold one: leaves vrfexec's program for `ifindex` attached to the
/// (locked) cgroup at `dir`, loading and attaching it only if it is not already there.
fn ensure_program(dir: &std::os::fd::OwnedFd, ifindex: u32, log: &Log) -> Result<()> {
    if bpf::attached_ifindex(dir.as_fd()) == Some(ifindex) {
        log.step(format_args!(
            "warm: vrfexec's program for ifindex {ifindex} is attached"
        ));
        return Ok(());
    }
    let memlock = bpf::raise_memlock_if_needed()?;
    let mut program = bpf::load(ifindex)?;
    program.attach_legacy(dir.as_fd())?;
    memlock.restore();
    log.step(format_args!(
        "attached cgroup/sock_create (ifindex {ifindex})"
    ));
    Ok(())
}

/// Creates the VRF cgroup for `subject`, attaches the program for `binding` (unless it is the
/// default VRF) and moves the subject in. On failure, directories made here are removed.
///
/// The cgroup directory is locked (flock) from just after it is made until the subject has
/// joined: concurrent runs on one VRF check and attach one at a time, and `vrfexec gc`, which
/// takes the same lock, cannot remove the cgroup under a run. If gc removed it between mkdir
/// and the lock, the directory is made again.
///
/// With `strict`, the subject joins `<leaf>/strict`, a child of the VRF's cgroup carrying the
/// setsockopt program that refuses rebinding; it inherits the VRF's sock_create program from
/// the parent, and runs without --strict in the same VRF stay unaffected.
///
/// Returns the VRF's cgroup path (the parent of the `strict` child), for `verify`.
pub fn place(subject: &Subject, binding: &Binding, strict: bool, log: &Log) -> Result<String> {
    if strict && binding.ifindex == 0 {
        return Err(Error::Usage(
            "--strict needs a VRF or --dev, not default".into(),
        ));
    }
    let leaf_path = cgroup::vrf_cgroup(
        &subject.cgroup,
        subject.netns.as_deref(),
        binding.leaf.as_deref(),
    );
    let cgroup_path = if strict {
        format!("{leaf_path}/{}", cgroup::STRICT_DIR)
    } else {
        leaf_path.clone()
    };
    let root = cgroup::CgroupRoot::open()?;
    if join_warm(
        &root,
        subject,
        binding,
        strict,
        &leaf_path,
        &cgroup_path,
        log,
    )? {
        return Ok(leaf_path);
    }
    // Held until the subject has joined: gc cannot remove the cgroup under this run.
    let held = lock::acquire(&leaf_path)?;
    let mut attempts = 0;
    let (placement, dir) = loop {
        let placement = root.create(&cgroup_path)?;
        let dir = if strict {
            placement.open_parent()?
        } else {
            placement.open_dir()?
        };
        if cgroup::is_live(&dir) {
            break (placement, dir);
        }
        attempts += 1;
        if attempts == 3 {
            return Err(Error::refused(
                format!("cannot keep cgroup {}", placement.display().display()),
                "it was removed as fast as it was made, three times",
            )
            .hint("stop whatever removes it (a `vrfexec gc` loop?) and run again"));
        }
    };
    log.step(format_args!("cgroup: {}", placement.display().display()));
    root.check_levels(&vrf_base(subject), &cgroup_path)?;
    if binding.ifindex != 0 {
        ensure_program(&dir, binding.ifindex, log)?;
    }
    if strict {
        let strict_dir = placement.open_dir()?;
        if bpf::strict_attached(strict_dir.as_fd()) {
            log.step(format_args!("warm: the strict program is attached"));
        } else {
            let mut program = bpf::load_strict()?;
            program.attach_legacy(strict_dir.as_fd())?;
            log.step(format_args!("attached cgroup/setsockopt (strict)"));
        }
        placement.join(&strict_dir, subject.pid)?;
    } else {
        placement.join(&dir, subject.pid)?;
    }
    placement.keep();
    drop(dir);
    drop(held);
    Ok(leaf_path)
}

/// The warm path, without the lock: when the cgroup exists with vrfexec's program for this
/// ifindex (and the strict one), and its levels are root's, the subject joins it. Ok(false)
/// sends the run down the locked path, which makes or repairs whatever is missing.
///
/// No lock is needed to join: what the lock keeps apart is making, repairing and removing.
/// gc removes only a cgroup with no process in it, so once the subject has joined, the cgroup
/// stays; if gc removed it after it was opened here, the write to its cgroup.procs fails and
/// the locked path makes it again. A program replaced meanwhile is one for the same ifindex
/// (any other is the probe's business, after placement).
fn join_warm(
    root: &cgroup::CgroupRoot,
    subject: &Subject,
    binding: &Binding,
    strict: bool,
    leaf_path: &str,
    cgroup_path: &str,
    log: &Log,
) -> Result<bool> {
    let Ok(dir) = root.open_existing(cgroup_path) else {
        return Ok(false);
    };
    if binding.ifindex != 0 {
        let leaf = if strict {
            match root.open_existing(leaf_path) {
                Ok(leaf) => leaf,
                Err(_) => return Ok(false),
            }
        } else {
            match dir.try_clone() {
                Ok(leaf) => leaf,
                Err(_) => return Ok(false),
            }
        };
        if bpf::attached_ifindex(leaf.as_fd()) != Some(binding.ifindex) {
            return Ok(false);
        }
    }
    if strict && !bpf::strict_attached(dir.as_fd()) {
        return Ok(false);
    }
    root.check_levels(&vrf_base(subject), cgroup_path)?;
    if cgroup::join_dir(&dir, subject.pid).is_err() {
        return Ok(false);
    }
    log.step(format_args!(
        "warm: joined {cgroup_path}, vrfexec's program{} attached",
        if strict { "s are" } else { " is" }
    ));
    Ok(true)
}

/// The cgroup below which vrfexec makes its levels for `subject`.
fn vrf_base(subject: &Subject) -> String {
    cgroup::vrf_base(&subject.cgroup, subject.netns.as_deref())
}

/// systemd runs a delegating unit's (`Delegate=yes`) control processes, ExecCondition= and
/// ExecStartPre= among them, in `<unit>/.control`, and its main process in `<unit>` or in
/// `<unit>/<DelegateSubgroup=>`: the unit's cgroup is the parent, whose program all of them
/// inherit. Binding `.control` alone would pass its own probe and leave the service unbound.
const SYSTEMD_CONTROL_CGROUP: &str = "/.control";

/// The cgroup `attach` binds for a process in `cgroup`: the unit's own.
pub fn unit_cgroup(cgroup: &str) -> &str {
    match cgroup.strip_suffix(SYSTEMD_CONTROL_CGROUP) {
        Some("") => "/",
        Some(unit) => unit,
        None => cgroup,
    }
}

/// `attach`: binds the cgroup `subject` is in (a systemd unit's, see [`unit_cgroup`]) to
/// `binding`, in place; returns the cgroup bound.
pub fn attach_in_place(subject: &Subject, binding: &Binding, log: &Log) -> Result<String> {
    let cgroup = unit_cgroup(&subject.cgroup);
    if cgroup == "/" {
        return Err(Error::refused(
            "cannot attach to the cgroup vrfexec runs in",
            "that is the root cgroup (the whole system)",
        )
        .hint("run it from a unit's ExecCondition=+"));
    }
    if cgroup::vrf_of_path(cgroup).is_some() {
        return Err(Error::refused(
            format!("cannot attach to cgroup {cgroup}"),
            "it is already a VRF cgroup",
        )
        .hint("attach is for a unit's own cgroup: run it from the unit's ExecCondition=+"));
    }
    let root = cgroup::CgroupRoot::open()?;
    let _held = lock::acquire(cgroup)?;
    let dir = root.open_existing(cgroup)?;
    log.step(format_args!("cgroup: {cgroup}"));
    ensure_program(&dir, binding.ifindex, log)?;
    Ok(cgroup.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(cgroup: &str, netns: Option<&str>) -> Subject {
        Subject {
            pid: 1,
            cgroup: cgroup.into(),
            netns: netns.map(Into::into),
        }
    }

    #[test]
    fn attach_binds_the_unit_not_its_control_subgroup() {
        assert_eq!(
            unit_cgroup("/system.slice/docker.service/.control"),
            "/system.slice/docker.service"
        );
        assert_eq!(
            unit_cgroup("/system.slice/ssh.service"),
            "/system.slice/ssh.service"
        );
        assert_eq!(unit_cgroup("/a/x.control"), "/a/x.control");
        assert_eq!(unit_cgroup("/.control"), "/");
    }

    #[test]
    fn the_base_is_the_callers_cgroup_cut_before_vrf() {
        assert_eq!(
            vrf_base(&subject("/user.slice/s.scope", None)),
            "/user.slice/s.scope"
        );
        assert_eq!(vrf_base(&subject("/a/vrf/red", None)), "/a");
        assert_eq!(vrf_base(&subject("/", Some("r"))), "/");
        assert_eq!(vrf_base(&subject("/a/r-ns/vrf/red", Some("r"))), "/a");
    }
}

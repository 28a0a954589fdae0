//! Capabilities: which ones vrfexec has, and when they are effective.
//!
//! Loading a cgroup socket program needs CAP_BPF (CAP_SYS_ADMIN before Linux 5.8) and, being a
//! networking program type, CAP_NET_ADMIN; attaching it needs CAP_NET_ADMIN. Checking first lets
//! vrfexec name the missing capability instead of reporting a bare EPERM after it has created
//! a cgroup.
//!
//! In policy mode (the capable build run by a user) capabilities are effective only around the
//! steps that need them: [`lower`] empties the effective set at start, so parsing, user and
//! group lookups, PATH resolution and netlink run with the caller's own rights (and answer only
//! what the caller could ask), and [`with`] raises the named ones from the permitted set around
//! one step.
use std::sync::atomic::{AtomicBool, Ordering};

use caps::{CapSet, Capability};

use crate::error::{Error, Result};

/// Who runs vrfexec, in which mode; decided once at start.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// vrfexec runs with privileges its caller does not have: policy mode. That is a caller
    /// who is not root, given capabilities or root by the file (file capabilities or setuid:
    /// the kernel sets AT_SECURE), or a root caller under SECBIT_NOROOT, who has no
    /// capabilities for being root, given them by the file's (see [`noroot_gained_caps`]).
    pub policy_mode: bool,
}

impl Caller {
    pub fn current() -> Self {
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
        let root = nix::unistd::getuid().is_root();
        Caller {
            policy_mode: (secure && !root) || (root && noroot_gained_caps()),
        }
    }
}

/// Whether this process, run by root under SECBIT_NOROOT, holds capabilities its caller did
/// not have. The kernel sets no AT_SECURE for a real uid of 0, yet a root that has given up
/// root's capabilities (`SecureBits=noroot` in a unit, `setpriv --securebits +noroot`) gets
/// the permitted capabilities of a file it executes all the same: the capable build's, were
/// they on this binary. Under SECBIT_NOROOT an exec grants root nothing for being root; the
/// permitted set then comes from the file's capabilities, or from the caller's ambient set,
/// which exec clears for a file with capabilities. So: permitted, and no ambient, under
/// SECBIT_NOROOT. One prctl(2) for every root run; the rest only under SECBIT_NOROOT.
fn noroot_gained_caps() -> bool {
    // SAFETY: PR_GET_SECUREBITS takes no pointer and only returns the calling thread's bits.
    let bits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS) };
    // An error (no kernel returns one for this option) reads as no securebits: root as before.
    if bits < 0 || bits & libc::SECBIT_NOROOT == 0 {
        return false;
    }
    let permitted = caps::read(None, CapSet::Permitted).map_or(true, |set| !set.is_empty());
    let ambient = caps::read(None, CapSet::Ambient).is_ok_and(|set| !set.is_empty());
    permitted && !ambient
}

/// Set once [`lower`] has run: [`with`] then raises what a step needs.
static LOWERED: AtomicBool = AtomicBool::new(false);

/// What making the per-VRF mount namespace needs (`/etc/vrf/<VRF>/`).
pub const MOUNT: &[Capability] = &[Capability::CAP_SYS_ADMIN];

/// What placing a run in a VRF cgroup needs: open the root-only lock, make cgroup levels in
/// root's tree and give them to root, write cgroup.procs, and query, load and attach BPF
/// (CAP_SYS_ADMIN also mounts cgroup2 privately and reads programs by id; CAP_SYS_RESOURCE
/// raises RLIMIT_MEMLOCK's hard limit for the load on kernels before 5.11).
pub const PLACE: &[Capability] = &[
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_CHOWN,
    Capability::CAP_BPF,
    Capability::CAP_NET_ADMIN,
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_SYS_RESOURCE,
];

/// Empties the effective set; the permitted set keeps what [`with`] may raise.
pub fn lower() -> Result<()> {
    caps::clear(None, CapSet::Effective).map_err(|e| {
        Error::refused("cannot lower capabilities", e.to_string()).hint("nothing was run")
    })?;
    LOWERED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Runs `step` with `needed` effective (those of them that are permitted), then empties the
/// effective set again. Without [`lower`] (root) it just runs `step`.
pub fn with<T>(needed: &[Capability], step: impl FnOnce() -> Result<T>) -> Result<T> {
    if !LOWERED.load(Ordering::Relaxed) {
        return step();
    }
    let permitted = caps::read(None, CapSet::Permitted).unwrap_or_default();
    for cap in needed.iter().filter(|c| permitted.contains(c)) {
        caps::raise(None, CapSet::Effective, *cap).map_err(|e| {
            Error::refused(format!("cannot raise {cap}"), e.to_string())
                .hint("the command was not run")
        })?;
    }
    let result = step();
    let lowered = caps::clear(None, CapSet::Effective);
    match (result, lowered) {
        (Ok(value), Ok(())) => Ok(value),
        (Err(err), _) => Err(err),
        (Ok(_), Err(e)) => Err(Error::refused("cannot lower capabilities", e.to_string())
            .hint("the command was not run")),
    }
}

/// Whether `cap` is there to use: effective, or permitted for [`with`] to raise.
fn has(cap: Capability) -> bool {
    let set = if LOWERED.load(Ordering::Relaxed) {
        CapSet::Permitted
    } else {
        CapSet::Effective
    };
    caps::has_cap(None, set, cap).unwrap_or(false)
}

/// Fails with the first missing capability needed to load and attach the program.
pub fn check_bpf_capabilities() -> Result<()> {
    // CAP_BPF is unknown to kernels before 5.8, where CAP_SYS_ADMIN covers BPF instead.
    if !has(Capability::CAP_BPF) && !has(Capability::CAP_SYS_ADMIN) {
        return Err(Error::MissingCapability {
            what: "cannot load the BPF program",
            cap: "CAP_BPF",
        });
    }
    if !has(Capability::CAP_NET_ADMIN) {
        return Err(Error::MissingCapability {
            what: "cannot load a cgroup socket program",
            cap: "CAP_NET_ADMIN",
        });
    }
    Ok(())
}

/// Fails unless CAP_SYS_ADMIN is there for the mount namespace of `/etc/vrf/<VRF>/`.
pub fn check_mount_capability() -> Result<()> {
    if has(Capability::CAP_SYS_ADMIN) {
        Ok(())
    } else {
        Err(Error::MissingCapability {
            what: "cannot mount the VRF's own /etc files",
            cap: "CAP_SYS_ADMIN",
        })
    }
}

//! What vrfexec needs from the kernel before it changes anything: capabilities, and on old
//! kernels a raised RLIMIT_MEMLOCK.
//!
//! Loading a cgroup socket program needs CAP_BPF (CAP_SYS_ADMIN before Linux 5.8) and, being a
//! networking program type, CAP_NET_ADMIN; attaching it needs CAP_NET_ADMIN. Checking first lets
//! vrfexec name the missing capability instead of reporting a bare EPERM after it has created
//! a cgroup. Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; the old limit is put back
//! before exec so the command inherits the caller's limits unchanged.
//!
//! In policy mode (the capable build run by a user) capabilities are effective only around the
//! steps that need them: [`lower`] empties the effective set at start, so parsing, user and
//! group lookups, PATH resolution and netlink run with the caller's own rights (and answer only
//! what the caller could ask), and [`with`] raises the named ones from the permitted set around
//! one step.
use std::sync::atomic::{AtomicBool, Ordering};

use caps::{CapSet, Capability};

use crate::error::{Error, Result};

/// Set once [`lower`] has run: [`with`] then raises what a step needs.
static LOWERED: AtomicBool = AtomicBool::new(false);

/// What placing a run in a VRF cgroup needs: open the root-only lock, make cgroup levels in
/// root's tree and give them to root, write cgroup.procs, and query, load and attach BPF
/// (CAP_SYS_ADMIN also mounts cgroup2 privately and reads programs by id).
pub const PLACE: &[Capability] = &[
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_CHOWN,
    Capability::CAP_BPF,
    Capability::CAP_NET_ADMIN,
    Capability::CAP_SYS_ADMIN,
];

/// Empties the effective set; the permitted set keeps what [`with`] may raise.
pub fn lower() -> Result<()> {
    caps::clear(None, CapSet::Effective)
        .map_err(|e| Error::Refused(format!("cannot lower capabilities: {e}; nothing was run")))?;
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
        caps::raise(None, CapSet::Effective, *cap)
            .map_err(|e| Error::Refused(format!("cannot raise {cap}: {e}; nothing was run")))?;
    }
    let result = step();
    let lowered = caps::clear(None, CapSet::Effective);
    match (result, lowered) {
        (Ok(value), Ok(())) => Ok(value),
        (Err(err), _) => Err(err),
        (Ok(_), Err(e)) => Err(Error::Refused(format!(
            "cannot lower capabilities: {e}; the command was not run"
        ))),
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

/// Kernel release as (major, minor), from uname.
pub fn kernel_version() -> Option<(u32, u32)> {
    let uts = nix::sys::utsname::uname().ok()?;
    parse_release(&uts.release().to_string_lossy())
}

fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// RLIMIT_MEMLOCK as it was before vrfexec raised it, to restore before exec.
pub struct MemlockRestore(Option<(libc::rlim_t, libc::rlim_t)>);

/// Raises RLIMIT_MEMLOCK to infinity on kernels that still charge BPF to it (< 5.11).
pub fn raise_memlock_if_needed() -> Result<MemlockRestore> {
    match kernel_version() {
        Some(version) if version >= (5, 11) => return Ok(MemlockRestore(None)),
        _ => {}
    }
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let old = getrlimit(Resource::RLIMIT_MEMLOCK)
        .map_err(|e| Error::os("cannot read RLIMIT_MEMLOCK", e.into()))?;
    setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY).map_err(|e| Error::Bpf {
        what: "cannot raise RLIMIT_MEMLOCK",
        reason: crate::error::os_text(&std::io::Error::from(e)),
        hint: "kernels before 5.11 charge BPF to it; run as root or raise it (ulimit -l unlimited)",
    })?;
    Ok(MemlockRestore(Some(old)))
}

impl MemlockRestore {
    pub fn restore(self) {
        if let Some((soft, hard)) = self.0 {
            // Lowering a limit cannot fail for lack of privilege; if it did, the command
            // merely keeps a higher limit.
            let _ = nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_MEMLOCK,
                soft,
                hard,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_parse() {
        assert_eq!(parse_release("6.1.0-28-amd64"), Some((6, 1)));
        assert_eq!(parse_release("5.10.0"), Some((5, 10)));
        assert_eq!(parse_release("4.19.0-27-cloud-amd64"), Some((4, 19)));
        assert_eq!(parse_release("garbage"), None);
        assert!(parse_release("5.10.0").expect("parse") < (5, 11));
        assert_eq!(parse_release("5.10.0-33-amd64\n"), Some((5, 10)));
        assert_eq!(parse_release("6.12.57+deb13-amd64"), Some((6, 12)));
    }
}

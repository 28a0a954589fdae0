//! What vrfexec needs from the kernel before it changes anything: capabilities, and on old
//! kernels a raised RLIMIT_MEMLOCK.
//!
//! Loading a cgroup socket program needs CAP_BPF (CAP_SYS_ADMIN before Linux 5.8) and, being a
//! networking program type, CAP_NET_ADMIN; attaching it needs CAP_NET_ADMIN. Checking first lets
//! vrfexec name the missing capability instead of reporting a bare EPERM after it has created
//! a cgroup. Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; the old limit is put back
//! before exec so the command inherits the caller's limits unchanged.
use caps::{CapSet, Capability};

use crate::error::{Error, Result};

fn has(cap: Capability) -> bool {
    caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false)
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
fn kernel_version() -> Option<(u32, u32)> {
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
    }
}

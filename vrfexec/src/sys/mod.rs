//! What vrfexec asks of the kernel below the VRF layer: rtnetlink, capabilities, interface
//! names, the kernel release and owned file descriptors. Nothing here knows about VRFs or
//! cgroups, and nothing here calls up into the rest of the crate.
pub mod fd;
pub mod names;
pub mod netlink;
pub mod privilege;

/// Reads a small /proc file whole: open, read until 0, close. `fs::read` and `read_to_end`
/// first ask the file's size (statx, lseek), which /proc reports as 0, and `fs::read` then
/// reads in chunks growing from 32 bytes: 6 to 11 syscalls for /proc/self/cgroup or
/// mountinfo where one page at a time takes 4.
pub fn read_proc(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut text = Vec::new();
    let mut page = [0u8; 4096];
    loop {
        match file.read(&mut page) {
            Ok(0) => return Ok(text),
            Ok(read) => text.extend_from_slice(page.get(..read).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The step of [`private_mount_namespace`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountNamespaceStep {
    /// unshare(CLONE_NEWNS).
    Unshare,
    /// Making `/` slave, recursively.
    Slave,
}

/// Moves this process into a mount namespace of its own whose mounts never reach the host:
/// propagation is made slave, recursively, so the host's later mounts still propagate in and
/// none of ours propagates out. Needs CAP_SYS_ADMIN.
pub fn private_mount_namespace() -> Result<(), (MountNamespaceStep, nix::errno::Errno)> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| (MountNamespaceStep::Unshare, e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| (MountNamespaceStep::Slave, e))
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

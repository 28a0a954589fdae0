//! Loading vrfexec's cgroup/sock_create program and attaching it so that it outlives exec.
//!
//! aya loads the program (with the VRF's ifindex set as a global), but on kernels >= 5.7 aya
//! 0.14 attaches cgroup programs through a bpf_link, and a link is detached when its last fd
//! closes, which exec does (link fds are close-on-exec). So vrfexec attaches with the legacy
//! BPF_PROG_ATTACH and flags 0, exactly as iproute2's `ip vrf exec` does: the cgroup itself
//! then holds the program until it is replaced or the cgroup is removed. Using the same mode as
//! iproute2 also makes the two tools interchangeable on one VRF: with flags 0 a second attach
//! replaces the first instead of failing or stacking.
use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
};

use aya::{programs::CgroupSock, Ebpf, EbpfLoader};

use crate::error::{Error, Result};

/// The eBPF object built from `vrfexec-ebpf` by build.rs.
static PROGRAM_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vrfexec"));

/// The program's function name in the object.
const PROGRAM_NAME: &str = "vrfexec_sock_create";

/// `BPF_PROG_ATTACH` from <linux/bpf.h> `enum bpf_cmd`.
const BPF_PROG_ATTACH: libc::c_long = 8;
/// `BPF_CGROUP_INET_SOCK_CREATE` from <linux/bpf.h> `enum bpf_attach_type`.
const BPF_CGROUP_INET_SOCK_CREATE: u32 = 2;

/// The BPF_PROG_ATTACH member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// A loaded (not yet attached) program bound to one ifindex.
pub struct Loaded {
    ebpf: Ebpf,
}

/// Loads the program with `IFINDEX` set to `ifindex`.
pub fn load(ifindex: u32) -> Result<Loaded> {
    let mut ebpf = EbpfLoader::new()
        .override_global("IFINDEX", &ifindex, true)
        .load(PROGRAM_OBJECT)
        .map_err(|e| load_error(&e))?;
    let program: &mut CgroupSock = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or_else(|| Error::Bpf {
            what: "cannot load the BPF program",
            reason: format!("{PROGRAM_NAME} is missing from the embedded object"),
            hint: "the build is broken; rebuild vrfexec",
        })?
        .try_into()
        .map_err(|e| load_error(&e))?;
    program.load().map_err(|e| load_error(&e))?;
    Ok(Loaded { ebpf })
}

impl Loaded {
    /// Attaches to the cgroup open at `cgroup` with BPF_PROG_ATTACH, flags 0 (replacing the
    /// program already there, ours or iproute2's).
    pub fn attach_legacy(&mut self, cgroup: BorrowedFd<'_>) -> Result<()> {
        let program: &mut CgroupSock = self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| Error::Bpf {
                what: "cannot attach the BPF program",
                reason: "the program is not loaded".into(),
                hint: "",
            })?;
        let prog_fd = program.fd().map_err(|e| load_error(&e))?;
        prog_attach(prog_fd.as_fd(), cgroup, BPF_CGROUP_INET_SOCK_CREATE).map_err(|source| {
            let hint = match source.raw_os_error() {
                Some(libc::EPERM) => "a parent cgroup may hold a program that forbids overrides, or CAP_NET_ADMIN is missing",
                Some(libc::EINVAL) => "is the kernel built with CONFIG_CGROUP_BPF?",
                _ => "",
            };
            Error::Bpf {
                what: "cannot attach the BPF program to the cgroup",
                reason: crate::error::os_text(&source),
                hint,
            }
        })
    }
}

fn prog_attach(prog: BorrowedFd<'_>, target: BorrowedFd<'_>, attach_type: u32) -> io::Result<()> {
    let as_u32 = |fd: BorrowedFd<'_>| u32::try_from(fd.as_raw_fd()).map_err(io::Error::other);
    let attr = ProgAttachAttr {
        target_fd: as_u32(target)?,
        attach_bpf_fd: as_u32(prog)?,
        attach_type,
        attach_flags: 0,
        replace_bpf_fd: 0,
    };
    // SAFETY: attr is a valid, fully initialised prefix of union bpf_attr for BPF_PROG_ATTACH,
    // the size passed is its size, and both fds are open for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttachAttr,
            std::mem::size_of::<ProgAttachAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One line from aya's error chain (the verifier log, if any, is left out: it is many lines
/// and says nothing a user can act on for this fixed program).
fn load_error(err: &dyn std::error::Error) -> Error {
    let mut reason = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = inner.source();
    }
    let reason = reason.lines().next().unwrap_or_default();
    // io errors inside aya's chain print " (os error N)"; C tools print only the text.
    let reason = match reason.find(" (os error ") {
        Some(at) => {
            let rest = &reason[at + 11..];
            let after = rest.find(')').map(|end| &rest[end + 1..]).unwrap_or("");
            format!("{}{after}", &reason[..at])
        }
        None => reason.to_owned(),
    };
    let hint = if reason.contains("Operation not permitted") {
        "run as root, or with CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN on kernels before 5.8)"
    } else {
        ""
    };
    Error::Bpf {
        what: "cannot load the BPF program",
        reason,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_object_is_an_ebpf_elf_with_our_program() {
        assert_eq!(&PROGRAM_OBJECT[..4], b"\x7fELF");
        // e_machine == EM_BPF (247), little endian.
        assert_eq!(
            u16::from_le_bytes([PROGRAM_OBJECT[18], PROGRAM_OBJECT[19]]),
            247
        );
        let has = |needle: &[u8]| PROGRAM_OBJECT.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"cgroup/sock_create"));
        assert!(has(PROGRAM_NAME.as_bytes()));
        assert!(has(b"IFINDEX"));
    }

    #[test]
    fn attr_layout_matches_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<ProgAttachAttr>(), 20);
    }
}

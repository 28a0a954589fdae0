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

/// The program's function name in the object, and its name in the kernel (at most 15 bytes,
/// so the kernel keeps all of it): how vrfexec recognises its own program on a cgroup.
pub const PROGRAM_NAME: &str = "vrfexec_bind";

// Commands from <linux/bpf.h> `enum bpf_cmd`.
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
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

/// The prefix of `union bpf_attr` for BPF_PROG_QUERY.
#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// BPF_PROG_GET_FD_BY_ID / BPF_MAP_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
#[derive(Default)]
struct InfoByFdAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// BPF_MAP_LOOKUP_ELEM.
#[repr(C)]
#[derive(Default)]
struct MapLookupAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The leading fields of `struct bpf_prog_info` (the kernel fills what fits in info_len).
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// The leading fields of `struct bpf_map_info`.
#[repr(C)]
#[derive(Default)]
struct MapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
}

/// bpf(2) with a command-specific attr; returns the syscall's non-negative result.
fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: every attr type passed here is a #[repr(C)] prefix of union bpf_attr for `cmd`,
    // fully initialised, and any pointers inside it point to live buffers of the sizes given.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

fn fd_from(rc: libc::c_long) -> io::Result<std::os::fd::OwnedFd> {
    let raw = i32::try_from(rc).map_err(io::Error::other)?;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) })
}

/// The warm-path check: if the program attached to the cgroup at `cgroup` is vrfexec's, the
/// ifindex it binds sockets to (read back from its .rodata map, which holds only IFINDEX).
/// None for no program, iproute2's (unnamed) program, or anything unreadable: the caller
/// then takes the cold path, which replaces whatever is there.
pub fn attached_ifindex(cgroup: BorrowedFd<'_>) -> Option<u32> {
    let mut ids = [0u32; 4];
    let mut query = ProgQueryAttr {
        target_fd: u32::try_from(cgroup.as_raw_fd()).ok()?,
        attach_type: BPF_CGROUP_INET_SOCK_CREATE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_QUERY, &mut query).ok()?;
    if query.prog_cnt != 1 {
        return None;
    }
    let mut get = GetFdByIdAttr {
        id: ids[0],
        ..Default::default()
    };
    let prog = fd_from(sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut get).ok()?).ok()?;
    let mut map_ids = [0u32; 4];
    let mut info = ProgInfo {
        nr_map_ids: map_ids.len() as u32,
        map_ids: map_ids.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut by_fd = InfoByFdAttr {
        bpf_fd: u32::try_from(prog.as_raw_fd()).ok()?,
        info_len: std::mem::size_of::<ProgInfo>() as u32,
        info: &mut info as *mut ProgInfo as u64,
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut by_fd).ok()?;
    let name_len = info
        .name
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(info.name.len());
    if &info.name[..name_len] != PROGRAM_NAME.as_bytes() || info.nr_map_ids != 1 {
        return None;
    }
    let mut get = GetFdByIdAttr {
        id: map_ids[0],
        ..Default::default()
    };
    let map = fd_from(sys_bpf(BPF_MAP_GET_FD_BY_ID, &mut get).ok()?).ok()?;
    let mut map_info = MapInfo::default();
    let mut by_fd = InfoByFdAttr {
        bpf_fd: u32::try_from(map.as_raw_fd()).ok()?,
        info_len: std::mem::size_of::<MapInfo>() as u32,
        info: &mut map_info as *mut MapInfo as u64,
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut by_fd).ok()?;
    if map_info.key_size != 4 || map_info.value_size != 4 || map_info.max_entries != 1 {
        return None;
    }
    let key = 0u32;
    let mut value = 0u32;
    let mut lookup = MapLookupAttr {
        map_fd: u32::try_from(map.as_raw_fd()).ok()?,
        key: &key as *const u32 as u64,
        value: &mut value as *mut u32 as u64,
        ..Default::default()
    };
    sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut lookup).ok()?;
    Some(value)
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
    let mut attr = attr;
    sys_bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
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
        assert_eq!(std::mem::size_of::<ProgQueryAttr>(), 32);
        assert_eq!(std::mem::offset_of!(ProgInfo, nr_map_ids), 52);
        assert_eq!(std::mem::offset_of!(ProgInfo, name), 64);
        assert_eq!(std::mem::offset_of!(MapInfo, name), 24);
        assert!(
            PROGRAM_NAME.len() < 16,
            "the kernel keeps 15 bytes of a program name"
        );
    }
}

//! Loading vrfexec's cgroup/sock_create program and attaching it so that it outlives exec.
//!
//! The program reads the VRF's ifindex from a global (IFINDEX, in `.rodata`). aya 0.14 would attach
//! cgroup programs through a bpf_link on kernels >= 5.7, and a link is detached when its last fd
//! closes, which exec does (link fds are close-on-exec). So vrfexec attaches with the legacy
//! BPF_PROG_ATTACH and flags 0, exactly as iproute2's `ip vrf exec` does: the cgroup itself then
//! holds the program until it is replaced or the cgroup is removed. Using the same mode as iproute2
//! also makes the two tools interchangeable on one VRF: with flags 0 a second attach replaces the
//! first instead of failing or stacking.
//!
//! The object is parsed and relocated at build time (build.rs, with aya-obj), so a cold load is
//! five bpf(2) calls and no parsing: create the `.rodata` map, write IFINDEX, freeze it, load
//! the finished instructions with the map's fd written in, attach. aya 0.14's `EbpfLoader`
//! would parse the kernel's whole BTF (`/sys/kernel/btf/vmlinux`) in its constructor and run a
//! dozen feature probes before the load, and even parsing the object at run time was most of
//! the code a cold run executed: for a launcher that starts once per command, start-up is
//! the product's speed.
use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
};

use crate::error::{Error, Result};

/// A map of the object, as build.rs found it.
pub struct MapDef {
    name: &'static str,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    /// `.rodata`: frozen after it is filled, as aya does, so the verifier treats it as constant.
    freeze: bool,
    /// Initial contents (one element, key 0), if any.
    data: &'static [u8],
    /// Where IFINDEX sits in `data`, for the map that holds it.
    ifindex_offset: Option<usize>,
}

/// A relocated program: instructions, license, and (instruction, map) pairs whose immediate
/// is the map's fd.
pub struct ProgDef {
    license: &'static std::ffi::CStr,
    insns: &'static [[u8; 8]],
    map_refs: &'static [(usize, usize)],
}

mod programs {
    use super::{MapDef, ProgDef};
    include!(concat!(env!("OUT_DIR"), "/programs.rs"));
}

/// The program's function name in the object, and its name in the kernel (at most 15 bytes,
/// so the kernel keeps all of it): how vrfexec recognises its own program on a cgroup.
pub const PROGRAM_NAME: &str = "vrfexec_bind";
/// `--strict`'s cgroup/setsockopt program.
pub const STRICT_PROGRAM_NAME: &str = "vrfexec_strict";

// Commands from <linux/bpf.h> `enum bpf_cmd`.
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_MAP_FREEZE: libc::c_long = 22;
// Program types from <linux/bpf.h> `enum bpf_prog_type`.
const BPF_PROG_TYPE_CGROUP_SOCK: u32 = 9;
const BPF_PROG_TYPE_CGROUP_SOCKOPT: u32 = 25;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
// From <linux/bpf.h> `enum bpf_attach_type`.
pub const BPF_CGROUP_INET_SOCK_CREATE: u32 = 2;
pub const BPF_CGROUP_SETSOCKOPT: u32 = 22;

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

/// BPF_MAP_CREATE.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// BPF_MAP_LOOKUP_ELEM and BPF_MAP_UPDATE_ELEM (and, with only map_fd, BPF_MAP_FREEZE): the
/// kernel's one attr layout for map element commands.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// BPF_PROG_LOAD.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
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

/// The one program attached directly to `cgroup` for `attach_type`: its fd, its info and
/// the ids of its maps.
fn attached_program(
    cgroup: BorrowedFd<'_>,
    attach_type: u32,
) -> Option<(std::os::fd::OwnedFd, ProgInfo, [u32; 4])> {
    let mut ids = [0u32; 4];
    let mut query = ProgQueryAttr {
        target_fd: u32::try_from(cgroup.as_raw_fd()).ok()?,
        attach_type,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_QUERY, &mut query).ok()?;
    if query.prog_cnt != 1 {
        return None;
    }
    let mut map_ids = [0u32; 4];
    let (prog, info) = program_by_id(ids[0], &mut map_ids)?;
    Some((prog, info, map_ids))
}

/// A program's fd and info by id (BPF_PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN); the ids of its
/// first maps are written to `map_ids`.
fn program_by_id(id: u32, map_ids: &mut [u32; 4]) -> Option<(OwnedFd, ProgInfo)> {
    let mut get = GetFdByIdAttr {
        id,
        ..Default::default()
    };
    let prog = crate::sys::fd::owned(sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut get).ok()?).ok()?;
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
    Some((prog, info))
}

fn name_of(info: &ProgInfo) -> &[u8] {
    let len = info
        .name
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(info.name.len());
    &info.name[..len]
}

/// A program attached directly to a cgroup, as `verify` names it in a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedProgram {
    pub id: u32,
    /// Its name, when the caller may read it (BPF_PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN).
    pub name: Option<String>,
}

/// The cgroup/sock_create programs attached directly to `cgroup` (not those it inherits).
/// Needs CAP_NET_ADMIN (BPF_PROG_QUERY); the names need CAP_SYS_ADMIN as well.
pub fn sock_create_programs(cgroup: BorrowedFd<'_>) -> io::Result<Vec<AttachedProgram>> {
    let mut ids = [0u32; 64];
    let mut query = ProgQueryAttr {
        target_fd: u32::try_from(cgroup.as_raw_fd()).map_err(io::Error::other)?,
        attach_type: BPF_CGROUP_INET_SOCK_CREATE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_QUERY, &mut query)?;
    let count = (query.prog_cnt as usize).min(ids.len());
    Ok(ids[..count]
        .iter()
        .map(|&id| AttachedProgram {
            id,
            name: program_name(id),
        })
        .collect())
}

fn program_name(id: u32) -> Option<String> {
    let (_prog, info) = program_by_id(id, &mut [0u32; 4])?;
    Some(String::from_utf8_lossy(name_of(&info)).into_owned())
}

/// Whether vrfexec's `--strict` program is what is attached to `cgroup` for setsockopt.
pub fn strict_attached(cgroup: BorrowedFd<'_>) -> bool {
    attached_program(cgroup, BPF_CGROUP_SETSOCKOPT)
        .is_some_and(|(_, info, _)| name_of(&info) == STRICT_PROGRAM_NAME.as_bytes())
}

/// The warm-path check: if the program attached to the cgroup at `cgroup` is vrfexec's, the
/// ifindex it binds sockets to (read back from its .rodata map, which holds only IFINDEX).
/// None for no program, iproute2's (unnamed) program, or anything unreadable: the caller
/// then takes the cold path, which replaces whatever is there.
pub fn attached_ifindex(cgroup: BorrowedFd<'_>) -> Option<u32> {
    let (_prog, info, map_ids) = attached_program(cgroup, BPF_CGROUP_INET_SOCK_CREATE)?;
    if name_of(&info) != PROGRAM_NAME.as_bytes() || info.nr_map_ids != 1 {
        return None;
    }
    let mut get = GetFdByIdAttr {
        id: map_ids[0],
        ..Default::default()
    };
    let map = crate::sys::fd::owned(sys_bpf(BPF_MAP_GET_FD_BY_ID, &mut get).ok()?).ok()?;
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
    let mut lookup = MapElemAttr {
        map_fd: u32::try_from(map.as_raw_fd()).ok()?,
        key: &key as *const u32 as u64,
        value: &mut value as *mut u32 as u64,
        ..Default::default()
    };
    sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut lookup).ok()?;
    Some(value)
}

/// A loaded (not yet attached) program. Its maps are held by the program itself.
pub struct Loaded {
    fd: OwnedFd,
    attach_type: u32,
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let len = name.len().min(15);
    out[..len].copy_from_slice(&name.as_bytes()[..len]);
    out
}

fn object_error(what: &'static str, err: impl std::fmt::Display) -> Error {
    Error::Bpf {
        what,
        reason: err.to_string(),
        hint: "the embedded program is broken; rebuild vrfexec",
    }
}

fn syscall_error(what: &'static str, err: &io::Error) -> Error {
    let hint = match err.raw_os_error() {
        Some(libc::EPERM) => {
            "run as root, or with CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN before Linux 5.8)"
        }
        Some(libc::EINVAL) => "is the kernel built with CONFIG_CGROUP_BPF?",
        _ => "",
    };
    Error::Bpf {
        what,
        reason: crate::error::os_text(err),
        hint,
    }
}

/// Creates `map`, fills it (IFINDEX set to `ifindex` where it lives) and freezes it if it is
/// read-only data.
fn create_map(map: &MapDef, ifindex: Option<u32>) -> Result<OwnedFd> {
    const WHAT: &str = "cannot create the BPF program's map";
    let mut create = MapCreateAttr {
        map_type: map.map_type,
        key_size: map.key_size,
        value_size: map.value_size,
        max_entries: map.max_entries,
        map_flags: map.map_flags,
        map_name: name16(map.name),
        ..Default::default()
    };
    let fd = sys_bpf(BPF_MAP_CREATE, &mut create)
        .and_then(crate::sys::fd::owned)
        .map_err(|e| syscall_error(WHAT, &e))?;
    let map_fd = u32::try_from(fd.as_raw_fd()).map_err(|e| object_error(WHAT, e))?;
    if !map.data.is_empty() {
        let mut data = map.data.to_vec();
        if let (Some(at), Some(ifindex)) = (map.ifindex_offset, ifindex) {
            data.get_mut(at..at + 4)
                .ok_or_else(|| object_error(WHAT, "IFINDEX lies outside the map"))?
                .copy_from_slice(&ifindex.to_ne_bytes());
        }
        let key = 0u32;
        let mut update = MapElemAttr {
            map_fd,
            key: &key as *const u32 as u64,
            value: data.as_ptr() as u64,
            ..Default::default()
        };
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut update).map_err(|e| syscall_error(WHAT, &e))?;
    }
    if map.freeze {
        let mut freeze = MapElemAttr {
            map_fd,
            ..Default::default()
        };
        sys_bpf(BPF_MAP_FREEZE, &mut freeze).map_err(|e| syscall_error(WHAT, &e))?;
    }
    Ok(fd)
}

/// Creates the maps `program` uses, writes their fds into its instructions and loads it.
fn load_program(
    program: &ProgDef,
    name: &'static str,
    prog_type: u32,
    attach_type: u32,
    ifindex: Option<u32>,
) -> Result<Loaded> {
    const WHAT: &str = "cannot load the BPF program";
    let mut insns = program.insns.to_vec();
    let mut maps: Vec<(usize, OwnedFd)> = Vec::new();
    for &(at, index) in program.map_refs {
        let fd = match maps.iter().find(|(i, _)| *i == index) {
            Some((_, fd)) => fd.as_raw_fd(),
            None => {
                let map = programs::MAPS
                    .get(index)
                    .ok_or_else(|| object_error(WHAT, "a map reference is out of range"))?;
                let fd = create_map(map, ifindex)?;
                let raw = fd.as_raw_fd();
                maps.push((index, fd));
                raw
            }
        };
        insns
            .get_mut(at)
            .ok_or_else(|| object_error(WHAT, "a map reference is out of range"))?[4..8]
            .copy_from_slice(&fd.to_le_bytes());
    }
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: u32::try_from(insns.len()).map_err(|e| object_error(WHAT, e))?,
        insns: insns.as_ptr() as u64,
        license: program.license.as_ptr() as u64,
        prog_name: name16(name),
        expected_attach_type: attach_type,
        ..Default::default()
    };
    let fd = sys_bpf(BPF_PROG_LOAD, &mut attr)
        .and_then(crate::sys::fd::owned)
        .map_err(|e| syscall_error(WHAT, &e))?;
    // The program holds references to its maps; ours close when `maps` is dropped.
    drop(maps);
    Ok(Loaded { fd, attach_type })
}

/// Loads the program with `IFINDEX` set to `ifindex`.
pub fn load(ifindex: u32) -> Result<Loaded> {
    load_program(
        &programs::BIND,
        PROGRAM_NAME,
        BPF_PROG_TYPE_CGROUP_SOCK,
        BPF_CGROUP_INET_SOCK_CREATE,
        Some(ifindex),
    )
}

/// Loads `--strict`'s setsockopt program.
pub fn load_strict() -> Result<Loaded> {
    load_program(
        &programs::STRICT,
        STRICT_PROGRAM_NAME,
        BPF_PROG_TYPE_CGROUP_SOCKOPT,
        BPF_CGROUP_SETSOCKOPT,
        None,
    )
}

impl Loaded {
    /// Attaches to the cgroup open at `cgroup` with BPF_PROG_ATTACH, flags 0 (replacing the
    /// program already there, ours or iproute2's).
    pub fn attach_legacy(&mut self, cgroup: BorrowedFd<'_>) -> Result<()> {
        let prog_fd = &self.fd;
        prog_attach(prog_fd.as_fd(), cgroup, self.attach_type).map_err(|source| {
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

/// RLIMIT_MEMLOCK as it was before vrfexec raised it, to restore before exec.
pub struct MemlockRestore(Option<(libc::rlim_t, libc::rlim_t)>);

/// Raises RLIMIT_MEMLOCK to infinity on kernels that still charge BPF to it (< 5.11).
pub fn raise_memlock_if_needed() -> Result<MemlockRestore> {
    match crate::sys::kernel_version() {
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

    /// The eBPF object build.rs prepared the programs from.
    static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vrfexec"));

    #[test]
    fn embedded_object_is_an_ebpf_elf_with_our_program() {
        assert_eq!(&OBJECT[..4], b"\x7fELF");
        // e_machine == EM_BPF (247), little endian.
        assert_eq!(u16::from_le_bytes([OBJECT[18], OBJECT[19]]), 247);
        let has = |needle: &[u8]| OBJECT.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"cgroup/sock_create"));
        assert!(has(PROGRAM_NAME.as_bytes()));
        assert!(has(STRICT_PROGRAM_NAME.as_bytes()));
        assert!(has(b"cgroup/setsockopt"));
        assert!(has(b"IFINDEX"));
    }

    #[test]
    fn prepared_programs_bind_through_one_frozen_ifindex_map() {
        const EXIT: u8 = 0x95;
        let bind = &programs::BIND;
        assert_eq!(bind.license.to_bytes(), b"Dual MIT/GPL");
        assert_eq!(bind.insns.last().map(|i| i[0]), Some(EXIT));
        assert_eq!(bind.map_refs.len(), 1, "one reference, to .rodata");
        let (at, index) = bind.map_refs[0];
        assert_eq!(bind.insns[at][0], 0x18, "an ld_imm64 carries the map fd");
        let map = &programs::MAPS[index];
        assert!(map.freeze);
        assert_eq!(map.name, "vrfexec.rodata");
        assert_eq!((map.key_size, map.value_size, map.max_entries), (4, 4, 1));
        assert_eq!(map.ifindex_offset, Some(0));
        assert_eq!(map.data.len(), 4);
        // --strict's program decides from the option alone: no maps.
        assert!(programs::STRICT.map_refs.is_empty());
        assert_eq!(programs::STRICT.insns.last().map(|i| i[0]), Some(EXIT));
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

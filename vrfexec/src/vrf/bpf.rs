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
//!
//! The bpf(2) ABI (`union bpf_attr`, `struct bpf_prog_info`/`bpf_map_info`, the command, program
//! type and attach type enums) comes from `aya_obj::generated`, bindgen's output for the
//! kernel's own `<linux/bpf.h>`, rather than from copies that could drift from it. Only those
//! types and constants are used at run time, none of aya-obj's code.
use std::{
    ffi::c_char,
    io,
    mem::size_of,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
    ptr,
};

use aya_obj::generated::{
    bpf_attach_type, bpf_attr, bpf_cmd, bpf_map_info, bpf_prog_info, bpf_prog_type,
    BPF_OBJ_NAME_LEN,
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

/// `char name[BPF_OBJ_NAME_LEN]` of programs and maps: 15 bytes and a NUL.
const NAME_LEN: usize = BPF_OBJ_NAME_LEN as usize;

/// A kernel ABI value (`union bpf_attr`, `struct bpf_prog_info`, `struct bpf_map_info`) that
/// starts as zero bytes: zero is what the kernel reads as "not set" in every field a command
/// does not use. The byte view spans the whole value, so a move carries every byte over,
/// padding included: `union bpf_attr` ends in 4 bytes that are padding in each of its
/// members, `struct bpf_prog_info` in 4 more, and the kernel checks that whatever lies past
/// the fields it knows (an older kernel knows fewer) is zero.
#[repr(C)]
union Zeroed<T: Pod, const N: usize> {
    value: T,
    bytes: [u8; N],
}

/// Plain old data from `<linux/bpf.h>`.
///
/// # Safety
///
/// Any initialised bytes are a valid value of the type: it holds only integers, arrays of
/// them, and structs and unions made of those.
unsafe trait Pod: Copy {}
// SAFETY: bindgen's `union bpf_attr` and its members hold only __u32/__s32/__u64 fields, char
// arrays, and unions of those.
unsafe impl Pod for bpf_attr {}
// SAFETY: integers, byte arrays and a bitfield unit (a byte array).
unsafe impl Pod for bpf_prog_info {}
// SAFETY: integers and a char array.
unsafe impl Pod for bpf_map_info {}

impl<T: Pod, const N: usize> Zeroed<T, N> {
    fn new() -> Self {
        const { assert!(size_of::<T>() == N, "the byte view is exactly the value") };
        Self { bytes: [0; N] }
    }

    fn get(&self) -> T {
        // SAFETY: all N bytes are initialised (zero, then written by us or the kernel), and
        // any initialised bytes are a valid T (T: Pod).
        unsafe { self.value }
    }
}

type Attr = Zeroed<bpf_attr, { size_of::<bpf_attr>() }>;
type ProgInfo = Zeroed<bpf_prog_info, { size_of::<bpf_prog_info>() }>;
type MapInfo = Zeroed<bpf_map_info, { size_of::<bpf_map_info>() }>;

/// bpf(2) with the whole `union bpf_attr`; returns the syscall's non-negative result.
///
/// `attr` holds zeros but for the fields `cmd` reads. The kernel accepts a union larger than
/// its own (an older kernel's) only when the bytes past its end are zero, and it reads zero
/// as "not set" in the fields of `cmd` left alone.
fn sys_bpf(cmd: bpf_cmd, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, fully initialised union bpf_attr (Attr is it, with a byte view)
    // of the size passed, and any pointers the callers put in it point to live buffers of the
    // sizes given with them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            ptr::from_mut(attr),
            size_of::<Attr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

fn fd_u32(fd: BorrowedFd<'_>) -> io::Result<u32> {
    u32::try_from(fd.as_raw_fd()).map_err(io::Error::other)
}

/// BPF_PROG_QUERY: writes the ids of the programs attached directly to `cgroup` for
/// `attach_type` to `ids` and returns how many there are (ENOSPC if more than `ids` holds).
fn query_programs(
    cgroup: BorrowedFd<'_>,
    attach_type: bpf_attach_type,
    ids: &mut [u32],
) -> io::Result<u32> {
    let mut attr = Attr::new();
    attr.value.query.__bindgen_anon_1.target_fd = fd_u32(cgroup)?;
    attr.value.query.attach_type = attach_type as u32;
    attr.value.query.prog_ids = ids.as_mut_ptr() as u64;
    attr.value.query.__bindgen_anon_2.prog_cnt =
        u32::try_from(ids.len()).map_err(io::Error::other)?;
    sys_bpf(bpf_cmd::BPF_PROG_QUERY, &mut attr)?;
    // SAFETY: bpf_attr is Pod, so reading any member reads initialised integers.
    Ok(unsafe { attr.get().query.__bindgen_anon_2.prog_cnt })
}

/// BPF_OBJ_GET_INFO_BY_FD: `info` for the program or map open at `fd`, as the kernel filled
/// it in.
fn object_info<T: Pod, const N: usize>(
    fd: BorrowedFd<'_>,
    mut info: Zeroed<T, N>,
) -> io::Result<T> {
    let mut attr = Attr::new();
    attr.value.info.bpf_fd = fd_u32(fd)?;
    attr.value.info.info_len = u32::try_from(N).map_err(io::Error::other)?;
    attr.value.info.info = ptr::from_mut(&mut info) as u64;
    sys_bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info.get())
}

/// The one program attached directly to `cgroup` for `attach_type`: its fd, its info and
/// the ids of its maps.
fn attached_program(
    cgroup: BorrowedFd<'_>,
    attach_type: bpf_attach_type,
) -> Option<(OwnedFd, bpf_prog_info, [u32; 4])> {
    let mut ids = [0u32; 4];
    if query_programs(cgroup, attach_type, &mut ids).ok()? != 1 {
        return None;
    }
    let mut map_ids = [0u32; 4];
    let (prog, info) = program_by_id(ids[0], &mut map_ids)?;
    Some((prog, info, map_ids))
}

/// A program's fd and info by id (BPF_PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN); the ids of its
/// first maps are written to `map_ids`.
fn program_by_id(id: u32, map_ids: &mut [u32; 4]) -> Option<(OwnedFd, bpf_prog_info)> {
    let mut get = Attr::new();
    get.value.__bindgen_anon_6.__bindgen_anon_1.prog_id = id;
    let prog =
        crate::sys::fd::owned(sys_bpf(bpf_cmd::BPF_PROG_GET_FD_BY_ID, &mut get).ok()?).ok()?;
    let mut info = ProgInfo::new();
    info.value.nr_map_ids = map_ids.len() as u32;
    info.value.map_ids = map_ids.as_mut_ptr() as u64;
    let info = object_info(prog.as_fd(), info).ok()?;
    Some((prog, info))
}

/// A kernel object name (NUL-padded `char name[BPF_OBJ_NAME_LEN]`) as bytes, without the NULs.
fn name_of(name: &[c_char; NAME_LEN]) -> impl Iterator<Item = u8> + '_ {
    name.iter()
        .map(|c| u8::from_ne_bytes(c.to_ne_bytes()))
        .take_while(|b| *b != 0)
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
    let count = query_programs(
        cgroup,
        bpf_attach_type::BPF_CGROUP_INET_SOCK_CREATE,
        &mut ids,
    )?;
    let count = (count as usize).min(ids.len());
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
    let name: Vec<u8> = name_of(&info.name).collect();
    Some(String::from_utf8_lossy(&name).into_owned())
}

/// Whether vrfexec's `--strict` program is what is attached to `cgroup` for setsockopt.
pub fn strict_attached(cgroup: BorrowedFd<'_>) -> bool {
    attached_program(cgroup, bpf_attach_type::BPF_CGROUP_SETSOCKOPT)
        .is_some_and(|(_, info, _)| name_of(&info.name).eq(STRICT_PROGRAM_NAME.bytes()))
}

/// The warm-path check: if the program attached to the cgroup at `cgroup` is vrfexec's, the
/// ifindex it binds sockets to (read back from its .rodata map, which holds only IFINDEX).
/// None for no program, iproute2's (unnamed) program, or anything unreadable: the caller
/// then takes the cold path, which replaces whatever is there.
pub fn attached_ifindex(cgroup: BorrowedFd<'_>) -> Option<u32> {
    let (_prog, info, map_ids) =
        attached_program(cgroup, bpf_attach_type::BPF_CGROUP_INET_SOCK_CREATE)?;
    if !name_of(&info.name).eq(PROGRAM_NAME.bytes()) || info.nr_map_ids != 1 {
        return None;
    }
    let mut get = Attr::new();
    get.value.__bindgen_anon_6.__bindgen_anon_1.map_id = map_ids[0];
    let map = crate::sys::fd::owned(sys_bpf(bpf_cmd::BPF_MAP_GET_FD_BY_ID, &mut get).ok()?).ok()?;
    let map_info = object_info(map.as_fd(), MapInfo::new()).ok()?;
    if map_info.key_size != 4 || map_info.value_size != 4 || map_info.max_entries != 1 {
        return None;
    }
    let key = 0u32;
    let mut value = 0u32;
    let mut lookup = Attr::new();
    lookup.value.__bindgen_anon_2.map_fd = fd_u32(map.as_fd()).ok()?;
    lookup.value.__bindgen_anon_2.key = ptr::from_ref(&key) as u64;
    lookup.value.__bindgen_anon_2.__bindgen_anon_1.value = ptr::from_mut(&mut value) as u64;
    sys_bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut lookup).ok()?;
    Some(value)
}

/// A loaded (not yet attached) program. Its maps are held by the program itself.
pub struct Loaded {
    fd: OwnedFd,
    attach_type: bpf_attach_type,
}

/// `name` as a kernel object name: its first 15 bytes, NUL-padded.
fn name16(name: &str) -> [c_char; NAME_LEN] {
    let mut out = [0; NAME_LEN];
    for (to, from) in out.iter_mut().zip(name.bytes().take(NAME_LEN - 1)) {
        *to = c_char::from_ne_bytes([from]);
    }
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
    let mut create = Attr::new();
    create.value.__bindgen_anon_1.map_type = map.map_type;
    create.value.__bindgen_anon_1.key_size = map.key_size;
    create.value.__bindgen_anon_1.value_size = map.value_size;
    create.value.__bindgen_anon_1.max_entries = map.max_entries;
    create.value.__bindgen_anon_1.map_flags = map.map_flags;
    create.value.__bindgen_anon_1.map_name = name16(map.name);
    let fd = sys_bpf(bpf_cmd::BPF_MAP_CREATE, &mut create)
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
        let mut update = Attr::new();
        update.value.__bindgen_anon_2.map_fd = map_fd;
        update.value.__bindgen_anon_2.key = ptr::from_ref(&key) as u64;
        update.value.__bindgen_anon_2.__bindgen_anon_1.value = data.as_ptr() as u64;
        sys_bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut update).map_err(|e| syscall_error(WHAT, &e))?;
    }
    if map.freeze {
        let mut freeze = Attr::new();
        freeze.value.__bindgen_anon_2.map_fd = map_fd;
        sys_bpf(bpf_cmd::BPF_MAP_FREEZE, &mut freeze).map_err(|e| syscall_error(WHAT, &e))?;
    }
    Ok(fd)
}

/// Creates the maps `program` uses, writes their fds into its instructions and loads it.
fn load_program(
    program: &ProgDef,
    name: &'static str,
    prog_type: bpf_prog_type,
    attach_type: bpf_attach_type,
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
    let mut attr = Attr::new();
    attr.value.__bindgen_anon_3.prog_type = prog_type as u32;
    attr.value.__bindgen_anon_3.insn_cnt =
        u32::try_from(insns.len()).map_err(|e| object_error(WHAT, e))?;
    attr.value.__bindgen_anon_3.insns = insns.as_ptr() as u64;
    attr.value.__bindgen_anon_3.license = program.license.as_ptr() as u64;
    attr.value.__bindgen_anon_3.prog_name = name16(name);
    attr.value.__bindgen_anon_3.expected_attach_type = attach_type as u32;
    let fd = sys_bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr)
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
        bpf_prog_type::BPF_PROG_TYPE_CGROUP_SOCK,
        bpf_attach_type::BPF_CGROUP_INET_SOCK_CREATE,
        Some(ifindex),
    )
}

/// Loads `--strict`'s setsockopt program.
pub fn load_strict() -> Result<Loaded> {
    load_program(
        &programs::STRICT,
        STRICT_PROGRAM_NAME,
        bpf_prog_type::BPF_PROG_TYPE_CGROUP_SOCKOPT,
        bpf_attach_type::BPF_CGROUP_SETSOCKOPT,
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

fn prog_attach(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: bpf_attach_type,
) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.value.__bindgen_anon_5.__bindgen_anon_1.target_fd = fd_u32(target)?;
    attr.value.__bindgen_anon_5.attach_bpf_fd = fd_u32(prog)?;
    attr.value.__bindgen_anon_5.attach_type = attach_type as u32;
    // Flags 0 (no BPF_F_ALLOW_OVERRIDE/MULTI/REPLACE), which replaces the program there.
    attr.value.__bindgen_anon_5.attach_flags = 0;
    sys_bpf(bpf_cmd::BPF_PROG_ATTACH, &mut attr).map(drop)
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
    fn names_fit_and_round_trip_through_the_kernel_char_array() {
        assert!(
            PROGRAM_NAME.len() < NAME_LEN && STRICT_PROGRAM_NAME.len() < NAME_LEN,
            "the kernel keeps 15 bytes of a program name"
        );
        assert!(name_of(&name16(PROGRAM_NAME)).eq(PROGRAM_NAME.bytes()));
        // Longer names are cut to 15 bytes and keep their terminating NUL.
        let long = name16("vrfexec_0123456789");
        assert_eq!(long[NAME_LEN - 1], 0);
        assert!(name_of(&long).eq(b"vrfexec_0123456".iter().copied()));
    }

    #[test]
    fn a_new_attr_is_zero_but_for_the_fields_written() {
        let mut attr = Attr::new();
        attr.value.__bindgen_anon_5.attach_type =
            bpf_attach_type::BPF_CGROUP_INET_SOCK_CREATE as u32;
        let attr = attr; // moved, as callers move it: the byte view keeps every byte
                         // SAFETY: all bytes are initialised (zero, then one field written).
        let bytes = unsafe { attr.bytes };
        assert_eq!(bytes.len(), size_of::<bpf_attr>());
        // attach_type is the third u32 of the BPF_PROG_ATTACH member; all else stays zero,
        // the 4 bytes past the largest member included.
        assert_eq!(bytes[8..12], 2u32.to_ne_bytes());
        assert!(bytes[..8].iter().chain(&bytes[12..]).all(|b| *b == 0));
    }
}

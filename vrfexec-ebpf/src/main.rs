//! The one eBPF program vrfexec attaches: `cgroup/sock_create`, run by the kernel for every
//! socket a process in the cgroup creates. It sets the socket's bound device to `IFINDEX`,
//! which is what `SO_BINDTODEVICE` does, so the socket uses the VRF's routing table.
//!
//! This is the same program iproute2's `ip vrf exec` builds by hand in `ip/ipvrf.c`
//! (`prog_load`): write `bound_dev_if`, return 1 (allow). `IFINDEX` is a global the loader
//! sets before loading (`EbpfLoader::set_global`), so one object serves every VRF.
//! An `IFINDEX` of 0 unbinds, which is what `vrfexec default` relies on.
//!
//! `--strict` adds `cgroup/setsockopt`: it refuses every option that would move a socket to
//! another device (SO_BINDTODEVICE, SO_BINDTOIFINDEX, IP_UNICAST_IF, IPV6_UNICAST_IF), for root
//! too, since the hook runs before the kernel's own permission checks. Returning 0 makes the
//! kernel fail the call with EPERM.
#![no_std]
#![no_main]

use aya_ebpf::{
    macros::{cgroup_sock, cgroup_sockopt},
    programs::{SockContext, SockoptContext},
};

mod common;

use common::rebinds;

/// The interface index new sockets are bound to; set by the loader.
#[unsafe(no_mangle)]
static IFINDEX: u32 = 0;

#[cgroup_sock(sock_create)]
pub fn vrfexec_bind(ctx: SockContext) -> i32 {
    // A volatile read keeps the compiler from folding the global into the constant 0.
    // SAFETY: IFINDEX is a plain u32 in .rodata; the loader fills it in before load.
    let ifindex = unsafe { core::ptr::read_volatile(&IFINDEX) };
    // SAFETY: the kernel passes a valid `struct bpf_sock` to sock_create programs, and
    // `bound_dev_if` is one of its writable fields for this attach type.
    unsafe { (*ctx.sock).bound_dev_if = ifindex };
    // 1 = allow the socket to be created.
    1
}

#[cgroup_sockopt(setsockopt)]
pub fn vrfexec_strict(ctx: SockoptContext) -> i32 {
    // SAFETY: the kernel passes a valid `struct bpf_sockopt`; level and optname are readable.
    let (level, optname) = unsafe { ((*ctx.sockopt).level, (*ctx.sockopt).optname) };
    // 0 = refuse (EPERM), 1 = let the kernel handle the option.
    if rebinds(level, optname) {
        0
    } else {
        1
    }
}

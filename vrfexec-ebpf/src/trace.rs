//! `vrfexec trace`'s programs: they watch what a traced command's sockets do and change
//! nothing (every cgroup hook returns 1, "allow"). The binding itself stays with the VRF
//! cgroup's `vrfexec_bind` program, which the traced command's cgroup inherits.
//!
//! Two kinds of hook:
//! - cgroup hooks (`bind4/6`, `connect4/6`, `sendmsg4/6`) attached to the trace's own cgroup,
//!   so only the traced command is seen; they read the device the socket is bound to from the
//!   socket itself (`bpf_sock.bound_dev_if`);
//! - syscall tracepoints, for what no cgroup hook on a 5.10 kernel shows (socket creation, the
//!   result of a rebinding setsockopt, Unix-socket connects, IP_PKTINFO), filtered to the
//!   trace's cgroup by `bpf_get_current_cgroup_id()` against `CGROUP_ID`, which the loader
//!   sets. A sock_create hook cannot be used: the VRF cgroup's program is attached without
//!   BPF_F_ALLOW_MULTI (as `ip vrf exec` attaches it), and the kernel then refuses any
//!   sock_create program below it.
//!
//! Syscall tracepoints have one layout on every kernel: 8 bytes of common fields, the syscall
//! number, then each argument as 8 bytes from offset 16; `ret` at 16 on exit.
#![no_std]
#![no_main]

mod common;
#[path = "../trace_event.rs"]
mod trace_event;

use aya_ebpf::{
    bindings::bpf_sock_addr,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_probe_read_kernel_str_bytes, bpf_probe_read_user, bpf_probe_read_user_buf,
        bpf_probe_read_user_str_bytes,
    },
    macros::{cgroup_sock_addr, map, tracepoint},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::{SockAddrContext, TracePointContext},
    EbpfContext as _,
};
use common::{rebinds, SOL_IP, SOL_IPV6, SO_BINDTODEVICE};
use trace_event::{Event, BIND, CONNECT, LEFT, PKTINFO, SENDMSG, SETSOCKOPT, SOCKET, UNIX_CONNECT};

/// The trace cgroup's id (its inode number); set by the loader.
#[unsafe(no_mangle)]
static CGROUP_ID: u64 = 0;

/// Offsets in the `sched:sched_process_fork` and `cgroup:cgroup_attach_task` records, which
/// differ between kernels: the loader reads them from the events' `format` files (0: that
/// tracepoint is not attached).
#[unsafe(no_mangle)]
static FORK_CHILD_PID: u32 = 0;
#[unsafe(no_mangle)]
static ATTACH_DST_ROOT: u32 = 0;
#[unsafe(no_mangle)]
static ATTACH_DST_ID: u32 = 0;
#[unsafe(no_mangle)]
static ATTACH_PID: u32 = 0;
#[unsafe(no_mangle)]
static ATTACH_DST_PATH: u32 = 0;
#[unsafe(no_mangle)]
static ATTACH_COMM: u32 = 0;

/// Threads of the traced command, by id: the command (put here by the loader) and every task
/// a traced task forks. A tracked task moved to a cgroup other than the trace's is reported.
#[map]
static TRACKED: HashMap<u32, u8> = HashMap::with_max_entries(16384, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Events the ring buffer had no room for: [0], per CPU.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Syscall arguments saved on entry, by thread, for the event written on return.
#[map]
static PENDING: HashMap<u64, Event> = HashMap::with_max_entries(4096, 0);

/// A zeroed event to build in (the stack is 512 bytes; an Event is 208).
#[map]
static SCRATCH: PerCpuArray<Event> = PerCpuArray::with_max_entries(1, 0);

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IP_PKTINFO: i32 = 8;
const IPV6_PKTINFO: i32 = 50;
/// Control messages looked at per sendmsg(2).
const MAX_CMSGS: usize = 4;

/// The trace cgroup's id, as the loader set it.
fn cgroup_id() -> u64 {
    // SAFETY: CGROUP_ID is a plain u64 in .rodata; the loader fills it in before load. A
    // volatile read keeps the compiler from folding it into the constant 0.
    unsafe { core::ptr::read_volatile(&CGROUP_ID) }
}

fn traced() -> bool {
    // SAFETY: a helper without arguments.
    unsafe { bpf_get_current_cgroup_id() == cgroup_id() }
}

/// The per-CPU scratch event, zeroed, with the current task's ids and name filled in.
fn start(kind: u32) -> Option<&'static mut Event> {
    let event = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: the per-CPU array's one element, valid for the program's run; nothing else on
    // this CPU runs a program using it meanwhile (programs are not preempted by each other
    // on one CPU for these hooks).
    let event = unsafe { &mut *event };
    *event = Event::ZERO;
    let pid_tgid = bpf_get_current_pid_tgid();
    event.kind = kind;
    event.pid = (pid_tgid >> 32) as u32;
    event.tid = pid_tgid as u32;
    if let Ok(comm) = bpf_get_current_comm() {
        event.comm = comm;
    }
    Some(event)
}

fn emit(event: &Event) {
    if EVENTS.output::<Event>(event, 0).is_err() {
        if let Some(lost) = LOST.get_ptr_mut(0) {
            // SAFETY: this CPU's element of a per-CPU array, valid for the program's run.
            unsafe { *lost += 1 };
        }
    }
}

fn save(event: &Event) {
    let key = bpf_get_current_pid_tgid();
    let _ = PENDING.insert(key, event, 0);
}

/// The event saved on entry for this thread, with the syscall's return value.
fn finish(ctx: &TracePointContext) {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: the map value stays valid until removed, below, by this same thread's program.
    if let Some(event) = unsafe { PENDING.get(key) } {
        let mut event = *event;
        // SAFETY: `ret` of a sys_exit tracepoint is a long at offset 16.
        event.ret = unsafe { ctx.read_at::<i64>(16) }.unwrap_or(0);
        emit(&event);
    }
    let _ = PENDING.remove(key);
}

/// A syscall argument of a sys_enter tracepoint.
fn arg<T>(ctx: &TracePointContext, n: usize) -> T
where
    T: Default,
{
    // SAFETY: sys_enter tracepoints hold the syscall's six arguments from offset 16, each 8
    // bytes; T is at most 8 bytes (an integer or a pointer), read from its start.
    unsafe { ctx.read_at::<T>(16 + 8 * n) }.unwrap_or_default()
}

#[tracepoint]
pub fn trace_socket_enter(ctx: TracePointContext) -> u32 {
    if !traced() {
        return 0;
    }
    if let Some(event) = start(SOCKET) {
        event.family = arg::<u64>(&ctx, 0) as u32;
        event.sock_type = arg::<u64>(&ctx, 1) as u32;
        event.protocol = arg::<u64>(&ctx, 2) as u32;
        save(event);
    }
    0
}

#[tracepoint]
pub fn trace_exit(ctx: TracePointContext) -> u32 {
    if traced() {
        finish(&ctx);
    }
    0
}

#[tracepoint]
pub fn trace_setsockopt_enter(ctx: TracePointContext) -> u32 {
    if !traced() {
        return 0;
    }
    let level = arg::<u64>(&ctx, 1) as i32;
    let optname = arg::<u64>(&ctx, 2) as i32;
    if !rebinds(level, optname) {
        return 0;
    }
    let Some(event) = start(SETSOCKOPT) else {
        return 0;
    };
    event.fd = arg::<u64>(&ctx, 0) as i32;
    event.level = level;
    event.optname = optname;
    event.len = arg::<u64>(&ctx, 4) as u32;
    let optval = arg::<u64>(&ctx, 3) as *const u8;
    if optname == SO_BINDTODEVICE {
        // SAFETY: a bounded read of user memory; a fault leaves the buffer zeroed.
        let _ = unsafe { bpf_probe_read_user_str_bytes(optval, &mut event.data[..16]) };
    } else if let Ok(value) =
        // SAFETY: a read of user memory, checked by the helper.
        unsafe { bpf_probe_read_user(optval as *const u32) }
    {
        event.ifindex = value;
    }
    save(event);
    0
}

/// Reads a sockaddr_in/sockaddr_in6 at `ptr` into the event's family, port and addr.
fn read_inet_addr(event: &mut Event, ptr: *const u8) {
    // SAFETY: reads of user memory, checked by the helper.
    let Ok(family) = (unsafe { bpf_probe_read_user(ptr as *const u16) }) else {
        return;
    };
    // SAFETY: as above; sin_port/sin6_port at offset 2.
    let port = unsafe { bpf_probe_read_user(ptr.wrapping_add(2) as *const u16) }.unwrap_or(0);
    event.family = u32::from(family);
    event.port = u32::from(u16::from_be(port));
    if family == AF_INET {
        // SAFETY: as above; sin_addr at offset 4.
        let _ = unsafe { bpf_probe_read_user_buf(ptr.wrapping_add(4), &mut event.addr[..4]) };
    } else if family == AF_INET6 {
        // SAFETY: as above; sin6_addr at offset 8.
        let _ = unsafe { bpf_probe_read_user_buf(ptr.wrapping_add(8), &mut event.addr) };
    }
}

#[tracepoint]
pub fn trace_connect_enter(ctx: TracePointContext) -> u32 {
    if !traced() {
        return 0;
    }
    let addr = arg::<u64>(&ctx, 1) as *const u8;
    // SAFETY: a read of user memory, checked by the helper.
    let Ok(family) = (unsafe { bpf_probe_read_user(addr as *const u16) }) else {
        return 0;
    };
    // IPv4/IPv6 connects are the cgroup hooks' (they see the socket's device).
    if family != AF_UNIX {
        return 0;
    }
    let Some(event) = start(UNIX_CONNECT) else {
        return 0;
    };
    event.fd = arg::<u64>(&ctx, 0) as i32;
    event.family = u32::from(family);
    event.len = arg::<u64>(&ctx, 2) as u32;
    let path = addr.wrapping_add(2);
    // SAFETY: reads of user memory, checked by the helper. A path name ends at its NUL; an
    // abstract name starts with one and is read whole (the reader cuts it at `len`).
    unsafe {
        if bpf_probe_read_user_str_bytes(path, &mut event.data).is_ok_and(|s| s.is_empty()) {
            let _ = bpf_probe_read_user_buf(path, &mut event.data[..64]);
        }
    }
    save(event);
    0
}

#[tracepoint]
pub fn trace_sendmsg_enter(ctx: TracePointContext) -> u32 {
    if !traced() {
        return 0;
    }
    let msg = arg::<u64>(&ctx, 1) as *const u8;
    // struct user_msghdr (x86_64): name 0, namelen 8, iov 16, iovlen 24, control 32,
    // controllen 40.
    // SAFETY: reads of user memory, checked by the helper.
    let (name, control, controllen) = unsafe {
        (
            bpf_probe_read_user(msg as *const u64).unwrap_or(0),
            bpf_probe_read_user(msg.wrapping_add(32) as *const u64).unwrap_or(0),
            bpf_probe_read_user(msg.wrapping_add(40) as *const u64).unwrap_or(0),
        )
    };
    if control == 0 || controllen < 16 {
        return 0;
    }
    let mut offset: u64 = 0;
    for _ in 0..MAX_CMSGS {
        if offset + 16 > controllen {
            break;
        }
        let cmsg = (control + offset) as *const u8;
        // struct cmsghdr: len (size_t) 0, level 8, type 12, data 16.
        // SAFETY: reads of user memory, checked by the helper.
        let (len, level, kind) = unsafe {
            (
                bpf_probe_read_user(cmsg as *const u64).unwrap_or(0),
                bpf_probe_read_user(cmsg.wrapping_add(8) as *const i32).unwrap_or(-1),
                bpf_probe_read_user(cmsg.wrapping_add(12) as *const i32).unwrap_or(-1),
            )
        };
        if len < 16 {
            break;
        }
        let data = cmsg.wrapping_add(16);
        let ifindex = if level == SOL_IP && kind == IP_PKTINFO {
            // struct in_pktinfo: ipi_ifindex first.
            // SAFETY: a read of user memory, checked by the helper.
            Some(unsafe { bpf_probe_read_user(data as *const u32) }.unwrap_or(0))
        } else if level == SOL_IPV6 && kind == IPV6_PKTINFO {
            // struct in6_pktinfo: ipi6_addr (16 bytes), then ipi6_ifindex.
            // SAFETY: a read of user memory, checked by the helper.
            Some(unsafe { bpf_probe_read_user(data.wrapping_add(16) as *const u32) }.unwrap_or(0))
        } else {
            None
        };
        if let Some(ifindex) = ifindex {
            if let Some(event) = start(PKTINFO) {
                event.fd = arg::<u64>(&ctx, 0) as i32;
                event.ifindex = ifindex;
                event.level = level;
                if name != 0 {
                    read_inet_addr(event, name as *const u8);
                }
                emit(event);
            }
            return 0;
        }
        offset += (len + 7) & !7;
    }
    0
}

fn global(value: &u32) -> usize {
    // SAFETY: a plain u32 in .rodata that the loader fills in; volatile, as for CGROUP_ID.
    unsafe { core::ptr::read_volatile(value) as usize }
}

#[tracepoint]
pub fn trace_fork(ctx: TracePointContext) -> u32 {
    if !traced() {
        return 0;
    }
    // SAFETY: a read of the tracepoint's record through the probe-read helper, at the offset
    // the loader read from the event's format.
    if let Ok(child) = unsafe { ctx.read_at::<u32>(global(&FORK_CHILD_PID)) } {
        let _ = TRACKED.insert(child, 1, 0);
    }
    0
}

#[tracepoint]
pub fn trace_exit_task(_ctx: TracePointContext) -> u32 {
    // A pid of an ended task may be reused by anything: forget it.
    let tid = bpf_get_current_pid_tgid() as u32;
    let _ = TRACKED.remove(tid);
    0
}

#[tracepoint]
pub fn trace_cgroup_attach(ctx: TracePointContext) -> u32 {
    // SAFETY: reads of the tracepoint's record through the probe-read helper, at offsets the
    // loader read from the event's format.
    let (root, pid) = unsafe {
        (
            ctx.read_at::<i32>(global(&ATTACH_DST_ROOT)).unwrap_or(-1),
            ctx.read_at::<u32>(global(&ATTACH_PID)).unwrap_or(0),
        )
    };
    // Hierarchy 0 is cgroup v2's; moves in v1 hierarchies change no socket's binding.
    // SAFETY: the map value is not kept.
    if root != 0 || unsafe { TRACKED.get(pid) }.is_none() {
        return 0;
    }
    // SAFETY: as above.
    let dst = unsafe { ctx.read_at::<u64>(global(&ATTACH_DST_ID)) }.unwrap_or(0);
    if dst == cgroup_id() {
        return 0;
    }
    let _ = TRACKED.remove(pid);
    let Some(event) = start(LEFT) else {
        return 0;
    };
    // The mover is `current`; the event is about the moved task.
    event.pid = pid;
    event.tid = pid;
    // SAFETY: as above; a __data_loc field holds (length << 16 | offset) of its string within
    // the record.
    if let Ok(loc) = unsafe { ctx.read_at::<u32>(global(&ATTACH_DST_PATH)) } {
        let path = (ctx.as_ptr() as *const u8).wrapping_add((loc & 0xffff) as usize);
        // SAFETY: a bounded read of kernel memory (the record), checked by the helper.
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(path, &mut event.data) };
    }
    // SAFETY: as above: the moved task's name (`current` is the mover).
    if let Ok(loc) = unsafe { ctx.read_at::<u32>(global(&ATTACH_COMM)) } {
        let comm = (ctx.as_ptr() as *const u8).wrapping_add((loc & 0xffff) as usize);
        event.comm = [0; 16];
        // SAFETY: as above.
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(comm, &mut event.comm) };
    }
    emit(event);
    0
}

/// bind, connect and sendmsg of IPv4/IPv6 sockets: the address asked for and the device the
/// socket is bound to. `V6` is a constant so that each program only reads the fields its
/// attach type may (the verifier refuses `user_ip6` in an IPv4 hook).
#[inline(always)]
fn sock_addr<const V6: bool>(ctx: &SockAddrContext, kind: u32) -> i32 {
    let Some(event) = start(kind) else {
        return 1;
    };
    let sa: *const bpf_sock_addr = ctx.sock_addr;
    // SAFETY: the kernel passes a valid `struct bpf_sock_addr`; these fields are readable by
    // every sock_addr attach type, and `sk` is a full socket.
    unsafe {
        event.family = (*sa).user_family;
        event.sock_type = (*sa).type_;
        event.protocol = (*sa).protocol;
        event.port = u32::from(u16::from_be((*sa).user_port as u16));
        if V6 {
            // Four 4-byte reads: the verifier allows no wider access to user_ip6.
            let ip6 = core::ptr::addr_of!((*sa).user_ip6).cast::<u32>();
            for i in 0..4 {
                let word = core::ptr::read_volatile(ip6.add(i));
                event.addr[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
        } else {
            event.addr[..4].copy_from_slice(&(*sa).user_ip4.to_ne_bytes());
        }
        let sk = (*sa).__bindgen_anon_1.sk;
        if !sk.is_null() {
            event.ifindex = (*sk).bound_dev_if;
        }
    }
    emit(event);
    1
}

#[cgroup_sock_addr(bind4)]
pub fn trace_bind4(ctx: SockAddrContext) -> i32 {
    sock_addr::<false>(&ctx, BIND)
}

#[cgroup_sock_addr(bind6)]
pub fn trace_bind6(ctx: SockAddrContext) -> i32 {
    sock_addr::<true>(&ctx, BIND)
}

#[cgroup_sock_addr(connect4)]
pub fn trace_connect4(ctx: SockAddrContext) -> i32 {
    sock_addr::<false>(&ctx, CONNECT)
}

#[cgroup_sock_addr(connect6)]
pub fn trace_connect6(ctx: SockAddrContext) -> i32 {
    sock_addr::<true>(&ctx, CONNECT)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn trace_sendmsg4(ctx: SockAddrContext) -> i32 {
    sock_addr::<false>(&ctx, SENDMSG)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn trace_sendmsg6(ctx: SockAddrContext) -> i32 {
    sock_addr::<true>(&ctx, SENDMSG)
}

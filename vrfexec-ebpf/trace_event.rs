//! The record `vrfexec trace`'s programs put in the ring buffer, shared by the eBPF side
//! (`src/trace.rs`) and the reader (`vrfexec/src/verbs/trace/event.rs`), which include this
//! one file, so the two cannot drift apart. Plain `repr(C)` integers and byte arrays: the
//! reader copies the bytes out and never trusts a length it did not bound itself.

/// A socket was created (syscall socket(2), on its return).
pub const SOCKET: u32 = 1;
/// bind(2) of an IPv4/IPv6 socket (cgroup bind4/bind6 hooks).
pub const BIND: u32 = 2;
/// connect(2) of an IPv4/IPv6 socket (cgroup connect4/connect6 hooks).
pub const CONNECT: u32 = 3;
/// A UDP datagram sent to an explicit address (cgroup sendmsg4/sendmsg6 hooks).
pub const SENDMSG: u32 = 4;
/// setsockopt(2) of an option that moves a socket to a device, on its return.
pub const SETSOCKOPT: u32 = 5;
/// connect(2) of an AF_UNIX socket, on its return.
pub const UNIX_CONNECT: u32 = 6;
/// sendmsg(2) carrying IP_PKTINFO/IPV6_PKTINFO, which names the outgoing interface per packet.
pub const PKTINFO: u32 = 7;

/// A process of the command was moved to another cgroup (`pid` is the moved task; `data` the
/// cgroup's path, `addr`'s first byte 1 if the task was the whole process).
pub const LEFT: u32 = 8;

/// Bytes of `Event::data`: a Unix socket path (sun_path) or a device name.
pub const DATA_LEN: usize = 108;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event {
    /// One of the kinds above.
    pub kind: u32,
    /// The process (thread group) id and the thread id.
    pub pid: u32,
    pub tid: u32,
    /// The device the socket is bound to when the hook ran (0: none, the default VRF); for
    /// PKTINFO and SETSOCKOPT the ifindex the call names (network order for IP_UNICAST_IF).
    pub ifindex: u32,
    /// The syscall's return value (on-return kinds): a new fd, 0, or -errno.
    pub ret: i64,
    /// Address family, socket type and protocol (socket(2)'s three arguments for SOCKET).
    pub family: u32,
    pub sock_type: u32,
    pub protocol: u32,
    /// Destination (or, for BIND, local) port, host order.
    pub port: u32,
    /// setsockopt's level and option name.
    pub level: i32,
    pub optname: i32,
    /// setsockopt's optlen; for UNIX_CONNECT the address length.
    pub len: u32,
    /// The fd the call was made on, where the hook knows it.
    pub fd: i32,
    /// IPv4 (first 4 bytes) or IPv6 address, network order.
    pub addr: [u8; 16],
    /// The thread's command name (TASK_COMM_LEN).
    pub comm: [u8; 16],
    /// Unix socket path, or the device name SO_BINDTODEVICE was given.
    pub data: [u8; DATA_LEN],
}

impl Event {
    pub const ZERO: Event = Event {
        kind: 0,
        pid: 0,
        tid: 0,
        ifindex: 0,
        ret: 0,
        family: 0,
        sock_type: 0,
        protocol: 0,
        port: 0,
        level: 0,
        optname: 0,
        len: 0,
        fd: 0,
        addr: [0; 16],
        comm: [0; 16],
        data: [0; DATA_LEN],
    };
}

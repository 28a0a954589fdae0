//! What `trace` prints: one line (or JSON object) per event, and the summary at the end.
//!
//! The raw record comes from the kernel (`vrfexec-ebpf/trace_event.rs`); everything here is
//! plain data, so the wording and the verdicts are unit-tested without a kernel.
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use serde_json::{json, Value};

#[path = "../../../../vrfexec-ebpf/trace_event.rs"]
#[allow(dead_code)]
mod raw;

pub use raw::Event as Raw;
use raw::{BIND, CONNECT, LEFT, PKTINFO, SENDMSG, SETSOCKOPT, SOCKET, UNIX_CONNECT};

const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const AF_NETLINK: u32 = 16;
const AF_PACKET: u32 = 17;
const SOCK_TYPE_MASK: u32 = 0xf;
const SOL_IP: i32 = 0;
const SOL_SOCKET: i32 = 1;
const SO_BINDTODEVICE: i32 = 25;
const SO_BINDTOIFINDEX: i32 = 62;
const IP_UNICAST_IF: i32 = 50;
const IPV6_UNICAST_IF: i32 = 76;

/// Copies a record out of the ring buffer's bytes; None if it is too short to be one.
pub fn decode(bytes: &[u8]) -> Option<Raw> {
    if bytes.len() < std::mem::size_of::<Raw>() {
        return None;
    }
    // SAFETY: `bytes` holds at least size_of::<Raw>() bytes; Raw is repr(C), made only of
    // integers and byte arrays (every bit pattern is valid), and read_unaligned needs no
    // alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Raw>()) })
}

/// What the trace knows about devices: the target's ifindex and how to name and place others.
pub trait Devices {
    /// The ifindex the run binds to (0: the default VRF).
    fn target(&self) -> u32;
    /// The device's name, if it still exists.
    fn name(&self, ifindex: u32) -> Option<String>;
    /// Whether a socket bound to `ifindex` uses the target's routing: the target itself, or a
    /// device enslaved to the target VRF.
    fn in_target(&self, ifindex: u32) -> bool;
    /// Whether a process in cgroup `cgroup` still gets the target's program (it is in the
    /// VRF's cgroup or below it).
    fn in_target_cgroup(&self, cgroup: &str) -> bool;
}

/// Whether cgroup path `path` is `dir` or below it.
pub fn below(path: &str, dir: &str) -> bool {
    let path = path.trim_end_matches('/');
    let dir = dir.trim_end_matches('/');
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
        || dir.is_empty()
}

/// One event, decoded and judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub pid: u32,
    pub comm: String,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq)]
pub enum What {
    Socket {
        family: u32,
        sock_type: u32,
        protocol: u32,
        /// The new fd, or -errno.
        ret: i64,
    },
    /// bind/connect/sendto of an IPv4/IPv6 socket.
    Address {
        call: &'static str,
        sock_type: u32,
        protocol: u32,
        addr: IpAddr,
        port: u16,
        /// The device the socket was bound to.
        ifindex: u32,
    },
    Rebind {
        option: &'static str,
        /// The device asked for: a name (SO_BINDTODEVICE) or an ifindex.
        device: Device,
        ret: i64,
    },
    Unix {
        path: String,
        ret: i64,
    },
    PktInfo {
        ifindex: u32,
        dest: Option<(IpAddr, u16)>,
        ipv6: bool,
    },
    /// The process was moved to cgroup `cgroup`: no longer traced.
    Left {
        cgroup: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Device {
    Name(String),
    Index(u32),
}

fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn ip(family: u32, addr: &[u8; 16]) -> IpAddr {
    if family == AF_INET6 {
        IpAddr::V6(Ipv6Addr::from(*addr))
    } else {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    }
}

impl Event {
    /// Turns a record into an event; None for a kind this reader does not know.
    pub fn from_raw(raw: &Raw) -> Option<Self> {
        let what = match raw.kind {
            SOCKET => What::Socket {
                family: raw.family,
                sock_type: raw.sock_type,
                protocol: raw.protocol,
                ret: raw.ret,
            },
            BIND | CONNECT | SENDMSG => What::Address {
                call: match raw.kind {
                    BIND => "bind",
                    CONNECT => "connect",
                    _ => "sendto",
                },
                sock_type: raw.sock_type,
                protocol: raw.protocol,
                addr: ip(raw.family, &raw.addr),
                port: raw.port as u16,
                ifindex: raw.ifindex,
            },
            SETSOCKOPT => {
                let (option, device) = match (raw.level, raw.optname) {
                    (SOL_SOCKET, SO_BINDTODEVICE) => {
                        let len = (raw.len as usize).min(16);
                        ("SO_BINDTODEVICE", Device::Name(text(&raw.data[..len])))
                    }
                    (SOL_SOCKET, SO_BINDTOIFINDEX) => {
                        ("SO_BINDTOIFINDEX", Device::Index(raw.ifindex))
                    }
                    // IP_UNICAST_IF takes the ifindex in network order (ip(7)).
                    (SOL_IP, IP_UNICAST_IF) => {
                        ("IP_UNICAST_IF", Device::Index(u32::from_be(raw.ifindex)))
                    }
                    (_, IPV6_UNICAST_IF) => ("IPV6_UNICAST_IF", Device::Index(raw.ifindex)),
                    _ => return None,
                };
                What::Rebind {
                    option,
                    device,
                    ret: raw.ret,
                }
            }
            UNIX_CONNECT => {
                // sun_path: a path ends at its NUL; an abstract name starts with one and ends
                // at the address length (unix(7)), shown with a leading '@' as ss(8) does.
                let path_len = (raw.len as usize).saturating_sub(2).min(raw::DATA_LEN);
                let path = if raw.data.first() == Some(&0) && path_len > 1 {
                    format!(
                        "@{}",
                        String::from_utf8_lossy(&raw.data[1..path_len.min(64)])
                    )
                } else {
                    text(&raw.data)
                };
                What::Unix { path, ret: raw.ret }
            }
            PKTINFO => What::PktInfo {
                ifindex: raw.ifindex,
                dest: (raw.family == AF_INET || raw.family == AF_INET6)
                    .then(|| (ip(raw.family, &raw.addr), raw.port as u16)),
                ipv6: raw.level != SOL_IP,
            },
            LEFT => What::Left {
                cgroup: text(&raw.data),
            },
            _ => return None,
        };
        Some(Event {
            pid: raw.pid,
            comm: text(&raw.comm),
            what,
        })
    }

    /// Whether this event shows traffic or a socket that does not use the target: the thing
    /// the summary lists. (Unix sockets are listed separately.)
    pub fn outside(&self, devices: &dyn Devices) -> bool {
        match &self.what {
            What::Socket { family, ret, .. } => *ret >= 0 && *family == AF_PACKET,
            What::Address { ifindex, .. } => !devices.in_target(*ifindex),
            What::Rebind { device, ret, .. } => {
                *ret == 0
                    && match device {
                        Device::Index(index) => !devices.in_target(*index),
                        Device::Name(name) if name.is_empty() => devices.target() != 0,
                        Device::Name(name) => {
                            devices.name(devices.target()).as_deref() != Some(name.as_str())
                                && !nix::net::if_::if_nametoindex(name.as_str())
                                    .is_ok_and(|i| devices.in_target(i))
                        }
                    }
            }
            What::Unix { .. } => false,
            What::PktInfo { ifindex, .. } => *ifindex != 0 && !devices.in_target(*ifindex),
            What::Left { cgroup } => !devices.in_target_cgroup(cgroup),
        }
    }

    /// The event as one line of text (without the "trace: " prefix). Names and paths come
    /// from the traced command (its comm, socket paths, cgroup paths): control characters are
    /// escaped, so that it cannot forge lines or drive the terminal of whoever reads them.
    pub fn line(&self, devices: &dyn Devices, strict: bool) -> String {
        escape_controls(&self.raw_line(devices, strict))
    }

    fn raw_line(&self, devices: &dyn Devices, strict: bool) -> String {
        let mut line = format!("{} {}: ", self.pid, self.comm);
        let target = target_name(devices);
        match &self.what {
            What::Socket {
                family,
                sock_type,
                protocol,
                ret,
            } => {
                let _ = write!(
                    line,
                    "socket {} {}{} = {}",
                    family_name(*family),
                    type_name(*sock_type),
                    protocol_suffix(*family, *sock_type, *protocol),
                    result(*ret)
                );
                if *ret >= 0 {
                    line.push_str(match *family {
                        AF_INET | AF_INET6 => "",
                        AF_PACKET => ", NOT bound: packet sockets bypass the VRF's routing",
                        _ => "",
                    });
                    if (*family == AF_INET || *family == AF_INET6) && devices.target() != 0 {
                        let _ = write!(line, ", bound to {target}");
                    } else if *family == AF_INET || *family == AF_INET6 {
                        line.push_str(", not bound (default VRF)");
                    }
                }
            }
            What::Address {
                call,
                sock_type,
                protocol,
                addr,
                port,
                ifindex,
            } => {
                let _ = write!(
                    line,
                    "{call} {} {} via {}",
                    l4_name(*sock_type, *protocol),
                    endpoint(addr, *port),
                    dev_name(devices, *ifindex)
                );
                if !devices.in_target(*ifindex) {
                    let _ = write!(line, ", NOT {target}");
                }
            }
            What::Rebind {
                option,
                device,
                ret,
            } => {
                let asked = match device {
                    Device::Name(name) if name.is_empty() => "\"\" (unbind)".to_owned(),
                    Device::Name(name) => format!("\"{name}\""),
                    Device::Index(0) => "0 (unbind)".to_owned(),
                    Device::Index(index) => dev_name(devices, *index),
                };
                let _ = write!(line, "setsockopt {option} {asked} = {}", result(*ret));
                if *ret == -i64::from(libc::EPERM) && strict {
                    line.push_str(", refused by --strict");
                } else if *ret == 0 && self.outside(devices) {
                    let _ = write!(line, ", the socket leaves {target}");
                }
            }
            What::Unix { path, ret } => {
                let _ = write!(line, "connect unix {path} = {}", result(*ret));
                if *ret == 0 {
                    line.push_str(", a local process answers, in whatever VRF it uses");
                }
            }
            What::PktInfo {
                ifindex,
                dest,
                ipv6,
            } => {
                let option = if *ipv6 { "IPV6_PKTINFO" } else { "IP_PKTINFO" };
                let to = dest
                    .map(|(addr, port)| format!(" to {}", endpoint(&addr, port)))
                    .unwrap_or_default();
                if *ifindex == 0 {
                    let _ = write!(line, "sendmsg{to} with {option} naming no interface");
                } else {
                    let _ = write!(
                        line,
                        "sendmsg{to} with {option} interface {}",
                        dev_name(devices, *ifindex)
                    );
                    if !devices.in_target(*ifindex) {
                        let _ = write!(line, ", NOT {target}");
                    }
                }
            }
            What::Left { cgroup } => {
                let _ = write!(line, "moved to cgroup {cgroup}, no longer traced");
                if devices.in_target_cgroup(cgroup) {
                    let _ = write!(line, " (still in {target}'s)");
                } else {
                    let _ = write!(line, ": its new sockets are NOT bound to {target}");
                }
            }
        }
        line
    }

    /// The event as a JSON object (one line of `--json`).
    pub fn json(&self, devices: &dyn Devices) -> Value {
        let mut object = json!({ "pid": self.pid, "comm": self.comm });
        let fields = match &self.what {
            What::Socket {
                family,
                sock_type,
                protocol,
                ret,
            } => {
                let inet = *family == AF_INET || *family == AF_INET6;
                json!({
                    "event": "socket",
                    "family": family_name(*family),
                    "type": type_name(*sock_type),
                    "protocol": *protocol,
                    "fd": (*ret >= 0).then_some(*ret),
                    "error": error_name(*ret),
                    "ifindex": inet.then(|| devices.target()),
                    "dev": if inet { dev_json(devices, devices.target()) } else { Value::Null },
                })
            }
            What::Address {
                call,
                sock_type,
                protocol,
                addr,
                port,
                ifindex,
            } => json!({
                "event": call,
                "protocol": l4_name(*sock_type, *protocol),
                "address": addr.to_string(),
                "port": port,
                "ifindex": ifindex,
                "dev": dev_json(devices, *ifindex),
            }),
            What::Rebind {
                option,
                device,
                ret,
            } => {
                let (name, index) = match device {
                    Device::Name(name) => (Value::from(name.clone()), Value::Null),
                    Device::Index(index) => (dev_json(devices, *index), Value::from(*index)),
                };
                json!({
                    "event": "setsockopt",
                    "option": option,
                    "dev": name,
                    "ifindex": index,
                    "error": error_name(*ret),
                })
            }
            What::Unix { path, ret } => json!({
                "event": "connect",
                "protocol": "unix",
                "path": path,
                "error": error_name(*ret),
            }),
            What::PktInfo {
                ifindex,
                dest,
                ipv6,
            } => json!({
                "event": "sendmsg",
                "option": if *ipv6 { "IPV6_PKTINFO" } else { "IP_PKTINFO" },
                "ifindex": ifindex,
                "dev": dev_json(devices, *ifindex),
                "address": dest.map(|(a, _)| a.to_string()),
                "port": dest.map(|(_, p)| p),
            }),
            What::Left { cgroup } => json!({
                "event": "left",
                "cgroup": cgroup,
            }),
        };
        if let (Value::Object(object), Value::Object(fields)) = (&mut object, fields) {
            object.extend(fields);
            object.insert("outside".into(), Value::Bool(self.outside(devices)));
        }
        object
    }
}

/// `text` with every control character written as an escape (`\n`, `\u{1b}`).
fn escape_controls(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

fn dev_json(devices: &dyn Devices, ifindex: u32) -> Value {
    if ifindex == 0 {
        return Value::Null;
    }
    devices
        .name(ifindex)
        .map(Value::from)
        .unwrap_or(Value::Null)
}

/// How the run's target reads: its device name, or "the default VRF".
fn target_name(devices: &dyn Devices) -> String {
    match devices.target() {
        0 => "the default VRF".to_owned(),
        index => dev_name(devices, index),
    }
}

/// How a device reads in a line: its name, "ifindex N" if gone, "no device (the default VRF)".
pub fn dev_name(devices: &dyn Devices, ifindex: u32) -> String {
    if ifindex == 0 {
        return "no device (default VRF)".to_owned();
    }
    devices
        .name(ifindex)
        .unwrap_or_else(|| format!("ifindex {ifindex}"))
}

fn endpoint(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

fn result(ret: i64) -> String {
    match error_name(ret) {
        Some(name) => format!("-1 {name}"),
        None => ret.to_string(),
    }
}

fn error_name(ret: i64) -> Option<String> {
    if ret >= 0 {
        return None;
    }
    let errno = i32::try_from(-ret).unwrap_or(0);
    Some(format!("{:?}", nix::errno::Errno::from_raw(errno)))
}

pub fn family_name(family: u32) -> String {
    match family {
        AF_UNIX => "unix".into(),
        AF_INET => "inet".into(),
        AF_INET6 => "inet6".into(),
        AF_NETLINK => "netlink".into(),
        AF_PACKET => "packet".into(),
        other => format!("family {other}"),
    }
}

fn type_name(sock_type: u32) -> String {
    match sock_type & SOCK_TYPE_MASK {
        1 => "stream".into(),
        2 => "dgram".into(),
        3 => "raw".into(),
        5 => "seqpacket".into(),
        other => format!("type {other}"),
    }
}

fn protocol_suffix(family: u32, sock_type: u32, protocol: u32) -> String {
    if family == AF_INET || family == AF_INET6 {
        format!(" {}", l4_name(sock_type, protocol))
    } else if protocol != 0 {
        format!(" protocol {protocol}")
    } else {
        String::new()
    }
}

/// The transport a socket speaks: its protocol, or the one its type implies.
fn l4_name(sock_type: u32, protocol: u32) -> String {
    match (sock_type & SOCK_TYPE_MASK, protocol) {
        (_, 6) | (1, 0) => "tcp".into(),
        (_, 17) | (2, 0) => "udp".into(),
        (_, 1) => "icmp".into(),
        (_, 58) => "icmpv6".into(),
        (_, 132) => "sctp".into(),
        (_, other) => format!("protocol {other}"),
    }
}

/// What the summary counts, fed one event at a time.
#[derive(Debug, Default)]
pub struct Summary {
    /// Sockets created, by what they are bound to ("red", "unix", ...).
    pub sockets: BTreeMap<String, u64>,
    /// (call, protocol, endpoint, device) -> times.
    pub destinations: BTreeMap<(String, String, String, String), u64>,
    /// Lines of what did not use the target.
    pub outside: Vec<String>,
    /// Unix sockets connected to, and how often.
    pub unix: BTreeMap<String, u64>,
    pub refused: u64,
}

impl Summary {
    pub fn add(&mut self, event: &Event, devices: &dyn Devices, strict: bool) {
        match &event.what {
            What::Socket { family, ret, .. } if *ret >= 0 => {
                let key = match *family {
                    AF_INET | AF_INET6 => target_name(devices),
                    other => family_name(other),
                };
                *self.sockets.entry(key).or_default() += 1;
            }
            What::Address {
                call,
                sock_type,
                protocol,
                addr,
                port,
                ifindex,
            } => {
                *self
                    .destinations
                    .entry((
                        (*call).to_owned(),
                        l4_name(*sock_type, *protocol),
                        endpoint(addr, *port),
                        dev_name(devices, *ifindex),
                    ))
                    .or_default() += 1;
            }
            What::Unix { path, ret } if *ret == 0 => {
                *self.unix.entry(path.clone()).or_default() += 1;
            }
            What::Rebind { ret, .. } if *ret == -i64::from(libc::EPERM) && strict => {
                self.refused += 1;
            }
            _ => {}
        }
        if event.outside(devices) {
            let line = event.line(devices, strict);
            if !self.outside.contains(&line) {
                self.outside.push(line);
            }
        }
    }

    /// The summary's lines (without the "trace: " prefix).
    pub fn lines(&self, devices: &dyn Devices) -> Vec<String> {
        let target = target_name(devices);
        let mut lines = Vec::new();
        let sockets: Vec<String> = self
            .sockets
            .iter()
            .map(|(key, n)| format!("{n} {key}"))
            .collect();
        lines.push(format!(
            "sockets: {}",
            if sockets.is_empty() {
                "none".to_owned()
            } else {
                sockets.join(", ")
            }
        ));
        for ((call, proto, end, dev), n) in &self.destinations {
            lines.push(format!("{call} {proto} {end} via {dev} ({n}x)"));
        }
        for (path, n) in &self.unix {
            lines.push(format!(
                "unix {path} ({n}x): answered outside the VRF's routing"
            ));
        }
        if self.refused > 0 {
            lines.push(format!("refused by --strict: {}", self.refused));
        }
        if self.outside.is_empty() {
            lines.push(format!("everything used {target}"));
        } else {
            lines.push(format!("NOT in {target}: {}", self.outside.len()));
            lines.extend(self.outside.iter().map(|l| format!("  {l}")));
        }
        lines
    }

    pub fn json(&self, devices: &dyn Devices) -> Value {
        json!({
            "sockets": self.sockets,
            "destinations": self.destinations.iter().map(|((call, proto, end, dev), n)| json!({
                "call": call, "protocol": proto, "endpoint": end, "dev": dev, "count": n,
            })).collect::<Vec<_>>(),
            "unix": self.unix,
            "refused": self.refused,
            "outside": self.outside,
            "target": dev_json(devices, devices.target()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// red = 5 with a slave eth1 = 6; blue = 7.
    struct Lab;
    impl Devices for Lab {
        fn target(&self) -> u32 {
            5
        }
        fn name(&self, ifindex: u32) -> Option<String> {
            match ifindex {
                5 => Some("red".into()),
                6 => Some("eth1".into()),
                7 => Some("blue".into()),
                _ => None,
            }
        }
        fn in_target(&self, ifindex: u32) -> bool {
            ifindex == 5 || ifindex == 6
        }
        fn in_target_cgroup(&self, cgroup: &str) -> bool {
            below(cgroup, "/user/vrf/red")
        }
    }

    fn raw(kind: u32) -> Raw {
        let mut raw = Raw::ZERO;
        raw.kind = kind;
        raw.pid = 42;
        raw.comm[..4].copy_from_slice(b"curl");
        raw
    }

    fn event(raw: &Raw) -> Event {
        let bytes = {
            // SAFETY: Raw is repr(C) plain data; viewing it as bytes is what the ring buffer
            // hands over.
            unsafe {
                std::slice::from_raw_parts(
                    (raw as *const Raw).cast::<u8>(),
                    std::mem::size_of::<Raw>(),
                )
            }
        };
        Event::from_raw(&decode(bytes).expect("decodes")).expect("known kind")
    }

    #[test]
    fn short_records_are_not_decoded() {
        assert!(decode(&[0u8; 8]).is_none());
    }

    #[test]
    fn a_connect_in_the_vrf_reads_as_such_and_is_not_outside() {
        let mut r = raw(CONNECT);
        r.family = AF_INET;
        r.sock_type = 1;
        r.protocol = 6;
        r.addr[..4].copy_from_slice(&[10, 9, 0, 2]);
        r.port = 80;
        r.ifindex = 5;
        let e = event(&r);
        assert_eq!(
            e.line(&Lab, false),
            "42 curl: connect tcp 10.9.0.2:80 via red"
        );
        assert!(!e.outside(&Lab));
        let j = e.json(&Lab);
        assert_eq!(j["event"], "connect");
        assert_eq!(j["dev"], "red");
        assert_eq!(j["port"], 80);
        assert_eq!(j["outside"], false);
        // A slave of the VRF is inside it.
        r.ifindex = 6;
        assert!(!event(&r).outside(&Lab));
    }

    #[test]
    fn unbound_and_foreign_devices_are_outside() {
        let mut r = raw(SENDMSG);
        r.family = AF_INET6;
        r.sock_type = 2;
        r.addr[15] = 1;
        r.port = 53;
        let e = event(&r);
        assert_eq!(
            e.line(&Lab, false),
            "42 curl: sendto udp [::1]:53 via no device (default VRF), NOT red"
        );
        assert!(e.outside(&Lab));
        r.ifindex = 7;
        assert!(event(&r).line(&Lab, false).ends_with("via blue, NOT red"));
    }

    #[test]
    fn rebinds_say_allowed_or_refused() {
        let mut r = raw(SETSOCKOPT);
        r.level = SOL_SOCKET;
        r.optname = SO_BINDTODEVICE;
        r.data[..4].copy_from_slice(b"blue");
        r.len = 5;
        let allowed = event(&r);
        assert_eq!(
            allowed.line(&Lab, false),
            "42 curl: setsockopt SO_BINDTODEVICE \"blue\" = 0, the socket leaves red"
        );
        assert!(allowed.outside(&Lab));
        r.ret = -i64::from(libc::EPERM);
        let refused = event(&r);
        assert_eq!(
            refused.line(&Lab, true),
            "42 curl: setsockopt SO_BINDTODEVICE \"blue\" = -1 EPERM, refused by --strict"
        );
        assert!(!refused.outside(&Lab));
        assert_eq!(refused.json(&Lab)["error"], "EPERM");
        // IP_UNICAST_IF carries the ifindex in network order.
        let mut r = raw(SETSOCKOPT);
        r.level = SOL_IP;
        r.optname = IP_UNICAST_IF;
        r.ifindex = 7u32.to_be();
        assert!(event(&r)
            .line(&Lab, false)
            .contains("IP_UNICAST_IF blue = 0"));
    }

    #[test]
    fn sockets_unix_connects_and_pktinfo() {
        let mut r = raw(SOCKET);
        r.family = AF_INET;
        r.sock_type = 1 | 0o2000000;
        r.ret = 3;
        assert_eq!(
            event(&r).line(&Lab, false),
            "42 curl: socket inet stream tcp = 3, bound to red"
        );
        r.family = AF_PACKET;
        r.sock_type = 3;
        r.protocol = 768;
        assert!(event(&r).outside(&Lab));

        let mut r = raw(UNIX_CONNECT);
        r.data[..9].copy_from_slice(b"/run/nscd");
        r.len = 12;
        assert!(event(&r)
            .line(&Lab, false)
            .starts_with("42 curl: connect unix /run/nscd = 0, a local process answers"));
        let mut abstract_name = raw(UNIX_CONNECT);
        abstract_name.data[1..4].copy_from_slice(b"bus");
        abstract_name.len = 2 + 4;
        assert_eq!(
            event(&abstract_name).json(&Lab)["path"],
            Value::from("@bus")
        );

        let mut r = raw(PKTINFO);
        r.level = SOL_IP;
        r.ifindex = 7;
        r.family = AF_INET;
        r.addr[..4].copy_from_slice(&[10, 9, 0, 2]);
        r.port = 53;
        let e = event(&r);
        assert_eq!(
            e.line(&Lab, false),
            "42 curl: sendmsg to 10.9.0.2:53 with IP_PKTINFO interface blue, NOT red"
        );
        assert!(e.outside(&Lab));
    }

    #[test]
    fn the_summary_counts_and_lists_what_left() {
        let mut summary = Summary::default();
        let mut s = raw(SOCKET);
        s.family = AF_INET;
        s.sock_type = 1;
        s.ret = 3;
        summary.add(&event(&s), &Lab, false);
        let mut c = raw(CONNECT);
        c.family = AF_INET;
        c.sock_type = 1;
        c.addr[..4].copy_from_slice(&[10, 9, 0, 2]);
        c.port = 80;
        c.ifindex = 5;
        summary.add(&event(&c), &Lab, false);
        summary.add(&event(&c), &Lab, false);
        let lines = summary.lines(&Lab);
        assert_eq!(lines[0], "sockets: 1 red");
        assert_eq!(lines[1], "connect tcp 10.9.0.2:80 via red (2x)");
        assert_eq!(
            lines.last().map(String::as_str),
            Some("everything used red")
        );
        c.ifindex = 0;
        summary.add(&event(&c), &Lab, false);
        let lines = summary.lines(&Lab);
        assert!(lines.iter().any(|l| l == "NOT in red: 1"));
        assert_eq!(
            summary.json(&Lab)["outside"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn a_process_that_leaves_is_outside_unless_it_stays_in_the_vrf() {
        let mut r = raw(LEFT);
        r.data[..8].copy_from_slice(b"/escape\0");
        let e = event(&r);
        assert_eq!(
            e.line(&Lab, false),
            "42 curl: moved to cgroup /escape, no longer traced: its new sockets are NOT bound to red"
        );
        assert!(e.outside(&Lab));
        assert_eq!(e.json(&Lab)["event"], "left");
        let mut r = raw(LEFT);
        r.data[..14].copy_from_slice(b"/user/vrf/red\0");
        assert!(!event(&r).outside(&Lab));
        assert!(below("/user/vrf/red/x", "/user/vrf/red"));
        assert!(!below("/user/vrf/redder", "/user/vrf/red"));
    }

    #[test]
    fn names_from_the_command_cannot_forge_lines() {
        let mut r = raw(UNIX_CONNECT);
        let path = b"/x\ntrace: everything used red\x1b[2J";
        r.data[..path.len()].copy_from_slice(path);
        r.len = 2 + path.len() as u32 + 1;
        r.comm[..4].copy_from_slice(b"c\nrl");
        let line = event(&r).line(&Lab, false);
        assert!(!line.contains('\n') && !line.contains('\x1b'), "{line}");
        assert!(
            line.starts_with("42 c\\nrl: connect unix /x\\ntrace: everything"),
            "{line}"
        );
    }
}

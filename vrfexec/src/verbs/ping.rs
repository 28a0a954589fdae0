//! `vrfexec ping <VRF> <DEST>`: ICMP/ICMPv6 echo from a socket bound to the VRF with
//! SO_BINDTODEVICE, with no BPF and no cgroup, and no need for iputils.
//!
//! An unprivileged ICMP "ping" socket (SOCK_DGRAM, IPPROTO_ICMP{,V6}) is used where
//! net.ipv4.ping_group_range admits the caller's group; the kernel then owns the echo id and
//! delivers only our replies. Otherwise a raw socket (CAP_NET_RAW) is used, which sees every
//! ICMP packet, so replies are matched on id. Since Linux 5.7 binding a socket to a device
//! needs no privilege. Output, summary and exit status follow iputils' ping: 0 if any reply
//! came, 1 if none did, 2 on error; Ctrl-C ends the run with the summary.
use std::{
    ffi::{OsStr, OsString},
    fmt::Write as _,
    io,
    mem::size_of,
    net::{IpAddr, SocketAddr},
    os::fd::{AsFd as _, AsRawFd as _, OwnedFd},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use nix::{
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::{
        signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal},
        socket::{
            self, sockopt, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
            SockaddrStorage,
        },
    },
};

use crate::{
    cli::PingArgs,
    error::{Error, Result},
    sys::{netlink::RtNetlink, privilege::Caller},
    verbs::route::{self, Family},
    vrf::target::{self, Target},
};

/// ping's exit status for every error, bad options included, as iputils has it (1 is "no
/// reply", 0 "some reply").
pub const EXIT_ERROR: u8 = 2;

/// Gives an error ping's own exit status.
pub fn with_ping_status(err: Error) -> Error {
    Error::WithStatus {
        status: EXIT_ERROR,
        inner: Box::new(err),
    }
}

/// The `ping` verb: exit 0 some reply, 1 none, 2 error.
pub fn run(args: &PingArgs, _caller: &Caller) -> Result<u8> {
    let privileged = caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_NET_RAW)
        .unwrap_or(false);
    parse_options(
        args.count.as_deref(),
        args.interval.as_deref(),
        args.timeout.as_deref(),
        args.size.as_deref(),
        args.family.family(),
        args.quiet,
        privileged,
    )
    .and_then(|options| ping(&args.vrf, args.dev, &args.dest, &options))
    .map_err(with_ping_status)
}

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// The ICMP echo header: type, code, checksum, id, sequence.
const ICMP_HEADER: usize = 8;
/// Largest payload: 65535 minus the IPv4 (20) and ICMP (8) headers.
pub const MAX_SIZE: usize = 65507;
/// Payload bytes that carry the send time (as iputils: a struct timeval).
const TIMESTAMP_LEN: usize = 16;

#[derive(Debug, Clone)]
pub struct PingOptions {
    pub count: Option<u64>,
    pub interval: Duration,
    /// How long to wait for replies after the last request.
    pub timeout: Duration,
    pub size: usize,
    pub family: Family,
    pub quiet: bool,
}

/// Parses ping's numeric options with their limits; errors say which option and why.
pub fn parse_options(
    count: Option<&str>,
    interval: Option<&str>,
    timeout: Option<&str>,
    size: Option<&str>,
    family: Family,
    quiet: bool,
    privileged: bool,
) -> Result<PingOptions> {
    let bad =
        |opt: &str, value: &str, why: &str| Error::Usage(format!("invalid {opt} '{value}': {why}"));
    let count = match count {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 => Some(n),
            _ => return Err(bad("-c", v, "expected a count of at least 1")),
        },
    };
    let seconds = |opt: &str, v: &str| -> Result<Duration> {
        match v.parse::<f64>() {
            Ok(s) if (0.0..=3600.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
            _ => Err(bad(opt, v, "expected seconds between 0 and 3600")),
        }
    };
    let interval = match interval {
        None => Duration::from_secs(1),
        Some(v) => {
            let d = seconds("-i", v)?;
            // iputils' floors: flooding the VRF needs privilege.
            let floor = if privileged {
                Duration::from_millis(2)
            } else {
                Duration::from_millis(200)
            };
            if d < floor {
                return Err(bad(
                    "-i",
                    v,
                    if privileged {
                        "the minimum is 0.002"
                    } else {
                        "the minimum without privileges is 0.2"
                    },
                ));
            }
            d
        }
    };
    let timeout = match timeout {
        None => Duration::from_secs(10),
        Some(v) => seconds("-W", v)?,
    };
    let size = match size {
        None => 56,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= MAX_SIZE => n,
            _ => {
                return Err(bad(
                    "-s",
                    v,
                    &format!("expected a payload size from 0 to {MAX_SIZE}"),
                ))
            }
        },
    };
    Ok(PingOptions {
        count,
        interval,
        timeout,
        size,
        family,
        quiet,
    })
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: header, then the send time (when it fits), then a byte pattern.
pub fn build_echo(v6: bool, id: u16, seq: u16, size: usize, sent: Duration) -> Vec<u8> {
    let mut packet = vec![0u8; ICMP_HEADER + size];
    packet[0] = if v6 {
        ICMPV6_ECHO_REQUEST
    } else {
        ICMP_ECHO_REQUEST
    };
    packet[4..6].copy_from_slice(&id.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    let payload = &mut packet[ICMP_HEADER..];
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte = (i % 256) as u8;
    }
    if size >= TIMESTAMP_LEN {
        payload[..8].copy_from_slice(&sent.as_secs().to_ne_bytes());
        payload[8..16].copy_from_slice(&u64::from(sent.subsec_micros()).to_ne_bytes());
    }
    // The kernel computes ICMPv6 checksums (it needs the pseudo-header); ICMPv4 is ours.
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// A parsed echo reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u16,
    pub seq: u16,
    /// ICMP header + payload bytes, as ping reports them.
    pub bytes: usize,
    /// TTL from the IPv4 header of a raw socket's packet.
    pub ttl: Option<u8>,
}

/// Parses what a socket returned: with `ip_header` (raw IPv4) the IP header comes first.
/// Anything that is not an echo reply gives None.
pub fn parse_reply(v6: bool, ip_header: bool, packet: &[u8]) -> Option<Reply> {
    let (icmp, ttl) = if ip_header {
        let ihl = usize::from(*packet.first()? & 0x0f) * 4;
        (packet.get(ihl..)?, Some(*packet.get(8)?))
    } else {
        (packet, None)
    };
    if icmp.len() < ICMP_HEADER {
        return None;
    }
    let want = if v6 {
        ICMPV6_ECHO_REPLY
    } else {
        ICMP_ECHO_REPLY
    };
    if icmp[0] != want || icmp[1] != 0 {
        return None;
    }
    Some(Reply {
        id: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        bytes: icmp.len(),
        ttl,
    })
}

/// Round-trip statistics as iputils prints them.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub transmitted: u64,
    pub received: u64,
    pub duplicates: u64,
    rtts: Vec<f64>,
}

impl Stats {
    pub fn add_rtt(&mut self, ms: f64) {
        self.rtts.push(ms);
    }

    /// The two summary lines after `--- DEST ping statistics ---`.
    pub fn summary(&self, elapsed: Duration) -> String {
        let loss = if self.transmitted == 0 {
            0.0
        } else {
            100.0 * (self.transmitted.saturating_sub(self.received)) as f64
                / self.transmitted as f64
        };
        let mut out = format!(
            "{} packets transmitted, {} received",
            self.transmitted, self.received
        );
        if self.duplicates > 0 {
            let _ = write!(out, ", +{} duplicates", self.duplicates);
        }
        let _ = writeln!(
            out,
            ", {}% packet loss, time {}ms",
            format_g(loss),
            elapsed.as_millis()
        );
        if !self.rtts.is_empty() {
            let n = self.rtts.len() as f64;
            let min = self.rtts.iter().copied().fold(f64::INFINITY, f64::min);
            let max = self.rtts.iter().copied().fold(0.0, f64::max);
            let avg = self.rtts.iter().sum::<f64>() / n;
            let mdev = (self.rtts.iter().map(|r| r * r).sum::<f64>() / n - avg * avg)
                .max(0.0)
                .sqrt();
            let _ = writeln!(
                out,
                "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"
            );
        }
        out
    }
}

/// printf's %g for a percentage: up to 6 significant digits, no trailing zeros.
fn format_g(value: f64) -> String {
    if value == value.trunc() {
        return format!("{value:.0}");
    }
    let digits = 6 - (value.abs().log10().floor() as i32 + 1);
    let text = format!("{value:.*}", digits.max(0) as usize);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// An ICMP socket bound to the VRF.
struct IcmpSocket {
    fd: OwnedFd,
    v6: bool,
    /// A raw socket: IPv4 packets arrive with their IP header, and ids must be matched.
    raw: bool,
}

fn open_socket(v6: bool, vrf: &str) -> Result<IcmpSocket> {
    let (family, protocol) = if v6 {
        (AddressFamily::Inet6, SockProtocol::IcmpV6)
    } else {
        (AddressFamily::Inet, SockProtocol::Icmp)
    };
    let open = |ty: SockType| -> io::Result<OwnedFd> {
        socket::socket(family, ty, SockFlag::SOCK_CLOEXEC, protocol).map_err(io::Error::from)
    };
    let (fd, raw) = match open(SockType::Datagram) {
        Ok(fd) => (fd, false),
        Err(dgram) => match open(SockType::Raw) {
            Ok(fd) => (fd, true),
            Err(raw) => {
                return Err(Error::os(
                    "cannot open an ICMP socket",
                    io::Error::new(raw.kind(), format!("ping socket: {}; raw socket: {}; allow ping sockets for your group (sysctl net.ipv4.ping_group_range) or run with CAP_NET_RAW", crate::error::os_text(&dgram), crate::error::os_text(&raw))),
                ))
            }
        },
    };
    // The name's bytes with their length, no NUL, as SO_BINDTODEVICE takes them.
    socket::setsockopt(&fd, sockopt::BindToDevice, &OsString::from(vrf)).map_err(|e| {
        Error::os(
            format!("cannot bind the ICMP socket to {vrf}"),
            io::Error::from(e),
        )
    })?;
    // Best effort (a reply then shows no ttl=). nix 0.29 has no socket option for
    // IP_RECVTTL or IPV6_RECVHOPLIMIT, and its SetSockOpt trait could only wrap this same
    // libc call, so it is made directly.
    let (level, option) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVTTL)
    };
    let on: libc::c_int = 1;
    // SAFETY: fd is an open socket owned here; the value pointer is to a live c_int and the
    // length given is exactly its size, which is all setsockopt(2) reads.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Ok(IcmpSocket { fd, v6, raw })
}

impl IcmpSocket {
    fn send(&self, packet: &[u8], dst: IpAddr) -> io::Result<()> {
        // Port 0, flow info 0, scope id 0: what an ICMP socket is sent to.
        let addr = SockaddrStorage::from(SocketAddr::new(dst, 0));
        socket::sendto(self.fd.as_raw_fd(), packet, &addr, MsgFlags::empty())?;
        Ok(())
    }

    /// One datagram and the TTL/hop limit from its control message, if any.
    ///
    /// This is libc's recvmsg, not nix's: nix 0.29 decodes an IP_TTL or IPV6_HOPLIMIT control
    /// message only into its opaque `ControlMessageOwned::Unknown`, whose bytes it keeps
    /// private, and does not expose the control buffer's filled length, so the TTL cannot be
    /// read through it.
    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Option<u8>)> {
        // u64s: aligned for cmsghdr, as CMSG_FIRSTHDR/CMSG_NXTHDR expect.
        let mut control = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data (pointers, lengths, flags), for which all-zero bytes
        // are a valid value: no name, no iovecs, no control buffer.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>();
        // SAFETY: fd is an open socket owned by self; msg points at iov (one iovec for all of
        // buf) and at control with their true lengths, and iov, buf and control all outlive
        // the call, which writes only within those lengths.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut ttl = None;
        // SAFETY: recvmsg succeeded, so msg_control/msg_controllen describe the part of control
        // the kernel filled with well-formed, aligned cmsghdrs. CMSG_FIRSTHDR and CMSG_NXTHDR
        // return null rather than step past msg_controllen, so every header dereferenced lies
        // inside control; an IP_TTL or IPV6_HOPLIMIT message carries one c_int, read unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let hdr = &*cmsg;
                let is_ttl = (hdr.cmsg_level == libc::IPPROTO_IP && hdr.cmsg_type == libc::IP_TTL)
                    || (hdr.cmsg_level == libc::IPPROTO_IPV6
                        && hdr.cmsg_type == libc::IPV6_HOPLIMIT);
                if is_ttl {
                    let value =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                    ttl = u8::try_from(value).ok();
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok((n as usize, ttl))
    }
}

fn now_since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Pings `dest` from inside the VRF. Output goes to stdout as it happens; returns the exit
/// code.
fn ping(vrf: &OsStr, dev: bool, dest: &str, options: &PingOptions) -> Result<u8> {
    use std::io::Write as _;
    let target = Target::named(vrf, dev, "ping", "use ping(8) for the default VRF")?;
    let dst = route::resolve_destination(dest, options.family)?;
    let mut netlink = RtNetlink::open()?;
    let binding = target::resolve(&target, &mut netlink)?;
    drop(netlink);
    let vrf_name = binding.leaf.unwrap_or_default();
    let v6 = dst.is_ipv6();
    let socket = open_socket(v6, &vrf_name)?;

    // No SA_RESTART, so a poll() under way returns EINTR and the loop sees the flag.
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: nix leaves installing a handler to the caller because the handler may run at
    // any point of any thread; on_interrupt only stores to an atomic, which is
    // async-signal-safe, and touches nothing else.
    let _ = unsafe { sigaction(Signal::SIGINT, &action) };

    let mut stdout = io::stdout().lock();
    let header = if v6 {
        format!(
            "PING {dest} ({dst}) vrf {vrf_name}: {} data bytes\n",
            options.size
        )
    } else {
        format!(
            "PING {dest} ({dst}) vrf {vrf_name}: {}({}) bytes of data.\n",
            options.size,
            options.size + 28
        )
    };
    let _ = stdout.write_all(header.as_bytes());
    let _ = stdout.flush();

    let id = (std::process::id() & 0xffff) as u16;
    let start = Instant::now();
    let mut stats = Stats::default();
    let mut sent_at: std::collections::HashMap<u16, Instant> = std::collections::HashMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut seq: u16 = 0;
    let mut next_send = start;
    let mut deadline: Option<Instant> = None;
    let mut buf = vec![0u8; MAX_SIZE + 128];
    let mut send_error = None;
    loop {
        if INTERRUPTED.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let all_sent = options.count.is_some_and(|c| stats.transmitted >= c);
        if all_sent && (stats.received >= stats.transmitted || deadline.is_some_and(|d| now >= d)) {
            break;
        }
        if !all_sent && now >= next_send {
            seq = seq.wrapping_add(1);
            let packet = build_echo(v6, id, seq, options.size, now_since_epoch());
            match socket.send(&packet, dst) {
                Ok(()) => {}
                Err(e)
                    if stats.received == 0
                        && stats.transmitted == 0
                        && e.raw_os_error() != Some(libc::ENETUNREACH)
                        && e.raw_os_error() != Some(libc::EHOSTUNREACH) =>
                {
                    send_error = Some(e);
                    break;
                }
                Err(e) => {
                    if !options.quiet {
                        let _ = writeln!(
                            stdout,
                            "From {dst} icmp_seq={seq}: {}",
                            crate::error::os_text(&e)
                        );
                    }
                }
            }
            sent_at.insert(seq, now);
            stats.transmitted += 1;
            next_send += options.interval;
            if options.count.is_some_and(|c| stats.transmitted >= c) {
                // After the last request: up to -W, but no longer than needed once every
                // reply is in (checked at the top of the loop).
                deadline = Some(now + options.timeout);
            }
            continue;
        }
        let wake = if all_sent {
            deadline.unwrap_or(now)
        } else {
            next_send
        };
        let wait_ms = wake.saturating_duration_since(now).as_millis().min(1000);
        let wait = PollTimeout::from(u16::try_from(wait_ms).unwrap_or(1000));
        let mut fds = [PollFd::new(socket.fd.as_fd(), PollFlags::POLLIN)];
        // A timeout or an error (EINTR on Ctrl-C): back to the top of the loop.
        if !matches!(poll(&mut fds, wait), Ok(ready) if ready > 0) {
            continue;
        }
        while let Ok((n, cmsg_ttl)) = socket.recv(&mut buf) {
            let Some(reply) = parse_reply(socket.v6, socket.raw && !socket.v6, &buf[..n]) else {
                continue;
            };
            if socket.raw && reply.id != id {
                continue;
            }
            let Some(sent) = sent_at.get(&reply.seq) else {
                continue;
            };
            let rtt = sent.elapsed().as_secs_f64() * 1000.0;
            let duplicate = !seen.insert(reply.seq);
            if duplicate {
                stats.duplicates += 1;
            } else {
                stats.received += 1;
                stats.add_rtt(rtt);
            }
            if !options.quiet {
                let ttl = reply
                    .ttl
                    .or(cmsg_ttl)
                    .map(|t| format!(" ttl={t}"))
                    .unwrap_or_default();
                let dup = if duplicate { " (DUP!)" } else { "" };
                let _ = writeln!(
                    stdout,
                    "{} bytes from {dst}: icmp_seq={}{ttl} time={}{dup}",
                    reply.bytes,
                    reply.seq,
                    format_rtt(rtt)
                );
                let _ = stdout.flush();
            }
        }
    }
    if let Some(e) = send_error {
        return Err(Error::os(
            format!("cannot send to {dst} in VRF {vrf_name}"),
            e,
        ));
    }
    let _ = write!(
        stdout,
        "\n--- {dest} ping statistics ---\n{}",
        stats.summary(start.elapsed())
    );
    let _ = stdout.flush();
    Ok(if stats.received > 0 { 0 } else { 1 })
}

/// iputils: three significant decimals below 100 ms, fewer above.
fn format_rtt(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2, so the checksum is !0xddf2.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        // A packet with its checksum filled in sums to zero.
        let packet = build_echo(false, 0x1234, 7, 56, Duration::from_secs(1));
        assert_eq!(checksum(&packet), 0);
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn echo_requests_have_the_right_shape() {
        let v4 = build_echo(false, 0xabcd, 3, 56, Duration::from_millis(1500));
        assert_eq!(v4.len(), 64);
        assert_eq!((v4[0], v4[1]), (8, 0));
        assert_eq!(&v4[4..8], &[0xab, 0xcd, 0, 3]);
        let v6 = build_echo(true, 1, 2, 0, Duration::ZERO);
        assert_eq!(v6, vec![128, 0, 0, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn replies_parse_with_and_without_ip_header() {
        let mut reply = build_echo(false, 9, 5, 56, Duration::ZERO);
        reply[0] = 0;
        assert_eq!(
            parse_reply(false, false, &reply),
            Some(Reply {
                id: 9,
                seq: 5,
                bytes: 64,
                ttl: None
            })
        );
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 61, 1, 0, 0, 10, 9, 0, 2, 10, 9, 0, 1,
        ];
        ip.extend_from_slice(&reply);
        assert_eq!(
            parse_reply(false, true, &ip).map(|r| (r.seq, r.ttl)),
            Some((5, Some(61)))
        );
        // Our own request seen on a raw socket, a short packet, a v6 reply.
        assert_eq!(
            parse_reply(false, false, &build_echo(false, 9, 5, 8, Duration::ZERO)),
            None
        );
        assert_eq!(parse_reply(false, false, &[0, 0, 0]), None);
        let mut v6 = build_echo(true, 1, 2, 0, Duration::ZERO);
        v6[0] = 129;
        assert_eq!(parse_reply(true, false, &v6).map(|r| r.seq), Some(2));
    }

    #[test]
    fn summary_matches_iputils() {
        let mut stats = Stats {
            transmitted: 3,
            received: 2,
            ..Default::default()
        };
        stats.add_rtt(1.0);
        stats.add_rtt(3.0);
        assert_eq!(
            stats.summary(Duration::from_millis(2003)),
            "3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms\nrtt min/avg/max/mdev = 1.000/2.000/3.000/1.000 ms\n"
        );
        let none = Stats {
            transmitted: 2,
            ..Default::default()
        };
        assert_eq!(
            none.summary(Duration::from_millis(1000)),
            "2 packets transmitted, 0 received, 100% packet loss, time 1000ms\n"
        );
        assert_eq!(format_g(0.0), "0");
        assert_eq!(format_g(66.666666), "66.6667");
        assert_eq!(format_rtt(0.04512), "0.045 ms");
    }

    #[test]
    fn options_are_checked() {
        let parse =
            |c: Option<&str>, i: Option<&str>, w: Option<&str>, s: Option<&str>, privileged| {
                parse_options(c, i, w, s, Family::Any, false, privileged)
            };
        let ok = parse(Some("3"), Some("0.5"), Some("2"), Some("100"), false).expect("ok");
        assert_eq!((ok.count, ok.size), (Some(3), 100));
        for (c, i, w, s, needle) in [
            (Some("0"), None, None, None, "-c '0'"),
            (Some("-1"), None, None, None, "-c '-1'"),
            (Some("x"), None, None, None, "-c 'x'"),
            (None, Some("0.01"), None, None, "minimum without privileges"),
            (None, Some("nan"), None, None, "-i 'nan'"),
            (None, None, Some("-3"), None, "-W '-3'"),
            (None, None, None, Some("70000"), "-s '70000'"),
            (None, None, None, Some("-1"), "-s '-1'"),
        ] {
            let err = parse(c, i, w, s, false).expect_err(needle);
            assert!(err.to_string().contains(needle), "{err}");
        }
        assert!(parse(None, Some("0.01"), None, None, true).is_ok());
    }
}

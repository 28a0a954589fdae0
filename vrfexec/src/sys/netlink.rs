//! Looking a device up by name over rtnetlink: one RTM_GETLINK request with IFLA_IFNAME, one
//! reply (RTM_NEWLINK, or an error such as ENODEV). This is the same question iproute2's
//! `name_is_vrf()` asks, answered with netlink-packet-route instead of hand-made attributes.
//!
//! The kernel resolves alternative names (`ip link property add ... altname`) too; the reply
//! carries the canonical name, which is what vrfexec uses for the cgroup directory.
use std::io;

use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NetlinkDeserializable as _, NetlinkHeader, NetlinkMessage,
    NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::{
    link::{
        InfoData, InfoKind, InfoVrf, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
        LinkMessageBuffer, State,
    },
    AddressFamily, RouteNetlinkMessage,
};
use netlink_packet_utils::ParseableParametrized as _;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

/// What vrfexec needs to know about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// IFLA_INFO_KIND ("vrf", "veth", ...); None for devices without one (physical NICs, lo).
    pub kind: Option<String>,
    /// IFLA_VRF_TABLE, for VRFs.
    pub vrf_table: Option<u32>,
    /// IFLA_MASTER: the VRF (or bridge, bond) this device is enslaved to.
    pub master: Option<u32>,
    /// IFF_UP.
    pub admin_up: bool,
    /// IFLA_OPERSTATE as `ip link` prints it ("UP", "DOWN", "UNKNOWN", ...).
    pub oper_state: String,
}

impl Link {
    pub fn is_vrf(&self) -> bool {
        self.kind.as_deref() == Some("vrf")
    }

    /// "a veth device", "a device without a kind (physical or loopback)": for error messages.
    pub fn describe_kind(&self) -> String {
        match &self.kind {
            Some(kind) => format!("a {kind} device"),
            None => "a device without a link kind (physical or loopback)".to_owned(),
        }
    }
}

/// Where links come from: the kernel, or a fake in unit tests.
pub trait LinkSource {
    /// The link called `name`, or None if there is no such device.
    fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>>;

    /// Every link in the network namespace.
    fn links(&mut self) -> io::Result<Vec<Link>>;

    /// The name of the link with this ifindex, if any.
    fn name_of(&mut self, index: u32) -> io::Result<Option<String>> {
        Ok(self
            .links()?
            .into_iter()
            .find(|l| l.index == index)
            .map(|l| l.name))
    }
}

/// Notifications of link changes (RTNLGRP_LINK): for waiting until a device appears without
/// polling. Subscribe before the first lookup, so a device created in between is not missed.
pub struct LinkEvents(Socket);

impl LinkEvents {
    pub fn subscribe() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.add_membership(libc::RTNLGRP_LINK)?;
        Ok(Self(socket))
    }

    /// Waits up to `timeout` for notifications and reads all that arrived; Ok(false) when
    /// none came. What they say is not parsed: the caller looks the device up again.
    pub fn wait(&self, timeout: std::time::Duration) -> io::Result<bool> {
        use std::os::fd::AsFd as _;

        use nix::{
            poll::{poll, PollFd, PollFlags, PollTimeout},
            sys::socket::{recv, MsgFlags},
        };
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let mut buf = [0u8; 8192];
        use std::os::fd::AsRawFd as _;
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(_) => {}
                // ENOBUFS: notifications were dropped; a new lookup sees the current state.
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::ENOBUFS) => return Ok(true),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A synchronous rtnetlink socket.
pub struct RtNetlink {
    socket: Socket,
    sequence: u32,
}

impl RtNetlink {
    /// [`RtNetlink::new`] with vrfexec's message for a failure.
    pub fn open() -> crate::error::Result<Self> {
        Self::new().map_err(|source| crate::error::Error::Netlink {
            what: "cannot open a netlink socket",
            source,
        })
    }

    /// The socket is neither bound nor connected: send(2) on an unconnected netlink socket goes
    /// to the kernel and binds it to a port on the way, and every reply's sender is checked on
    /// receipt (`exchange`), which is what connecting to the kernel would filter. Two syscalls
    /// fewer (three with the bind's getsockname) on every run.
    pub fn new() -> io::Result<Self> {
        let socket = Socket::new(NETLINK_ROUTE)?;
        Ok(Self {
            socket,
            sequence: 0,
        })
    }

    /// Asks the kernel to apply dump filters strictly (Linux 4.20): a route dump with RTA_TABLE
    /// then returns only that table. Returns whether it is on.
    pub fn set_strict(&self) -> bool {
        self.socket.set_netlink_get_strict_chk(true).is_ok()
    }

    /// Sends one request and collects the replies (a dump or a single answer).
    pub fn request(
        &mut self,
        message: RouteNetlinkMessage,
        dump: bool,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        // A dump ends with NLMSG_DONE; a single request with the ack asked for here.
        self.request_with_flags(message, if dump { NLM_F_DUMP } else { NLM_F_ACK })
    }

    /// Sends one request with NLM_F_REQUEST and `flags` (NLM_F_CREATE, NLM_F_EXCL, ...).
    pub fn request_with_flags(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut replies = Vec::new();
        self.exchange(message, flags, Complete::Ack, |message_type, payload| {
            let mut header = NetlinkHeader::default();
            header.message_type = message_type;
            let message =
                RouteNetlinkMessage::deserialize(&header, payload).map_err(invalid_data)?;
            replies.push(message);
            Ok(())
        })?;
        Ok(replies)
    }

    /// Sends `message` and hands each reply's (type, payload) to `on_reply` until the request
    /// is complete (an ack or NLMSG_DONE, or with `Complete::FirstReply` the first answer);
    /// an error reply becomes the matching io::Error. Datagrams from anyone but the kernel
    /// (port 0) are dropped unread: a process with CAP_NET_ADMIN in this namespace can send to
    /// an unconnected netlink socket.
    fn exchange(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        complete: Complete,
        mut on_reply: impl FnMut(u16, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), message.into());
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = self.sequence;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf[..]);
        self.socket.send(&buf[..], 0)?;

        // Received into spare capacity: no 64 KiB memset per request.
        let mut receive: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            receive.clear();
            let (_, sender) = self.socket.recv_from(&mut receive, 0)?;
            if sender.port_number() != 0 {
                continue;
            }
            if walk_replies(&receive, self.sequence, complete, &mut on_reply)? {
                return Ok(());
            }
        }
    }
}

fn invalid_data(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// When a request is complete.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Complete {
    /// At the ack (error code 0) or NLMSG_DONE: requests sent with NLM_F_ACK, and dumps.
    Ack,
    /// At the first answer: a single get without NLM_F_ACK, which the kernel answers with one
    /// message, or with an error.
    FirstReply,
}

/// Walks every netlink message in one datagram, passing the (type, payload) of those for
/// `sequence` to `on_reply`. Returns true once the request is complete (see [`Complete`]); an
/// error reply becomes the matching io::Error.
fn walk_replies(
    datagram: &[u8],
    sequence: u32,
    complete: Complete,
    on_reply: &mut impl FnMut(u16, &[u8]) -> io::Result<()>,
) -> io::Result<bool> {
    let mut offset = 0;
    while offset < datagram.len() {
        let buffer = NetlinkBuffer::new_checked(&datagram[offset..]).map_err(invalid_data)?;
        let length = buffer.length() as usize;
        if buffer.sequence_number() == sequence {
            match buffer.message_type() {
                NLMSG_ERROR => {
                    let error = ErrorBuffer::new_checked(buffer.payload()).map_err(invalid_data)?;
                    return match error.code() {
                        None => Ok(true),
                        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                    };
                }
                NLMSG_DONE => return Ok(true),
                message_type => {
                    on_reply(message_type, buffer.payload())?;
                    if complete == Complete::FirstReply {
                        return Ok(true);
                    }
                }
            }
        }
        if length == 0 {
            break;
        }
        offset += length;
    }
    Ok(false)
}

/// The attributes vrfexec reads from a link (IFLA_IFNAME, IFLA_MASTER, IFLA_OPERSTATE,
/// IFLA_LINKINFO).
const LINK_ATTRIBUTES: [u16; 4] = [3, 10, 16, 18];

/// An RTM_NEWLINK payload parsed for only those attributes: the exec path's lookup skips
/// statistics and per-family configuration, which are most of the message and, parsed in
/// full, most of vrfexec's start-up time.
fn link_from_payload(payload: &[u8]) -> io::Result<Link> {
    let buffer = LinkMessageBuffer::new_checked(payload).map_err(invalid_data)?;
    let mut message = LinkMessage::default();
    message.header.index = buffer.link_index();
    message.header.flags = LinkFlags::from_bits_retain(buffer.flags());
    for nla in buffer.attributes() {
        let nla = nla.map_err(invalid_data)?;
        if LINK_ATTRIBUTES.contains(&nla.kind()) {
            let attribute = LinkAttribute::parse_with_param(&nla, AddressFamily::Unspec)
                .map_err(invalid_data)?;
            message.attributes.push(attribute);
        }
    }
    Ok(link_from_message(&message))
}

impl RtNetlink {
    /// One RTM_GETLINK for a single device (by the name or index in `message`), parsed for
    /// only the attributes vrfexec reads. None if there is no such device. Sent without
    /// NLM_F_ACK: the answer, or the error, is the one reply, so one recv(2) per lookup.
    fn get_link(&mut self, message: LinkMessage) -> io::Result<Option<Link>> {
        let mut found = None;
        let result = self.exchange(
            RouteNetlinkMessage::GetLink(message),
            0,
            Complete::FirstReply,
            |message_type, payload| {
                if message_type == libc::RTM_NEWLINK {
                    found = Some(link_from_payload(payload)?);
                }
                Ok(())
            },
        );
        match result {
            Ok(()) => Ok(found),
            Err(err) if err.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

impl LinkSource for RtNetlink {
    fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        self.get_link(message)
    }

    /// One request for that index, not a dump of every link.
    fn name_of(&mut self, index: u32) -> io::Result<Option<String>> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        Ok(self.get_link(message)?.map(|link| link.name))
    }

    fn links(&mut self) -> io::Result<Vec<Link>> {
        let replies = self.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), true)?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => Some(link_from_message(link)),
                _ => None,
            })
            .collect())
    }
}

/// Extracts what vrfexec needs from an RTM_NEWLINK message.
pub fn link_from_message(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        vrf_table: None,
        master: None,
        admin_up: message.header.flags.contains(LinkFlags::Up),
        oper_state: "UNKNOWN".to_owned(),
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name.clone_from(name),
            LinkAttribute::Controller(master) => link.master = Some(*master),
            LinkAttribute::OperState(state) => link.oper_state = oper_state_name(state),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => link.kind = Some(kind_name(kind)),
                        LinkInfo::Data(InfoData::Vrf(vrf)) => {
                            link.vrf_table = vrf.iter().find_map(|nla| match nla {
                                InfoVrf::TableId(table) => Some(*table),
                                _ => None,
                            });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn oper_state_name(state: &State) -> String {
    match state {
        State::Unknown => "UNKNOWN".into(),
        State::NotPresent => "NOTPRESENT".into(),
        State::Down => "DOWN".into(),
        State::LowerLayerDown => "LOWERLAYERDOWN".into(),
        State::Testing => "TESTING".into(),
        State::Dormant => "DORMANT".into(),
        State::Up => "UP".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

fn kind_name(kind: &InfoKind) -> String {
    match kind {
        InfoKind::Other(name) => name.clone(),
        // InfoKind's Display gives the kernel's IFLA_INFO_KIND string ("vrf", "veth", ...).
        known => known.to_string(),
    }
}

#[cfg(test)]
pub mod fake {
    //! An in-memory LinkSource for unit tests.
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    pub struct FakeLinks {
        pub links: HashMap<String, Link>,
        pub fail_with: Option<i32>,
    }

    impl FakeLinks {
        pub fn with(
            mut self,
            index: u32,
            name: &str,
            kind: Option<&str>,
            table: Option<u32>,
        ) -> Self {
            self.links.insert(
                name.to_owned(),
                Link {
                    index,
                    name: name.to_owned(),
                    kind: kind.map(str::to_owned),
                    vrf_table: table,
                    master: None,
                    admin_up: true,
                    oper_state: "UP".to_owned(),
                },
            );
            self
        }
    }

    impl LinkSource for FakeLinks {
        fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
            if let Some(errno) = self.fail_with {
                return Err(io::Error::from_raw_os_error(errno));
            }
            Ok(self.links.get(name).cloned())
        }

        fn links(&mut self) -> io::Result<Vec<Link>> {
            if let Some(errno) = self.fail_with {
                return Err(io::Error::from_raw_os_error(errno));
            }
            let mut links: Vec<Link> = self.links.values().cloned().collect();
            links.sort_by_key(|l| l.index);
            Ok(links)
        }
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{ErrorMessage, NetlinkPayload};

    use super::*;

    fn vrf_message(index: u32, name: &str, table: u32) -> LinkMessage {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes.push(LinkAttribute::IfName(name.into()));
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vrf),
            LinkInfo::Data(InfoData::Vrf(vec![InfoVrf::TableId(table)])),
        ]));
        message
    }

    /// The typed view of walk_replies, as request_with_flags uses it.
    fn parse_replies(
        datagram: &[u8],
        sequence: u32,
        out: &mut Vec<RouteNetlinkMessage>,
    ) -> io::Result<bool> {
        parse_until(datagram, sequence, Complete::Ack, out)
    }

    fn parse_until(
        datagram: &[u8],
        sequence: u32,
        complete: Complete,
        out: &mut Vec<RouteNetlinkMessage>,
    ) -> io::Result<bool> {
        walk_replies(
            datagram,
            sequence,
            complete,
            &mut |message_type, payload| {
                let mut header = NetlinkHeader::default();
                header.message_type = message_type;
                out.push(RouteNetlinkMessage::deserialize(&header, payload).map_err(invalid_data)?);
                Ok(())
            },
        )
    }

    #[test]
    fn link_payloads_are_parsed_for_what_vrfexec_reads() {
        use netlink_packet_utils::Emitable as _;
        let mut message = vrf_message(5, "red", 10);
        message.header.flags = LinkFlags::Up;
        message.attributes.push(LinkAttribute::Mtu(1500));
        message.attributes.push(LinkAttribute::Controller(3));
        message.attributes.push(LinkAttribute::OperState(State::Up));
        let mut payload = vec![0; message.buffer_len()];
        message.emit(&mut payload);
        let link = link_from_payload(&payload).expect("parse");
        assert_eq!(link, link_from_message(&message));
        assert_eq!(
            (link.index, link.name.as_str(), link.vrf_table, link.master),
            (5, "red", Some(10), Some(3))
        );
        assert!(link.admin_up && link.is_vrf());
        assert!(
            link_from_payload(&payload[..8]).is_err(),
            "a truncated header is an error"
        );
    }

    fn serialize(payload: NetlinkPayload<RouteNetlinkMessage>, sequence: u32) -> Vec<u8> {
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), payload);
        packet.header.sequence_number = sequence;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf[..]);
        buf
    }

    #[test]
    fn vrf_link_is_recognised_with_its_table() {
        let mut message = vrf_message(7, "red", 10);
        message.header.flags = LinkFlags::Up;
        message.attributes.push(LinkAttribute::OperState(State::Up));
        let link = link_from_message(&message);
        assert!(link.admin_up);
        assert_eq!(link.oper_state, "UP");
        assert_eq!(link.index, 7);
        assert_eq!(link.name, "red");
        assert!(link.is_vrf());
        assert_eq!(link.vrf_table, Some(10));
    }

    #[test]
    fn other_kinds_are_not_vrfs() {
        let mut message = LinkMessage::default();
        message.header.index = 3;
        message
            .attributes
            .push(LinkAttribute::IfName("veth0".into()));
        message
            .attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Veth,
            )]));
        let link = link_from_message(&message);
        assert_eq!(link.kind.as_deref(), Some("veth"));
        assert!(!link.is_vrf());
        assert_eq!(link.describe_kind(), "a veth device");

        let mut lo = LinkMessage::default();
        lo.attributes.push(LinkAttribute::IfName("lo".into()));
        assert!(link_from_message(&lo).kind.is_none());
    }

    #[test]
    fn reply_then_ack_in_one_datagram_completes_the_request() {
        let mut datagram = serialize(
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(vrf_message(5, "blue", 20))),
            9,
        );
        datagram.extend(serialize(NetlinkPayload::Error(ErrorMessage::default()), 9));
        let mut out = Vec::new();
        assert!(parse_replies(&datagram, 9, &mut out).expect("parse"));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn reply_without_ack_waits_for_more() {
        let datagram = serialize(
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(vrf_message(5, "blue", 20))),
            4,
        );
        let mut out = Vec::new();
        assert!(!parse_replies(&datagram, 4, &mut out).expect("parse"));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_single_get_is_complete_at_its_answer_or_its_error() {
        let answer = |sequence| {
            serialize(
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(vrf_message(
                    5, "blue", 20,
                ))),
                sequence,
            )
        };
        let mut out = Vec::new();
        assert!(parse_until(&answer(4), 4, Complete::FirstReply, &mut out).expect("parse"));
        assert_eq!(out.len(), 1);
        // A stale answer (an earlier request's) does not complete this one.
        out.clear();
        assert!(!parse_until(&answer(3), 4, Complete::FirstReply, &mut out).expect("parse"));
        assert!(out.is_empty());
        let mut error = ErrorMessage::default();
        error.code = std::num::NonZeroI32::new(-libc::ENODEV);
        let datagram = serialize(NetlinkPayload::Error(error), 4);
        let err = parse_until(&datagram, 4, Complete::FirstReply, &mut out).expect_err("ENODEV");
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    }

    #[test]
    fn replies_from_anyone_but_the_kernel_are_dropped() {
        // The socket is not connected: a process with CAP_NET_ADMIN can send to its port. A
        // forged "no such device" for the next request, queued before the kernel's answer,
        // must not be taken for it. Only loopback is looked up; nothing is changed.
        let mut rtnl = RtNetlink::new().expect("netlink socket");
        assert!(rtnl.link_by_name("lo").expect("lookup").is_some());
        let mut ours = netlink_sys::SocketAddr::new(0, 0);
        rtnl.socket.get_address(&mut ours).expect("getsockname");
        let mut error = ErrorMessage::default();
        error.code = std::num::NonZeroI32::new(-libc::ENODEV);
        let forged = serialize(NetlinkPayload::Error(error), rtnl.sequence + 1);
        let spoofer = Socket::new(NETLINK_ROUTE).expect("netlink socket");
        match spoofer.send_to(&forged, &ours, 0) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                eprintln!("SKIP: sending to another netlink port needs CAP_NET_ADMIN");
                return;
            }
            sent => {
                sent.expect("send the forged reply");
            }
        }
        assert!(
            rtnl.link_by_name("lo").expect("lookup").is_some(),
            "the forged reply was taken for the kernel's"
        );
    }

    #[test]
    fn error_reply_becomes_the_os_error() {
        let mut error = ErrorMessage::default();
        error.code = std::num::NonZeroI32::new(-libc::ENODEV);
        let datagram = serialize(NetlinkPayload::Error(error), 2);
        let err = parse_replies(&datagram, 2, &mut Vec::new()).expect_err("ENODEV");
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    }

    #[test]
    fn stale_sequence_numbers_are_ignored() {
        let mut datagram = serialize(
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(vrf_message(5, "old", 20))),
            1,
        );
        datagram.extend(serialize(NetlinkPayload::Done(Default::default()), 2));
        let mut out = Vec::new();
        assert!(parse_replies(&datagram, 2, &mut out).expect("parse"));
        assert!(out.is_empty());
    }
}

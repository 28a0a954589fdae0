//! `vrfexec route <VRF> <DEST>`: what `ip route get DEST vrf VRF` says, over netlink only (no
//! BPF, no cgroup), so it works wherever the VRF can be seen.
//!
//! Like iproute2, the request is an RTM_GETROUTE with RTA_OIF set to the VRF device: the kernel
//! then looks the destination up in the VRF's table (l3mdev, FLOWI_FLAG_SKIP_NH_OIF) and answers
//! with the route it would use. RTM_F_LOOKUP_TABLE makes it report the table that matched.
//! Reject routes come back two ways: IPv4 answers with an error (EHOSTUNREACH for an
//! `unreachable` route, EACCES for `prohibit`, EINVAL for `blackhole`, ENETUNREACH when no route
//! matched at all); IPv6 answers with a route whose type says so.
use std::net::{IpAddr, ToSocketAddrs as _};

use netlink_packet_route::{
    route::{RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteType},
    AddressFamily, RouteNetlinkMessage,
};
use serde::Serialize;

use crate::{
    cli::RouteArgs,
    error::{Error, Result},
    sys::{
        netlink::{LinkSource, RtNetlink},
        privilege::Caller,
    },
    vrf::target::{self, Target},
};

/// Which address family a destination may resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

/// A route lookup's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteAnswer {
    /// `unicast`, `local`, `unreachable`, `prohibit`, `blackhole`, `throw`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefsrc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    pub vrf: String,
}

impl RouteAnswer {
    /// Whether traffic to the destination can leave (exit 0) or is rejected (exit 1).
    pub fn is_reachable(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "unicast" | "local" | "broadcast" | "anycast" | "multicast"
        )
    }
}

/// Resolves DEST: an address as it is, a name with the system resolver (in the caller's
/// context, not through the VRF; resolv.conf's servers may not be reachable from the VRF).
pub fn resolve_destination(dest: &str, family: Family) -> Result<IpAddr> {
    let wanted = |ip: &IpAddr| match family {
        Family::Any => true,
        Family::V4 => ip.is_ipv4(),
        Family::V6 => ip.is_ipv6(),
    };
    if let Ok(ip) = dest.parse::<IpAddr>() {
        if !wanted(&ip) {
            let asked = if family == Family::V4 { "-4" } else { "-6" };
            return Err(Error::Usage(format!(
                "{dest} is not an address of the family {asked} asks for"
            )));
        }
        return Ok(ip);
    }
    if dest.is_empty() || dest.starts_with('-') {
        return Err(Error::Usage(format!("invalid destination '{dest}'")));
    }
    let addrs = (dest, 0)
        .to_socket_addrs()
        .map_err(|e| Error::os(format!("cannot resolve '{dest}'"), e))?;
    let mut addrs: Vec<IpAddr> = addrs.map(|a| a.ip()).filter(wanted).collect();
    // Prefer IPv4 when both exist and no family was asked for, as ping does by default.
    addrs.sort_by_key(|ip| ip.is_ipv6());
    addrs.into_iter().next().ok_or_else(|| {
        Error::os(
            format!("cannot resolve '{dest}'"),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address of the requested family",
            ),
        )
    })
}

fn route_type_name(kind: RouteType) -> String {
    match kind {
        RouteType::Unicast => "unicast".into(),
        RouteType::Local => "local".into(),
        RouteType::Broadcast => "broadcast".into(),
        RouteType::Anycast => "anycast".into(),
        RouteType::Multicast => "multicast".into(),
        RouteType::BlackHole => "blackhole".into(),
        RouteType::Unreachable => "unreachable".into(),
        RouteType::Prohibit => "prohibit".into(),
        RouteType::Throw => "throw".into(),
        RouteType::Nat => "nat".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The reject type an IPv4 lookup error stands for (see the module comment).
fn reject_from_errno(errno: i32) -> Option<&'static str> {
    match errno {
        libc::ENETUNREACH | libc::EHOSTUNREACH => Some("unreachable"),
        libc::EACCES => Some("prohibit"),
        libc::EINVAL => Some("blackhole"),
        libc::EAGAIN => Some("throw"),
        _ => None,
    }
}

fn address_text(addr: &RouteAddress) -> Option<String> {
    match addr {
        RouteAddress::Inet(ip) => Some(ip.to_string()),
        RouteAddress::Inet6(ip) => Some(ip.to_string()),
        _ => None,
    }
}

/// Turns the kernel's RTM_NEWROUTE answer into a RouteAnswer (device names resolved by `links`).
pub fn answer_from_message(
    message: &RouteMessage,
    dst: IpAddr,
    vrf: &str,
    links: &mut dyn LinkSource,
) -> RouteAnswer {
    let mut answer = RouteAnswer {
        kind: route_type_name(message.header.kind),
        dst: dst.to_string(),
        gateway: None,
        dev: None,
        prefsrc: None,
        table: (message.header.table != RouteHeader::RT_TABLE_UNSPEC)
            .then_some(u32::from(message.header.table)),
        vrf: vrf.to_owned(),
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Gateway(gw) => answer.gateway = address_text(gw),
            RouteAttribute::PrefSource(src) => answer.prefsrc = address_text(src),
            RouteAttribute::Table(table) => answer.table = (*table != 0).then_some(*table),
            RouteAttribute::Oif(index) => {
                answer.dev = links
                    .name_of(*index)
                    .ok()
                    .flatten()
                    .or_else(|| Some(format!("if{index}")));
            }
            _ => {}
        }
    }
    answer
}

/// `ip route get`'s line: `DST [via GW] dev DEV table T src SRC`, or `TYPE DST ...`.
pub fn render_text(answer: &RouteAnswer) -> String {
    let mut out = String::new();
    if answer.kind != "unicast" {
        out.push_str(&answer.kind);
        out.push(' ');
    }
    out.push_str(&answer.dst);
    if let Some(gw) = &answer.gateway {
        out.push_str(&format!(" via {gw}"));
    }
    if let Some(dev) = &answer.dev {
        out.push_str(&format!(" dev {dev}"));
    }
    if let Some(table) = answer.table {
        out.push_str(&format!(" table {table}"));
    }
    if let Some(src) = &answer.prefsrc {
        out.push_str(&format!(" src {src}"));
    }
    out.push_str(&format!(" vrf {}\n", answer.vrf));
    out
}

/// Looks `dst` up in `vrf`. A reject route is an answer (with `is_reachable()` false).
pub fn lookup(
    vrf: &str,
    vrf_ifindex: u32,
    dst: IpAddr,
    netlink: &mut RtNetlink,
) -> Result<RouteAnswer> {
    let mut message = RouteMessage::default();
    message.header.address_family = if dst.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    message.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
    message.header.flags = RouteFlags::LookupTable;
    message
        .attributes
        .push(RouteAttribute::Destination(dst.into()));
    message.attributes.push(RouteAttribute::Oif(vrf_ifindex));
    match netlink.request(RouteNetlinkMessage::GetRoute(message), false) {
        Ok(replies) => {
            let reply = replies.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewRoute(route) => Some(route.clone()),
                _ => None,
            });
            match reply {
                Some(route) => Ok(answer_from_message(&route, dst, vrf, netlink)),
                None => Err(Error::os(
                    "route lookup",
                    std::io::Error::other("the kernel sent no route"),
                )),
            }
        }
        Err(err) => match err.raw_os_error().and_then(reject_from_errno) {
            Some(kind) => Ok(RouteAnswer {
                kind: kind.to_owned(),
                dst: dst.to_string(),
                gateway: None,
                dev: None,
                prefsrc: None,
                table: None,
                vrf: vrf.to_owned(),
            }),
            None => Err(Error::Netlink {
                what: "route lookup failed",
                source: err,
            }),
        },
    }
}

/// The `route` verb: exit 0 reachable, 1 rejected.
pub fn run(args: &RouteArgs, _caller: &Caller) -> Result<u8> {
    let (text, code) = report(
        &args.vrf,
        args.dev,
        &args.dest,
        args.family.family(),
        args.json,
    )?;
    super::write_stdout(text.as_bytes()).map(|()| code)
}

/// What `route` prints, and its exit status.
fn report(
    vrf: &std::ffi::OsStr,
    dev: bool,
    dest: &str,
    family: Family,
    json: bool,
) -> Result<(String, u8)> {
    let target = Target::named(vrf, dev, "route", "use `ip route get` for the default VRF")?;
    let dst = resolve_destination(dest, family)?;
    let mut netlink = RtNetlink::open()?;
    let binding = target::resolve(&target, &mut netlink)?;
    let vrf_name = binding.leaf.clone().unwrap_or_default();
    let answer = lookup(&vrf_name, binding.ifindex, dst, &mut netlink)?;
    let code = if answer.is_reachable() { 0 } else { 1 };
    let text = if json {
        serde_json::to_string(&answer).map_err(|e| Error::os("cannot write JSON", e.into()))? + "\n"
    } else {
        render_text(&answer)
    };
    Ok((text, code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::fake::FakeLinks;

    #[test]
    fn destinations_respect_the_family() {
        assert_eq!(
            resolve_destination("10.9.0.2", Family::Any).expect("v4"),
            "10.9.0.2".parse::<IpAddr>().expect("ip")
        );
        assert!(resolve_destination("fd00:9::2", Family::V6).is_ok());
        let err = resolve_destination("10.9.0.2", Family::V6).expect_err("wrong family");
        assert!(err.to_string().contains("-6"), "{err}");
        assert!(resolve_destination("fd00::1", Family::V4).is_err());
        assert!(resolve_destination("-x", Family::Any).is_err());
        assert!(resolve_destination("localhost", Family::Any)
            .expect("localhost")
            .is_loopback());
        assert!(resolve_destination("no-such-host.invalid", Family::Any).is_err());
    }

    #[test]
    fn kernel_answers_become_ip_route_get_lines() {
        let mut message = RouteMessage::default();
        message.header.kind = RouteType::Unicast;
        message
            .attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(
                "10.9.0.254".parse().expect("ip"),
            )));
        message.attributes.push(RouteAttribute::Oif(7));
        message.attributes.push(RouteAttribute::Table(10));
        message
            .attributes
            .push(RouteAttribute::PrefSource(RouteAddress::Inet(
                "10.9.0.1".parse().expect("ip"),
            )));
        let mut links = FakeLinks::default().with(7, "vred", Some("veth"), None);
        let answer = answer_from_message(
            &message,
            "192.0.2.1".parse().expect("ip"),
            "red",
            &mut links,
        );
        assert!(answer.is_reachable());
        assert_eq!(
            render_text(&answer),
            "192.0.2.1 via 10.9.0.254 dev vred table 10 src 10.9.0.1 vrf red\n"
        );
        let json = serde_json::to_value(&answer).expect("json");
        assert_eq!(json["dev"], "vred");
        assert_eq!(json["table"], 10);
        assert_eq!(json["type"], "unicast");
    }

    #[test]
    fn reject_routes_are_reported_as_such() {
        assert_eq!(reject_from_errno(libc::EHOSTUNREACH), Some("unreachable"));
        assert_eq!(reject_from_errno(libc::ENETUNREACH), Some("unreachable"));
        assert_eq!(reject_from_errno(libc::EACCES), Some("prohibit"));
        assert_eq!(reject_from_errno(libc::EINVAL), Some("blackhole"));
        assert_eq!(reject_from_errno(libc::ENOMEM), None);
        let mut message = RouteMessage::default();
        message.header.kind = RouteType::Unreachable;
        let answer = answer_from_message(
            &message,
            "fd00::9".parse().expect("ip"),
            "blue",
            &mut FakeLinks::default(),
        );
        assert!(!answer.is_reachable());
        assert!(render_text(&answer).starts_with("unreachable fd00::9"));
    }
}

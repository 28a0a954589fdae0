//! Gathering a [`Snapshot`]: links, FIB rules and each VRF table's default routes over
//! rtnetlink, the l3mdev_accept sysctls from /proc, name servers from /etc/resolv.conf and
//! their route lookups from each VRF.
use std::{fs, net::IpAddr};

use netlink_packet_route::{
    route::{RouteAttribute, RouteHeader, RouteMessage},
    rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage},
    AddressFamily, RouteNetlinkMessage,
};

use super::{Family, Rule, RuleAction, Snapshot};
use crate::{
    error::{Error, Result},
    netlink::{LinkSource as _, RtNetlink},
    route,
};

fn netlink_error(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Netlink { what, source }
}

fn address_family(family: Family) -> AddressFamily {
    match family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

pub fn rule_from_message(family: Family, message: &RuleMessage) -> Rule {
    let mut rule = Rule {
        family,
        pref: 0,
        table: u32::from(message.header.table),
        l3mdev: false,
        action: match message.header.action {
            NlRuleAction::ToTable => RuleAction::Lookup,
            NlRuleAction::Unreachable => RuleAction::Unreachable,
            _ => RuleAction::Other,
        },
        matches_all: message.header.src_len == 0
            && message.header.dst_len == 0
            && message.header.tos == 0,
    };
    for attribute in &message.attributes {
        match attribute {
            RuleAttribute::Priority(pref) => rule.pref = *pref,
            RuleAttribute::Table(table) => rule.table = *table,
            RuleAttribute::L3MDev(on) => rule.l3mdev = *on,
            // Attributes that describe the rule rather than select packets.
            RuleAttribute::Protocol(_)
            | RuleAttribute::Goto(_)
            | RuleAttribute::SuppressPrefixLen(_)
            | RuleAttribute::SuppressIfGroup(_) => {}
            _ => rule.matches_all = false,
        }
    }
    rule
}

pub fn rules(netlink: &mut RtNetlink) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    for family in Family::ALL {
        let mut message = RuleMessage::default();
        message.header.family = address_family(family);
        let replies = netlink
            .request(RouteNetlinkMessage::GetRule(message), true)
            .map_err(netlink_error("cannot list FIB rules"))?;
        for reply in &replies {
            if let RouteNetlinkMessage::NewRule(rule) = reply {
                if rule.header.family == address_family(family) {
                    rules.push(rule_from_message(family, rule));
                }
            }
        }
    }
    rules.sort_by_key(|r| (r.family, r.pref));
    Ok(rules)
}

/// Whether `table` has a default route (of any type) in `family`.
pub fn has_default_route(
    netlink: &mut RtNetlink,
    strict: bool,
    family: Family,
    table: u32,
) -> Result<bool> {
    let mut message = RouteMessage::default();
    message.header.address_family = address_family(family);
    if strict {
        message.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        message.attributes.push(RouteAttribute::Table(table));
    }
    let replies = netlink
        .request(RouteNetlinkMessage::GetRoute(message), true)
        .map_err(netlink_error("cannot list routes"))?;
    Ok(replies.iter().any(|reply| match reply {
        RouteNetlinkMessage::NewRoute(route) => {
            let route_table = route
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(u32::from(route.header.table));
            route_table == table && route.header.destination_prefix_length == 0
        }
        _ => false,
    }))
}

/// `nameserver` lines of a resolv.conf.
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver")
                .then(|| words.next()?.split('%').next()?.parse().ok())?
        })
        .collect()
}

fn sysctl_flag(name: &str) -> Option<bool> {
    fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .map(|v| v.trim() != "0")
}

pub fn snapshot() -> Result<Snapshot> {
    let mut netlink = RtNetlink::new().map_err(netlink_error("cannot open a netlink socket"))?;
    let strict = netlink.set_strict();
    let links = netlink
        .links()
        .map_err(netlink_error("cannot list devices"))?;
    let rules = rules(&mut netlink)?;
    let mut snapshot = Snapshot {
        tcp_l3mdev_accept: sysctl_flag("tcp_l3mdev_accept"),
        udp_l3mdev_accept: sysctl_flag("udp_l3mdev_accept"),
        nameservers: fs::read_to_string("/etc/resolv.conf")
            .map(|t| parse_resolv_conf(&t))
            .unwrap_or_default(),
        rules,
        ..Default::default()
    };
    let vrfs: Vec<(String, u32, u32)> = links
        .iter()
        .filter(|l| l.is_vrf())
        .map(|l| (l.name.clone(), l.index, l.vrf_table.unwrap_or(0)))
        .collect();
    for (_, _, table) in &vrfs {
        for family in Family::ALL {
            if !snapshot.default_routes.contains(&(family, *table))
                && has_default_route(&mut netlink, strict, family, *table)?
            {
                snapshot.default_routes.push((family, *table));
            }
        }
    }
    for (name, index, _) in &vrfs {
        for ns in snapshot.nameservers.clone() {
            if let Ok(answer) = route::lookup(name, *index, ns, &mut netlink) {
                snapshot.dns_routes.insert((name.clone(), ns), answer);
            }
        }
    }
    snapshot.links = links;
    snapshot.binding = binding_evidence();
    snapshot.kernel = kernel_version();
    Ok(snapshot)
}

/// The evidence a run from this cgroup would be checked against: the cgroups from the parent
/// of its VRF cgroups (`<own>/vrf`, as vrfexec and iproute2 place runs) up to the root.
fn binding_evidence() -> crate::verify::Evidence {
    let own = fs::read("/proc/self/cgroup")
        .ok()
        .and_then(|text| crate::cgroup::unified_path(&text).ok().flatten());
    let first = own
        .map(|own| {
            crate::cgroup::vrf_cgroup(&own, crate::cgroup::netns_name("self").as_deref(), None)
        })
        .unwrap_or_else(|| "/".to_owned());
    crate::verify::Evidence::collect(&first)
}

/// (major, minor) of the running kernel.
fn kernel_version() -> Option<(u32, u32)> {
    parse_kernel_version(&fs::read_to_string("/proc/sys/kernel/osrelease").ok()?)
}

pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

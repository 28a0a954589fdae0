//! Gathering a [`Snapshot`]: links, FIB rules and each VRF table's default routes over
//! rtnetlink, the l3mdev_accept sysctls from /proc, name servers from /etc/resolv.conf and
//! their route lookups from each VRF.
use std::{fs, net::IpAddr};

use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    route::{RouteAttribute, RouteHeader, RouteMessage},
    rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage},
    AddressFamily, RouteNetlinkMessage,
};

use super::{Family, Rule, RuleAction, Snapshot};
use crate::{
    error::{Error, Result},
    sys::netlink::{LinkSource as _, RtNetlink},
    verbs::route,
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

/// A configuration file's text: a regular file, not through a symlink, at most 64 KiB (a FIFO
/// or a device does not hang or flood the check).
fn read_small_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    file.take(64 * 1024).read_to_string(&mut text)?;
    Ok(text)
}

/// Every (ifindex, address) of the loopback addresses 127.0.0.1 and ::1, from one dump per
/// family.
pub fn loopback_addresses(netlink: &mut RtNetlink) -> Result<Vec<(u32, IpAddr)>> {
    let mut found = Vec::new();
    for family in Family::ALL {
        let mut message = AddressMessage::default();
        message.header.family = address_family(family);
        let replies = netlink
            .request(RouteNetlinkMessage::GetAddress(message), true)
            .map_err(netlink_error("cannot list addresses"))?;
        for reply in &replies {
            if let RouteNetlinkMessage::NewAddress(address) = reply {
                for attribute in &address.attributes {
                    if let AddressAttribute::Local(ip) | AddressAttribute::Address(ip) = attribute {
                        if ip.is_loopback() && !found.contains(&(address.header.index, *ip)) {
                            found.push((address.header.index, *ip));
                        }
                    }
                }
            }
        }
    }
    Ok(found)
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
    let addresses = loopback_addresses(&mut netlink)?;
    for (name, index, _) in &vrfs {
        let path = std::path::Path::new(crate::vrf::etc::ETC_VRF)
            .join(name)
            .join("resolv.conf");
        match read_small_file(&path) {
            Ok(text) => {
                let mut servers = parse_resolv_conf(&text);
                if servers.is_empty() {
                    // The resolver library's default when a resolv.conf names no server.
                    servers.push(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
                }
                snapshot.vrf_nameservers.insert(name.clone(), servers);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // There, but not readable here (or not a plain file, which runs refuse anyway):
            // the VRF has its own servers, which this check cannot judge.
            Err(_) => {
                snapshot.vrf_nameservers.insert(name.clone(), Vec::new());
            }
        }
        let servers = snapshot
            .vrf_nameservers
            .get(name)
            .unwrap_or(&snapshot.nameservers)
            .clone();
        for ns in servers {
            if let Ok(answer) = route::lookup(name, *index, ns, &mut netlink) {
                snapshot.dns_routes.insert((name.clone(), ns), answer);
            }
        }
        let has = |addr: IpAddr| addresses.contains(&(*index, addr));
        snapshot.loopback.insert(
            name.clone(),
            (
                has(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
                has(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
            ),
        );
    }
    snapshot.links = links;
    snapshot.binding = binding_evidence();
    snapshot.kernel = crate::sys::kernel_version();
    snapshot.policy =
        crate::run::policy::Policy::load(std::path::Path::new(crate::run::policy::POLICY_PATH))
            .ok();
    if snapshot.policy.is_some() {
        match nft_ruleset().and_then(|json| firewalled_vrfs(&json)) {
            Ok(vrfs) => snapshot.firewalled = vrfs,
            Err(why) => snapshot.firewall_error = Some(why),
        }
    }
    Ok(snapshot)
}

/// `nft -j list ruleset` (nftables' own tool: the ruleset's netlink format is its business).
fn nft_ruleset() -> std::result::Result<String, String> {
    let nft = ["/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .ok_or("nft (nftables) is not installed")?;
    let out = std::process::Command::new(nft)
        .args(["-j", "list", "ruleset"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {nft}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{nft} -j list ruleset failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The devices that some rule in an output-hook chain drops or rejects by output interface
/// and socket owner (`oifname "red" meta skuid != ... drop`).
pub fn firewalled_vrfs(json: &str) -> std::result::Result<Vec<String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("nft's JSON: {e}"))?;
    let items = value["nftables"].as_array().cloned().unwrap_or_default();
    let output_chains: Vec<(String, String, String)> = items
        .iter()
        .filter_map(|i| i.get("chain"))
        .filter(|c| c["hook"] == "output")
        .filter_map(|c| {
            Some((
                c["family"].as_str()?.to_owned(),
                c["table"].as_str()?.to_owned(),
                c["name"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut found = Vec::new();
    for rule in items.iter().filter_map(|i| i.get("rule")) {
        let chain = (
            rule["family"].as_str().unwrap_or_default().to_owned(),
            rule["table"].as_str().unwrap_or_default().to_owned(),
            rule["chain"].as_str().unwrap_or_default().to_owned(),
        );
        if !output_chains.contains(&chain) {
            continue;
        }
        let exprs = rule["expr"].as_array().cloned().unwrap_or_default();
        let meta_match = |key: &str| {
            exprs
                .iter()
                .filter_map(|e| e.get("match"))
                .find(|m| m["left"]["meta"]["key"] == key)
                .cloned()
        };
        let owner = meta_match("skuid").is_some() || meta_match("skgid").is_some();
        let verdict = exprs
            .iter()
            .any(|e| e.get("drop").is_some() || e.get("reject").is_some());
        if let (Some(oif), true, true) = (meta_match("oifname"), owner, verdict) {
            if let Some(name) = oif["right"].as_str() {
                found.push(name.to_owned());
            }
        }
    }
    Ok(found)
}

/// The evidence a run from this cgroup would be checked against: the cgroups from the parent
/// of its VRF cgroups (`<own>/vrf`, as vrfexec and iproute2 place runs) up to the root.
fn binding_evidence() -> crate::vrf::verify::Evidence {
    let own = fs::read("/proc/self/cgroup")
        .ok()
        .and_then(|text| crate::vrf::cgroup::unified_path(&text).ok().flatten());
    // Best effort, as the rest of the evidence: without the namespace's name, the default
    // namespace's layout.
    let netns = crate::vrf::cgroup::netns_name("self").ok().flatten();
    let first = own
        .map(|own| crate::vrf::cgroup::vrf_cgroup(&own, netns.as_deref(), None))
        .unwrap_or_else(|| "/".to_owned());
    crate::vrf::verify::Evidence::collect(&first)
}

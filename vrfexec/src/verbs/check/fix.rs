//! `vrfexec check --fix`: the seed article's rule changes, for IPv4 and IPv6, in an order that
//! never leaves a gap: the `local` rule is added at 32765 before the one at pref 0 is deleted,
//! so no lookup ever misses the local table; a missing l3mdev rule is added back; VRF lookups
//! that find nothing are stopped by an `l3mdev unreachable` rule (one rule covers every VRF).
//! Each change is printed as the equivalent `ip` command. A failure part-way undoes the
//! changes already made, in reverse order. Run again, it finds nothing to do.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::{
    address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope},
    rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage},
    AddressFamily, RouteNetlinkMessage,
};

use super::{
    has_l3mdev_unreachable, l3mdev_rule, vrfs, Family, RuleAction, Snapshot, L3MDEV_RULE_PREF,
    L3MDEV_UNREACHABLE_PREF, LOCAL_RULE_PREF, RT_TABLE_LOCAL,
};
use crate::{
    error::{Error, Result},
    sys::netlink::RtNetlink,
};

/// One change: a FIB rule, or a VRF device's loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Add(RuleSpec),
    Del(RuleSpec),
    AddLoopback(Loopback),
    DelLoopback(Loopback),
}

/// 127.0.0.1/8 or ::1/128 on a VRF device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loopback {
    pub family: Family,
    pub ifindex: u32,
    pub dev: String,
}

/// The ip command that gives `dev` its loopback address of `family`, as the kernel's VRF tests
/// (fcnal-test.sh) do: IPv6 without duplicate address detection.
pub fn loopback_command(family: Family, dev: &str) -> String {
    match family {
        Family::V4 => format!("ip -4 addr add 127.0.0.1/8 dev {dev}"),
        Family::V6 => format!("ip -6 addr add ::1/128 dev {dev} nodad"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub family: Family,
    pub pref: u32,
    /// `lookup local` (table 255), `lookup [l3mdev-table]`, or `l3mdev unreachable`.
    pub kind: SpecKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecKind {
    Local,
    L3mdev,
    L3mdevUnreachable,
}

impl Op {
    pub fn ip_command(&self) -> String {
        let (verb, spec) = match self {
            Op::Add(spec) => ("add", spec),
            Op::Del(spec) => ("del", spec),
            Op::AddLoopback(lo) => return loopback_command(lo.family, &lo.dev),
            Op::DelLoopback(lo) => {
                return loopback_command(lo.family, &lo.dev)
                    .replacen(" add ", " del ", 1)
                    .replace(" nodad", "")
            }
        };
        let what = match spec.kind {
            SpecKind::Local => "table local",
            SpecKind::L3mdev => "l3mdev",
            SpecKind::L3mdevUnreachable => "l3mdev unreachable",
        };
        format!(
            "ip {} rule {verb} pref {} {what}",
            spec.family.flag(),
            spec.pref
        )
    }

    pub fn inverse(&self) -> Op {
        match self {
            Op::Add(spec) => Op::Del(spec.clone()),
            Op::Del(spec) => Op::Add(spec.clone()),
            Op::AddLoopback(lo) => Op::DelLoopback(lo.clone()),
            Op::DelLoopback(lo) => Op::AddLoopback(lo.clone()),
        }
    }
}

/// The changes that make `snapshot` clean of the rule findings, in a safe order.
pub fn plan(snapshot: &Snapshot, only: &[String]) -> Vec<Op> {
    let mut ops = Vec::new();
    let selected: Vec<_> = vrfs(snapshot)
        .into_iter()
        .filter(|v| only.is_empty() || only.contains(&v.name))
        .collect();
    if vrfs(snapshot).is_empty() {
        return ops;
    }
    for family in Family::ALL {
        let l3mdev_pref = match l3mdev_rule(snapshot, family) {
            Some(rule) => rule.pref,
            None => {
                ops.push(Op::Add(RuleSpec {
                    family,
                    pref: L3MDEV_RULE_PREF,
                    kind: SpecKind::L3mdev,
                }));
                L3MDEV_RULE_PREF
            }
        };
        let early_locals: Vec<u32> = snapshot
            .rules
            .iter()
            .filter(|r| {
                r.family == family
                    && r.matches_all
                    && r.action == RuleAction::Lookup
                    && r.table == RT_TABLE_LOCAL
                    && r.pref < l3mdev_pref
            })
            .map(|r| r.pref)
            .collect();
        if !early_locals.is_empty() {
            let late_local = snapshot.rules.iter().any(|r| {
                r.family == family
                    && r.matches_all
                    && r.table == RT_TABLE_LOCAL
                    && r.action == RuleAction::Lookup
                    && r.pref > l3mdev_pref
            });
            if !late_local {
                ops.push(Op::Add(RuleSpec {
                    family,
                    pref: LOCAL_RULE_PREF,
                    kind: SpecKind::Local,
                }));
            }
            for pref in early_locals {
                ops.push(Op::Del(RuleSpec {
                    family,
                    pref,
                    kind: SpecKind::Local,
                }));
            }
        }
        let leaking = selected.iter().any(|v| {
            !snapshot
                .default_routes
                .contains(&(family, v.vrf_table.unwrap_or(0)))
        });
        if leaking && !has_l3mdev_unreachable(snapshot, family) {
            let pref = L3MDEV_UNREACHABLE_PREF.max(l3mdev_pref + 1);
            ops.push(Op::Add(RuleSpec {
                family,
                pref,
                kind: SpecKind::L3mdevUnreachable,
            }));
        }
    }
    for vrf in &selected {
        if let Some(&(v4, v6)) = snapshot.loopback.get(&vrf.name) {
            for (has, family) in [(v4, Family::V4), (v6, Family::V6)] {
                if !has {
                    ops.push(Op::AddLoopback(Loopback {
                        family,
                        ifindex: vrf.index,
                        dev: vrf.name.clone(),
                    }));
                }
            }
        }
    }
    ops
}

fn address_message(lo: &Loopback) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.index = lo.ifindex;
    message.header.scope = AddressScope::Host;
    let addr = match lo.family {
        Family::V4 => {
            message.header.family = AddressFamily::Inet;
            message.header.prefix_len = 8;
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
        Family::V6 => {
            message.header.family = AddressFamily::Inet6;
            message.header.prefix_len = 128;
            message.header.flags = AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        }
    };
    message.attributes.push(AddressAttribute::Local(addr));
    message.attributes.push(AddressAttribute::Address(addr));
    message
}

fn message(spec: &RuleSpec) -> RuleMessage {
    let mut message = RuleMessage::default();
    message.header.family = match spec.family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    };
    message.attributes.push(RuleAttribute::Priority(spec.pref));
    match spec.kind {
        SpecKind::Local => {
            message.header.action = NlRuleAction::ToTable;
            message.header.table = RT_TABLE_LOCAL as u8;
            message
                .attributes
                .push(RuleAttribute::Table(RT_TABLE_LOCAL));
        }
        SpecKind::L3mdev => {
            message.header.action = NlRuleAction::ToTable;
            message.attributes.push(RuleAttribute::L3MDev(true));
        }
        SpecKind::L3mdevUnreachable => {
            message.header.action = NlRuleAction::Unreachable;
            message.attributes.push(RuleAttribute::L3MDev(true));
        }
    }
    message
}

fn execute(netlink: &mut RtNetlink, op: &Op) -> std::io::Result<()> {
    let request = match op {
        Op::Add(spec) => (
            RouteNetlinkMessage::NewRule(message(spec)),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ),
        Op::Del(spec) => (RouteNetlinkMessage::DelRule(message(spec)), NLM_F_ACK),
        Op::AddLoopback(lo) => (
            RouteNetlinkMessage::NewAddress(address_message(lo)),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ),
        Op::DelLoopback(lo) => (
            RouteNetlinkMessage::DelAddress(address_message(lo)),
            NLM_F_ACK,
        ),
    };
    netlink.request_with_flags(request.0, request.1).map(|_| ())
}

/// Applies `ops` in order, printing each as an ip command (on `out`); on failure undoes what
/// was applied, newest first, and reports both.
pub fn apply(ops: &[Op]) -> Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let mut netlink = RtNetlink::open()?;
    let mut done: Vec<&Op> = Vec::new();
    for op in ops {
        if let Err(err) = execute(&mut netlink, op) {
            let mut undone = 0;
            for applied in done.iter().rev() {
                if execute(&mut netlink, &applied.inverse()).is_ok() {
                    undone += 1;
                }
            }
            return Err(Error::os(
                format!(
                    "`{}` failed ({undone} of {} earlier change(s) rolled back)",
                    op.ip_command(),
                    done.len()
                ),
                err,
            ));
        }
        done.push(op);
    }
    Ok(())
}

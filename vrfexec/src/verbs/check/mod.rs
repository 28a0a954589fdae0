//! `vrfexec check`: the VRF leaks and traps the seed articles and the kernel's vrf.rst warn
//! about, found from what the kernel reports, each with evidence, why it matters and the exact
//! fix; `--fix` applies the rule changes safely (fix.rs).
//!
//! The analysis is a pure function of a [`Snapshot`] (collect.rs gathers one over netlink, /proc
//! and resolv.conf), so every finding is unit-tested without a VRF-capable kernel.
pub mod collect;
pub mod fix;

use std::{collections::BTreeMap, fmt::Write as _, net::IpAddr};

use serde::Serialize;

use crate::{
    cli::CheckArgs,
    error::{Error, Result},
    sys::{names, netlink::Link, privilege::Caller},
    verbs::route::RouteAnswer,
};

/// `check [VRF...] [--json] [--fix [--dry-run]]`: exit 0 clean, 1 findings remain.
pub fn run(args: &CheckArgs, caller: &Caller) -> Result<u8> {
    if args.fix {
        super::root_only(caller, "check --fix")?;
    }
    let only = args
        .vrfs
        .iter()
        .map(|v| names::validate("VRF", v))
        .collect::<Result<Vec<_>>>()?;
    let mut snapshot = collect::snapshot()?;
    for name in &only {
        match snapshot.links.iter().find(|l| &l.name == name) {
            Some(link) if link.is_vrf() => {}
            Some(link) => {
                return Err(Error::NotAVrf {
                    name: name.clone(),
                    kind: link.describe_kind(),
                })
            }
            None => return Err(Error::VrfNotFound(name.clone())),
        }
    }
    let mut applied = Vec::new();
    if args.fix {
        let ops = fix::plan(&snapshot, &only);
        applied = ops.iter().map(fix::Op::ip_command).collect::<Vec<_>>();
        if args.dry_run {
            let text = if args.json {
                serde_json::json!({ "would_run": applied }).to_string() + "\n"
            } else {
                applied.iter().map(|c| format!("{c}\n")).collect()
            };
            return super::write_stdout(text.as_bytes()).map(|()| 0);
        }
        fix::apply(&ops)?;
        snapshot = collect::snapshot()?;
    }
    let findings = analyze(&snapshot, &only);
    let text = if args.json {
        let value = serde_json::json!({ "findings": findings, "applied": applied });
        value.to_string() + "\n"
    } else {
        let mut text: String = applied.iter().map(|c| format!("applied: {c}\n")).collect();
        text.push_str(&render_text(&findings, vrfs(&snapshot).len()));
        text
    };
    super::write_stdout(text.as_bytes())?;
    Ok(if has_problems(&findings) { 1 } else { 0 })
}

pub const RT_TABLE_LOCAL: u32 = libc::RT_TABLE_LOCAL as u32;
/// The metric vrf.rst suggests for an unreachable default: below every real route.
pub const UNREACHABLE_METRIC: u32 = 4_278_198_272;
/// Where the seed article moves the `local` rule, just above main (32766).
pub const LOCAL_RULE_PREF: u32 = 32765;
/// The kernel's own l3mdev rule preference.
pub const L3MDEV_RULE_PREF: u32 = 1000;
/// Where the seed article puts the `l3mdev unreachable` rule.
pub const L3MDEV_UNREACHABLE_PREF: u32 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Family {
    #[serde(rename = "ipv4")]
    V4,
    #[serde(rename = "ipv6")]
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn flag(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// What a FIB rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAction {
    Lookup,
    Unreachable,
    Other,
}

/// A FIB rule, reduced to what the checks look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub family: Family,
    pub pref: u32,
    pub table: u32,
    pub l3mdev: bool,
    pub action: RuleAction,
    /// No selector (from/to/iif/oif/fwmark/...): it applies to every packet.
    pub matches_all: bool,
}

/// Everything the checks need, gathered once.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub links: Vec<Link>,
    pub rules: Vec<Rule>,
    /// (family, table) pairs whose table has a default route of any type.
    pub default_routes: Vec<(Family, u32)>,
    pub tcp_l3mdev_accept: Option<bool>,
    pub udp_l3mdev_accept: Option<bool>,
    pub nameservers: Vec<IpAddr>,
    /// The servers of each VRF that has its own `/etc/vrf/<VRF>/resolv.conf` (vrfexec binds it
    /// over /etc/resolv.conf for commands run there); a file naming none means 127.0.0.1, as
    /// for the resolver library; an empty list: a file this check could not read.
    pub vrf_nameservers: BTreeMap<String, Vec<IpAddr>>,
    /// Which loopback addresses each VRF device has: (127.0.0.1, ::1).
    pub loopback: BTreeMap<String, (bool, bool)>,
    /// Route lookups of each nameserver from each VRF: (vrf, nameserver) -> answer.
    pub dns_routes: BTreeMap<(String, IpAddr), RouteAnswer>,
    /// What could defeat a binding made from the caller's cgroup (see verify.rs).
    pub binding: crate::vrf::verify::Evidence,
    /// The running kernel's (major, minor) version.
    pub kernel: Option<(u32, u32)>,
    /// The VRF grants in /etc/vrfexec.conf (None: no policy file, vrfexec is root's only).
    pub policy: Option<crate::run::policy::Policy>,
    /// VRFs with an nftables output rule on their device that filters by socket owner.
    pub firewalled: Vec<String>,
    /// Why the firewall could not be read, if it could not.
    pub firewall_error: Option<String>,
}

/// The first kernel with "bpf, cgroups: Fix cgroup v2 fallback on v1/v2 mixed mode": before
/// it, using net_cls or net_prio turns off cgroup v2 socket programs.
pub const NET_CLS_FIX: (u32, u32) = (5, 15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    fn word(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    pub evidence: String,
    pub why: String,
    /// The exact commands that fix it (empty when the fix is a decision, not a command).
    pub fix: Vec<String>,
}

fn plain_rules(snapshot: &Snapshot, family: Family) -> impl Iterator<Item = &Rule> {
    snapshot
        .rules
        .iter()
        .filter(move |r| r.family == family && r.matches_all)
}

/// The l3mdev lookup rule of a family, if any.
pub fn l3mdev_rule(snapshot: &Snapshot, family: Family) -> Option<&Rule> {
    plain_rules(snapshot, family).find(|r| r.l3mdev && r.action == RuleAction::Lookup)
}

/// `local` lookup rules that come before the l3mdev rule.
pub fn local_before_l3mdev(snapshot: &Snapshot, family: Family) -> Vec<&Rule> {
    let Some(l3mdev) = l3mdev_rule(snapshot, family) else {
        return Vec::new();
    };
    plain_rules(snapshot, family)
        .filter(|r| {
            r.action == RuleAction::Lookup && r.table == RT_TABLE_LOCAL && r.pref < l3mdev.pref
        })
        .collect()
}

/// Whether VRF lookups that find nothing stop (an `l3mdev unreachable` rule after the l3mdev
/// rule) instead of falling through to the rules after it.
pub fn has_l3mdev_unreachable(snapshot: &Snapshot, family: Family) -> bool {
    let after = l3mdev_rule(snapshot, family).map(|r| r.pref).unwrap_or(0);
    plain_rules(snapshot, family)
        .any(|r| r.l3mdev && r.action == RuleAction::Unreachable && r.pref >= after)
}

pub fn vrfs(snapshot: &Snapshot) -> Vec<&Link> {
    snapshot.links.iter().filter(|l| l.is_vrf()).collect()
}

/// All findings, most severe first. `only` limits the per-VRF checks to these VRFs.
pub fn analyze(snapshot: &Snapshot, only: &[String]) -> Vec<Finding> {
    let all_vrfs = vrfs(snapshot);
    let mut findings = Vec::new();
    if all_vrfs.is_empty() {
        return findings;
    }
    let selected: Vec<&Link> = all_vrfs
        .iter()
        .copied()
        .filter(|v| only.is_empty() || only.contains(&v.name))
        .collect();

    for family in Family::ALL {
        let f = family.flag();
        match l3mdev_rule(snapshot, family) {
            None => findings.push(Finding {
                id: "l3mdev-rule-missing",
                severity: Severity::Error,
                vrf: None,
                family: Some(family),
                evidence: format!("no `l3mdev` lookup rule in `ip {f} rule`"),
                why: "without it no lookup ever uses a VRF's table: traffic from VRF sockets is routed by the main table".into(),
                fix: vec![format!("ip {f} rule add pref {L3MDEV_RULE_PREF} l3mdev")],
            }),
            Some(l3mdev) => {
                for local in local_before_l3mdev(snapshot, family) {
                    findings.push(Finding {
                        id: "local-rule-before-l3mdev",
                        severity: Severity::Warning,
                        vrf: None,
                        family: Some(family),
                        evidence: format!("`{}: lookup local` comes before `{}: lookup [l3mdev-table]`", local.pref, l3mdev.pref),
                        why: "addresses of the default VRF are found in the local table before any VRF table, so from inside a VRF they answer locally instead of being routed through the VRF".into(),
                        fix: vec![
                            format!("ip {f} rule add pref {LOCAL_RULE_PREF} table local"),
                            format!("ip {f} rule del pref {} table local", local.pref),
                        ],
                    });
                }
            }
        }
    }

    for vrf in &selected {
        let table = vrf.vrf_table.unwrap_or(0);
        for family in Family::ALL {
            let covered = snapshot.default_routes.contains(&(family, table))
                || has_l3mdev_unreachable(snapshot, family);
            if !covered {
                let f = family.flag();
                findings.push(Finding {
                    id: "no-unreachable-default",
                    severity: Severity::Error,
                    vrf: Some(vrf.name.clone()),
                    family: Some(family),
                    evidence: format!("table {table} has no {} default route and there is no `l3mdev unreachable` rule", family.name()),
                    why: "a lookup that finds nothing in the VRF's table falls through to the next rules (main): traffic meant for the VRF leaks out of it".into(),
                    fix: vec![
                        format!("ip {f} rule add pref {L3MDEV_UNREACHABLE_PREF} l3mdev unreachable"),
                        format!("# or, for this VRF only: ip {f} route add unreachable default metric {UNREACHABLE_METRIC} vrf {}", vrf.name),
                    ],
                });
            }
        }
        if !vrf.admin_up || vrf.oper_state == "DOWN" {
            findings.push(Finding {
                id: "vrf-down",
                severity: Severity::Error,
                vrf: Some(vrf.name.clone()),
                family: None,
                evidence: format!(
                    "{} is {}",
                    vrf.name,
                    if vrf.admin_up {
                        "operationally down"
                    } else {
                        "administratively down"
                    }
                ),
                why: "a VRF device that is down drops all traffic of its VRF".into(),
                fix: vec![format!("ip link set dev {} up", vrf.name)],
            });
        }
        let members = snapshot
            .links
            .iter()
            .filter(|l| l.master == Some(vrf.index))
            .count();
        if members == 0 {
            findings.push(Finding {
                id: "vrf-without-members",
                severity: Severity::Warning,
                vrf: Some(vrf.name.clone()),
                family: None,
                evidence: format!("no interface has {} as its master", vrf.name),
                why: "a VRF without interfaces can only reach what is leaked into its table".into(),
                fix: vec![format!("ip link set dev <IFACE> master {}", vrf.name)],
            });
        }
        for other in all_vrfs
            .iter()
            .filter(|o| o.index != vrf.index && o.vrf_table == vrf.vrf_table)
        {
            findings.push(Finding {
                id: "shared-table",
                severity: Severity::Error,
                vrf: Some(vrf.name.clone()),
                family: None,
                evidence: format!("{} and {} both use table {table}", vrf.name, other.name),
                why: "two VRFs on one table are one routing domain: neither is separated from the other".into(),
                fix: vec![format!("give one of them its own table (ip link del {0}; ip link add {0} type vrf table <N>)", other.name)],
            });
        }
        findings.extend(dns_findings(snapshot, vrf));
        if let Some(&(v4, v6)) = snapshot.loopback.get(&vrf.name) {
            if !(v4 && v6) {
                let missing: Vec<&str> = [(v4, "127.0.0.1/8"), (v6, "::1/128")]
                    .iter()
                    .filter(|(has, _)| !has)
                    .map(|(_, addr)| *addr)
                    .collect();
                let mut fix = Vec::new();
                if !v4 {
                    fix.push(fix::loopback_command(Family::V4, &vrf.name));
                }
                if !v6 {
                    fix.push(fix::loopback_command(Family::V6, &vrf.name));
                }
                findings.push(Finding {
                    id: "vrf-without-loopback",
                    severity: Severity::Info,
                    vrf: Some(vrf.name.clone()),
                    family: None,
                    evidence: format!("{} has no {}", vrf.name, missing.join(" and ")),
                    why: "a resolver, agent or service that listens on 127.0.0.1 or ::1 inside the VRF (a local DNS cache named in /etc/vrf/<VRF>/resolv.conf, say) is reachable there only when the VRF device has those addresses, as the kernel's own VRF tests set up".into(),
                    fix,
                });
            }
        }
    }

    for (name, value) in [
        ("tcp_l3mdev_accept", snapshot.tcp_l3mdev_accept),
        ("udp_l3mdev_accept", snapshot.udp_l3mdev_accept),
    ] {
        if value == Some(false) {
            findings.push(Finding {
                id: "l3mdev-accept-off",
                severity: Severity::Info,
                vrf: None,
                family: None,
                evidence: format!("net.ipv4.{name} = 0"),
                why: "services listening in the default VRF (sshd, nginx, ...) do not accept connections that arrive through a VRF; that is right for strict separation, and wrong if such a service is meant to answer in the VRFs too".into(),
                fix: vec![format!("sysctl -w net.ipv4.{name}=1   # only if default-VRF services should answer in VRFs")],
            });
        }
    }
    binding_traps(snapshot, &mut findings);
    for vrf in &selected {
        policy_enforcement(snapshot, vrf, &mut findings);
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

/// A VRF the policy grants to some users, which nothing but the policy guards: the policy
/// governs vrfexec, and any user can bind a socket to the VRF (SO_BINDTODEVICE, Linux 5.7).
fn policy_enforcement(snapshot: &Snapshot, vrf: &Link, findings: &mut Vec<Finding>) {
    let Some(policy) = &snapshot.policy else {
        return;
    };
    let granted = policy.rules.iter().any(|r| match &r.vrfs {
        crate::run::policy::Vrfs::Any => true,
        crate::run::policy::Vrfs::These(list) => list.contains(&vrf.name),
    });
    if !granted {
        return;
    }
    let evidence = match &snapshot.firewall_error {
        None if snapshot.firewalled.contains(&vrf.name) => return,
        None => format!(
            "{} grants {} to some users, and no nftables output rule on {} filters by socket owner",
            crate::run::policy::POLICY_PATH,
            vrf.name,
            vrf.name
        ),
        Some(why) => format!(
            "{} grants {} to some users; the firewall could not be checked ({why})",
            crate::run::policy::POLICY_PATH,
            vrf.name
        ),
    };
    findings.push(Finding {
        id: "policy-not-enforced",
        severity: Severity::Warning,
        vrf: Some(vrf.name.clone()),
        family: None,
        evidence,
        why: "the policy decides who may use vrfexec for this VRF, not who may use the VRF: since Linux 5.7 any user can bind a socket to it (curl --interface, ping -I)".into(),
        fix: vec![format!(
            "nft add table inet vrf_guard; nft add chain inet vrf_guard output '{{ type filter hook output priority 0; }}'; nft add rule inet vrf_guard output oifname \"{}\" meta skuid != {{ 0, <USERS> }} drop",
            vrf.name
        )],
    });
}

/// What silently defeats the binding of commands run from the caller's cgroup (vrfexec refuses
/// such runs; `ip vrf exec` runs them unbound).
fn binding_traps(snapshot: &Snapshot, findings: &mut Vec<Finding>) {
    let evidence = &snapshot.binding;
    for (path, programs) in &evidence.ancestors {
        findings.push(Finding {
            id: "sock-create-program-above",
            severity: Severity::Error,
            vrf: None,
            family: None,
            evidence: format!(
                "cgroup {path}, above the VRF cgroups of commands run from here, has cgroup/sock_create program(s) {}",
                crate::vrf::verify::describe_programs(programs)
            ),
            why: "the kernel runs an ancestor's sock_create programs after the VRF cgroup's: if one sets the bound device (systemd's BindNetworkInterface= does), commands run in a VRF from here are not in it (ip vrf exec runs them bound elsewhere; vrfexec refuses to run them)".into(),
            fix: vec![format!("# remove the program from {path} (systemd: BindNetworkInterface= or BPFProgram=sock_create on that unit), or run VRF commands from another cgroup")],
        });
    }
    let old_kernel = snapshot.kernel.is_some_and(|k| k < NET_CLS_FIX);
    if old_kernel && !evidence.net_v1.is_empty() {
        let used: Vec<String> = evidence
            .net_v1
            .iter()
            .map(|(controllers, path)| format!("{controllers}:{path}"))
            .collect();
        findings.push(Finding {
            id: "net-cls-defeats-binding",
            severity: Severity::Error,
            vrf: None,
            family: None,
            evidence: format!(
                "cgroup v1 net_cls/net_prio is mounted ({}) on a kernel before {}.{}",
                used.join(", "),
                NET_CLS_FIX.0,
                NET_CLS_FIX.1
            ),
            why: "once any process uses net_cls or net_prio, this kernel stops running cgroup v2 socket programs (dmesg: \"disabling cgroup2 socket matching\"): ip vrf exec then runs commands unbound, and vrfexec refuses to run them".into(),
            fix: vec!["# stop using net_cls/net_prio (it stays off until reboot), or use a kernel with the fix (Linux 5.15)".into()],
        });
    }
    if let Some(why) = &evidence.query_error {
        findings.push(Finding {
            id: "binding-not-checked",
            severity: Severity::Info,
            vrf: None,
            family: None,
            evidence: format!("the programs above this cgroup could not be read: {why}"),
            why: "a program there could override the VRF binding; run vrfexec check as root to see them".into(),
            fix: vec![],
        });
    }
}

/// Whether the findings make `check` exit 1 (info alone does not).
/// DNS from inside `vrf`: the servers its commands use (its own `/etc/vrf/<VRF>/resolv.conf`,
/// or the host's), each looked up in the VRF's table.
fn dns_findings(snapshot: &Snapshot, vrf: &Link) -> Vec<Finding> {
    let own = snapshot.vrf_nameservers.get(&vrf.name);
    let file = match own {
        Some(_) => format!("{}/{}/resolv.conf", crate::vrf::etc::ETC_VRF, vrf.name),
        None => "/etc/resolv.conf".to_owned(),
    };
    let mut findings = Vec::new();
    for ns in own.unwrap_or(&snapshot.nameservers) {
        let route = snapshot.dns_routes.get(&(vrf.name.clone(), *ns));
        let unreachable = route.map(|r| !r.is_reachable()).unwrap_or(false);
        // The host's loopback resolver listens in the default VRF; in the VRF's own file a
        // loopback server is a resolver in the VRF, judged by the lookup like any other.
        let default_vrf_loopback = own.is_none() && ns.is_loopback();
        if !(default_vrf_loopback || unreachable) {
            continue;
        }
        let evidence = if default_vrf_loopback {
            format!("{file} names {ns}, a loopback resolver of the default VRF")
        } else {
            format!(
                "{file} names {ns}; `vrfexec route {} {ns}` says {}",
                vrf.name,
                route.map(|r| r.kind.as_str()).unwrap_or("?")
            )
        };
        let fix = match own {
            Some(_) => vec![format!(
                "edit {file}: name a server that `vrfexec route {} SERVER` reaches",
                vrf.name
            )],
            None => vec![
                format!("mkdir -p {}/{}", crate::vrf::etc::ETC_VRF, vrf.name),
                format!(
                    "echo 'nameserver SERVER' > {}/{}/resolv.conf  # a server {} reaches",
                    crate::vrf::etc::ETC_VRF,
                    vrf.name,
                    vrf.name
                ),
            ],
        };
        findings.push(Finding {
            id: "dns-unreachable",
            severity: Severity::Warning,
            vrf: Some(vrf.name.clone()),
            family: None,
            evidence,
            why: "programs run in the VRF cannot resolve names through this server (systemd-resolved's 127.0.0.53 is the classic case): apt, curl and ssh fail on names while addresses work; vrfexec binds /etc/vrf/<VRF>/resolv.conf over /etc/resolv.conf for commands run in the VRF".into(),
            fix,
        });
    }
    findings
}

pub fn has_problems(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity > Severity::Info)
}

pub fn render_text(findings: &[Finding], vrf_count: usize) -> String {
    if vrf_count == 0 {
        return "No VRF has been configured; nothing to check\n".into();
    }
    if findings.is_empty() {
        return format!("OK: {vrf_count} VRF(s), no findings\n");
    }
    let mut out = String::new();
    for f in findings {
        let scope = match (&f.vrf, f.family) {
            (Some(v), Some(fam)) => format!(" [{v}, {}]", fam.name()),
            (Some(v), None) => format!(" [{v}]"),
            (None, Some(fam)) => format!(" [{}]", fam.name()),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "{}: {}{scope}: {}",
            f.severity.word(),
            f.id,
            f.evidence
        );
        let _ = writeln!(out, "  why: {}", f.why);
        for cmd in &f.fix {
            let _ = writeln!(out, "  fix: {cmd}");
        }
    }
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        out,
        "{} error(s), {} warning(s), {} info",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    out
}

#[cfg(test)]
mod tests;

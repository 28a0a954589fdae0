use super::{fix::*, *};
use crate::sys::netlink::Link;

fn link(
    index: u32,
    name: &str,
    kind: Option<&str>,
    table: Option<u32>,
    master: Option<u32>,
) -> Link {
    Link {
        index,
        name: name.into(),
        kind: kind.map(Into::into),
        vrf_table: table,
        master,
        admin_up: true,
        oper_state: "UP".into(),
    }
}

fn rule(family: Family, pref: u32, table: u32, l3mdev: bool, action: RuleAction) -> Rule {
    Rule {
        family,
        pref,
        table,
        l3mdev,
        action,
        matches_all: true,
    }
}

/// The kernel's defaults after creating a VRF: local at 0, l3mdev at 1000, main, default.
fn stock_rules() -> Vec<Rule> {
    let mut rules = Vec::new();
    for family in Family::ALL {
        rules.push(rule(family, 0, 255, false, RuleAction::Lookup));
        rules.push(rule(family, 1000, 0, true, RuleAction::Lookup));
        rules.push(rule(family, 32766, 254, false, RuleAction::Lookup));
    }
    rules
}

/// Two VRFs with members, on a stock kernel: the seed's starting point.
fn stock() -> Snapshot {
    Snapshot {
        links: vec![
            link(1, "lo", None, None, None),
            link(5, "red", Some("vrf"), Some(10), None),
            link(6, "blue", Some("vrf"), Some(20), None),
            link(7, "vred", Some("veth"), None, Some(5)),
            link(8, "vblue", Some("veth"), None, Some(6)),
        ],
        rules: stock_rules(),
        tcp_l3mdev_accept: Some(false),
        udp_l3mdev_accept: Some(false),
        ..Default::default()
    }
}

fn ids(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.id).collect()
}

/// What `plan` leaves: the snapshot after its ops, for idempotence checks.
fn applied(mut snapshot: Snapshot, ops: &[Op]) -> Snapshot {
    for op in ops {
        match op {
            Op::Add(spec) => snapshot.rules.push(Rule {
                family: spec.family,
                pref: spec.pref,
                table: if spec.kind == SpecKind::Local { 255 } else { 0 },
                l3mdev: spec.kind != SpecKind::Local,
                action: if spec.kind == SpecKind::L3mdevUnreachable {
                    RuleAction::Unreachable
                } else {
                    RuleAction::Lookup
                },
                matches_all: true,
            }),
            Op::Del(spec) => snapshot
                .rules
                .retain(|r| !(r.family == spec.family && r.pref == spec.pref && r.table == 255)),
            Op::AddLoopback(lo) | Op::DelLoopback(lo) => {
                let add = matches!(op, Op::AddLoopback(_));
                let entry = snapshot.loopback.entry(lo.dev.clone()).or_default();
                match lo.family {
                    Family::V4 => entry.0 = add,
                    Family::V6 => entry.1 = add,
                }
            }
        }
    }
    snapshot
}

#[test]
fn no_vrf_means_nothing_to_check() {
    let snapshot = Snapshot {
        links: vec![link(1, "lo", None, None, None)],
        rules: stock_rules(),
        ..Default::default()
    };
    assert!(analyze(&snapshot, &[]).is_empty());
    assert!(plan(&snapshot, &[]).is_empty());
    assert!(render_text(&[], 0).starts_with("No VRF"));
}

#[test]
fn stock_setup_has_the_seed_articles_findings() {
    let findings = analyze(&stock(), &[]);
    let ids = ids(&findings);
    assert_eq!(
        ids.iter()
            .filter(|i| **i == "local-rule-before-l3mdev")
            .count(),
        2,
        "IPv4 and IPv6"
    );
    assert_eq!(
        ids.iter()
            .filter(|i| **i == "no-unreachable-default")
            .count(),
        4,
        "two VRFs, two families"
    );
    assert_eq!(ids.iter().filter(|i| **i == "l3mdev-accept-off").count(), 2);
    assert!(has_problems(&findings));
    let local = findings
        .iter()
        .find(|f| f.id == "local-rule-before-l3mdev")
        .expect("local");
    assert_eq!(
        local.fix,
        [
            "ip -4 rule add pref 32765 table local",
            "ip -4 rule del pref 0 table local"
        ]
    );
    // Most severe first.
    assert_eq!(findings[0].severity, Severity::Error);
    let text = render_text(&findings, 2);
    assert!(text.contains("warning: local-rule-before-l3mdev [IPv4]:"));
    assert!(
        text.ends_with("4 error(s), 2 warning(s), 2 info\n"),
        "{text}"
    );
}

#[test]
fn each_finding_is_detected() {
    let mut s = stock();
    s.rules.retain(|r| !(r.family == Family::V6 && r.l3mdev));
    assert!(analyze(&s, &[])
        .iter()
        .any(|f| f.id == "l3mdev-rule-missing" && f.family == Some(Family::V6)));

    let mut s = stock();
    s.links[1].admin_up = false;
    assert!(analyze(&s, &[])
        .iter()
        .any(|f| f.id == "vrf-down" && f.vrf.as_deref() == Some("red")));

    let mut s = stock();
    s.links.retain(|l| l.name != "vblue");
    assert!(analyze(&s, &[])
        .iter()
        .any(|f| f.id == "vrf-without-members" && f.vrf.as_deref() == Some("blue")));

    let mut s = stock();
    s.links[2].vrf_table = Some(10);
    assert_eq!(
        analyze(&s, &[])
            .iter()
            .filter(|f| f.id == "shared-table")
            .count(),
        2
    );

    let mut s = stock();
    let resolver: std::net::IpAddr = "127.0.0.53".parse().expect("ip");
    s.nameservers = vec![resolver];
    assert_eq!(
        analyze(&s, &[])
            .iter()
            .filter(|f| f.id == "dns-unreachable")
            .count(),
        2
    );
}

#[test]
fn dns_findings_follow_the_route_lookup() {
    let mut s = stock();
    let server: std::net::IpAddr = "10.9.0.53".parse().expect("ip");
    s.nameservers = vec![server];
    let answer = |kind: &str, vrf: &str| RouteAnswer {
        kind: kind.into(),
        dst: server.to_string(),
        gateway: None,
        dev: None,
        prefsrc: None,
        table: None,
        vrf: vrf.into(),
    };
    s.dns_routes
        .insert(("red".into(), server), answer("unicast", "red"));
    s.dns_routes
        .insert(("blue".into(), server), answer("unreachable", "blue"));
    let dns: Vec<_> = analyze(&s, &[])
        .into_iter()
        .filter(|f| f.id == "dns-unreachable")
        .collect();
    assert_eq!(dns.len(), 1);
    assert_eq!(dns[0].vrf.as_deref(), Some("blue"));
    assert!(dns[0].evidence.contains("unreachable"));
}

#[test]
fn a_vrfs_own_resolv_conf_replaces_the_hosts_for_that_vrf() {
    let mut s = stock();
    let stub: std::net::IpAddr = "127.0.0.53".parse().expect("ip");
    let server: std::net::IpAddr = "10.1.0.53".parse().expect("ip");
    s.nameservers = vec![stub];
    let answer = |kind: &str| RouteAnswer {
        kind: kind.into(),
        dst: server.to_string(),
        gateway: None,
        dev: None,
        prefsrc: None,
        table: None,
        vrf: "red".into(),
    };
    // Before: both VRFs use the host's stub, and the fix says which file to create.
    let before: Vec<_> = analyze(&s, &[])
        .into_iter()
        .filter(|f| f.id == "dns-unreachable")
        .collect();
    assert_eq!(before.len(), 2);
    assert_eq!(
        before[0].fix,
        vec![
            "mkdir -p /etc/vrf/red".to_owned(),
            "echo 'nameserver SERVER' > /etc/vrf/red/resolv.conf  # a server red reaches"
                .to_owned()
        ]
    );
    // red gets its own file with a server it reaches: red is clean, blue is not.
    s.vrf_nameservers.insert("red".into(), vec![server]);
    s.dns_routes
        .insert(("red".into(), server), answer("unicast"));
    let after: Vec<_> = analyze(&s, &[])
        .into_iter()
        .filter(|f| f.id == "dns-unreachable")
        .collect();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].vrf.as_deref(), Some("blue"));
    // A server in red's own file that red cannot reach is named with that file.
    s.dns_routes
        .insert(("red".into(), server), answer("unreachable"));
    let own: Vec<_> = analyze(&s, &["red".into()])
        .into_iter()
        .filter(|f| f.id == "dns-unreachable")
        .collect();
    assert_eq!(own.len(), 1);
    assert_eq!(
        own[0].evidence,
        "/etc/vrf/red/resolv.conf names 10.1.0.53; `vrfexec route red 10.1.0.53` says unreachable"
    );
    // A loopback server in the VRF's own file is judged by the lookup (a resolver in the VRF).
    s.vrf_nameservers.insert("red".into(), vec![stub]);
    s.dns_routes.insert(("red".into(), stub), answer("local"));
    assert!(!analyze(&s, &["red".into()])
        .iter()
        .any(|f| f.id == "dns-unreachable"));
}

#[test]
fn vrfs_without_loopback_addresses_are_reported_and_fixed() {
    let mut s = stock();
    s.loopback.insert("red".into(), (false, false));
    s.loopback.insert("blue".into(), (true, true));
    let found: Vec<_> = analyze(&s, &[])
        .into_iter()
        .filter(|f| f.id == "vrf-without-loopback")
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Info);
    assert_eq!(found[0].evidence, "red has no 127.0.0.1/8 and ::1/128");
    assert_eq!(
        found[0].fix,
        vec![
            "ip -4 addr add 127.0.0.1/8 dev red".to_owned(),
            "ip -6 addr add ::1/128 dev red nodad".to_owned()
        ]
    );
    let ops: Vec<String> = plan(&s, &[])
        .iter()
        .filter(|op| matches!(op, Op::AddLoopback(_)))
        .map(Op::ip_command)
        .collect();
    assert_eq!(ops, found[0].fix);
    // Only the VRFs asked about are fixed; with both addresses there is nothing to do.
    assert!(!plan(&s, &["blue".into()])
        .iter()
        .any(|op| matches!(op, Op::AddLoopback(_))));
    s.loopback.insert("red".into(), (true, true));
    assert!(!analyze(&s, &[])
        .iter()
        .any(|f| f.id == "vrf-without-loopback"));
    assert!(!plan(&s, &[])
        .iter()
        .any(|op| matches!(op, Op::AddLoopback(_))));
    let undo = Op::AddLoopback(Loopback {
        family: Family::V6,
        ifindex: 5,
        dev: "red".into(),
    })
    .inverse();
    assert_eq!(undo.ip_command(), "ip -6 addr del ::1/128 dev red");
}

#[test]
fn unreachable_defaults_or_the_l3mdev_unreachable_rule_clear_the_leak() {
    let mut s = stock();
    s.default_routes = vec![(Family::V4, 10), (Family::V6, 10)];
    let leaks: Vec<_> = analyze(&s, &[])
        .into_iter()
        .filter(|f| f.id == "no-unreachable-default")
        .collect();
    assert!(
        leaks.iter().all(|f| f.vrf.as_deref() == Some("blue")),
        "{leaks:?}"
    );
    let mut s = stock();
    for family in Family::ALL {
        s.rules
            .push(rule(family, 2000, 0, true, RuleAction::Unreachable));
    }
    assert!(!analyze(&s, &[])
        .iter()
        .any(|f| f.id == "no-unreachable-default"));
}

#[test]
fn only_selected_vrfs_are_checked() {
    let findings = analyze(&stock(), &["red".to_owned()]);
    assert!(findings
        .iter()
        .filter_map(|f| f.vrf.as_deref())
        .all(|v| v == "red"));
}

#[test]
fn the_plan_moves_local_safely_and_is_idempotent() {
    let ops = plan(&stock(), &[]);
    let commands: Vec<String> = ops.iter().map(Op::ip_command).collect();
    assert_eq!(
        commands,
        [
            "ip -4 rule add pref 32765 table local",
            "ip -4 rule del pref 0 table local",
            "ip -4 rule add pref 2000 l3mdev unreachable",
            "ip -6 rule add pref 32765 table local",
            "ip -6 rule del pref 0 table local",
            "ip -6 rule add pref 2000 l3mdev unreachable",
        ]
    );
    let after = applied(stock(), &ops);
    assert!(plan(&after, &[]).is_empty(), "a second run changes nothing");
    assert!(!analyze(&after, &[])
        .iter()
        .any(|f| f.severity > Severity::Info));
}

#[test]
fn a_missing_l3mdev_rule_is_added_first() {
    let mut s = stock();
    s.rules.retain(|r| !r.l3mdev);
    let ops = plan(&s, &[]);
    assert_eq!(ops[0].ip_command(), "ip -4 rule add pref 1000 l3mdev");
    assert!(plan(&applied(s, &ops), &[]).is_empty());
}

fn with_binding_evidence(evidence: crate::vrf::verify::Evidence, kernel: (u32, u32)) -> Snapshot {
    Snapshot {
        binding: evidence,
        kernel: Some(kernel),
        ..stock()
    }
}

#[test]
fn a_program_above_the_vrf_cgroups_is_an_error() {
    let evidence = crate::vrf::verify::Evidence {
        ancestors: vec![(
            "/system.slice/x.service".into(),
            vec![crate::vrf::bpf::AttachedProgram {
                id: 31,
                name: Some("sd_bind".into()),
            }],
        )],
        ..Default::default()
    };
    let findings = analyze(&with_binding_evidence(evidence, (6, 1)), &[]);
    let found = findings
        .iter()
        .find(|f| f.id == "sock-create-program-above")
        .map(|f| (f.severity, f.evidence.clone()));
    assert_eq!(
        found,
        Some((
            Severity::Error,
            "cgroup /system.slice/x.service, above the VRF cgroups of commands run from here, has cgroup/sock_create program(s) id 31 \"sd_bind\"".into()
        ))
    );
}

#[test]
fn net_cls_is_an_error_only_before_the_fix() {
    let evidence = crate::vrf::verify::Evidence {
        net_v1: vec![("net_cls,net_prio".into(), "/".into())],
        ..Default::default()
    };
    let old = analyze(&with_binding_evidence(evidence.clone(), (5, 10)), &[]);
    assert!(old
        .iter()
        .any(|f| f.id == "net-cls-defeats-binding" && f.severity == Severity::Error));
    let new = analyze(&with_binding_evidence(evidence, (6, 1)), &[]);
    assert!(!new.iter().any(|f| f.id == "net-cls-defeats-binding"));
}

#[test]
fn a_clean_cgroup_adds_no_binding_finding() {
    let findings = analyze(&with_binding_evidence(Default::default(), (5, 10)), &[]);
    assert!(!findings.iter().any(|f| f.id.contains("sock-create")
        || f.id.contains("net-cls")
        || f.id == "binding-not-checked"));
}

/// `nft -j list ruleset` (nftables 1.0.6) with the README's guard rule for red.
const NFT_GUARD_RED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "t1", "handle": 1}}, {"chain": {"family": "inet", "table": "t1", "name": "output", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "t1", "chain": "output", "handle": 3, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "red"}}, {"match": {"op": "!=", "left": {"meta": {"key": "skuid"}}, "right": {"set": [0, 65534]}}}, {"drop": null}]}}]}"#;

#[test]
fn reads_the_owner_filter_from_nft_json() {
    assert_eq!(
        collect::firewalled_vrfs(NFT_GUARD_RED),
        Ok(vec!["red".to_owned()])
    );
    // The same rule in an input chain guards nothing of this.
    let input = NFT_GUARD_RED.replace("\"hook\": \"output\"", "\"hook\": \"input\"");
    assert_eq!(collect::firewalled_vrfs(&input), Ok(Vec::new()));
    assert!(collect::firewalled_vrfs("not json").is_err());
}

#[test]
fn a_granted_vrf_without_an_owner_filter_is_reported() {
    let policy = crate::run::policy::Policy::parse("allow user alice vrf red,blue\n").ok();
    let snapshot = Snapshot {
        policy,
        firewalled: vec!["red".into()],
        ..stock()
    };
    let findings = analyze(&snapshot, &[]);
    let vrfs: Vec<_> = findings
        .iter()
        .filter(|f| f.id == "policy-not-enforced")
        .map(|f| f.vrf.clone())
        .collect();
    assert_eq!(vrfs, [Some("blue".to_owned())]);
    let unreadable = Snapshot {
        policy: crate::run::policy::Policy::parse("allow group g vrf *\n").ok(),
        firewall_error: Some("nft (nftables) is not installed".into()),
        ..stock()
    };
    let texts: Vec<_> = analyze(&unreadable, &[])
        .into_iter()
        .filter(|f| f.id == "policy-not-enforced")
        .map(|f| f.evidence)
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("could not be checked (nft (nftables) is not installed)"));
    // No policy file: vrfexec is root's only, nothing to enforce.
    assert!(!analyze(&stock(), &[])
        .iter()
        .any(|f| f.id == "policy-not-enforced"));
}

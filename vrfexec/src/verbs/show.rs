//! `vrfexec show [VRF]`: the VRFs of this network namespace with table, ifindex, state and
//! member interfaces, from one RTM_GETLINK dump, and the files of each VRF's `/etc/vrf/<VRF>/`
//! (on a line of their own, only where there are any). `--json` keeps `ip -j vrf show`'s
//! `name` and `table` keys and adds the rest.
use std::{ffi::OsString, fmt::Write as _};

use serde::Serialize;

use crate::{
    cli::ShowArgs,
    error::{Error, Result},
    sys::{
        names,
        netlink::{Link, LinkSource, RtNetlink},
        privilege::Caller,
    },
    vrf::etc,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VrfInfo {
    pub name: String,
    pub table: u32,
    pub ifindex: u32,
    /// Operational state as `ip link` shows it.
    pub state: String,
    pub members: Vec<String>,
    /// The entries of `/etc/vrf/<name>/`, bound over `/etc` for commands run in the VRF.
    pub etc: Vec<String>,
}

/// The VRFs among `links`, in ifindex order (as the kernel dumps them), with their members.
pub fn collect(links: &[Link]) -> Vec<VrfInfo> {
    let mut vrfs: Vec<VrfInfo> = links
        .iter()
        .filter(|l| l.is_vrf())
        .map(|vrf| VrfInfo {
            name: vrf.name.clone(),
            table: vrf.vrf_table.unwrap_or(0),
            ifindex: vrf.index,
            state: vrf.oper_state.clone(),
            members: links
                .iter()
                .filter(|l| l.master == Some(vrf.index))
                .map(|l| l.name.clone())
                .collect(),
            etc: Vec::new(),
        })
        .collect();
    vrfs.sort_by_key(|v| v.ifindex);
    vrfs
}

/// The text table. No VRF: iproute2's sentence.
pub fn render_text(vrfs: &[VrfInfo]) -> String {
    if vrfs.is_empty() {
        return "No VRF has been configured\n".to_owned();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>8}  {:<8} Members",
        "Name", "Table", "Ifindex", "State"
    );
    for vrf in vrfs {
        let members = if vrf.members.is_empty() {
            "-".to_owned()
        } else {
            vrf.members.join(" ")
        };
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>8}  {:<8} {}",
            vrf.name, vrf.table, vrf.ifindex, vrf.state, members
        );
        if !vrf.etc.is_empty() {
            let _ = writeln!(
                out,
                "{:<16} {}/{}/: {}",
                "",
                etc::ETC_VRF,
                vrf.name,
                vrf.etc.join(" ")
            );
        }
    }
    out
}

pub fn run(args: &ShowArgs, _caller: &Caller) -> Result<u8> {
    let text = report(args.vrf.as_ref(), args.json, &mut RtNetlink::open()?)?;
    super::write_stdout(text.as_bytes()).map(|()| 0)
}

/// The text or JSON `show` prints for `name` (or every VRF).
pub fn report(name: Option<&OsString>, json: bool, links: &mut dyn LinkSource) -> Result<String> {
    let name = name.map(|n| names::validate("VRF", n)).transpose()?;
    let all = links.links().map_err(|source| Error::Netlink {
        what: "cannot list devices over netlink",
        source,
    })?;
    let mut vrfs = collect(&all);
    if let Some(name) = &name {
        vrfs.retain(|v| &v.name == name);
        if vrfs.is_empty() {
            return Err(match all.iter().find(|l| &l.name == name) {
                Some(link) => Error::NotAVrf {
                    name: name.clone(),
                    kind: link.describe_kind(),
                },
                None => Error::VrfNotFound(name.clone()),
            });
        }
    }
    for vrf in &mut vrfs {
        vrf.etc = etc::entry_names(&vrf.name);
    }
    if json {
        let mut text =
            serde_json::to_string(&vrfs).map_err(|e| Error::os("cannot write JSON", e.into()))?;
        text.push('\n');
        Ok(text)
    } else {
        Ok(render_text(&vrfs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::fake::FakeLinks;

    fn lab() -> FakeLinks {
        let mut links = FakeLinks::default()
            .with(1, "lo", None, None)
            .with(5, "red", Some("vrf"), Some(10))
            .with(6, "blue", Some("vrf"), Some(20))
            .with(7, "vred", Some("veth"), None)
            .with(8, "vred2", Some("veth"), None)
            .with(9, "eth0", Some("veth"), None);
        for (member, master) in [("vred", 5), ("vred2", 5)] {
            if let Some(link) = links.links.get_mut(member) {
                link.master = Some(master);
            }
        }
        links
    }

    #[test]
    fn text_lists_vrfs_with_members() {
        let out = report(None, false, &mut lab()).expect("show");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("Name"));
        assert_eq!(
            lines[1],
            "red                  10        5  UP       vred vred2"
        );
        assert_eq!(lines[2], "blue                 20        6  UP       -");
    }

    #[test]
    fn json_has_ip_vrf_show_keys() {
        let out = report(None, true, &mut lab()).expect("show");
        let value: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(value[0]["name"], "red");
        assert_eq!(value[0]["table"], 10);
        assert_eq!(value[0]["members"], serde_json::json!(["vred", "vred2"]));
        assert_eq!(value[1]["name"], "blue");
        assert_eq!(value.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn one_vrf_and_errors() {
        let out = report(Some(&"blue".into()), true, &mut lab()).expect("blue");
        assert!(out.contains("\"name\":\"blue\"") && !out.contains("red"));
        assert!(matches!(
            report(Some(&"green".into()), false, &mut lab()),
            Err(Error::VrfNotFound(_))
        ));
        assert!(matches!(
            report(Some(&"eth0".into()), false, &mut lab()),
            Err(Error::NotAVrf { .. })
        ));
        assert!(report(Some(&"a/b".into()), false, &mut lab()).is_err());
    }

    #[test]
    fn per_vrf_etc_files_follow_their_vrf() {
        let mut vrfs = collect(&lab().links().expect("links"));
        vrfs[0].etc = vec!["hosts".into(), "resolv.conf".into()];
        let text = render_text(&vrfs);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("red "), "{text}");
        assert_eq!(
            lines[2],
            format!("{:<16} /etc/vrf/red/: hosts resolv.conf", "")
        );
        assert!(lines[3].starts_with("blue "), "{text}");
    }

    #[test]
    fn no_vrf_is_not_an_error() {
        let mut links = FakeLinks::default().with(1, "lo", None, None);
        assert_eq!(
            report(None, false, &mut links).expect("show"),
            "No VRF has been configured\n"
        );
        assert_eq!(report(None, true, &mut links).expect("show"), "[]\n");
    }
}

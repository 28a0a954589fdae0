//! Fail closed: before the command runs, ask the kernel whether the binding holds.
//!
//! An attached program is not proof that the command's sockets are bound, and when the
//! binding does not hold, `ip vrf exec` runs the command in the default VRF without a word.
//! What defeats it in the field:
//! - cgroup v1 `net_cls`/`net_prio` in use: kernels without "bpf, cgroups: Fix cgroup v2
//!   fallback on v1/v2 mixed mode" (5.15, some stable backports) then stop matching sockets to
//!   cgroup v2 (dmesg: "disabling cgroup2 socket matching"), so no cgroup program runs;
//! - a `sock_create` program on an ancestor cgroup that writes the bound device (systemd's
//!   `BindNetworkInterface=`, `BPFProgram=sock_create:...`, another tool): the kernel runs the
//!   child's programs first and the ancestors' last, so the ancestor's write wins;
//! - anything else between the attach and the exec (the process moved to another cgroup).
//!
//! So vrfexec makes one socket of each IP family the kernel has, exactly as the command would,
//! after every privilege change, and reads back the device it is bound to
//! (`SO_BINDTOIFINDEX`, Linux 5.1; `SO_BINDTODEVICE` before). Anything but the binding's
//! ifindex (0 for `default`) refuses the run, with the cause found and what to do.
use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, OwnedFd},
};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};

use crate::{
    bpf, cgroup,
    error::{Error, Result},
    target::Binding,
};

/// The IP families a command's sockets can have; the cgroup program runs for these only.
const FAMILIES: [(AddressFamily, &str); 2] = [
    (AddressFamily::Inet, "IPv4"),
    (AddressFamily::Inet6, "IPv6"),
];

/// Checks that a new socket of every IP family is bound to `binding.ifindex`.
pub fn verify(binding: &Binding) -> Result<()> {
    for (family, label) in FAMILIES {
        let Some(bound) = probe(family).map_err(|e| probe_error(binding, label, e))? else {
            continue;
        };
        if bound != binding.ifindex {
            return Err(Error::NotBound {
                expected: describe_binding(binding),
                found: format!("new {label} sockets are {}", describe_ifindex(bound)),
                cause: explain(&Evidence::collect(None), binding.ifindex, bound),
            });
        }
    }
    Ok(())
}

/// The device a new UDP socket of `family` is bound to; None if the kernel has no such
/// family (IPv6 disabled).
fn probe(family: AddressFamily) -> io::Result<Option<u32>> {
    let sock = match socket::socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None) {
        Ok(sock) => sock,
        Err(nix::errno::Errno::EAFNOSUPPORT) => return Ok(None),
        Err(errno) => return Err(errno.into()),
    };
    bound_ifindex(&sock).map(Some)
}

fn bound_ifindex(sock: &OwnedFd) -> io::Result<u32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, a live c_int, and updates
    // `len`; the fd is a socket we own.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTOIFINDEX,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        return u32::try_from(value).map_err(io::Error::other);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOPROTOOPT) {
        return Err(err);
    }
    // Before Linux 5.1: the device's name, empty when unbound.
    let name = socket::getsockopt(&sock.as_fd(), socket::sockopt::BindToDevice)?;
    if name.is_empty() {
        return Ok(0);
    }
    nix::net::if_::if_nametoindex(name.as_os_str()).map_err(io::Error::from)
}

fn probe_error(binding: &Binding, family: &str, err: io::Error) -> Error {
    Error::NotBound {
        expected: describe_binding(binding),
        found: format!(
            "a new {family} socket could not be made to check it ({})",
            crate::error::os_text(&err)
        ),
        cause: "a cgroup program or security module refuses sockets here; run the command where \
                it may create sockets"
            .into(),
    }
}

fn describe_binding(binding: &Binding) -> String {
    match (&binding.leaf, binding.ifindex) {
        (_, 0) => "the default VRF (unbound sockets)".into(),
        (Some(name), index) if binding.table.is_some() => format!("VRF {name} (ifindex {index})"),
        (Some(name), index) => format!("device {name} (ifindex {index})"),
        (None, index) => format!("ifindex {index}"),
    }
}

fn describe_ifindex(index: u32) -> String {
    if index == 0 {
        return "unbound (default VRF)".into();
    }
    match nix::net::if_::if_indextoname(index) {
        Ok(name) => format!("bound to {} (ifindex {index})", name.to_string_lossy()),
        Err(_) => format!("bound to ifindex {index}"),
    }
}

/// What defeats a binding, as found around this process: read when the probe failed, and by
/// `vrfexec check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// This process's cgroup v2 path.
    pub cgroup: Option<String>,
    /// v1 hierarchies with net_cls or net_prio: (controllers, this process's path in it).
    pub net_v1: Vec<(String, String)>,
    /// Cgroups above the VRF cgroup with sock_create programs of their own, nearest first.
    pub ancestors: Vec<(String, Vec<bpf::AttachedProgram>)>,
    /// Why the ancestors could not be read, if they could not.
    pub query_error: Option<String>,
}

impl Evidence {
    /// Reads the evidence; the ancestors are read from `first` up (default: from the parent
    /// of the VRF cgroup this process is in, or of its `strict` child).
    pub fn collect(first: Option<&str>) -> Self {
        let proc_cgroup = std::fs::read("/proc/self/cgroup").unwrap_or_default();
        let cgroup = cgroup::unified_path(&proc_cgroup).ok().flatten();
        let mut evidence = Evidence {
            net_v1: net_v1_membership(&String::from_utf8_lossy(&proc_cgroup)),
            cgroup: cgroup.clone(),
            ..Default::default()
        };
        let first = match (first, &cgroup) {
            (Some(first), _) => Some(first.to_owned()),
            (None, Some(own)) => Some(vrf_cgroup_parent(own)),
            (None, None) => None,
        };
        if let Some(first) = first {
            match ancestor_programs(&first) {
                Ok(found) => evidence.ancestors = found,
                Err(e) => evidence.query_error = Some(e),
            }
        }
        evidence
    }
}

/// The parent of the VRF cgroup `own` is (`own` itself, or the VRF's for a `strict` child).
fn vrf_cgroup_parent(own: &str) -> String {
    let own = own.trim_end_matches('/');
    match own.strip_suffix(&format!("/{}", cgroup::STRICT_DIR)) {
        Some(vrf) => parent(vrf),
        None => parent(own),
    }
}

/// The v1 hierarchies in `/proc/self/cgroup` that carry net_cls or net_prio.
fn net_v1_membership(proc_cgroup: &str) -> Vec<(String, String)> {
    proc_cgroup
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let net = controllers
                .split(',')
                .any(|c| c == "net_cls" || c == "net_prio");
            net.then(|| (controllers.to_owned(), path.to_owned()))
        })
        .collect()
}

/// `first` and the cgroups above it, with their sock_create programs; only those that have
/// some.
fn ancestor_programs(first: &str) -> Result<Vec<(String, Vec<bpf::AttachedProgram>)>, String> {
    let root = cgroup::CgroupRoot::open().map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    let mut path = first.to_owned();
    loop {
        // A level not made yet, or above the visible part of the tree (a container's cgroup
        // namespace), has nothing to read.
        if let Ok(dir) = root.open_existing(&path) {
            let programs = bpf::sock_create_programs(dir.as_fd()).map_err(|e| {
                format!(
                    "cannot list the programs of cgroup {path}: {}",
                    crate::error::os_text(&e)
                )
            })?;
            if !programs.is_empty() {
                found.push((path.clone(), programs));
            }
        }
        if path == "/" {
            break;
        }
        path = parent(&path);
    }
    Ok(found)
}

fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(at) => path[..at].to_owned(),
    }
}

/// `id 31 "name", id 32` for a refusal or a finding.
pub fn describe_programs(programs: &[bpf::AttachedProgram]) -> String {
    let list: Vec<String> = programs
        .iter()
        .map(|p| match &p.name {
            Some(name) if !name.is_empty() => format!("id {} \"{name}\"", p.id),
            _ => format!("id {}", p.id),
        })
        .collect();
    list.join(", ")
}

/// The cause and what to do, from the evidence; the most specific finding first.
fn explain(evidence: &Evidence, expected: u32, found: u32) -> String {
    if let Some((path, programs)) = evidence.ancestors.first() {
        return format!(
            "cgroup {path} has its own cgroup/sock_create program ({}), which the kernel runs \
             after vrfexec's, so it decides the bound device; remove it (systemd: \
             BindNetworkInterface= or BPFProgram=sock_create on that unit) or run vrfexec \
             outside that cgroup",
            describe_programs(programs)
        );
    }
    if let Some((controllers, path)) = evidence.net_v1.iter().find(|(_, p)| p != "/") {
        return format!(
            "this process is in cgroup v1 {controllers} group {path}, and kernels without \
             the fix (before 5.15) stop running cgroup v2 socket programs once net_cls or \
             net_prio is used (dmesg: \
             \"disabling cgroup2 socket matching\"); stop using net_cls/net_prio (until reboot) \
             or use a kernel with the fix (Linux 5.15)"
        );
    }
    if !evidence.net_v1.is_empty() {
        return "cgroup v1 net_cls/net_prio is mounted, and once any process has used it, \
                kernels without the fix (before 5.15) stop running cgroup v2 socket programs \
                for the whole system (dmesg: \"disabling cgroup2 socket matching\"); stop using \
                net_cls/net_prio (until reboot) or use a kernel with the fix (Linux 5.15)"
            .into();
    }
    let place = evidence
        .cgroup
        .as_deref()
        .map(|c| format!(" (this process is in cgroup {c})"))
        .unwrap_or_default();
    let checked = match &evidence.query_error {
        Some(why) => format!(
            "; the ancestors' programs could not be read ({why}): run `vrfexec check` as root"
        ),
        None => "; no ancestor cgroup has a program and net_cls/net_prio are not in use: check \
                 what else binds sockets here (a security module, a kernel without \
                 CONFIG_CGROUP_BPF)"
            .into(),
    };
    let effect = if expected != 0 && found == 0 {
        "the cgroup's program does not run for new sockets"
    } else {
        "something after vrfexec's program sets another device"
    };
    format!("{effect}{place}{checked}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(id: u32, name: &str) -> bpf::AttachedProgram {
        bpf::AttachedProgram {
            id,
            name: Some(name.into()),
        }
    }

    #[test]
    fn reads_v1_net_membership() {
        let text = "12:net_cls,net_prio:/grp\n5:cpu,cpuacct:/\n0::/user.slice\n";
        assert_eq!(
            net_v1_membership(text),
            [("net_cls,net_prio".to_owned(), "/grp".to_owned())]
        );
        assert!(net_v1_membership("0::/\n").is_empty());
    }

    #[test]
    fn parents_walk_up_to_the_root() {
        assert_eq!(parent("/a/b/vrf/red"), "/a/b/vrf");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
        assert_eq!(vrf_cgroup_parent("/a/vrf/red"), "/a/vrf");
        assert_eq!(vrf_cgroup_parent("/a/vrf/red/strict"), "/a/vrf");
        assert_eq!(vrf_cgroup_parent("/a/vrf"), "/a");
    }

    #[test]
    fn an_ancestor_program_is_named_first() {
        let evidence = Evidence {
            ancestors: vec![("/svc.service".into(), vec![program(31, "bindall")])],
            net_v1: vec![("net_cls".into(), "/x".into())],
            ..Default::default()
        };
        let text = explain(&evidence, 7, 9);
        assert!(
            text.starts_with(
                "cgroup /svc.service has its own cgroup/sock_create program (id 31 \"bindall\")"
            ),
            "{text}"
        );
        assert!(text.contains("BindNetworkInterface="), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn net_cls_membership_is_named() {
        let evidence = Evidence {
            net_v1: vec![("net_cls,net_prio".into(), "/grp".into())],
            ..Default::default()
        };
        let text = explain(&evidence, 7, 0);
        assert!(
            text.contains("cgroup v1 net_cls,net_prio group /grp"),
            "{text}"
        );
        assert!(text.contains("disabling cgroup2 socket matching"), "{text}");
    }

    #[test]
    fn without_evidence_it_says_what_was_ruled_out() {
        let evidence = Evidence {
            cgroup: Some("/vrf/red".into()),
            ..Default::default()
        };
        let text = explain(&evidence, 7, 0);
        assert!(text.starts_with("the cgroup's program does not run for new sockets (this process is in cgroup /vrf/red)"), "{text}");
        let unreadable = Evidence {
            query_error: Some("Operation not permitted".into()),
            ..Default::default()
        };
        assert!(explain(&unreadable, 7, 0).contains("vrfexec check"));
    }

    #[test]
    fn the_refusal_is_one_line_in_the_house_format() {
        let err = Error::NotBound {
            expected: describe_binding(&Binding {
                leaf: Some("red".into()),
                ifindex: 7,
                table: Some(10),
            }),
            found: "new IPv4 sockets are unbound (default VRF)".into(),
            cause: explain(&Evidence::default(), 7, 0),
        };
        let text = err.to_string();
        assert!(text.starts_with("binding to VRF red (ifindex 7) does not hold: new IPv4 sockets are unbound (default VRF): "), "{text}");
        assert!(!text.contains('\n'));
        assert_eq!(err.exit_code(), crate::error::EXIT_FAILURE);
    }

    /// On the host the test process is in no VRF cgroup: its sockets are unbound, so the
    /// default binding holds and any other is refused.
    #[test]
    fn probes_the_real_kernel() {
        let default = Binding {
            leaf: None,
            ifindex: 0,
            table: None,
        };
        let unbound = probe(AddressFamily::Inet).ok().flatten();
        if unbound != Some(0) {
            // The test itself runs bound (inside a VRF): nothing to compare against.
            eprintln!("SKIP probes_the_real_kernel: the test process's sockets are bound");
            return;
        }
        assert!(verify(&default).is_ok());
        let lo = Binding {
            leaf: Some("lo".into()),
            ifindex: 1,
            table: None,
        };
        let refused = verify(&lo).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            refused.starts_with(
                "binding to device lo (ifindex 1) does not hold: new IPv4 sockets are unbound"
            ),
            "{refused}"
        );
    }
}

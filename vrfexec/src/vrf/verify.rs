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

use super::{bpf, cgroup, target::Binding};
use crate::error::{Error, Result};

/// The sockets probed: the IP families and types the cgroup program runs for and a program
/// could tell apart (raw and ICMP sockets need privileges the command may not have).
const PROBES: [(AddressFamily, SockType, &str); 4] = [
    (AddressFamily::Inet, SockType::Datagram, "IPv4 UDP"),
    (AddressFamily::Inet, SockType::Stream, "IPv4 TCP"),
    (AddressFamily::Inet6, SockType::Datagram, "IPv6 UDP"),
    (AddressFamily::Inet6, SockType::Stream, "IPv6 TCP"),
];

/// Checks that a new UDP and TCP socket of every IP family is bound to `binding.ifindex`.
/// `vrf_cgroup` is the cgroup the run was placed in (the VRF's, or the unit's for `attach`):
/// the explanation of a refusal looks at it and everything above it.
pub fn verify(binding: &Binding, vrf_cgroup: &str) -> Result<()> {
    for (family, kind, label) in PROBES {
        let Some(bound) = probe(family, kind).map_err(|e| probe_error(binding, label, e))? else {
            continue;
        };
        if bound != binding.ifindex {
            return Err(Error::NotBound {
                expected: describe_binding(binding),
                found: format!("new {label} sockets are {}", describe_ifindex(bound)),
                cause: explain(&Evidence::collect(vrf_cgroup), binding.ifindex, bound),
            });
        }
    }
    Ok(())
}

/// The device a new socket of `family` and `kind` is bound to; None if the kernel has no
/// such family (IPv6 disabled).
fn probe(family: AddressFamily, kind: SockType) -> io::Result<Option<u32>> {
    let sock = match socket::socket(family, kind, SockFlag::SOCK_CLOEXEC, None) {
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
    let cause = match err.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => {
            "a cgroup program, seccomp filter or security module refuses new sockets here; \
             run the command where it may create sockets"
        }
        Some(libc::EMFILE | libc::ENFILE) => {
            "no file descriptor is left for it; raise the open files limit or close inherited \
             descriptors"
        }
        _ => "vrfexec runs nothing it cannot check; try again, or find why sockets fail here",
    };
    Error::NotBound {
        expected: describe_binding(binding),
        found: format!(
            "a new {family} socket to check it could not be made ({})",
            crate::error::os_text(&err)
        ),
        cause: cause.into(),
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
    /// Reads the evidence; the sock_create programs are read from cgroup `first` up to the
    /// root, leaving out vrfexec's own program on `first` (the one the run attached there).
    pub fn collect(first: &str) -> Self {
        let proc_cgroup = crate::sys::read_proc("/proc/self/cgroup").unwrap_or_default();
        let mut evidence = Evidence {
            net_v1: net_v1_membership(&String::from_utf8_lossy(&proc_cgroup)),
            cgroup: cgroup::unified_path(&proc_cgroup).ok().flatten(),
            ..Default::default()
        };
        match ancestor_programs(first) {
            Ok(found) => evidence.ancestors = found,
            Err(e) => evidence.query_error = Some(e),
        }
        evidence
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
            let foreign: Vec<bpf::AttachedProgram> = programs
                .into_iter()
                .filter(|p| path != first || p.name.as_deref() != Some(bpf::PROGRAM_NAME))
                .collect();
            if !foreign.is_empty() {
                found.push((path.clone(), foreign));
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

/// The cause and what to do, from the evidence; the most specific finding first. An unbound
/// socket with this process in a net_cls/net_prio group is the net_cls trap even when some
/// cgroup above has a program (which may only audit); otherwise such a program is the cause.
fn explain(evidence: &Evidence, expected: u32, found: u32) -> String {
    let in_net_group = evidence.net_v1.iter().find(|(_, p)| p != "/");
    if let (0, Some((controllers, path))) = (found, in_net_group) {
        return net_cls_cause(controllers, path);
    }
    if let Some((path, programs)) = evidence.ancestors.first() {
        return format!(
            "cgroup {path} has its own cgroup/sock_create program ({}), which the kernel runs \
             after vrfexec's, so it decides the bound device; remove it (systemd: \
             BindNetworkInterface= or BPFProgram=sock_create on that unit) or run vrfexec \
             outside that cgroup",
            describe_programs(programs)
        );
    }
    if let Some((controllers, path)) = in_net_group {
        return net_cls_cause(controllers, path);
    }
    if !evidence.net_v1.is_empty() {
        return format!(
            "cgroup v1 net_cls/net_prio is mounted, and once any process has used it, kernels \
             without the fix (before 5.15) stop running cgroup v2 socket programs for the whole \
             system{NET_CLS_TAIL}"
        );
    }
    let place = evidence
        .cgroup
        .as_deref()
        .map(|c| format!(" (this process is in cgroup {c})"))
        .unwrap_or_default();
    let effect = if expected != 0 && found == 0 {
        "the cgroup's program does not run for new sockets"
    } else {
        "a program or setting in this cgroup or above it binds new sockets elsewhere"
    };
    match &evidence.query_error {
        Some(why) => format!(
            "{effect}{place}, and the programs above it could not be read ({why}); run \
             `vrfexec check` as root (without --user) to see them"
        ),
        None => format!(
            "{effect}{place}, with no program above it and net_cls/net_prio not in use; check \
             what else binds sockets here (a security module, a kernel without \
             CONFIG_CGROUP_BPF)"
        ),
    }
}

/// How the kernel reports the net_cls trap, and what to do about it.
const NET_CLS_TAIL: &str = " (dmesg: \"disabling cgroup2 socket matching\"); stop using \
                            net_cls/net_prio (until reboot) or use a kernel with the fix \
                            (Linux 5.15)";

fn net_cls_cause(controllers: &str, path: &str) -> String {
    format!(
        "this process is in cgroup v1 {controllers} group {path}, and kernels without the fix \
         (before 5.15) stop running cgroup v2 socket programs once net_cls or net_prio is \
         used{NET_CLS_TAIL}"
    )
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
    fn an_unbound_socket_in_a_net_cls_group_blames_net_cls_not_an_auditor() {
        let evidence = Evidence {
            ancestors: vec![("/audit".into(), vec![program(5, "audit")])],
            net_v1: vec![("net_cls".into(), "/grp".into())],
            ..Default::default()
        };
        assert!(
            explain(&evidence, 7, 0).starts_with("this process is in cgroup v1 net_cls group /grp")
        );
        // Bound elsewhere: the program above decides.
        assert!(explain(&evidence, 7, 9).starts_with("cgroup /audit has its own"));
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
        assert!(text.starts_with("the cgroup's program does not run for new sockets (this process is in cgroup /vrf/red), with no program above it"), "{text}");
        let unreadable = Evidence {
            query_error: Some("Operation not permitted".into()),
            ..Default::default()
        };
        assert!(explain(&unreadable, 7, 0).contains("`vrfexec check` as root (without --user)"));
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
        let unbound = probe(AddressFamily::Inet, SockType::Datagram)
            .ok()
            .flatten();
        if unbound != Some(0) {
            // The test itself runs bound (inside a VRF): nothing to compare against.
            eprintln!("SKIP probes_the_real_kernel: the test process's sockets are bound");
            return;
        }
        assert!(verify(&default, "/").is_ok());
        let lo = Binding {
            leaf: Some("lo".into()),
            ifindex: 1,
            table: None,
        };
        let refused = verify(&lo, "/")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            refused.starts_with(
                "binding to device lo (ifindex 1) does not hold: new IPv4 UDP sockets are unbound"
            ),
            "{refused}"
        );
    }
}

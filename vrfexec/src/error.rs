//! The one error type of vrfexec and its exit codes.
//!
//! Messages follow `vrfexec: <what failed>: <why>[; <what to do>]` (main adds the prefix).
//! Exit codes follow chroot(1)/env(1) and `ip vrf exec` users' scripts: 125 when vrfexec itself
//! failed (usage errors included), 126 when the command was found but cannot run, 127 when it
//! was not found; anything else is the command's own status, since vrfexec execs it.
use std::{ffi::OsString, io, path::PathBuf};

/// vrfexec itself failed, including bad usage.
pub const EXIT_FAILURE: u8 = 125;
/// The command was found but could not be run.
pub const EXIT_CANNOT_RUN: u8 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: u8 = 127;

/// Every failure vrfexec reports. Each variant renders through [`Parts`]: what failed, why,
/// and optionally what to do, joined as `what: why[; hint]`, so the house format holds for
/// every message by construction (a unit test renders one of each variant).
#[derive(Debug)]
pub enum Error {
    /// Bad command line: what is wrong with it.
    Usage(String),

    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },

    VrfNotFound(String),

    DeviceNotFound(String),

    NotAVrf {
        name: String,
        kind: String,
    },

    Netlink {
        what: &'static str,
        source: io::Error,
    },

    MissingCapability {
        what: &'static str,
        cap: &'static str,
    },

    Cgroup {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
        hint: &'static str,
    },

    Bpf {
        what: &'static str,
        reason: String,
        hint: &'static str,
    },

    /// The fail-closed probe found new sockets not bound as the run asked (`verify`).
    NotBound {
        expected: String,
        found: String,
        cause: String,
    },

    /// A well-formed request that vrfexec will not or cannot carry out (a kernel thread, another
    /// namespace, a policy denial, an unsafe file). Made by [`Error::refused`].
    Refused {
        what: String,
        why: String,
        hint: Option<String>,
    },

    NoSuchProcess(u32),

    CommandNotFound(OsString),

    CannotRun {
        path: PathBuf,
        source: io::Error,
        not_found: bool,
    },

    /// The launcher cannot start the full build it hands over to (`run::launcher`).
    Incomplete {
        path: PathBuf,
        source: io::Error,
    },

    /// An error whose exit status a verb fixes (ping exits 2 on errors, as iputils does).
    WithStatus {
        status: u8,
        inner: Box<Error>,
    },

    Os {
        what: String,
        source: io::Error,
        hint: Option<String>,
    },
}

/// A message's three parts: `what: why[; hint]`.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts {
    /// What failed: "cannot create cgroup /sys/fs/cgroup/vrf/red", "VRF 'red' not found".
    pub what: String,
    /// Why: an OS error as C tools print it, or the reason found.
    pub why: String,
    /// What the user can do about it, if anything useful can be said.
    pub hint: Option<String>,
}

impl Parts {
    fn new(what: impl Into<String>, why: impl Into<String>, hint: Option<&str>) -> Self {
        Parts {
            what: what.into(),
            why: why.into(),
            hint: hint.filter(|h| !h.is_empty()).map(str::to_owned),
        }
    }
}

impl Error {
    /// The message's parts; [`Display`](std::fmt::Display) joins them.
    pub fn parts(&self) -> Parts {
        match self {
            Error::Usage(why) => Parts::new("invalid usage", why, Some("try 'vrfexec --help'")),
            Error::InvalidName { what, name, reason } => {
                Parts::new(format!("invalid {what} name {name:?}"), *reason, None)
            }
            Error::VrfNotFound(name) => Parts::new(
                format!("VRF '{name}' not found"),
                "no such device",
                Some("'ip vrf show' lists the VRFs"),
            ),
            Error::DeviceNotFound(name) => Parts::new(
                format!("device '{name}' not found"),
                "no such device",
                Some("'ip link show' lists the devices"),
            ),
            Error::NotAVrf { name, kind } => Parts::new(
                format!("'{name}' is not a VRF"),
                format!("it is {kind}"),
                Some(&format!("use --dev {name} to bind to it anyway")),
            ),
            Error::Netlink { what, source } => Parts::new(*what, os_text(source), None),
            Error::MissingCapability { what, cap } => Parts::new(
                *what,
                format!("missing capability {cap}"),
                Some(&format!("run as root or grant {cap}")),
            ),
            Error::Cgroup {
                what,
                path,
                source,
                hint,
            } => Parts::new(
                format!("{what} {}", path.display()),
                os_text(source),
                Some(hint),
            ),
            Error::Bpf { what, reason, hint } => Parts::new(*what, reason, Some(hint)),
            Error::NotBound {
                expected,
                found,
                cause,
            } => {
                // The cause may end in advice: that is the hint.
                let (cause, advice) = match cause.split_once("; ") {
                    Some((cause, advice)) => (cause, Some(advice)),
                    None => (cause.as_str(), None),
                };
                Parts::new(
                    format!("binding to {expected} does not hold"),
                    format!("{found}: {cause}"),
                    advice,
                )
            }
            Error::Refused { what, why, hint } => Parts::new(what, why, hint.as_deref()),
            Error::NoSuchProcess(pid) => {
                Parts::new(format!("cannot find PID {pid}"), "no such process", None)
            }
            Error::CommandNotFound(command) => {
                Parts::new(command.to_string_lossy(), "command not found", None)
            }
            Error::CannotRun { path, source, .. } => Parts::new(
                format!("cannot run {}", path.display()),
                os_text(source),
                None,
            ),
            Error::Incomplete { path, source } => Parts::new(
                format!("cannot run {}", path.display()),
                os_text(source),
                Some("vrfexec is installed incompletely, reinstall it"),
            ),
            Error::WithStatus { inner, .. } => inner.parts(),
            Error::Os { what, source, hint } => Parts::new(what, os_text(source), hint.as_deref()),
        }
    }

    /// The process exit status this error maps to.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::CommandNotFound(_) => EXIT_NOT_FOUND,
            Error::CannotRun {
                not_found: true, ..
            } => EXIT_NOT_FOUND,
            Error::CannotRun { .. } => EXIT_CANNOT_RUN,
            Error::WithStatus { status, .. } => *status,
            _ => EXIT_FAILURE,
        }
    }

    /// A failed system call or file operation: what failed, and the OS error.
    pub(crate) fn os(what: impl Into<String>, source: io::Error) -> Self {
        Error::Os {
            what: what.into(),
            source,
            hint: None,
        }
    }

    /// A request vrfexec will not or cannot carry out: what was refused, and why.
    pub fn refused(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Refused {
            what: what.into(),
            why: why.into(),
            hint: None,
        }
    }

    /// Adds (or replaces) what the user can do about a refusal or a failed operation; other
    /// errors carry their own advice and are unchanged.
    #[must_use]
    pub fn hint(self, text: impl Into<String>) -> Self {
        match self {
            Error::Refused { what, why, .. } => Error::Refused {
                what,
                why,
                hint: Some(text.into()),
            },
            Error::Os { what, source, .. } => Error::Os {
                what,
                source,
                hint: Some(text.into()),
            },
            other => other,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Parts { what, why, hint } = self.parts();
        write!(f, "{what}: {why}")?;
        match hint {
            Some(hint) => write!(f, "; {hint}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Netlink { source, .. }
            | Error::Cgroup { source, .. }
            | Error::CannotRun { source, .. }
            | Error::Incomplete { source, .. }
            | Error::Os { source, .. } => Some(source),
            Error::WithStatus { inner, .. } => Some(inner.as_ref()),
            _ => None,
        }
    }
}

/// An OS error as C tools print it ("Permission denied"), without Rust's " (os error 13)".
pub fn os_text(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map(str::to_owned)
            .unwrap_or(text),
        None => text,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_chroot_and_env() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 125);
        assert_eq!(Error::VrfNotFound("red".into()).exit_code(), 125);
        assert_eq!(Error::CommandNotFound("nope".into()).exit_code(), 127);
        let denied = Error::CannotRun {
            path: "/etc/passwd".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
            not_found: false,
        };
        assert_eq!(denied.exit_code(), 126);
        let bad_interpreter = Error::CannotRun {
            path: "/tmp/script".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
            not_found: true,
        };
        assert_eq!(bad_interpreter.exit_code(), 127);
    }

    /// One of each variant, with the values real call sites give them.
    fn one_of_each() -> Vec<Error> {
        let enoent = || io::Error::from_raw_os_error(libc::ENOENT);
        vec![
            Error::Usage("no VRF and command given".into()),
            Error::InvalidName {
                what: "VRF",
                name: "a/b".into(),
                reason: "contains '/'",
            },
            Error::VrfNotFound("red".into()),
            Error::DeviceNotFound("eth9".into()),
            Error::NotAVrf {
                name: "eth0".into(),
                kind: "a veth device".into(),
            },
            Error::Netlink {
                what: "cannot open a netlink socket",
                source: io::Error::from_raw_os_error(libc::EPROTONOSUPPORT),
            },
            Error::MissingCapability {
                what: "cannot load the BPF program",
                cap: "CAP_BPF",
            },
            Error::Cgroup {
                what: "cannot create cgroup",
                path: "/sys/fs/cgroup/vrf/red".into(),
                source: io::Error::from_raw_os_error(libc::EROFS),
                hint: "cgroupfs is read-only",
            },
            Error::Cgroup {
                what: "cannot join cgroup",
                path: "/sys/fs/cgroup/vrf/red".into(),
                source: enoent(),
                hint: "",
            },
            Error::Bpf {
                what: "cannot load the BPF program",
                reason: "Operation not permitted".into(),
                hint: "the kernel needs CONFIG_CGROUP_BPF",
            },
            Error::NotBound {
                expected: "VRF red (ifindex 7)".into(),
                found: "new IPv4 UDP sockets are bound to ifindex 9".into(),
                cause: "cgroup /a has its own program; remove it".into(),
            },
            Error::refused("user bob may not use VRF red", "no rule allows it")
                .hint("ask root for an `allow` line"),
            Error::refused("--user needs root", "non-root callers run as themselves"),
            Error::NoSuchProcess(4242),
            Error::CommandNotFound("nope".into()),
            Error::CannotRun {
                path: "/etc/passwd".into(),
                source: io::Error::from_raw_os_error(libc::EACCES),
                not_found: false,
            },
            Error::Incomplete {
                path: "/usr/lib/vrfexec/vrfexec-full".into(),
                source: enoent(),
            },
            Error::WithStatus {
                status: 2,
                inner: Box::new(Error::Usage("invalid count '0'".into())),
            },
            Error::os(
                "cannot write to stdout",
                io::Error::from_raw_os_error(libc::EIO),
            ),
        ]
    }

    /// The variant's name; exhaustive, so a new variant does not compile until it is here
    /// (and then in [`one_of_each`], or the count below fails).
    fn variant(err: &Error) -> &'static str {
        match err {
            Error::Usage(_) => "Usage",
            Error::InvalidName { .. } => "InvalidName",
            Error::VrfNotFound(_) => "VrfNotFound",
            Error::DeviceNotFound(_) => "DeviceNotFound",
            Error::NotAVrf { .. } => "NotAVrf",
            Error::Netlink { .. } => "Netlink",
            Error::MissingCapability { .. } => "MissingCapability",
            Error::Cgroup { .. } => "Cgroup",
            Error::Bpf { .. } => "Bpf",
            Error::NotBound { .. } => "NotBound",
            Error::Refused { .. } => "Refused",
            Error::NoSuchProcess(_) => "NoSuchProcess",
            Error::CommandNotFound(_) => "CommandNotFound",
            Error::CannotRun { .. } => "CannotRun",
            Error::Incomplete { .. } => "Incomplete",
            Error::WithStatus { .. } => "WithStatus",
            Error::Os { .. } => "Os",
        }
    }

    #[test]
    fn every_variant_renders_in_the_house_format() {
        let all = one_of_each();
        let kinds: std::collections::BTreeSet<_> = all.iter().map(variant).collect();
        assert_eq!(kinds.len(), 17, "one_of_each misses a variant: {kinds:?}");
        for err in &all {
            let Parts { what, why, hint } = err.parts();
            let msg = err.to_string();
            let expected = match &hint {
                Some(hint) => format!("{what}: {why}; {hint}"),
                None => format!("{what}: {why}"),
            };
            assert_eq!(msg, expected);
            assert!(!msg.contains('\n') && !msg.contains("os error"), "{msg}");
            for (part, text) in [("what", &what), ("why", &why)] {
                assert!(!text.trim().is_empty(), "empty {part}: {msg}");
                assert!(!text.contains("; "), "a hint inside {part}: {msg}");
                assert!(
                    !text.ends_with([':', ';', '.', ' ']),
                    "{part} ends badly: {msg}"
                );
            }
            assert!(!what.contains(": "), "a why inside what: {msg}");
            if let Some(hint) = &hint {
                assert!(!hint.trim().is_empty(), "{msg}");
                assert!(!hint.ends_with(['.', ';', ' ']), "{msg}");
            }
        }
    }

    #[test]
    fn messages_are_one_line_with_a_hint() {
        let err = Error::Cgroup {
            what: "cannot create cgroup",
            path: "/sys/fs/cgroup/vrf/red".into(),
            source: io::Error::from_raw_os_error(libc::EROFS),
            hint: "cgroupfs is read-only",
        };
        let msg = err.to_string();
        assert!(!msg.contains('\n'));
        assert!(
            msg.starts_with("cannot create cgroup /sys/fs/cgroup/vrf/red: Read-only file system")
        );
        assert!(msg.ends_with("; cgroupfs is read-only"));
        assert!(!msg.contains("os error"), "{msg}");
        let not_vrf = Error::NotAVrf {
            name: "eth0".into(),
            kind: "a veth device".into(),
        };
        assert_eq!(
            not_vrf.to_string(),
            "'eth0' is not a VRF: it is a veth device; use --dev eth0 to bind to it anyway"
        );
    }
}

//! The one error type of vrfexec and its exit codes.
//!
//! Messages follow `vrfexec: <what failed>: <why>[; <what to do>]` (main adds the prefix).
//! Exit codes follow chroot(1)/env(1) and `ip vrf exec` users' scripts: 125 when vrfexec itself
//! failed (usage errors included), 126 when the command was found but cannot run, 127 when it
//! was not found; anything else is the command's own status, since vrfexec execs it.
use std::{ffi::OsString, io, path::PathBuf};

use thiserror::Error;

/// vrfexec itself failed, including bad usage.
pub const EXIT_FAILURE: u8 = 125;
/// The command was found but could not be run.
pub const EXIT_CANNOT_RUN: u8 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: u8 = 127;

#[derive(Debug, Error)]
pub enum Error {
    #[error("invalid usage: {0}; try 'vrfexec --help'")]
    Usage(String),

    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },

    #[error("VRF '{0}' not found: no such device; 'ip vrf show' lists the VRFs")]
    VrfNotFound(String),

    #[error("device '{0}' not found: no such device; 'ip link show' lists the devices")]
    DeviceNotFound(String),

    #[error("'{name}' is not a VRF: it is {kind}; use --dev {name} to bind to it anyway")]
    NotAVrf { name: String, kind: String },

    #[error("{what}: {}", os_text(source))]
    Netlink {
        what: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("{what}: missing capability {cap}; run as root or grant {cap}")]
    MissingCapability {
        what: &'static str,
        cap: &'static str,
    },

    #[error("{what} {}: {}{}", path.display(), os_text(source), hint_suffix(hint))]
    Cgroup {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        hint: &'static str,
    },

    #[error("{what}: {reason}{}", hint_suffix(hint))]
    Bpf {
        what: &'static str,
        reason: String,
        hint: &'static str,
    },

    /// The fail-closed probe found new sockets not bound as the run asked (`verify`).
    #[error("binding to {expected} does not hold: {found}: {cause}")]
    NotBound {
        expected: String,
        found: String,
        cause: String,
    },

    /// A well-formed request that cannot be done (a kernel thread, another namespace).
    #[error("{0}")]
    Refused(String),

    #[error("no process with PID {0}")]
    NoSuchProcess(u32),

    #[error("{}: command not found", .0.to_string_lossy())]
    CommandNotFound(OsString),

    #[error("cannot run {}: {}", path.display(), os_text(source))]
    CannotRun {
        path: PathBuf,
        #[source]
        source: io::Error,
        not_found: bool,
    },

    /// The static build cannot start the full build it hands over to (`fast`).
    #[error("cannot run {}: {}; vrfexec is installed incompletely, reinstall it", path.display(), os_text(source))]
    Incomplete {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// An error whose exit status a verb fixes (ping exits 2 on errors, as iputils does).
    #[error("{inner}")]
    WithStatus { status: u8, inner: Box<Error> },

    #[error("{what}: {}", os_text(source))]
    Os {
        what: String,
        #[source]
        source: io::Error,
    },
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

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    }
}

impl Error {
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

    pub(crate) fn os(what: impl Into<String>, source: io::Error) -> Self {
        Error::Os {
            what: what.into(),
            source,
        }
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

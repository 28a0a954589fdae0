//! Non-root use: which users and groups may run commands in which VRFs.
//!
//! vrfexec's full build may be given file capabilities (README: the setcap line) so that users can
//! run it. Then /etc/vrfexec.conf decides, and everything it does not allow is denied. The path
//! is fixed: no environment variable or option chooses another file. The file must be a
//! regular file owned by root and writable by no one else, or it is refused as a whole, as is a
//! file with any line that does not parse: fail closed. The command then runs as the caller
//! with no capabilities (identity.rs).
//!
//! Format, one rule per line, `#` starts a comment:
//!
//! ```text
//! allow user alice vrf mgmt
//! allow group netops vrf mgmt,oobm
//! allow group admins vrf *
//! ```
use std::{
    ffi::OsStr,
    fs,
    io::Read as _,
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    path::Path,
};

use super::identity;
use crate::{
    error::{Error, Result},
    sys::names,
    vrf::{cgroup, place, target::Target},
};

/// The policy file. Fixed on purpose.
pub const POLICY_PATH: &str = "/etc/vrfexec.conf";
/// A policy larger than this is not a policy.
const MAX_POLICY_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    User(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vrfs {
    Any,
    These(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub who: Who,
    pub vrfs: Vrfs,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Parses policy text; any bad line refuses the whole policy (with its line number).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut rules = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", number + 1);
            let words: Vec<&str> = line.split_whitespace().collect();
            let [allow, kind, name, vrf_kw, list] = words.as_slice() else {
                return Err(bad("expected `allow user|group NAME vrf VRF[,VRF...]|*`"));
            };
            if *allow != "allow" || *vrf_kw != "vrf" {
                return Err(bad("expected `allow user|group NAME vrf VRF[,VRF...]|*`"));
            }
            let name = identity::validate_account_name("user or group", OsStr::new(name))
                .map_err(|e| bad(&e.to_string()))?;
            let who = match *kind {
                "user" => Who::User(name),
                "group" => Who::Group(name),
                _ => return Err(bad("expected `user` or `group`")),
            };
            let vrfs = if *list == "*" {
                Vrfs::Any
            } else {
                let vrfs = list
                    .split(',')
                    .map(|v| names::validate("VRF", OsStr::new(v)).map_err(|e| bad(&e.to_string())))
                    .collect::<Result<Vec<_>, _>>()?;
                Vrfs::These(vrfs)
            };
            rules.push(Rule { who, vrfs });
        }
        Ok(Policy { rules })
    }

    /// Reads and checks the policy file: a regular file (no symlink), owned by root, not
    /// writable by group or others, at most 1 MiB, and well-formed.
    pub fn load(path: &Path) -> Result<Policy> {
        let refuse =
            |why: String| Error::refused(format!("policy {} refused", path.display()), why);
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::refused(
                    format!("no policy file {}", path.display()),
                    "vrfexec is not open to non-root users here",
                )
                .hint("root grants VRFs to users and groups there (man vrfexec, POLICY)"),
                _ => refuse(crate::error::os_text(&e)),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| refuse(crate::error::os_text(&e)))?;
        if let Some(why) = unsafe_file(meta.is_file(), meta.uid(), meta.mode(), meta.len()) {
            return Err(refuse(why));
        }
        let mut text = String::new();
        file.take(MAX_POLICY_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| refuse(crate::error::os_text(&e)))?;
        Policy::parse(&text).map_err(refuse)
    }

    /// Whether `user` (member of `groups`) may use `vrf`.
    pub fn allows(&self, user: &str, groups: &[String], vrf: &str) -> bool {
        self.rules.iter().any(|rule| {
            let who = match &rule.who {
                Who::User(u) => u == user,
                Who::Group(g) => groups.iter().any(|mine| mine == g),
            };
            who && match &rule.vrfs {
                Vrfs::Any => true,
                Vrfs::These(list) => list.iter().any(|v| v == vrf),
            }
        })
    }
}

/// Logs a denial to syslog (the journal picks it up), as sudo does, under LOG_AUTHPRIV.
pub fn log_denial(message: &str) {
    let Ok(text) = std::ffi::CString::new(message.replace('\0', "")) else {
        return;
    };
    // SAFETY: openlog keeps the static ident pointer; syslog gets a constant format string
    // and our NUL-terminated text as its only argument.
    unsafe {
        libc::openlog(c"vrfexec".as_ptr(), libc::LOG_PID, libc::LOG_AUTHPRIV);
        libc::syslog(
            libc::LOG_WARNING | libc::LOG_AUTHPRIV,
            c"%s".as_ptr(),
            text.as_ptr(),
        );
        libc::closelog();
    }
}

/// Why a policy file with this metadata is refused, if it is.
fn unsafe_file(is_file: bool, uid: u32, mode: u32, len: u64) -> Option<String> {
    if !is_file {
        return Some("not a regular file".into());
    }
    if uid != 0 {
        return Some(format!("owned by uid {uid}, not root"));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "mode {:o} lets group or others write it",
            mode & 0o7777
        ));
    }
    if len > MAX_POLICY_BYTES {
        return Some("larger than 1 MiB".into());
    }
    None
}

/// Policy mode: may `caller` use `target`? Denials are logged and explained.
///
/// `default` is a VRF like any other here (`allow ... vrf default`, or `*`): leaving a VRF is
/// what a command that root put in one must not do by itself. A caller under `--strict` is
/// refused whatever the target: moving it is exactly what --strict forbids.
pub fn authorize(target: &Target, caller: &identity::Identity) -> Result<()> {
    let deny = |err: Error| {
        log_denial(&format!(
            "denied uid {} ({}): {err}",
            caller.uid, caller.name
        ));
        err
    };
    let own = place::Subject::current()?.cgroup;
    if own.rsplit('/').next() == Some(cgroup::STRICT_DIR) && cgroup::vrf_of_path(&own).is_some() {
        return Err(deny(Error::refused(
            format!("user {} may not leave its VRF", caller.name),
            format!("it runs under --strict (cgroup {own}), which vrfexec will not move"),
        )));
    }
    let vrf = match target {
        Target::Device(dev) => {
            return Err(deny(Error::refused(
                format!("--dev {dev} needs root"),
                "the policy grants VRFs only",
            )))
        }
        Target::Default => names::DEFAULT_VRF,
        Target::Vrf(vrf) => vrf.as_str(),
    };
    let policy = Policy::load(Path::new(POLICY_PATH)).map_err(deny)?;
    let groups = identity::group_names(caller.gid, &caller.groups);
    if policy.allows(&caller.name, &groups, vrf) {
        Ok(())
    } else {
        Err(deny(
            Error::refused(
                format!("user {} may not use VRF {vrf}", caller.name),
                format!("no rule in {POLICY_PATH} allows it"),
            )
            .hint("ask root for an `allow` line there"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_decide() {
        let policy = Policy::parse(
            "# who may use what\n\nallow user alice vrf mgmt\nallow group netops vrf mgmt,oobm  # ops\nallow group admins vrf *\n",
        )
        .expect("parse");
        assert_eq!(policy.rules.len(), 3);
        assert!(policy.allows("alice", &[], "mgmt"));
        assert!(!policy.allows("alice", &[], "oobm"));
        assert!(policy.allows("bob", &["netops".into()], "oobm"));
        assert!(!policy.allows("bob", &["netops".into()], "red"));
        assert!(policy.allows("carol", &["users".into(), "admins".into()], "anything"));
        assert!(!policy.allows("mallory", &["users".into()], "mgmt"));
        assert!(
            !Policy::default().allows("root", &[], "mgmt"),
            "no rules allow nothing"
        );
    }

    #[test]
    fn any_bad_line_refuses_the_whole_policy() {
        for (text, needle) in [
            ("allow user alice vrf", "line 1"),
            ("allow user alice vrf mgmt extra", "line 1"),
            ("deny user alice vrf mgmt", "line 1"),
            ("allow users alice vrf mgmt", "user` or `group"),
            ("allow user alice vrf ../etc", "invalid VRF name"),
            ("allow user alice vrf mgmt,,oobm", "invalid VRF name"),
            ("allow user a/b vrf mgmt", "invalid user or group name"),
            ("allow user -x vrf mgmt", "starts with '-'"),
            ("allow user alice vrf mgmt\nallow group x vrf a b", "line 2"),
        ] {
            let err = Policy::parse(text).expect_err(text);
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn only_a_small_regular_file_of_roots_closed_to_writers_passes() {
        const FILE: u32 = 0o100_000;
        assert_eq!(unsafe_file(true, 0, FILE | 0o644, 100), None);
        assert_eq!(unsafe_file(true, 0, FILE | 0o600, MAX_POLICY_BYTES), None);
        assert_eq!(
            unsafe_file(true, 1, FILE | 0o644, 100).as_deref(),
            Some("owned by uid 1, not root")
        );
        assert_eq!(
            unsafe_file(true, 0, FILE | 0o664, 100).as_deref(),
            Some("mode 664 lets group or others write it")
        );
        assert!(unsafe_file(true, 0, FILE | 0o646, 100).is_some());
        assert!(unsafe_file(true, 0, FILE | 0o644, MAX_POLICY_BYTES + 1).is_some());
        assert!(unsafe_file(false, 0, 0o040_755, 100).is_some());
    }

    #[test]
    fn the_file_must_be_roots_and_not_writable_by_others() {
        let dir = std::env::temp_dir().join(format!("vrfexec-policy-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("vrfexec.conf");
        fs::write(&path, "allow user alice vrf mgmt\n").expect("write");
        let set_mode = |mode| {
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .expect("chmod")
        };
        set_mode(0o644);
        // The same checks on a real file, where this test can make one root's (its logic is
        // tested without root above).
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert!(Policy::load(&path)
                .expect("ok")
                .allows("alice", &[], "mgmt"));
            set_mode(0o664);
            assert!(Policy::load(&path)
                .expect_err("group-writable")
                .to_string()
                .contains("mode 664"));
            set_mode(0o646);
            assert!(Policy::load(&path).is_err());
            set_mode(0o644);
            std::os::unix::fs::chown(&path, Some(1), None).expect("chown");
            assert!(Policy::load(&path)
                .expect_err("not root's")
                .to_string()
                .contains("owned by uid 1"));
        }
        let link = dir.join("link.conf");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(Policy::load(&link).is_err(), "symlinks are refused");
        assert!(Policy::load(&dir.join("missing.conf"))
            .expect_err("missing")
            .to_string()
            .contains("not open to non-root users"));
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}

//! Running the command as a user: `--user USER [--group GROUP]`, and the unprivileged caller's
//! own identity in policy mode (policy.rs).
//!
//! After the VRF setup and before exec, vrfexec sets the supplementary groups, then the gid,
//! clears the capability bounding, ambient and inheritable sets, sets the uid (which empties
//! the permitted and effective sets), clears those explicitly too, and then *checks* the result
//! (uids, gids, groups, all five capability sets, and that setuid(0) now fails) and refuses to
//! exec if anything is off: fail closed, as sudo-rs does. The environment gets systemd's User=
//! variables (USER, LOGNAME, HOME, SHELL) for the target user; nothing else changes.
use std::{
    collections::BTreeSet,
    ffi::{CString, OsStr},
    os::unix::ffi::OsStrExt as _,
};

use caps::CapSet;
use nix::unistd::{Gid, Group, Uid, User};

use crate::error::{Error, Result};

/// Who the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    /// Supplementary groups (the primary gid included, as initgroups does).
    pub groups: Vec<Gid>,
    pub home: std::path::PathBuf,
    pub shell: std::path::PathBuf,
}

/// Checks a user or group name from the command line before it reaches NSS: 1 to 256 bytes,
/// no NUL, '/', ':' or whitespace, not starting with '-'. (Debian allows more than POSIX's
/// portable set, so nothing stricter.)
pub fn validate_account_name(what: &'static str, name: &OsStr) -> Result<String> {
    let bytes = name.as_bytes();
    let invalid = |reason| Error::InvalidName {
        what,
        name: name.to_string_lossy().into_owned(),
        reason,
    };
    if bytes.is_empty() {
        return Err(invalid("it is empty"));
    }
    if bytes.len() > 256 {
        return Err(invalid("longer than 256 bytes"));
    }
    if bytes[0] == b'-' {
        return Err(invalid("it starts with '-'"));
    }
    if bytes.iter().any(|b| {
        *b == 0 || *b == b'/' || *b == b':' || b.is_ascii_whitespace() || b.is_ascii_control()
    }) {
        return Err(invalid(
            "contains NUL, '/', ':', whitespace or a control character",
        ));
    }
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| invalid("not valid UTF-8"))
}

fn nss_error(what: &str, e: nix::Error) -> Error {
    Error::os(format!("cannot look up {what}"), e.into())
}

/// No account by that name or number.
fn no_such(what: &str, name: &str) -> Error {
    Error::refused(
        format!("cannot run as {what} '{name}'"),
        format!("no such {what}"),
    )
    .hint(format!(
        "check the name with `getent {what}` or give a number"
    ))
}

/// The user (by name, or by number if no such name) and group (default: the user's primary
/// group) to run as.
pub fn lookup(user: &OsStr, group: Option<&OsStr>) -> Result<Identity> {
    let user_name = validate_account_name("user", user)?;
    let account = match User::from_name(&user_name).map_err(|e| nss_error("the user", e))? {
        Some(account) => account,
        None => match user_name.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid))
                .map_err(|e| nss_error("the user", e))?
                .ok_or_else(|| no_such("user", &user_name))?,
            Err(_) => return Err(no_such("user", &user_name)),
        },
    };
    let gid = match group {
        None => account.gid,
        Some(group) => {
            let group_name = validate_account_name("group", group)?;
            match Group::from_name(&group_name).map_err(|e| nss_error("the group", e))? {
                Some(g) => g.gid,
                None => match group_name.parse::<u32>() {
                    Ok(gid) => Group::from_gid(Gid::from_raw(gid))
                        .map_err(|e| nss_error("the group", e))?
                        .map(|g| g.gid)
                        .ok_or_else(|| no_such("group", &group_name))?,
                    Err(_) => return Err(no_such("group", &group_name)),
                },
            }
        }
    };
    let c_name = CString::new(account.name.clone()).map_err(|_| {
        Error::refused(
            format!("cannot use user {:?}", account.name),
            "the user database gave a name with a NUL byte",
        )
    })?;
    let mut groups =
        nix::unistd::getgrouplist(&c_name, gid).map_err(|e| nss_error("the user's groups", e))?;
    groups.sort_by_key(|g| g.as_raw());
    groups.dedup();
    Ok(Identity {
        name: account.name,
        uid: account.uid,
        gid,
        groups,
        home: account.dir,
        shell: account.shell,
    })
}

/// How the command's identity is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropMode {
    /// Root switching to `--user`: uids, gids, groups, and every capability set, bounding too.
    SwitchUser,
    /// A non-root caller of a capable vrfexec: same uid and groups, no capabilities left in
    /// the effective, permitted, inheritable and ambient sets (the bounding set stays, as for
    /// any login: clearing it would need CAP_SETPCAP).
    KeepCaller,
}

/// The calling user (real uid and gid, current supplementary groups).
pub fn caller() -> Result<Identity> {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let mut groups = nix::unistd::getgroups()
        .map_err(|e| Error::os("cannot read the caller's supplementary groups", e.into()))?;
    groups.sort_by_key(|g| g.as_raw());
    groups.dedup();
    let account = User::from_uid(uid).ok().flatten();
    Ok(Identity {
        name: account
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_else(|| uid.to_string()),
        uid,
        gid,
        groups,
        home: account.as_ref().map(|a| a.dir.clone()).unwrap_or_default(),
        shell: account.map(|a| a.shell).unwrap_or_default(),
    })
}

/// The names of `gids` (and of `primary`), for policy rules.
pub fn group_names(primary: Gid, gids: &[Gid]) -> Vec<String> {
    std::iter::once(primary)
        .chain(gids.iter().copied())
        .filter_map(|g| Group::from_gid(g).ok().flatten().map(|g| g.name))
        .collect()
}

/// Switches this process to `identity` with no capabilities left, and proves it.
pub fn drop_to(identity: &Identity, mode: DropMode) -> Result<()> {
    let step = |what: &'static str, r: std::result::Result<(), String>| {
        r.map_err(|why| {
            Error::refused(format!("cannot drop privileges ({what})"), why)
                .hint("the command was not run")
        })
    };
    if mode == DropMode::KeepCaller {
        for (what, set) in [
            ("ambient set", CapSet::Ambient),
            ("inheritable set", CapSet::Inheritable),
            ("effective set", CapSet::Effective),
            ("permitted set", CapSet::Permitted),
        ] {
            step(what, caps::clear(None, set).map_err(|e| e.to_string()))?;
        }
        return verify(identity, mode);
    }
    step(
        "setgroups",
        nix::unistd::setgroups(&identity.groups).map_err(|e| e.desc().to_owned()),
    )?;
    step(
        "setresgid",
        nix::unistd::setresgid(identity.gid, identity.gid, identity.gid)
            .map_err(|e| e.desc().to_owned()),
    )?;
    step(
        "bounding set",
        caps::clear(None, CapSet::Bounding).map_err(|e| e.to_string()),
    )?;
    step(
        "ambient set",
        caps::clear(None, CapSet::Ambient).map_err(|e| e.to_string()),
    )?;
    step(
        "inheritable set",
        caps::clear(None, CapSet::Inheritable).map_err(|e| e.to_string()),
    )?;
    step(
        "setresuid",
        nix::unistd::setresuid(identity.uid, identity.uid, identity.uid)
            .map_err(|e| e.desc().to_owned()),
    )?;
    // no_new_privs: setuid/setgid programs and file capabilities the command runs grant
    // nothing, so the user cannot become anyone else from inside (sudo, su and a capable
    // vrfexec fail). Irrevocable, and inherited by every child.
    step(
        "no_new_privs",
        nix::sys::prctl::set_no_new_privs().map_err(|e| e.desc().to_owned()),
    )?;
    // A switch to uid 0 keeps root's capabilities, and a non-root switch already emptied
    // them: clear both explicitly either way.
    step(
        "effective set",
        caps::clear(None, CapSet::Effective).map_err(|e| e.to_string()),
    )?;
    step(
        "permitted set",
        caps::clear(None, CapSet::Permitted).map_err(|e| e.to_string()),
    )?;
    verify(identity, mode)
}

/// The after-the-fact check: anything but exactly the requested identity with no
/// capabilities is an error.
pub fn verify(identity: &Identity, mode: DropMode) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::refused("privilege drop not complete", why).hint("the command was not run"))
    };
    let uids = nix::unistd::getresuid()
        .map_err(|e| Error::os("cannot read this process's user IDs", e.into()))?;
    if [uids.real, uids.effective, uids.saved] != [identity.uid; 3] {
        return refuse(format!(
            "uids are {}/{}/{}",
            uids.real, uids.effective, uids.saved
        ));
    }
    let gids = nix::unistd::getresgid()
        .map_err(|e| Error::os("cannot read this process's group IDs", e.into()))?;
    if [gids.real, gids.effective, gids.saved] != [identity.gid; 3] {
        return refuse(format!(
            "gids are {}/{}/{}",
            gids.real, gids.effective, gids.saved
        ));
    }
    let groups: BTreeSet<u32> = nix::unistd::getgroups()
        .map_err(|e| Error::os("cannot read this process's supplementary groups", e.into()))?
        .iter()
        .map(|g| g.as_raw())
        .collect();
    let wanted: BTreeSet<u32> = identity.groups.iter().map(|g| g.as_raw()).collect();
    if groups != wanted {
        return refuse(format!("supplementary groups are {groups:?}"));
    }
    let mut sets = vec![
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
        CapSet::Ambient,
    ];
    if mode == DropMode::SwitchUser {
        sets.push(CapSet::Bounding);
    }
    for set in sets {
        let held = caps::read(None, set).map_err(|e| {
            Error::refused("cannot read this process's capabilities", e.to_string())
        })?;
        if !held.is_empty() {
            return refuse(format!("{set:?} capabilities left: {held:?}"));
        }
    }
    if mode == DropMode::SwitchUser && !nix::sys::prctl::get_no_new_privs().unwrap_or(false) {
        return refuse("no_new_privs is not set".into());
    }
    if !identity.uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return refuse("setuid(0) still works".into());
    }
    Ok(())
}

/// systemd's User= environment for the target user.
pub fn user_environment(identity: &Identity) -> [(&'static str, std::ffi::OsString); 4] {
    [
        ("USER", identity.name.clone().into()),
        ("LOGNAME", identity.name.clone().into()),
        ("HOME", identity.home.clone().into_os_string()),
        ("SHELL", identity.shell.clone().into_os_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_are_checked() {
        for ok in [
            "alice",
            "svc-backup",
            "user.name",
            "Ünïcode",
            "1000",
            "a_b$",
        ] {
            assert!(
                validate_account_name("user", OsStr::new(ok)).is_ok(),
                "{ok}"
            );
        }
        let long = "x".repeat(4096);
        for bad in [
            "",
            "-x",
            "a/b",
            "../etc",
            "a:b",
            "a b",
            "a\0b",
            long.as_str(),
        ] {
            let err = validate_account_name("user", OsStr::new(bad)).expect_err(bad);
            assert_eq!(err.exit_code(), 125);
        }
    }

    #[test]
    fn root_and_missing_users_resolve_as_expected() {
        let root = lookup(OsStr::new("root"), None).expect("root");
        assert!(root.uid.is_root());
        assert!(root.groups.contains(&Gid::from_raw(0)));
        assert_eq!(lookup(OsStr::new("0"), None).expect("uid 0").name, "root");
        assert!(lookup(OsStr::new("vrfexec-no-such-user"), None).is_err());
        assert!(lookup(
            OsStr::new("root"),
            Some(OsStr::new("vrfexec-no-such-group"))
        )
        .is_err());
    }
}

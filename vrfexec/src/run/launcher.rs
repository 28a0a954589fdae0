//! The launcher's run, and how it hands over to the full build.
//!
//! A dynamically linked program spends much of a short run in the dynamic loader before `main`
//! (under emulation about as long as all of vrfexec's own work on the warm path); `ip vrf exec`
//! pays it too. So vrfexec is two binaries of this one library:
//!
//! - `PREFIX/bin/vrfexec` (`src/bin/vrfexec.rs`), the launcher, installed statically linked at
//!   a fixed address (xtask's `LAUNCHER_RUSTFLAGS`): no loader, no self-relocation, no clap.
//!   It serves the common case itself: a root caller running the short form or the `exec`
//!   verb (`vrfexec [exec] VRF COMMAND...`, `--dev`, `-v`, `--strict`) without
//!   `--user`/`--group`, parsed by [`crate::cli::short`] and run by [`crate::run::run`].
//! - `PREFIX/lib/vrfexec/vrfexec-full` (`src/bin/vrfexec-full.rs`), dynamically linked:
//!   everything, through clap. Looking up users and groups (glibc's NSS: files, systemd, LDAP,
//!   sssd) and host names needs the shared libc, which a static program cannot load safely.
//!   The launcher execs it with the same argv, environment, fds and signal dispositions for
//!   every other command line and every non-root caller, before doing anything else.
//!
//! In a cargo build tree the two sit side by side (`target/release/vrfexec` and
//! `target/release/vrfexec-full`); the launcher uses a `vrfexec-full` beside itself when there
//! is one, so `cargo run` works without installing.
//!
//! Policy mode (file capabilities for non-root callers) needs NSS, so the capabilities belong
//! on vrfexec-full. A launcher that finds itself privileged for a non-root caller refuses
//! (exit 125) rather than run without the checks policy mode makes.
use std::{
    ffi::OsString,
    io,
    path::{Path, PathBuf},
};

use super::{exec, Request};
use crate::{cli::short, error::Error, sys::privilege::Caller};

/// The full build, relative to the installation prefix (the launcher's `../..`).
pub const FULL_BUILD: &str = "lib/vrfexec/vrfexec-full";

/// The full build's file name, for a build tree where it sits beside the launcher.
const FULL_BUILD_NAME: &str = "vrfexec-full";

/// The launcher's whole run: serve root's short form, hand the rest over. Returns only the
/// error that stopped it.
pub fn run(argv: &[OsString]) -> Error {
    if Caller::current().policy_mode {
        return refuse_privileged();
    }
    match route(argv, nix::unistd::getuid().is_root()) {
        Route::Serve(request) => match exec::InheritedFds::snapshot() {
            Ok(inherited) => super::run(&request, &Caller { policy_mode: false }, &inherited),
            Err(err) => err,
        },
        Route::HandOver => hand_over(argv),
    }
}

/// What the launcher does with a command line.
#[derive(Debug)]
pub enum Route {
    /// Serve it here: a root caller's short form or `exec`, nothing that needs NSS.
    Serve(Request),
    /// Exec the full build with the same argv.
    HandOver,
}

pub fn route(argv: &[OsString], caller_is_root: bool) -> Route {
    match short::parse(argv) {
        Some(args) if caller_is_root && args.user.is_none() && args.group.is_none() => {
            Route::Serve(args)
        }
        _ => Route::HandOver,
    }
}

/// The full build that belongs with the launcher at `exe`: `PREFIX/lib/vrfexec/vrfexec-full`
/// for `PREFIX/bin/vrfexec`, or in a build tree the `vrfexec-full` beside it.
pub fn full_build_of(exe: &Path) -> PathBuf {
    if let Some(beside) = exe.parent().map(|dir| dir.join(FULL_BUILD_NAME)) {
        if beside.is_file() {
            return beside;
        }
    }
    let prefix = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"));
    prefix.join(FULL_BUILD)
}

fn own_exe() -> Result<PathBuf, Error> {
    std::fs::read_link("/proc/self/exe")
        .map_err(|e| Error::os("cannot find vrfexec's own binary (/proc/self/exe)", e))
}

/// Replaces the process with the full build, same argv; returns only the error.
pub fn hand_over(argv: &[OsString]) -> Error {
    let full = match own_exe() {
        Ok(exe) => full_build_of(&exe),
        Err(err) => return err,
    };
    exec::restore_sigpipe();
    let errno = exec::execv(&full, argv);
    if errno == nix::errno::Errno::EPERM {
        let bounding = caps::read(None, caps::CapSet::Bounding).ok();
        if bounding_lacks_caps(bounding.as_ref()) {
            // The kernel refuses a `+ep` file whose capabilities the bounding set cannot grant
            // (inside `vrfexec --user`, or a unit with CapabilityBoundingSet=).
            return Error::refused(
                format!("cannot run {}", full.display()),
                "Operation not permitted: its file capabilities are outside this process's \
                 capability bounding set (inside `vrfexec --user`, or a unit with \
                 CapabilityBoundingSet=)",
            )
            .hint("run vrfexec from outside it");
        }
        return Error::os(
            format!("cannot run {}", full.display()),
            io::Error::from(errno),
        );
    }
    Error::Incomplete {
        path: full,
        source: io::Error::from(errno),
    }
}

/// Whether the bounding set lacks CAP_NET_ADMIN or CAP_BPF, which the full build's file
/// capabilities include (None: it could not be read, so nothing is claimed).
fn bounding_lacks_caps(bounding: Option<&caps::CapsHashSet>) -> bool {
    bounding.is_some_and(|set| {
        [caps::Capability::CAP_NET_ADMIN, caps::Capability::CAP_BPF]
            .iter()
            .any(|c| !set.contains(c))
    })
}

/// The launcher with file capabilities, run by a non-root user: refuse (see the module).
pub fn refuse_privileged() -> Error {
    let exe = match own_exe() {
        Ok(exe) => exe,
        Err(err) => return err,
    };
    Error::refused(
        format!("policy mode is not available in {}", exe.display()),
        "this static build cannot look users and groups up",
    )
    .hint(format!(
        "remove its file capabilities and give them to {} instead",
        full_build_of(&exe).display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_bounding_set_is_recognised() {
        assert!(bounding_lacks_caps(Some(&caps::CapsHashSet::new())));
        assert!(!bounding_lacks_caps(Some(&caps::all())));
        assert!(!bounding_lacks_caps(None));
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn served(words: &[&str], root: bool) -> bool {
        matches!(route(&argv(words), root), Route::Serve(_))
    }

    #[test]
    fn root_short_forms_are_served_here() {
        assert!(served(&["vrfexec", "red", "true"], true));
        assert!(served(
            &["vrfexec", "--dev", "eth0", "-v", "curl", "x"],
            true
        ));
        assert!(served(&["vrfexec", "--strict", "--", "red", "true"], true));
        assert!(served(&["vrfexec", "exec", "-v", "show", "true"], true));
        match route(&argv(&["vrfexec", "-v", "red", "ls", "-l"]), true) {
            Route::Serve(args) => {
                assert!(args.verbose);
                assert_eq!(args.words, argv(&["red", "ls", "-l"]));
            }
            Route::HandOver => panic!("handed over a plain short form"),
        }
    }

    #[test]
    fn everything_needing_nss_or_clap_goes_to_the_full_build() {
        // Not root: policy mode or the caller's own capabilities, decided by the full build.
        assert!(!served(&["vrfexec", "red", "true"], false));
        // User lookups.
        assert!(!served(&["vrfexec", "-u", "alice", "red", "true"], true));
        assert!(!served(
            &["vrfexec", "--user=alice", "-g", "ops", "red", "x"],
            true
        ));
        // Verbs (host names in route/ping), help, version, errors.
        for words in [
            &["vrfexec", "route", "red", "example.org"][..],
            &["vrfexec", "show"],
            &["vrfexec", "--help"],
            &["vrfexec", "--version"],
            &["vrfexec", "exec", "--help"],
            &["vrfexec", "exec"],
            &["vrfexec", "-vv", "red", "true"],
            &["vrfexec"],
        ] {
            assert!(!served(words, true), "{words:?}");
        }
    }

    #[test]
    fn the_full_build_sits_under_the_same_prefix() {
        assert_eq!(
            full_build_of(Path::new("/usr/bin/vrfexec")),
            Path::new("/usr/lib/vrfexec/vrfexec-full")
        );
        assert_eq!(
            full_build_of(Path::new("/usr/local/bin/vrfexec")),
            Path::new("/usr/local/lib/vrfexec/vrfexec-full")
        );
        assert_eq!(
            full_build_of(Path::new("/vrfexec")),
            Path::new("/lib/vrfexec/vrfexec-full")
        );
    }
}

//! Per-VRF configuration files: `/etc/vrf/<VRF>/`, as `ip netns exec` has `/etc/netns/<NAME>/`.
//!
//! The complaint VRF users raise most is not the binding but DNS: `/etc/resolv.conf` names a
//! resolver the VRF cannot reach (systemd-resolved's stub 127.0.0.53 listens in the default
//! VRF). When `/etc/vrf/<VRF>/` exists, the command runs in a private mount namespace where each
//! entry of that directory is bind-mounted over `/etc/<entry>`: `resolv.conf`, `hosts`,
//! `gai.conf`, `nsswitch.conf`, ... (iproute2's `bind_etc()` in lib/namespace.c does the same for
//! namespaces). Without the directory nothing happens: no namespace, one failed `lstat`.
//!
//! Mount propagation is made slave first, so nothing mounted here reaches the host, while the
//! host's later mounts still reach the command.
//!
//! `/etc/resolv.conf` is often a symlink (to systemd-resolved's or resolvconf's file under
//! /run), and those daemons replace their file by renaming a new one over it, which silently
//! removes any mount on the old file in every namespace. So the VRF's file is mounted on
//! `/etc/<entry>` itself, on the symlink without following it (`open_tree` + `move_mount`,
//! Linux 5.2): opening `/etc/resolv.conf` finds it however often the daemon rewrites its file.
//! For programs that open the symlink's target by its own path, it is also bound over that
//! target (a mount a rename can still remove; the one on `/etc` stays). Kernels without the
//! new mount API get the target bind only. A target that does not exist (a dangling symlink, or
//! no `/etc/<entry>` at all) is refused: vrfexec does not create files in the host's `/etc`.
//!
//! The directory and every entry must be root's and writable by no one else (like the policy
//! file): otherwise whoever can write them decides where the command's names resolve. Entries
//! are regular files (no symlinks, no directories, whose contents would need the same checks).
//! All of this is checked, and the targets resolved, before anything changes on the system.
use std::{
    ffi::OsString,
    fs,
    io::ErrorKind,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use nix::mount::{mount, MsFlags};

use crate::{
    error::{Error, Result},
    sys::MountNamespaceStep,
};

/// The directory of per-VRF directories.
pub const ETC_VRF: &str = "/etc/vrf";

/// A VRF's `/etc/vrf/<VRF>/`, checked and listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcDir {
    pub dir: PathBuf,
    /// What to mount over what, by entry name.
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// `/etc/vrf/<VRF>/<entry>`.
    pub source: PathBuf,
    /// `/etc/<entry>`.
    pub target: PathBuf,
    /// Where `/etc/<entry>` points, when it is a symlink.
    pub link_target: Option<PathBuf>,
}

/// The directory for `name` (a VRF, `default`, or a `--dev` device): None when there is none.
pub fn lookup(name: &str) -> Result<Option<EtcDir>> {
    lookup_in(Path::new(ETC_VRF), Path::new("/etc"), name)
}

/// The entry names of `name`'s directory, for `show`: empty when there is none or it cannot
/// be read (show reports, run refuses).
pub fn entry_names(name: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(Path::new(ETC_VRF).join(name))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn lookup_in(base: &Path, etc: &Path, name: &str) -> Result<Option<EtcDir>> {
    let dir = base.join(name);
    let meta = match fs::symlink_metadata(&dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::os(format!("cannot read {}", dir.display()), e)),
    };
    // The parent decides what `<name>` is: it must be root's too.
    for (path, meta) in [
        (base.to_path_buf(), fs::symlink_metadata(base)),
        (dir.clone(), Ok(meta)),
    ] {
        let meta = meta.map_err(|e| Error::os(format!("cannot read {}", path.display()), e))?;
        if !meta.is_dir() {
            return Err(Error::refused(
                format!("cannot use {}", path.display()),
                "it is not a directory",
            )
            .hint(format!(
                "{ETC_VRF}/<VRF>/ holds a VRF's own /etc files; remove or rename {}",
                path.display()
            )));
        }
        if let Some(why) = unsafe_owner(meta.uid(), meta.mode()) {
            return Err(unsafe_entry(&path, why));
        }
    }
    let mut entries = Vec::new();
    let listing =
        fs::read_dir(&dir).map_err(|e| Error::os(format!("cannot read {}", dir.display()), e))?;
    for entry in listing {
        let entry = entry.map_err(|e| Error::os(format!("cannot read {}", dir.display()), e))?;
        let source = entry.path();
        let meta = fs::symlink_metadata(&source)
            .map_err(|e| Error::os(format!("cannot read {}", source.display()), e))?;
        if !meta.is_file() {
            let what = if meta.file_type().is_symlink() {
                "a symlink"
            } else if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            return Err(Error::refused(
                format!("cannot use {}", source.display()),
                format!("it is {what}; only regular files are bound over /etc"),
            )
            .hint("replace it with a copy of the file"));
        }
        if let Some(why) = unsafe_owner(meta.uid(), meta.mode()) {
            return Err(unsafe_entry(&source, why));
        }
        let target = etc.join(entry.file_name());
        let link_target = resolve_target(&source, &target)?;
        entries.push(Entry {
            source,
            target,
            link_target,
        });
    }
    entries.sort();
    Ok(Some(EtcDir { dir, entries }))
}

/// Why a file with this owner and mode must not decide a run's configuration, if it must not.
fn unsafe_owner(uid: u32, mode: u32) -> Option<String> {
    if uid != 0 {
        return Some(format!("it belongs to uid {uid}, not root"));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "its mode {:04o} lets group or others write it",
            mode & 0o7777
        ));
    }
    None
}

fn unsafe_entry(path: &Path, why: String) -> Error {
    Error::refused(
        format!("unsafe per-VRF configuration {}", path.display()),
        why,
    )
    .hint(format!(
        "make it root's and writable by root only (chown root: {0}; chmod go-w {0})",
        path.display()
    ))
}

/// Enters a private mount namespace with `etc`'s entries mounted over `/etc`. Needs
/// CAP_SYS_ADMIN. Changes only this process (and what it execs).
pub fn enter(etc: &EtcDir) -> Result<()> {
    crate::sys::private_mount_namespace().map_err(|(step, e)| match step {
        MountNamespaceStep::Unshare => Error::os(
            format!("cannot make a mount namespace for {}", etc.dir.display()),
            e.into(),
        )
        .hint("vrfexec needs CAP_SYS_ADMIN for a VRF with its own /etc files"),
        MountNamespaceStep::Slave => Error::os("cannot make mount propagation slave", e.into()),
    })?;
    for entry in &etc.entries {
        let failed = |over: &Path, e: std::io::Error| {
            Error::os(
                format!(
                    "cannot mount {} over {}",
                    entry.source.display(),
                    over.display()
                ),
                e,
            )
        };
        // On /etc/<entry> itself, a symlink included (not followed).
        match (
            mount_on_path(&entry.source, &entry.target),
            &entry.link_target,
        ) {
            (Ok(()), _) => {}
            // Before 5.2 (no open_tree), or a kernel that will not mount on a symlink: the
            // target bind below is what there is.
            (Err(e), Some(_)) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) => {}
            (Err(e), None) if e.raw_os_error() == Some(libc::ENOSYS) => {
                bind(&entry.source, &entry.target).map_err(|e| failed(&entry.target, e.into()))?;
            }
            (Err(e), _) => return Err(failed(&entry.target, e)),
        }
        // And over the file the symlink names, for programs that open that path.
        if let Some(link_target) = &entry.link_target {
            bind(&entry.source, link_target).map_err(|e| failed(link_target, e.into()))?;
        }
    }
    Ok(())
}

fn bind(source: &Path, target: &Path) -> nix::Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
}

/// A bind of `source` mounted on `target` without following a symlink there: the mount sits on
/// the symlink itself (open_tree + move_mount, Linux 5.2).
fn mount_on_path(source: &Path, target: &Path) -> std::io::Result<()> {
    use std::{ffi::CString, os::unix::ffi::OsStrExt as _};
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (source, target) = (c(source)?, c(target)?);
    // SAFETY: open_tree takes a dirfd, a NUL-terminated path and flags; it returns a new fd
    // (a detached copy of the mount at that path) or -1.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            source.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    };
    let tree = crate::sys::fd::owned(tree)?;
    // SAFETY: the fd is the detached tree just made; "" with MOVE_MOUNT_F_EMPTY_PATH names it;
    // the target path is NUL-terminated; without MOVE_MOUNT_T_SYMLINKS a final symlink is not
    // followed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            std::os::fd::AsRawFd::as_raw_fd(&tree),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

// open_tree(2)/move_mount(2) flags from <linux/mount.h>; the libc crate has the syscall numbers
// only.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// Checks that `/etc/<entry>` exists (a file, or a symlink to one) and returns where a
/// symlink points.
fn resolve_target(source: &Path, target: &Path) -> Result<Option<PathBuf>> {
    let refuse = |why: String, hint: String| {
        Error::refused(format!("cannot use {}", source.display()), why).hint(hint)
    };
    let meta = match fs::symlink_metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(refuse(
                format!("{} does not exist", target.display()),
                format!(
                    "create {} (vrfexec does not create files in /etc), or remove {}",
                    target.display(),
                    source.display()
                ),
            ))
        }
        Err(e) => return Err(Error::os(format!("cannot read {}", target.display()), e)),
    };
    let resolved = if meta.file_type().is_symlink() {
        let link = fs::read_link(target)
            .map_err(|e| Error::os(format!("cannot read the symlink {}", target.display()), e))?;
        match fs::canonicalize(target) {
            Ok(resolved) => Some(resolved),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(refuse(
                    format!(
                        "{} is a symlink to {}, which does not exist",
                        target.display(),
                        link.display()
                    ),
                    format!(
                        "make {} exist (its service creates it), or remove {}",
                        link.display(),
                        source.display()
                    ),
                ))
            }
            Err(e) => {
                return Err(Error::os(
                    format!("cannot follow the symlink {}", target.display()),
                    e,
                ))
            }
        }
    } else {
        None
    };
    let file = resolved.as_deref().unwrap_or(target);
    if !file.is_file() {
        return Err(refuse(
            format!("{} is not a regular file", file.display()),
            format!("remove {}", source.display()),
        ));
    }
    Ok(resolved)
}

/// The entries' names, for messages.
pub fn describe(etc: &EtcDir) -> String {
    etc.entries
        .iter()
        .filter_map(|entry| entry.source.file_name().map(OsString::from))
        .map(|n| n.to_string_lossy().escape_debug().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_modes() {
        assert_eq!(unsafe_owner(0, 0o40755), None);
        assert_eq!(unsafe_owner(0, 0o100644), None);
        assert_eq!(
            unsafe_owner(1000, 0o100644).as_deref(),
            Some("it belongs to uid 1000, not root")
        );
        assert_eq!(
            unsafe_owner(0, 0o100666).as_deref(),
            Some("its mode 0666 lets group or others write it")
        );
        assert!(unsafe_owner(0, 0o40775).is_some());
    }

    /// A scratch tree: base/ (the /etc/vrf stand-in) and etc/ (the /etc stand-in).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            let root =
                std::env::temp_dir().join(format!("vrfexec-etc-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(root.join("base/red")).expect("mkdir");
            fs::create_dir_all(root.join("etc")).expect("mkdir");
            Scratch(root)
        }
        fn base(&self) -> PathBuf {
            self.0.join("base")
        }
        fn etc(&self) -> PathBuf {
            self.0.join("etc")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn no_directory_is_nothing_to_do() {
        let s = Scratch::new("none");
        assert_eq!(
            lookup_in(&s.base(), &s.etc(), "blue").expect("lookup"),
            None
        );
    }

    #[test]
    fn entries_map_onto_etc_and_targets_resolve_through_symlinks() {
        if !is_root() {
            // Files made by a non-root test are not root's, which lookup rightly refuses.
            let s = Scratch::new("nonroot");
            fs::write(s.base().join("red/resolv.conf"), "nameserver 192.0.2.1\n").expect("w");
            let err = lookup_in(&s.base(), &s.etc(), "red").expect_err("not root's");
            assert!(err.to_string().contains("not root"), "{err}");
            return;
        }
        let s = Scratch::new("map");
        let chmod = |path: &Path, mode| {
            fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .expect("chmod")
        };
        for dir in [s.base(), s.base().join("red")] {
            chmod(&dir, 0o755);
        }
        fs::write(s.base().join("red/resolv.conf"), "nameserver 192.0.2.1\n").expect("w");
        fs::write(s.base().join("red/hosts"), "192.0.2.9 x\n").expect("w");
        let lookup = || lookup_in(&s.base(), &s.etc(), "red");
        // /etc/hosts missing: refused with what to do, before anything is mounted.
        let err = lookup().expect_err("missing");
        assert!(
            err.to_string().contains("hosts does not exist; create"),
            "{err}"
        );
        fs::write(s.etc().join("hosts"), "127.0.0.1 localhost\n").expect("w");
        // /etc/resolv.conf a symlink into /run: the link's target is found.
        fs::create_dir_all(s.0.join("run")).expect("mkdir");
        fs::write(s.0.join("run/stub-resolv.conf"), "nameserver 127.0.0.53\n").expect("w");
        std::os::unix::fs::symlink(
            s.0.join("run/stub-resolv.conf"),
            s.etc().join("resolv.conf"),
        )
        .expect("symlink");
        let found = lookup().expect("lookup").expect("a directory");
        assert_eq!(
            found.entries,
            vec![
                Entry {
                    source: s.base().join("red/hosts"),
                    target: s.etc().join("hosts"),
                    link_target: None,
                },
                Entry {
                    source: s.base().join("red/resolv.conf"),
                    target: s.etc().join("resolv.conf"),
                    link_target: Some(
                        fs::canonicalize(s.0.join("run/stub-resolv.conf")).expect("canonical")
                    ),
                },
            ]
        );
        assert_eq!(describe(&found), "hosts resolv.conf");
        // Dangling: refused, naming the symlink's target.
        fs::remove_file(s.0.join("run/stub-resolv.conf")).expect("rm");
        let err = lookup().expect_err("dangling");
        assert!(err.to_string().contains("is a symlink to"), "{err}");
        fs::write(s.0.join("run/stub-resolv.conf"), "nameserver 127.0.0.53\n").expect("w");
        // Only regular files: a symlink or a directory entry is refused.
        std::os::unix::fs::symlink("/etc/hostname", s.base().join("red/hostname")).expect("ln");
        let err = lookup().expect_err("symlink entry");
        assert!(err.to_string().contains("it is a symlink"), "{err}");
        fs::remove_file(s.base().join("red/hostname")).expect("rm");
        // A group-writable entry refuses the whole directory.
        chmod(&s.base().join("red/hosts"), 0o664);
        let err = lookup().expect_err("unsafe");
        let hosts = s.base().join("red/hosts");
        assert_eq!(
            err.to_string(),
            format!(
                "unsafe per-VRF configuration {0}: its mode 0664 lets group or others write it; \
                 make it root's and writable by root only (chown root: {0}; chmod go-w {0})",
                hosts.display()
            )
        );
    }
}

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
//! /run). A bind mount follows the symlink, so the VRF's file is mounted over the file the
//! symlink names: the command then sees it whichever way it opens it (`/etc/resolv.conf` or the
//! target's own path). A target that does not exist (a dangling symlink, or no `/etc/<entry>`
//! at all) is refused: vrfexec does not create files in the host's `/etc`.
//!
//! The directory and every entry must be root's and writable by no one else (like the policy
//! file): otherwise whoever can write them decides where the command's names resolve.
use std::{
    ffi::OsString,
    fs,
    io::ErrorKind,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use nix::{
    mount::{mount, MsFlags},
    sched::{unshare, CloneFlags},
};

use crate::error::{Error, Result};

/// The directory of per-VRF directories.
pub const ETC_VRF: &str = "/etc/vrf";

/// A VRF's `/etc/vrf/<VRF>/`, checked and listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcDir {
    pub dir: PathBuf,
    /// What to mount over what: (`/etc/vrf/<VRF>/<entry>`, `/etc/<entry>`), by entry name.
    pub entries: Vec<(PathBuf, PathBuf)>,
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
            return Err(unsafe_entry(&path, "it is not a directory".into()));
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
        if !(meta.is_file() || meta.is_dir()) {
            return Err(unsafe_entry(
                &source,
                "it is not a regular file or a directory (symlinks are not followed)".into(),
            ));
        }
        if let Some(why) = unsafe_owner(meta.uid(), meta.mode()) {
            return Err(unsafe_entry(&source, why));
        }
        entries.push((source, etc.join(entry.file_name())));
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
    .hint("make it root's and writable by root only (chown root: ; chmod go-w)")
}

/// Enters a private mount namespace with `etc`'s entries bound over `/etc`. Needs
/// CAP_SYS_ADMIN. Changes only this process (and what it execs).
pub fn enter(etc: &EtcDir) -> Result<()> {
    // Resolve every target first: nothing is mounted if one cannot be used.
    let targets = etc
        .entries
        .iter()
        .map(|(source, target)| resolve_target(source, target).map(|t| (source, t)))
        .collect::<Result<Vec<_>>>()?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| {
        Error::os(
            format!("cannot make a mount namespace for {}", etc.dir.display()),
            e.into(),
        )
    })?;
    // Slave, recursively: the host's mounts still propagate in, ours never out.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Error::os("cannot make mount propagation slave", e.into()))?;
    for (source, target) in targets {
        mount(
            Some(source.as_path()),
            target.as_path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            Error::os(
                format!("cannot bind {} over {}", source.display(), target.display()),
                e.into(),
            )
        })?;
    }
    Ok(())
}

/// Where `source` is mounted for `/etc/<entry>`: the path itself, or what its symlink names.
fn resolve_target(source: &Path, target: &Path) -> Result<PathBuf> {
    let refuse = |why: String| {
        Error::refused(format!("cannot use {}", source.display()), why).hint(format!(
            "create {} (vrfexec does not create files in /etc), or remove {}",
            target.display(),
            source.display()
        ))
    };
    let link = match fs::symlink_metadata(target) {
        Ok(meta) => meta.file_type().is_symlink(),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(refuse(format!("{} does not exist", target.display())))
        }
        Err(e) => return Err(Error::os(format!("cannot read {}", target.display()), e)),
    };
    let resolved = if link {
        fs::canonicalize(target).map_err(|_| {
            let to = fs::read_link(target).unwrap_or_default();
            refuse(format!(
                "{} is a symlink to {}, which does not exist",
                target.display(),
                to.display()
            ))
        })?
    } else {
        target.to_path_buf()
    };
    let (source_dir, target_dir) = (source.is_dir(), resolved.is_dir());
    if source_dir != target_dir {
        let kind = |dir: bool| if dir { "a directory" } else { "a file" };
        return Err(Error::refused(
            format!(
                "cannot bind {} over {}",
                source.display(),
                resolved.display()
            ),
            format!(
                "one is {} and the other {}",
                kind(source_dir),
                kind(target_dir)
            ),
        ));
    }
    Ok(resolved)
}

/// The entries' names, for messages.
pub fn describe(etc: &EtcDir) -> String {
    etc.entries
        .iter()
        .filter_map(|(source, _)| source.file_name().map(OsString::from))
        .map(|n| n.to_string_lossy().into_owned())
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
        for dir in [s.base(), s.base().join("red")] {
            fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("chmod");
        }
        fs::write(s.base().join("red/resolv.conf"), "nameserver 192.0.2.1\n").expect("w");
        fs::write(s.base().join("red/hosts"), "192.0.2.9 x\n").expect("w");
        let found = lookup_in(&s.base(), &s.etc(), "red")
            .expect("lookup")
            .expect("a directory");
        assert_eq!(
            found.entries,
            vec![
                (s.base().join("red/hosts"), s.etc().join("hosts")),
                (
                    s.base().join("red/resolv.conf"),
                    s.etc().join("resolv.conf")
                ),
            ]
        );
        assert_eq!(describe(&found), "hosts resolv.conf");
        // /etc/hosts missing: refused with what to do.
        let err = resolve_target(&found.entries[0].0, &found.entries[0].1).expect_err("missing");
        assert!(err.to_string().contains("does not exist; create"), "{err}");
        // /etc/resolv.conf a symlink into /run: the symlink's target is mounted over.
        fs::create_dir_all(s.0.join("run")).expect("mkdir");
        fs::write(s.0.join("run/stub-resolv.conf"), "nameserver 127.0.0.53\n").expect("w");
        std::os::unix::fs::symlink(
            s.0.join("run/stub-resolv.conf"),
            s.etc().join("resolv.conf"),
        )
        .expect("symlink");
        assert_eq!(
            resolve_target(&found.entries[1].0, &found.entries[1].1).expect("resolves"),
            fs::canonicalize(s.0.join("run/stub-resolv.conf")).expect("canonical")
        );
        // Dangling: refused, naming the symlink's target.
        fs::remove_file(s.0.join("run/stub-resolv.conf")).expect("rm");
        let err = resolve_target(&found.entries[1].0, &found.entries[1].1).expect_err("dangling");
        assert!(err.to_string().contains("is a symlink to"), "{err}");
        // A group-writable entry refuses the whole directory.
        fs::set_permissions(
            s.base().join("red/hosts"),
            std::os::unix::fs::PermissionsExt::from_mode(0o664),
        )
        .expect("chmod");
        let err = lookup_in(&s.base(), &s.etc(), "red").expect_err("unsafe");
        assert!(
            err.to_string().starts_with(&format!(
                "unsafe per-VRF configuration {}: its mode 0664",
                s.base().join("red/hosts").display()
            )),
            "{err}"
        );
    }
}

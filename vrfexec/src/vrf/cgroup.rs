//! Placing vrfexec in the VRF's cgroup v2, where iproute2 puts `ip vrf exec`.
//!
//! Layout (iproute2 `ip/ipvrf.c`, `vrf_switch()`): `<own cgroup>[/<netns>-ns]/vrf/<NAME>`,
//! where `<own cgroup>` is the caller's cgroup cut before any `/vrf` level. Cutting there puts a
//! run from inside a VRF *beside* that VRF's cgroup rather than below it: both tools attach
//! with flags 0, and the kernel refuses a program below a cgroup whose program does not allow
//! overrides, and would run both anyway (the parent's last). Staying below the caller's own
//! cgroup keeps systemd's tracking of the caller's unit. `default` joins `.../vrf` itself, which
//! carries no program. The `<netns>-ns` level keeps runs from different named network
//! namespaces (where ifindexes differ) apart, as iproute2 does.
//!
//! One deliberate difference: iproute2 cuts at the first "/vrf" substring, so a caller in
//! `/system.slice/vrfd.service` is cut to `/system.slice`; vrfexec cuts only at a whole `vrf`
//! path component.
//!
//! cgroup2 is found in /proc/self/mountinfo (the hybrid `/sys/fs/cgroup/unified` layout
//! included). Where none is visible, as under `ip netns exec` (it remounts /sys), vrfexec makes a
//! detached cgroup2 mount with fsopen/fsmount (Linux 5.2): it is reachable only through its
//! file descriptor and disappears with it, so nothing is left mounted (iproute2 instead mounts
//! one at /var/run/cgroup2).
use std::{
    ffi::OsString,
    fs,
    io::{self, Write as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::{
            ffi::OsStringExt as _,
            fs::{DirBuilderExt as _, MetadataExt as _},
        },
    },
    path::{Path, PathBuf},
};

use crate::error::{Error, Result};

/// The file whose write moves a process into a cgroup.
pub const CGROUP_PROCS: &str = "cgroup.procs";
/// The directory level under which VRF cgroups live (iproute2's name).
pub const VRF_DIR: &str = "vrf";
/// The child of a VRF cgroup that `--strict` runs join.
pub const STRICT_DIR: &str = "strict";
/// Where iproute2 keeps named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A cgroup2 mount as found in mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// The cgroup path at the mount point ("/" unless a sub-tree is bind-mounted).
    pub root: String,
}

/// The first cgroup2 mount in a mountinfo file.
///
/// Parsed here rather than with procfs-core, which vrfexec uses elsewhere: every run reads
/// this file, and the full parser (a hash map of options per mount) was a tenth of the code a
/// `vrfexec VRF CMD` run executes. Only the fields read are split out (proc(5)): the root
/// (4th), the mount point (5th) and, after the optional fields and the "-" separator, the
/// filesystem type.
pub fn find_cgroup2(mountinfo: &[u8]) -> io::Result<Option<CgroupMount>> {
    for line in mountinfo.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split(|b| *b == b' ');
        let (Some(root), Some(mount_point)) = (fields.nth(3), fields.next()) else {
            return Err(malformed_mountinfo(line));
        };
        let Some(fs_type) = fields.skip_while(|f| *f != b"-").nth(1) else {
            return Err(malformed_mountinfo(line));
        };
        if fs_type == b"cgroup2" {
            return Ok(Some(CgroupMount {
                mount_point: PathBuf::from(OsString::from_vec(unescape_mount_path(mount_point))),
                root: String::from_utf8_lossy(&unescape_mount_path(root)).into_owned(),
            }));
        }
    }
    Ok(None)
}

fn malformed_mountinfo(line: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed line: {}", String::from_utf8_lossy(line)),
    )
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The cgroup v2 path of a process from its /proc/PID/cgroup: the `0::/path` line
/// (cgroups(7)); lines of v1 hierarchies have a non-zero ID or controllers.
pub fn unified_path(proc_cgroup: &[u8]) -> io::Result<Option<String>> {
    let text = std::str::from_utf8(proc_cgroup)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned))
}

/// The name of `vrfexec trace`'s cgroups, before the tracer's pid.
pub const TRACE_PREFIX: &str = "trace:";

/// The VRF name a cgroup path places a process in, if any: the component after the last
/// `vrf` level (as `ip vrf identify` reads it). `.../vrf` alone means the default VRF, and so
/// does `.../vrf/trace:<pid>` (`vrfexec trace default`; no interface name has a ':').
pub fn vrf_of_path(path: &str) -> Option<&str> {
    let components: Vec<&str> = path.split('/').collect();
    let at = components.iter().rposition(|c| *c == VRF_DIR)?;
    components
        .get(at + 1)
        .copied()
        .filter(|c| !c.is_empty() && !c.starts_with(TRACE_PREFIX))
}

/// The cgroup (relative to the cgroup2 root, starting with '/') for a run in VRF `leaf`
/// (None = default VRF), computed from the caller's own cgroup like iproute2's `vrf_switch()`.
pub fn vrf_cgroup(own: &str, netns: Option<&str>, leaf: Option<&str>) -> String {
    let mut path = vrf_base(own, netns);
    if path == "/" {
        path.clear();
    }
    if let Some(netns) = netns {
        path.push('/');
        path.push_str(netns);
        path.push_str("-ns");
    }
    path.push('/');
    path.push_str(VRF_DIR);
    if let Some(leaf) = leaf {
        path.push('/');
        path.push_str(leaf);
    }
    path
}

/// The cgroup below which vrfexec makes its levels (`<netns>-ns`, `vrf`, ...) for a process
/// in cgroup `own`: `own` cut before any `vrf` level and without a `<netns>-ns` level there.
pub fn vrf_base(own: &str, netns: Option<&str>) -> String {
    let mut components: Vec<&str> = own.split('/').filter(|c| !c.is_empty()).collect();
    if let Some(at) = components.iter().position(|c| *c == VRF_DIR) {
        components.truncate(at);
    }
    let netns_dir = netns.map(|n| format!("{n}-ns"));
    if let Some(dir) = &netns_dir {
        if components.last() == Some(&dir.as_str()) {
            components.pop();
        }
    }
    if components.is_empty() {
        return "/".to_owned();
    }
    let mut path = String::new();
    for component in components {
        path.push('/');
        path.push_str(component);
    }
    path
}

/// The name of the named network namespace (`ip netns add NAME`) a process is in, found as
/// iproute2 does: the entry of /run/netns with the same device and inode as
/// /proc/PID/ns/net (`pid` "self" for this process). None when the namespace has no name (or
/// there is no /run/netns); an error when it cannot be told, since a run from namespace `r`
/// placed as if it had no name would land in the default namespace's `/vrf/<VRF>` cgroup,
/// whose program binds another namespace's ifindex.
pub fn netns_name(pid: &str) -> Result<Option<String>> {
    let ns = format!("/proc/{pid}/ns/net");
    let own = fs::metadata(&ns).map_err(|e| Error::os(format!("cannot stat {ns}"), e))?;
    let cannot_list = |e| Error::os(format!("cannot list {NETNS_RUN_DIR}"), e);
    let entries = match fs::read_dir(NETNS_RUN_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot_list(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(cannot_list)?;
        let meta = match fs::metadata(entry.path()) {
            Ok(meta) => meta,
            // Deleted while listed (`ip netns del`): not this process's namespace.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::os(
                    format!("cannot stat {}", entry.path().display()),
                    e,
                ))
            }
        };
        if meta.dev() == own.dev() && meta.ino() == own.ino() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    // Several names for one namespace: pick one deterministically (readdir order is not).
    names.sort();
    Ok(names.into_iter().next())
}

/// Access to the cgroup2 hierarchy: a visible mount, or a private detached one.
pub struct CgroupRoot {
    /// Where paths are opened: the mount point, or /proc/self/fd/N for a detached mount.
    access: PathBuf,
    /// The cgroup path at `access` (mountinfo's root field).
    root: String,
    /// How paths are shown in messages.
    display: PathBuf,
    _private_mount: Option<OwnedFd>,
}

impl CgroupRoot {
    /// The visible cgroup2 mount, or a private one if none is visible.
    pub fn open() -> Result<Self> {
        let mountinfo = crate::sys::read_proc("/proc/self/mountinfo")
            .map_err(|e| Error::os("cannot read /proc/self/mountinfo", e))?;
        let found = find_cgroup2(&mountinfo)
            .map_err(|e| Error::os("cannot parse /proc/self/mountinfo", e))?;
        match found {
            Some(mount) => Ok(Self {
                display: mount.mount_point.clone(),
                access: mount.mount_point,
                root: mount.root,
                _private_mount: None,
            }),
            None => Self::mount_private(),
        }
    }

    fn mount_private() -> Result<Self> {
        let fd = fsmount_cgroup2().map_err(|source| {
            let hint = match source.raw_os_error() {
                Some(libc::EPERM) => "vrfexec needs CAP_SYS_ADMIN to mount cgroup2 where none is mounted",
                Some(libc::ENOSYS) => "this kernel (< 5.2) cannot mount it privately; mount cgroup2 first (mount -t cgroup2 none /sys/fs/cgroup)",
                Some(libc::ENODEV) => "this kernel has no cgroup v2",
                _ => "",
            };
            Error::Cgroup {
                what: "no cgroup2 mount is visible and mounting one privately failed:",
                path: PathBuf::from("cgroup2"),
                source,
                hint,
            }
        })?;
        Ok(Self {
            access: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            root: "/".to_owned(),
            display: PathBuf::from("<private cgroup2 mount>"),
            _private_mount: Some(fd),
        })
    }

    /// Where the hierarchy can be read: (access path, the cgroup path found there).
    pub fn access_root(&self) -> (&Path, &str) {
        (&self.access, &self.root)
    }

    /// Maps a cgroup path to (access path, display path).
    fn locate(&self, cgroup: &str) -> Result<(PathBuf, PathBuf)> {
        let relative = strip_cgroup_root(&self.root, cgroup).ok_or_else(|| {
            Error::refused(
                format!("cannot reach cgroup {cgroup}"),
                format!(
                    "it is outside the part of the cgroup tree mounted here ({})",
                    self.root
                ),
            )
        })?;
        Ok((self.access.join(relative), self.display.join(relative)))
    }

    /// Opens an existing cgroup directory.
    pub fn open_existing(&self, cgroup: &str) -> Result<OwnedFd> {
        let (access, display) = self.locate(cgroup)?;
        fs::File::open(&access)
            .map(OwnedFd::from)
            .map_err(|source| Error::Cgroup {
                what: "cannot open cgroup",
                path: display,
                hint: cgroup_hint(&source),
                source,
            })
    }

    /// Creates `cgroup`, which must not exist yet (its parent must); the guard removes it
    /// unless kept. An empty one left by an earlier process is removed and made again; one
    /// still in use is an error.
    pub fn create_new(&self, cgroup: &str) -> Result<Placement> {
        let (access, display) = self.locate(cgroup)?;
        let make = || fs::DirBuilder::new().mode(0o755).create(&access);
        let made = match make() {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // rmdir fails on a cgroup with processes or children: never taken over.
                fs::remove_dir(&access).and_then(|()| make())
            }
            other => other,
        };
        made.map_err(|source| Error::Cgroup {
            what: "cannot create cgroup",
            path: display.clone(),
            hint: match source.raw_os_error() {
                Some(libc::EBUSY) => {
                    "an earlier one of that name is still in use; `vrfexec gc` removes it once idle"
                }
                _ => cgroup_hint(&source),
            },
            source,
        })?;
        Ok(Placement {
            access: access.clone(),
            display,
            created: vec![access],
            keep: false,
        })
    }

    /// Creates `cgroup` and any missing parents; the returned guard removes what it created
    /// unless it is kept.
    pub fn create(&self, cgroup: &str) -> Result<Placement> {
        let (access, display) = self.locate(cgroup)?;
        let mut placement = Placement {
            access: access.clone(),
            display: display.clone(),
            created: Vec::new(),
            keep: false,
        };
        // Walk down from the first missing ancestor, remembering each directory made here.
        let mut missing = Vec::new();
        let mut probe = access.as_path();
        while !probe.exists() {
            missing.push(probe.to_path_buf());
            match probe.parent() {
                Some(parent) => probe = parent,
                None => break,
            }
        }
        let mut builder = fs::DirBuilder::new();
        builder.mode(0o755);
        for dir in missing.into_iter().rev() {
            match builder.create(&dir) {
                Ok(()) => {
                    placement.created.push(dir.clone());
                    // The kernel gives a new cgroup (and its files) to its creator's fsuid:
                    // made by the capable build for a user, it would be that user's, who
                    // could then move other runs' processes out of it. Root's, always.
                    if !nix::unistd::geteuid().is_root() {
                        give_to_root(&dir).map_err(|source| Error::Cgroup {
                            what: "cannot give cgroup to root",
                            path: display_for(&access, &display, &dir),
                            hint:
                                "the capable build needs CAP_CHOWN (see the README's setcap line)",
                            source,
                        })?;
                    }
                }
                // A concurrent run made it first: fine, it is not ours to remove.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(Error::Cgroup {
                        what: "cannot create cgroup",
                        path: display_for(&access, &display, &dir),
                        hint: cgroup_hint(&source),
                        source,
                    })
                }
            }
        }
        Ok(placement)
    }
}

impl CgroupRoot {
    /// Refuses unless every cgroup level from below `base` down to `path` (the ones vrfexec
    /// makes: `<netns>-ns`, `vrf`, the VRF's, `strict`) and its cgroup.procs are root's and
    /// writable by no one else: whoever may write a level's cgroup.procs, or owns a level,
    /// can move a run's processes out of the VRF.
    pub fn check_levels(&self, base: &str, path: &str) -> Result<()> {
        let base = base.trim_end_matches('/');
        let mut level = base.to_owned();
        for component in path
            .strip_prefix(base)
            .unwrap_or(path)
            .split('/')
            .filter(|c| !c.is_empty())
        {
            level.push('/');
            level.push_str(component);
            let (access, display) = self.locate(&level)?;
            for (what, file) in [
                ("", access.clone()),
                ("/cgroup.procs", access.join(CGROUP_PROCS)),
            ] {
                let meta = fs::symlink_metadata(&file).map_err(|source| Error::Cgroup {
                    what: "cannot read cgroup",
                    path: display.clone(),
                    hint: cgroup_hint(&source),
                    source,
                })?;
                if let Some(why) = unsafe_owner(meta.uid(), meta.mode()) {
                    return Err(Error::refused(
                        format!("unsafe cgroup {}{what}", display.display()),
                        format!("{why}, so its owner could move this run out of the VRF"),
                    )
                    .hint("remove it as root (`vrfexec gc` removes idle ones) and run again"));
                }
            }
        }
        Ok(())
    }
}

fn unsafe_owner(uid: u32, mode: u32) -> Option<String> {
    if uid != 0 {
        Some(format!("it belongs to uid {uid}"))
    } else if mode & 0o022 != 0 {
        Some(format!("its mode {:04o} lets others write", mode & 0o7777))
    } else {
        None
    }
}

/// Chowns a cgroup directory vrfexec just made, and its interface files, to root.
fn give_to_root(dir: &Path) -> io::Result<()> {
    std::os::unix::fs::chown(dir, Some(0), Some(0))?;
    for entry in fs::read_dir(dir)? {
        std::os::unix::fs::lchown(entry?.path(), Some(0), Some(0))?;
    }
    Ok(())
}

/// The part of `cgroup` below the mount's root, without a leading '/'.
fn strip_cgroup_root<'a>(root: &str, cgroup: &'a str) -> Option<&'a str> {
    let root = root.trim_end_matches('/');
    let rest = cgroup.strip_prefix(root)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    Some(rest.trim_start_matches('/'))
}

fn display_for(access: &Path, display: &Path, dir: &Path) -> PathBuf {
    match access.strip_prefix(dir) {
        Ok(below) => {
            let mut shown = display.to_path_buf();
            for _ in below.components() {
                shown.pop();
            }
            shown
        }
        Err(_) => display.to_path_buf(),
    }
}

fn cgroup_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EROFS) => "the cgroup filesystem is read-only here (a container?); run vrfexec where cgroup2 is writable",
        Some(libc::EACCES) | Some(libc::EPERM) => "run as root (vrfexec needs write access to the cgroup tree)",
        Some(libc::EOPNOTSUPP) => "the cgroup is of a type that cannot hold processes (threaded or with controllers enabled)",
        _ => "",
    }
}

/// A VRF cgroup being set up; removes the directories it created unless kept.
pub struct Placement {
    access: PathBuf,
    display: PathBuf,
    created: Vec<PathBuf>,
    keep: bool,
}

impl Placement {
    /// The cgroup directory, opened for attaching a program.
    pub fn open_dir(&self) -> Result<OwnedFd> {
        fs::File::open(&self.access)
            .map(OwnedFd::from)
            .map_err(|source| Error::Cgroup {
                what: "cannot open cgroup",
                path: self.display.clone(),
                hint: cgroup_hint(&source),
                source,
            })
    }

    pub fn display(&self) -> &Path {
        &self.display
    }

    /// The parent cgroup (the VRF's, for a `strict` child), opened for attaching a program.
    pub fn open_parent(&self) -> Result<OwnedFd> {
        let parent = self.access.parent().unwrap_or(&self.access);
        fs::File::open(parent)
            .map(OwnedFd::from)
            .map_err(|source| Error::Cgroup {
                what: "cannot open cgroup",
                path: self.display.parent().unwrap_or(&self.display).to_path_buf(),
                hint: cgroup_hint(&source),
                source,
            })
    }

    /// Moves process `pid` (all its threads) into the cgroup open at `dir` (the one the
    /// program was attached to, not a path that may since name another): one write to its
    /// cgroup.procs.
    pub fn join(&self, dir: &OwnedFd, pid: u32) -> Result<()> {
        join_dir(dir, pid).map_err(|source| Error::Cgroup {
            what: "cannot join cgroup",
            path: self.display.join(CGROUP_PROCS),
            hint: cgroup_hint(&source),
            source,
        })
    }

    /// Whether the cgroup, or one below it, has processes (None if that cannot be read).
    pub fn is_populated(&self) -> Option<bool> {
        is_populated(&self.access).ok()
    }

    /// Keeps the cgroup (the run succeeded, or another process may be using it).
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Innermost first; a directory another run has joined in the meantime is busy and
        // stays, which is what we want.
        for dir in self.created.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Whether the cgroup open at `dir` still exists (a removed cgroup's directory fd stays valid,
/// but nothing can be looked up below it any more).
pub fn is_live(dir: &OwnedFd) -> bool {
    nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        CGROUP_PROCS,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok()
}

/// Moves process `pid` into the cgroup open at `dir`: one write to its cgroup.procs. Fails
/// (ENOENT, ENODEV) if the cgroup has been removed since it was opened.
pub fn join_dir(dir: &OwnedFd, pid: u32) -> io::Result<()> {
    let raw = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        CGROUP_PROCS,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: openat just returned this fd and nothing else owns it.
    let mut file = unsafe { fs::File::from_raw_fd(raw) };
    file.write_all(pid.to_string().as_bytes())
}

/// Whether the cgroup at `dir` (a path) or any cgroup below it has processes.
pub fn is_populated(dir: &Path) -> io::Result<bool> {
    let events = fs::read_to_string(dir.join("cgroup.events"))?;
    Ok(events.lines().any(|l| l.trim() == "populated 1"))
}

// fsopen(2)/fsconfig(2)/fsmount(2) constants from <linux/mount.h>; the libc crate has the
// syscall numbers but not these.
const FSOPEN_CLOEXEC: libc::c_uint = 0x0000_0001;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x0000_0001;

/// A detached cgroup2 mount (no mount point); the fd is its root directory.
fn fsmount_cgroup2() -> io::Result<OwnedFd> {
    let fstype = c"cgroup2";
    // SAFETY: fsopen takes a NUL-terminated string and flags; it returns a new fd or -1.
    let fs_fd = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    let fs_fd = crate::sys::fd::owned(fs_fd)?;
    // SAFETY: fs_fd is a valid fs context fd; CMD_CREATE takes no key or value (NULL, 0).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs_fd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fs_fd is a created fs context; flags and attributes are plain integers.
    let mount_fd =
        unsafe { libc::syscall(libc::SYS_fsmount, fs_fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    crate::sys::fd::owned(mount_fd)
}

/// An fd a raw syscall returned, or the OS error for a negative return.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_owned_levels_closed_to_others_pass() {
        assert_eq!(unsafe_owner(0, 0o40755), None);
        assert_eq!(unsafe_owner(0, 0o100644), None);
        assert_eq!(
            unsafe_owner(1000, 0o40755).as_deref(),
            Some("it belongs to uid 1000")
        );
        assert_eq!(
            unsafe_owner(0, 0o100666).as_deref(),
            Some("its mode 0666 lets others write")
        );
    }

    const HYBRID: &str = "\
24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 24 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn finds_cgroup2_in_the_hybrid_layout() {
        let mount = find_cgroup2(HYBRID.as_bytes())
            .expect("parse")
            .expect("found");
        assert_eq!(mount.mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(mount.root, "/");
    }

    #[test]
    fn finds_cgroup2_in_the_unified_layout_and_none_without_it() {
        let unified = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        let mount = find_cgroup2(unified.as_bytes())
            .expect("parse")
            .expect("found");
        assert_eq!(mount.mount_point, PathBuf::from("/sys/fs/cgroup"));
        let none = "25 24 0:22 / /sys rw - sysfs sysfs rw\n";
        assert_eq!(find_cgroup2(none.as_bytes()).expect("parse"), None);
    }

    #[test]
    fn bind_mounted_subtree_and_escaped_mount_points() {
        let line = "40 24 0:26 /user.slice /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        let mount = find_cgroup2(line.as_bytes())
            .expect("parse")
            .expect("found");
        assert_eq!(mount.mount_point, PathBuf::from("/mnt/my cg"));
        assert_eq!(mount.root, "/user.slice");
        assert_eq!(
            strip_cgroup_root("/user.slice", "/user.slice/a/vrf/red"),
            Some("a/vrf/red")
        );
        assert_eq!(strip_cgroup_root("/user.slice", "/user.slicer/x"), None);
        assert_eq!(strip_cgroup_root("/", "/vrf/red"), Some("vrf/red"));
    }

    #[test]
    fn optional_fields_and_malformed_lines() {
        let text = "29 1 0:26 / /sys/fs/cgroup rw shared:4 master:1 - cgroup2 cgroup2 rw\n";
        let mount = find_cgroup2(text.as_bytes())
            .expect("parse")
            .expect("found");
        assert_eq!(mount.mount_point, PathBuf::from("/sys/fs/cgroup"));
        assert!(find_cgroup2(b"29 1 0:26 / /x rw shared:4\n").is_err());
        assert!(find_cgroup2(b"29 1 0:26\n").is_err());
        // A cgroup2 line after others, and a missing newline at the end.
        let text = "25 24 0:22 / /sys rw - sysfs sysfs rw\n30 24 0:26 / /cg rw - cgroup2 none rw";
        let mount = find_cgroup2(text.as_bytes())
            .expect("parse")
            .expect("found");
        assert_eq!(mount.mount_point, PathBuf::from("/cg"));
    }

    #[test]
    fn unified_path_ignores_v1_hierarchies() {
        let text = "12:pids:/user.slice\n1:name=systemd:/user.slice/session-1.scope\n0::/user.slice/session-1.scope\n";
        assert_eq!(
            unified_path(text.as_bytes()).expect("parse").as_deref(),
            Some("/user.slice/session-1.scope")
        );
        assert_eq!(unified_path(b"3:cpu:/\n").expect("parse"), None);
        assert_eq!(
            unified_path(b"0::/a:b/c\n").expect("parse").as_deref(),
            Some("/a:b/c")
        );
    }

    #[test]
    fn placement_matches_iproute2() {
        let s = "/user.slice/user-0.slice/session-1.scope";
        assert_eq!(vrf_cgroup(s, None, Some("red")), format!("{s}/vrf/red"));
        // From inside a VRF: beside it, not below it.
        assert_eq!(
            vrf_cgroup(&format!("{s}/vrf/red"), None, Some("blue")),
            format!("{s}/vrf/blue")
        );
        // default joins the vrf level itself.
        assert_eq!(
            vrf_cgroup(&format!("{s}/vrf/red"), None, None),
            format!("{s}/vrf")
        );
        assert_eq!(vrf_cgroup("/", None, Some("red")), "/vrf/red");
        assert_eq!(vrf_cgroup("/", None, None), "/vrf");
    }

    #[test]
    fn placement_in_a_named_netns_adds_one_level_once() {
        assert_eq!(
            vrf_cgroup("/init.scope", Some("r"), Some("red")),
            "/init.scope/r-ns/vrf/red"
        );
        assert_eq!(
            vrf_cgroup("/init.scope/r-ns/vrf/red", Some("r"), Some("blue")),
            "/init.scope/r-ns/vrf/blue"
        );
        assert_eq!(
            vrf_cgroup("/init.scope/r-ns/vrf", Some("r"), None),
            "/init.scope/r-ns/vrf"
        );
    }

    #[test]
    fn only_whole_vrf_components_are_cut() {
        assert_eq!(
            vrf_cgroup("/system.slice/vrfd.service", None, Some("red")),
            "/system.slice/vrfd.service/vrf/red"
        );
    }

    #[test]
    fn vrf_of_path_reads_the_level_below_vrf() {
        assert_eq!(vrf_of_path("/user.slice/vrf/red"), Some("red"));
        assert_eq!(vrf_of_path("/x/r-ns/vrf/blue"), Some("blue"));
        assert_eq!(vrf_of_path("/user.slice/vrf"), None);
        // `vrfexec trace`'s cgroups: below a VRF's, or default's.
        assert_eq!(vrf_of_path("/x/vrf/red/trace:12"), Some("red"));
        assert_eq!(vrf_of_path("/x/vrf/red/strict/trace:12"), Some("red"));
        assert_eq!(vrf_of_path("/x/vrf/trace:12"), None);
        assert_eq!(vrf_of_path("/user.slice"), None);
    }

    #[test]
    fn placement_guard_removes_only_what_it_created() {
        let base = std::env::temp_dir().join(format!("vrfexec-unit-{}", std::process::id()));
        fs::create_dir_all(&base).expect("mkdir base");
        let root = CgroupRoot {
            access: base.clone(),
            root: "/".into(),
            display: PathBuf::from("/cg"),
            _private_mount: None,
        };
        fs::create_dir_all(base.join("a")).expect("mkdir a");
        let placement = root.create("/a/vrf/red").expect("create");
        assert!(base.join("a/vrf/red").is_dir());
        assert_eq!(placement.display(), Path::new("/cg/a/vrf/red"));
        drop(placement);
        assert!(!base.join("a/vrf").exists(), "created levels are removed");
        assert!(base.join("a").is_dir(), "pre-existing levels stay");
        root.create("/a/vrf/blue").expect("create").keep();
        assert!(base.join("a/vrf/blue").is_dir(), "kept");
        fs::remove_dir_all(&base).expect("cleanup");
    }
}

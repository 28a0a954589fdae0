//! The lock that serialises work on one VRF cgroup: runs that make or repair it (`place`'s
//! cold path, `attach`) against each other and against `gc`, which removes it. Warm runs,
//! which only join a cgroup that is already right, take no lock (see `place::join_warm`).
//!
//! It used to be an flock on the cgroup's directory, which any user can open and flock: one
//! `flock /sys/fs/cgroup/.../vrf/red sleep 1d` by anyone hung root's `vrfexec red ...` and every
//! unit attaching to red. The lock is now a file in `/run/vrfexec/`, a directory that must be
//! root's and closed to everyone else (0700), so only root and vrfexec's own capable build can
//! open it; and a run waits a bounded time, then fails naming the process that holds it.
//!
//! One file per cgroup path, named by escaping the path (`/` becomes `%2f`). gc unlinks a
//! cgroup's lock file when it removes the cgroup, while holding it; a run that opened the old
//! file then finds it unlinked after locking and takes the new one.
use std::{
    fs,
    io::ErrorKind,
    os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::error::{Error, Result};

/// Where the locks live; made by vrfexec as root, or at boot by the package's tmpfiles.d entry.
pub const LOCK_DIR: &str = "/run/vrfexec";
/// How long a run waits for a lock before it gives up.
pub const WAIT: Duration = Duration::from_secs(30);

/// A held lock; released when dropped, which closes the file (or when the process dies).
#[derive(Debug)]
pub struct Held {
    /// Kept open only to hold the flock.
    _file: fs::File,
    path: PathBuf,
}

impl Held {
    /// Removes the lock file (gc, after removing the cgroup), still holding it.
    pub fn unlink(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Waits up to [`WAIT`] for the lock of `cgroup` (a cgroup path such as `/a/vrf/red`).
pub fn acquire(cgroup: &str) -> Result<Held> {
    match lock(cgroup, Some(WAIT))? {
        Some(held) => Ok(held),
        None => Err(timeout_error(cgroup)),
    }
}

/// The lock of `cgroup` if it is free now (gc skips what is busy).
pub fn try_acquire(cgroup: &str) -> Result<Option<Held>> {
    lock(cgroup, None)
}

fn lock(cgroup: &str, wait: Option<Duration>) -> Result<Option<Held>> {
    let dir = lock_dir()?;
    let path = dir.join(file_name(cgroup));
    let deadline = wait.map(|w| Instant::now() + w);
    let mut pause = Duration::from_millis(2);
    loop {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::os(format!("cannot open lock {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => {
                // gc may have unlinked the file between our open and our lock: that lock
                // protects nothing any more, so take the new file's.
                let ours = file.metadata().map(|m| m.ino()).ok();
                let current = fs::symlink_metadata(&path).map(|m| m.ino()).ok();
                if ours.is_some() && ours == current {
                    return Ok(Some(Held { _file: file, path }));
                }
                continue;
            }
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::os(format!("cannot lock {}", path.display()), e))
            }
        }
        let Some(deadline) = deadline else {
            return Ok(None);
        };
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// `/run/vrfexec`, made if missing (as root), and refused unless it is root's and closed to
/// everyone else: a lock anyone can open is a lock anyone can hold.
fn lock_dir() -> Result<&'static Path> {
    let dir = Path::new(LOCK_DIR);
    // Only root makes it: made by a capable build run by a user, it would be that user's.
    if nix::unistd::geteuid().is_root() {
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::os(format!("cannot create {LOCK_DIR}"), e)),
        }
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            Error::refused(
                format!("cannot lock in {LOCK_DIR}"),
                "the directory does not exist",
            )
            .hint(
                "root makes it (any vrfexec run as root, or systemd-tmpfiles at boot with the \
                 package's vrfexec.conf)",
            )
        } else {
            Error::os(format!("cannot read {LOCK_DIR}"), e)
        }
    })?;
    check_lock_dir(meta.is_dir(), meta.uid(), meta.mode())?;
    Ok(dir)
}

fn check_lock_dir(is_dir: bool, uid: u32, mode: u32) -> Result<()> {
    if is_dir && uid == 0 && mode & 0o077 == 0 {
        return Ok(());
    }
    let what = if !is_dir {
        "it is not a directory".to_owned()
    } else if uid != 0 {
        format!("it belongs to uid {uid}, not root")
    } else {
        format!("its mode is {:04o}, open to others", mode & 0o7777)
    };
    Err(
        Error::refused(format!("unsafe lock directory {LOCK_DIR}"), what).hint(
            "remove it as root (vrfexec makes it again, root's and 0700, on its next run as root)",
        ),
    )
}

/// The lock file's name for a cgroup path: `%` and `/` escaped, so names never collide; paths
/// too long for a file name are hashed (FNV-1a, 64 bits).
fn file_name(cgroup: &str) -> String {
    let escaped: String = cgroup
        .chars()
        .map(|c| match c {
            '%' => "%25".to_owned(),
            '/' => "%2f".to_owned(),
            c => c.to_string(),
        })
        .collect();
    if escaped.len() <= 200 {
        return format!("{escaped}.lock");
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in cgroup.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("hash-{hash:016x}.lock")
}

/// The cgroup path a lock file is named after; None for hashed names.
fn cgroup_of(file_name: &str) -> Option<String> {
    let escaped = file_name.strip_suffix(".lock")?;
    if escaped.starts_with("hash-") {
        return None;
    }
    Some(escaped.replace("%2f", "/").replace("%25", "%"))
}

/// Removes the lock files of cgroups that no longer exist (`gc`: cgroups removed by others,
/// systemd for one, leave theirs behind), each while holding it, so a run that just took it
/// is never left with an unlinked lock. Returns the cgroups whose files were removed.
pub fn sweep(exists: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let dir = lock_dir()?;
    let entries = fs::read_dir(dir).map_err(|e| Error::os(format!("cannot read {LOCK_DIR}"), e))?;
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some(cgroup) = entry.file_name().to_str().and_then(cgroup_of) else {
            continue;
        };
        if exists(&cgroup) {
            continue;
        }
        if let Ok(Some(held)) = try_acquire(&cgroup) {
            // Made again while we looked: a run is using it.
            if !exists(&cgroup) {
                held.unlink();
                removed.push(cgroup);
            }
        }
    }
    Ok(removed)
}

fn timeout_error(cgroup: &str) -> Error {
    let path = Path::new(LOCK_DIR).join(file_name(cgroup));
    let holder = fs::symlink_metadata(&path).ok().and_then(|m| {
        holder_of(
            &fs::read_to_string("/proc/locks").unwrap_or_default(),
            m.ino(),
        )
    });
    let who = match holder {
        Some(pid) => format!("process {pid} has held it for {} s", WAIT.as_secs()),
        None => format!("another process has held it for {} s", WAIT.as_secs()),
    };
    Error::refused(format!("cannot lock VRF cgroup {cgroup}"), who)
        .hint("a vrfexec there is stopped or stuck (see `ps`); try again when it has finished")
}

/// The pid holding an flock on inode `ino`, from /proc/locks
/// (`1: FLOCK  ADVISORY  WRITE 1234 00:19:5678 0 EOF`).
fn holder_of(proc_locks: &str, ino: u64) -> Option<u32> {
    proc_locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let inode: u64 = fields.get(5)?.rsplit(':').next()?.parse().ok()?;
        (inode == ino).then(|| fields.get(4)?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_escaped_and_bounded() {
        assert_eq!(file_name("/a/vrf/red"), "%2fa%2fvrf%2fred.lock");
        assert_eq!(file_name("/a%2f/b"), "%2fa%252f%2fb.lock");
        assert_ne!(file_name("/a/b"), file_name("/a%2fb"));
        let long = format!("/{}", "x".repeat(300));
        let name = file_name(&long);
        assert!(name.starts_with("hash-") && name.len() < 40, "{name}");
        assert_ne!(name, file_name(&format!("{long}y")));
    }

    #[test]
    fn file_names_map_back_to_cgroups() {
        for cgroup in ["/a/vrf/red", "/a%2f/b", "/"] {
            assert_eq!(cgroup_of(&file_name(cgroup)).as_deref(), Some(cgroup));
        }
        assert_eq!(cgroup_of("hash-0123456789abcdef.lock"), None);
        assert_eq!(cgroup_of("other"), None);
    }

    #[test]
    fn only_a_closed_root_directory_is_accepted() {
        assert!(check_lock_dir(true, 0, 0o40700).is_ok());
        let others = check_lock_dir(true, 0, 0o40755)
            .err()
            .map(|e| e.to_string());
        assert!(others.is_some_and(|m| m.contains("mode is 0755")));
        let owner = check_lock_dir(true, 1000, 0o40700)
            .err()
            .map(|e| e.to_string());
        assert!(owner.is_some_and(|m| m.contains("uid 1000") && m.contains("remove it")));
        assert!(check_lock_dir(false, 0, 0o120777).is_err());
    }

    #[test]
    fn finds_the_holder_in_proc_locks() {
        let text = "1: POSIX  ADVISORY  WRITE 99 00:19:42 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 1234 00:19:5678 0 EOF\n";
        assert_eq!(holder_of(text, 5678), Some(1234));
        assert_eq!(holder_of(text, 42), None);
    }
}

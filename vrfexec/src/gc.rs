//! `vrfexec gc`: removes the VRF cgroups no process uses any more.
//!
//! Like iproute2, vrfexec leaves `.../vrf/<NAME>` and its program in place after a run, so the
//! next run is warm. gc removes every such cgroup that is empty (cgroup.events says
//! `populated 0`) and has no child cgroups of its own, then the `vrf` level and the
//! `<netns>-ns` level above it when they are left empty. Removing a cgroup releases the
//! program attached to it, so kernel objects do not grow with the number of VRFs ever used. A
//! cgroup with processes is never touched, and one a run is setting up is skipped: both take
//! the same flock on the directory.
use std::{
    fs, io,
    os::fd::{AsRawFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use crate::{
    cgroup::{self, VRF_DIR},
    error::{Error, Result},
    Log,
};

/// What gc did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub removed: Vec<PathBuf>,
    /// Cgroups left alone: in use, busy, or not vrfexec's shape.
    pub kept: Vec<PathBuf>,
}

pub fn run(dry_run: bool, log: &Log) -> Result<Report> {
    let root = cgroup::CgroupRoot::open()?;
    let (access, _) = root.access_root();
    let mut report = Report::default();
    collect(access, dry_run, 0, &mut report).map_err(|e| {
        Error::os(
            format!("cannot walk the cgroup tree at {}", access.display()),
            e,
        )
    })?;
    for path in &report.removed {
        log.step(format_args!(
            "{} {}",
            if dry_run { "would remove" } else { "removed" },
            path.display()
        ));
    }
    Ok(report)
}

fn collect(dir: &Path, dry_run: bool, depth: usize, report: &mut Report) -> io::Result<()> {
    if depth > 64 {
        return Ok(());
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if depth > 0 && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            subdirs.push(entry.path());
        }
    }
    for sub in subdirs {
        if sub.file_name().is_some_and(|n| n == VRF_DIR) {
            gc_vrf_level(&sub, dry_run, report);
            // The `<netns>-ns` level exists only to hold `vrf`: drop it when left empty.
            let netns_level = dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("-ns"));
            if netns_level {
                remove_if_idle(dir, dry_run, report);
            }
        } else {
            collect(&sub, dry_run, depth + 1, report)?;
        }
    }
    Ok(())
}

/// `.../vrf`: each idle leaf, then the level itself if nothing is left in it.
fn gc_vrf_level(vrf: &Path, dry_run: bool, report: &mut Report) {
    if let Ok(entries) = fs::read_dir(vrf) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                // A --strict child is vrfexec's own: it goes first, if idle.
                let strict = entry.path().join(cgroup::STRICT_DIR);
                if strict.is_dir() {
                    remove_if_idle(&strict, dry_run, report);
                }
                remove_if_idle(&entry.path(), dry_run, report);
            }
        }
    }
    remove_if_idle(vrf, dry_run, report);
}

fn has_child_cgroups(dir: &Path) -> bool {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        })
        .unwrap_or(true)
}

/// Removes `dir` if no process is in it, it has no child cgroups and no run holds its lock.
fn remove_if_idle(dir: &Path, dry_run: bool, report: &mut Report) {
    let Ok(file) = fs::File::open(dir) else {
        return;
    };
    let fd = OwnedFd::from(file);
    // SAFETY: flock on an fd we own; released when it is closed at the end of this function.
    if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        report.kept.push(dir.to_path_buf());
        return;
    }
    let idle = matches!(cgroup::is_populated(dir), Ok(false)) && !has_child_cgroups(dir);
    // A child removed in a dry run is still there: judge the level by what would remain.
    let idle = idle
        || (dry_run
            && matches!(cgroup::is_populated(dir), Ok(false))
            && all_children_removed(dir, report));
    if !idle {
        report.kept.push(dir.to_path_buf());
        return;
    }
    if dry_run || fs::remove_dir(dir).is_ok() {
        report.removed.push(dir.to_path_buf());
    } else {
        report.kept.push(dir.to_path_buf());
    }
}

fn all_children_removed(dir: &Path, report: &Report) -> bool {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .all(|e| report.removed.contains(&e.path()))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup tree in a temp dir: cgroup.events files say who is populated.
    fn tree() -> PathBuf {
        let base = std::env::temp_dir().join(format!(
            "vrfexec-gc-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mk = |rel: &str, populated: bool| {
            let dir = base.join(rel);
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(
                dir.join("cgroup.events"),
                format!("populated {}\nfrozen 0\n", u8::from(populated)),
            )
            .expect("events");
        };
        mk("", true);
        mk("user", true);
        mk("user/vrf", true);
        mk("user/vrf/red", true);
        mk("user/vrf/blue", false);
        mk("user/r-ns", false);
        mk("user/r-ns/vrf", false);
        mk("user/r-ns/vrf/red", false);
        mk("svc", false);
        mk("svc/vrf", false);
        mk("svc/vrf/green", false);
        mk("svc/vrf/green/inner", false);
        base
    }

    #[test]
    fn dry_run_lists_what_would_go_and_keeps_busy_cgroups() {
        let base = tree();
        let mut report = Report::default();
        collect(&base, true, 0, &mut report).expect("walk");
        let rel = |paths: &[PathBuf]| {
            let mut v: Vec<String> = paths
                .iter()
                .map(|p| p.strip_prefix(&base).expect("below").display().to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            rel(&report.removed),
            [
                "user/r-ns",
                "user/r-ns/vrf",
                "user/r-ns/vrf/red",
                "user/vrf/blue"
            ]
        );
        // Populated ones, and a leaf with its own child cgroups, are kept.
        let kept = rel(&report.kept);
        for k in ["user/vrf", "user/vrf/red", "svc/vrf/green"] {
            assert!(kept.contains(&k.to_owned()), "{k} in {kept:?}");
        }
        fs::remove_dir_all(&base).expect("cleanup");
    }
}

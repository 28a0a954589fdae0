//! `vrfexec gc`: removes the VRF cgroups no process uses any more.
//!
//! Like iproute2, vrfexec leaves `.../vrf/<NAME>` and its program in place after a run, so the
//! next run is warm. gc removes every such cgroup that is empty (cgroup.events says
//! `populated 0`) and has no child cgroups of its own, then the `vrf` level and the
//! `<netns>-ns` level above it when they are left empty. Removing a cgroup releases the
//! program attached to it, so kernel objects do not grow with the number of VRFs ever used. A
//! cgroup with processes is never touched, and one a run is setting up is skipped: both take
//! the cgroup's lock (lock.rs) and gc never waits for it. A dry run takes no lock.
use std::{
    fs, io,
    path::{Path, PathBuf},
};

use crate::{
    cli::GcArgs,
    error::{Error, Result},
    log::Log,
    sys::privilege::Caller,
    vrf::{
        cgroup::{self, VRF_DIR},
        lock,
    },
};

/// Where the walk reads the tree, and the cgroup path found there (for the locks' names).
struct Tree<'a> {
    access: &'a Path,
    root: &'a str,
}

impl Tree<'_> {
    fn cgroup_of(&self, dir: &Path) -> String {
        let below = dir.strip_prefix(self.access).unwrap_or(dir);
        let root = self.root.trim_end_matches('/');
        format!("{root}/{}", below.display())
            .trim_end_matches('/')
            .to_owned()
    }
}

/// What gc did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub removed: Vec<PathBuf>,
    /// Cgroups left alone: in use, busy, or not vrfexec's shape.
    pub kept: Vec<PathBuf>,
}

pub fn run(args: &GcArgs, caller: &Caller) -> Result<u8> {
    super::root_only(caller, "gc")?;
    let report = collect_garbage(args.dry_run, &Log(args.verbose || args.dry_run))?;
    let verbose = Log(args.verbose);
    for path in &report.kept {
        verbose.step(format_args!(
            "kept {} (in use, being set up, or not vrfexec's)",
            path.display()
        ));
    }
    Ok(0)
}

/// Removes (or with `dry_run`, lists) the unused VRF cgroups and stale locks.
pub fn collect_garbage(dry_run: bool, log: &Log) -> Result<Report> {
    let root = cgroup::CgroupRoot::open()?;
    let (access, cgroup_root) = root.access_root();
    let tree = Tree {
        access,
        root: cgroup_root,
    };
    let mut report = Report::default();
    collect(&tree, access, dry_run, 0, &mut report).map_err(|e| {
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
    if !dry_run {
        for cgroup in lock::sweep(|cgroup| root.open_existing(cgroup).is_ok())? {
            log.step(format_args!("removed the lock of {cgroup} (cgroup gone)"));
        }
    }
    Ok(report)
}

fn collect(
    tree: &Tree<'_>,
    dir: &Path,
    dry_run: bool,
    depth: usize,
    report: &mut Report,
) -> io::Result<()> {
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
        if is_stranded_netns_level(&sub) {
            // A run killed between making `<netns>-ns` and its `vrf` child left it empty.
            remove_if_idle(tree, &sub, dry_run, report);
        } else if sub.file_name().is_some_and(|n| n == VRF_DIR) {
            gc_vrf_level(tree, &sub, dry_run, report);
            // The `<netns>-ns` level exists only to hold `vrf`: drop it when left empty.
            let netns_level = dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("-ns"));
            if netns_level {
                remove_if_idle(tree, dir, dry_run, report);
            }
        } else {
            collect(tree, &sub, dry_run, depth + 1, report)?;
        }
    }
    Ok(())
}

/// `<netns>-ns` without a `vrf` child, for a network namespace that `ip netns` names: the level
/// vrfexec and iproute2 make for runs in that namespace, left empty. Other directories named
/// `*-ns` are not vrfexec's to judge.
fn is_stranded_netns_level(dir: &Path) -> bool {
    let Some(netns) = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix("-ns"))
    else {
        return false;
    };
    !netns.is_empty()
        && !dir.join(VRF_DIR).exists()
        && Path::new(cgroup::NETNS_RUN_DIR).join(netns).exists()
}

/// `.../vrf`: each idle leaf, then the level itself if nothing is left in it.
fn gc_vrf_level(tree: &Tree<'_>, vrf: &Path, dry_run: bool, report: &mut Report) {
    // `vrfexec trace default`'s, directly below the level.
    gc_trace_children(tree, vrf, dry_run, report);
    if let Ok(entries) = fs::read_dir(vrf) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
                && trace_pid(&entry.path()).is_none()
            {
                // A --strict child and dead tracers' cgroups are vrfexec's own: they go
                // first, if idle.
                let strict = entry.path().join(cgroup::STRICT_DIR);
                if strict.is_dir() {
                    gc_trace_children(tree, &strict, dry_run, report);
                    remove_if_idle(tree, &strict, dry_run, report);
                }
                gc_trace_children(tree, &entry.path(), dry_run, report);
                remove_if_idle(tree, &entry.path(), dry_run, report);
            }
        }
    }
    remove_if_idle(tree, vrf, dry_run, report);
}

/// `trace:<pid>` below a VRF cgroup, its `strict` child or the `vrf` level (default's):
/// `vrfexec trace`'s, left by a tracer that was killed. Only a dead tracer's is removed (a live one's may not have its
/// command in it yet).
fn gc_trace_children(tree: &Tree<'_>, dir: &Path, dry_run: bool, report: &mut Report) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = trace_pid(&entry.path()) else {
            continue;
        };
        if tracer_alive(pid) {
            report.kept.push(entry.path());
        } else {
            remove_if_idle(tree, &entry.path(), dry_run, report);
        }
    }
}

/// The tracer's pid, if `dir` is a trace cgroup (`.../vrf[/<VRF>[/strict]]/trace:<pid>`).
fn trace_pid(dir: &Path) -> Option<i32> {
    let name = dir.file_name()?.to_str()?;
    let pid = name.strip_prefix(cgroup::TRACE_PREFIX)?.parse().ok()?;
    let parent = dir.parent()?;
    let leaf = if is_strict_child(parent) {
        parent.parent()?
    } else {
        parent
    };
    let default = leaf.file_name()? == VRF_DIR;
    let vrf = default || leaf.parent()?.file_name()? == VRF_DIR;
    (vrf && dir.is_dir()).then_some(pid)
}

/// Whether the tracer still runs: a process of that pid exists and is not a zombie (a killed
/// tracer its parent has not reaped yet holds nothing).
fn tracer_alive(pid: i32) -> bool {
    if matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    ) {
        return false;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        // No /proc to look at: count it as running, which keeps its cgroup.
        return true;
    };
    // "pid (comm) S ...": the state follows the last ')' (comm may hold anything).
    let state = stat
        .rfind(')')
        .and_then(|at| stat[at + 1..].split_whitespace().next());
    state != Some("Z")
}

/// The cgroup whose lock covers `dir`: the VRF cgroup's, for its `strict` and trace children.
fn lock_owner(dir: &Path) -> &Path {
    if is_strict_child(dir) {
        return dir.parent().unwrap_or(dir);
    }
    if trace_pid(dir).is_some() {
        let parent = dir.parent().unwrap_or(dir);
        return if is_strict_child(parent) {
            parent.parent().unwrap_or(parent)
        } else {
            parent
        };
    }
    dir
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
fn remove_if_idle(tree: &Tree<'_>, dir: &Path, dry_run: bool, report: &mut Report) {
    let held = if dry_run {
        None
    } else {
        // A `strict` child is set up under its VRF cgroup's lock (place.rs): take that one.
        let locked = lock_owner(dir);
        match lock::try_acquire(&tree.cgroup_of(locked)) {
            Ok(Some(held)) => Some(held),
            // Busy (a run is setting it up) or no safe lock: leave it alone.
            Ok(None) | Err(_) => {
                report.kept.push(dir.to_path_buf());
                return;
            }
        }
    };
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
        // The VRF cgroup's lock file goes with it (not with its `strict` or trace children).
        if let (Some(held), true) = (&held, lock_owner(dir) == dir) {
            held.unlink();
        }
        report.removed.push(dir.to_path_buf());
    } else {
        report.kept.push(dir.to_path_buf());
    }
}

/// `.../vrf/<VRF>/strict`, not a VRF named `strict` (`.../vrf/strict`).
fn is_strict_child(dir: &Path) -> bool {
    dir.file_name().is_some_and(|n| n == cgroup::STRICT_DIR)
        && dir
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .is_some_and(|n| n == VRF_DIR)
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
    fn strict_children_are_told_from_vrfs_named_strict() {
        assert!(is_strict_child(Path::new("/cg/a/vrf/red/strict")));
        assert!(!is_strict_child(Path::new("/cg/a/vrf/strict")));
        assert!(is_strict_child(Path::new("/cg/a/vrf/vrf/strict")));
    }

    #[test]
    fn lock_names_are_cgroup_paths() {
        let tree = Tree {
            access: Path::new("/proc/self/fd/5"),
            root: "/",
        };
        assert_eq!(
            tree.cgroup_of(Path::new("/proc/self/fd/5/a/vrf/red")),
            "/a/vrf/red"
        );
        let nested = Tree {
            access: Path::new("/sys/fs/cgroup"),
            root: "/container/",
        };
        assert_eq!(
            nested.cgroup_of(Path::new("/sys/fs/cgroup/vrf/red")),
            "/container/vrf/red"
        );
    }

    #[test]
    fn dry_run_lists_what_would_go_and_keeps_busy_cgroups() {
        let base = tree();
        let mut report = Report::default();
        let tree_at = Tree {
            access: &base,
            root: "/",
        };
        collect(&tree_at, &base, true, 0, &mut report).expect("walk");
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

    #[test]
    fn dead_tracers_cgroups_go_and_live_ones_stay() {
        let base = tree();
        let mk = |rel: &str| {
            let dir = base.join(rel);
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(dir.join("cgroup.events"), "populated 0\n").expect("events");
        };
        // Above any pid_max: no such process. This test's own pid: alive.
        let dead = "user/vrf/blue/trace:99999999";
        let dead_default = "user/vrf/trace:99999998";
        let live = format!("user/vrf/red/strict/trace:{}", std::process::id());
        mk(dead);
        mk(dead_default);
        mk("user/vrf/red/strict");
        mk(&live);
        // Not a trace cgroup: a VRF named like one, and a trace-like name too deep.
        assert_eq!(trace_pid(&base.join("user/vrf/trace.1")), None);
        assert_eq!(trace_pid(&base.join("user/vrf/red/x/trace:1")), None);
        assert_eq!(trace_pid(&base.join(dead_default)), Some(99_999_998));
        assert_eq!(trace_pid(&base.join(dead)), Some(99_999_999));
        assert_eq!(lock_owner(&base.join(&live)), base.join("user/vrf/red"));
        let mut report = Report::default();
        let tree_at = Tree {
            access: &base,
            root: "/",
        };
        collect(&tree_at, &base, true, 0, &mut report).expect("walk");
        assert!(report.removed.contains(&base.join(dead)));
        assert!(report.removed.contains(&base.join(dead_default)));
        assert!(report.removed.contains(&base.join("user/vrf/blue")));
        assert!(report.kept.contains(&base.join(&live)));
        assert!(report.kept.contains(&base.join("user/vrf/red/strict")));
        fs::remove_dir_all(&base).expect("cleanup");
    }
}

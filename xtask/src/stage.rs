//! vrfexec's two binaries, built and laid out as they are installed (see
//! vrfexec/src/run/launcher.rs): `PREFIX/bin/vrfexec` is the launcher, linked statically, which
//! serves a root caller's short form without the dynamic loader's start-up cost;
//! `PREFIX/lib/vrfexec/vrfexec-full` is the full build, linked dynamically, which it hands
//! everything else to (NSS: users, groups, host names; policy mode).
use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::workspace_root;

/// Where the full build goes under a prefix (vrfexec's `run::launcher::FULL_BUILD`).
pub const FULL_BUILD: &str = "lib/vrfexec/vrfexec-full";

#[derive(Clone, Copy, PartialEq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// How the launcher is compiled and linked: statically (`+crt-static`), and at a fixed address
/// (`relocation-model=static`), so it is neither a dynamic executable (no loader start-up) nor a
/// static-pie (no self-relocation, a fifth of a warm run's instructions; BENCHMARKS.md, run 8).
/// The price is ASLR for the launcher's own image, paid on purpose: it serves only callers
/// whose real uid is 0 and hands everything else (policy mode, `--user`, every non-root run of
/// the capable build) to the full build, which stays PIE, before it opens anything; what it
/// reads on the way is root's argv and environment and the kernel's answers. File
/// capabilities put on bin/vrfexec by mistake (the README says to put them on the full build)
/// are refused for every caller they would raise, a root under SECBIT_NOROOT included
/// (`sys::privilege::Caller`).
pub const LAUNCHER_RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static";

/// The two binaries of one profile.
pub struct Builds {
    /// The launcher, statically linked at a fixed address (LAUNCHER_RUSTFLAGS).
    pub fast: PathBuf,
    /// The full build, dynamically linked.
    pub full: PathBuf,
}

/// Builds both: `vrfexec-full` as usual, the launcher `vrfexec` for the host triple with
/// LAUNCHER_RUSTFLAGS (set for that target only, so build scripts, proc macros and the eBPF
/// build are compiled as always).
pub fn build(profile: Profile) -> Result<Builds> {
    let root = workspace_root();
    let host = host_triple()?;
    let release = profile == Profile::Release;
    let mut dynamic = vec!["build", "--package", "vrfexec", "--bin", "vrfexec-full"];
    if release {
        dynamic.push("--release");
    }
    crate::run_cmd("cargo", &dynamic)?;
    let mut fast = vec!["build", "--package", "vrfexec", "--bin", "vrfexec"];
    if release {
        fast.push("--release");
    }
    fast.extend(["--target", &host]);
    let flags_var = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        host.to_uppercase().replace(['-', '.'], "_")
    );
    eprintln!(
        "+ {flags_var}='{LAUNCHER_RUSTFLAGS}' cargo {}",
        fast.join(" ")
    );
    let status = Command::new("cargo")
        .args(&fast)
        .env(&flags_var, LAUNCHER_RUSTFLAGS)
        .current_dir(&root)
        .status()
        .context("failed to start cargo")?;
    if !status.success() {
        bail!("the static build of vrfexec failed: {status}");
    }
    let builds = Builds {
        fast: root.join(format!("target/{host}/{}/vrfexec", profile.dir())),
        full: root.join(format!("target/{}/vrfexec-full", profile.dir())),
    };
    for binary in [&builds.fast, &builds.full] {
        if !binary.is_file() {
            bail!("{} is missing after the build", binary.display());
        }
    }
    Ok(builds)
}

/// Builds both and lays them out under target/stage/PROFILE as they are installed; returns
/// the staged `bin/vrfexec`.
pub fn stage(profile: Profile) -> Result<PathBuf> {
    let builds = build(profile)?;
    let prefix = workspace_root().join("target/stage").join(profile.dir());
    let vrfexec = prefix.join("bin/vrfexec");
    place(&builds.fast, &vrfexec)?;
    place(&builds.full, &prefix.join(FULL_BUILD))?;
    Ok(vrfexec)
}

/// A hard link where possible (the debug builds are large), a copy otherwise. Only for the
/// stage: installed and packaged files are copies (`copy_binary`), since setcap and strip
/// would otherwise change cargo's own output through the link.
fn place(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    }
    match fs::remove_file(to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("failed to replace {}", to.display())),
    }
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to)
            .with_context(|| format!("failed to copy {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// Copies a binary to `to` (mode 755) through a temporary name and a rename, so a running copy
/// (a service in a VRF) keeps its file and new runs get the new one.
pub fn copy_binary(from: &Path, to: &Path) -> Result<()> {
    let dir = to
        .parent()
        .context("a binary's destination has a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let mut tmp = PathBuf::from(to);
    tmp.set_extension("vrfexec-install");
    fs::copy(from, &tmp).with_context(|| format!("failed to write {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to chmod {}", tmp.display()))?;
    fs::rename(&tmp, to).with_context(|| format!("failed to install {}", to.display()))
}

/// rustc's host triple (`rustc -vV`).
fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("failed to run rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host triple")
}

//! `cargo xtask setup`: install, only where missing, what building and testing vrfexec needs on
//! a fresh Debian machine. Every step checks first, so a second run changes nothing.
use std::{path::Path, process::Command};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::run_cmd;

/// Debian packages: LLVM for bpf-linker; qemu, busybox, cpio and kmod for the VM lab; the
/// clients and servers the host and VM scenarios drive.
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "qemu-system-x86",
    "busybox-static",
    "cpio",
    "kmod",
    "iproute2",
    "iputils-ping",
    "socat",
    "netcat-openbsd",
    "mtr-tiny",
    "traceroute",
    "curl",
    "wget",
    "python3",
    "apt-utils",
    "util-linux",
    "libcap2-bin",
    "lintian",
    "gcc",
    // libc.a for the static build (vrfexec/src/fast.rs); strip and readelf for the package.
    "libc6-dev",
    "binutils",
];

#[derive(Args, Default)]
pub struct SetupArgs {
    /// Skip fetching the VM kernel (only what building and host tests need).
    #[arg(long)]
    pub no_vm: bool,
}

pub fn run(args: &SetupArgs) -> Result<()> {
    apt_packages()?;
    nightly_components()?;
    bpf_linker()?;
    cargo_fuzz()?;
    if !args.no_vm {
        crate::vm::fetch_kernel(&crate::vm::KernelChoice::default())?;
    }
    Ok(())
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn apt_packages() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run_cmd("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    std::env::set_var("DEBIAN_FRONTEND", "noninteractive");
    run_cmd("apt-get", &args)
}

/// Nightly builds the eBPF crate (`-Z build-std=core` needs rust-src) and lints and formats it
/// (rustfmt.toml uses nightly-only import grouping).
const NIGHTLY_COMPONENTS: &[&str] = &["rust-src", "clippy", "rustfmt"];

fn nightly_components() -> Result<()> {
    let out = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .context("failed to run rustup")?;
    let listed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = NIGHTLY_COMPONENTS
        .iter()
        .copied()
        .filter(|c| !out.status.success() || !listed.lines().any(|l| l.starts_with(c)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut args = vec!["toolchain", "install", "nightly", "--profile", "minimal"];
    for component in &missing {
        args.extend(["--component", component]);
    }
    run_cmd("rustup", &args)
}

fn bpf_linker() -> Result<()> {
    let found = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Ok(());
    }
    // bpf-linker 0.13 links against LLVM 21-23; Debian's llvm-22-dev is found through LLVM_PREFIX.
    if !Path::new("/usr/lib/llvm-22").exists() {
        anyhow::bail!("/usr/lib/llvm-22 is missing after installing llvm-22-dev");
    }
    std::env::set_var("LLVM_PREFIX", "/usr/lib/llvm-22");
    run_cmd(
        "cargo",
        &[
            "install",
            "bpf-linker",
            "--version",
            "0.13.0",
            "--locked",
            "--no-default-features",
            "--features",
            "llvm-22",
        ],
    )
}

fn cargo_fuzz() -> Result<()> {
    let found = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Ok(());
    }
    run_cmd("cargo", &["install", "cargo-fuzz", "--locked"])
}

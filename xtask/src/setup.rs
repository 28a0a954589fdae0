//! `cargo xtask setup`: install, only where missing, what building and testing vrfexec needs on
//! a fresh Debian machine. Every step checks first, so a second run changes nothing.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};
use clap::Args;

use crate::{run_cmd, toolchain};

/// Debian packages: qemu, busybox, cpio and kmod for the VM lab; the clients and servers the
/// host and VM scenarios drive. (No LLVM package: bpf-linker uses the pinned toolchain's own
/// libLLVM, see vrfexec-ebpf/toolchain.rs.)
const APT_PACKAGES: &[&str] = &[
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
    // Syscall fault injection in the VM (tests/vm/faults.sh).
    "strace",
    // systemd as PID 1 in the VM (tests/vm/systemd.sh); udev makes the device units that
    // BindsTo= a VRF needs.
    "systemd",
    "udev",
    // The firewall boundary the README documents for a VRF (tests/vm/security.sh).
    "nftables",
    "lintian",
    "gcc",
    // libc.a for the static build (vrfexec/src/run/launcher.rs); strip and readelf for the package and
    // for reading which libLLVM bpf-linker links.
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
    let toolchain = EbpfToolchain::pinned()?;
    toolchain.install()?;
    toolchain.install_linker()?;
    cargo_fuzz()?;
    if !args.no_vm {
        // The kernels `cargo xtask test` boots: Debian 11's, 12's and 13's.
        for kernel in [
            crate::vm::KernelChoice::Bullseye510,
            crate::vm::KernelChoice::Bookworm61,
            crate::vm::KernelChoice::Debian612,
        ] {
            crate::vm::fetch_kernel(&kernel)?;
        }
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

/// The pinned toolchain of the eBPF crate (vrfexec-ebpf/rust-toolchain.toml).
pub struct EbpfToolchain {
    /// Its rustup name, e.g. `nightly-2026-10-29`.
    pub name: String,
}

impl EbpfToolchain {
    pub fn pinned() -> Result<Self> {
        let name = toolchain::pinned(&crate::workspace_root().join("vrfexec-ebpf"))?;
        Ok(Self { name })
    }

    /// `+TOOLCHAIN`, for cargo's first argument.
    pub fn plus(&self) -> String {
        format!("+{}", self.name)
    }

    /// Installs the toolchain with its components (rust-src for `-Z build-std=core`, clippy
    /// and rustfmt for the eBPF crate's lints and rustfmt.toml's nightly-only import grouping),
    /// unless they are there.
    fn install(&self) -> Result<()> {
        let out = Command::new("rustup")
            .args([
                "component",
                "list",
                "--installed",
                "--toolchain",
                &self.name,
            ])
            .output()
            .context("failed to run rustup")?;
        let listed = String::from_utf8_lossy(&out.stdout);
        let missing: Vec<&str> = COMPONENTS
            .iter()
            .copied()
            .filter(|c| !out.status.success() || !listed.lines().any(|l| l.starts_with(c)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut args = vec!["toolchain", "install", &self.name, "--profile", "minimal"];
        for component in &missing {
            args.extend(["--component", component]);
        }
        run_cmd("rustup", &args)
    }

    fn sysroot(&self) -> Result<PathBuf> {
        let out = Command::new("rustc")
            .args([&self.plus(), "--print", "sysroot"])
            .output()
            .context("failed to run rustc")?;
        if !out.status.success() {
            bail!(
                "cannot find the sysroot of {}: {}; run `cargo xtask setup --no-vm`",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    }

    /// The toolchain's own libLLVM (`<sysroot>/lib/libLLVM.so.<major>.<minor>-rust-*`): the
    /// file name is also the soname bpf-linker records when it links against it.
    fn libllvm(&self) -> Result<PathBuf> {
        let lib = self.sysroot()?.join("lib");
        let entries =
            fs::read_dir(&lib).with_context(|| format!("cannot read {}", lib.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("libLLVM.so.") && toolchain::llvm_major(n).is_some()
                })
            })
            .collect();
        found.sort();
        match found.pop() {
            Some(path) => Ok(path),
            None => bail!(
                "{} ships no libLLVM.so.* in {}; pin a toolchain that does",
                self.name,
                lib.display()
            ),
        }
    }

    /// The LLVM major version rustc of this toolchain uses (`LLVM version: 23.1.4` in
    /// `rustc -vV`).
    pub fn llvm_major(&self) -> Result<u32> {
        let out = Command::new("rustc")
            .args([&self.plus(), "-vV"])
            .output()
            .context("failed to run rustc")?;
        let text = String::from_utf8_lossy(&out.stdout);
        rustc_llvm_major(&text)
            .with_context(|| format!("`rustc {} -vV` names no LLVM version", self.plus()))
    }

    /// Builds bpf-linker against this toolchain's libLLVM into its own directory
    /// (`~/.cache/vrfexec/bpf-linker/<toolchain>`), unless the one there already links that
    /// very library. About a minute; no Debian LLVM package is involved.
    fn install_linker(&self) -> Result<()> {
        let libllvm = self.libllvm()?;
        let soname = libllvm
            .file_name()
            .and_then(|n| n.to_str())
            .context("libLLVM has no file name")?
            .to_owned();
        let linker = toolchain::linker_path(&self.name)?;
        if linker.is_file() {
            let needed = needed_libraries(&linker)?;
            if needed.contains(&soname) && runs(&linker) {
                return Ok(());
            }
            eprintln!(
                "xtask: {} does not link {soname} (it links {}); rebuilding it",
                linker.display(),
                needed.join(", ")
            );
        }
        let major = toolchain::llvm_major(&soname).context("libLLVM name has no version")?;
        let root = toolchain::linker_root(&self.name)?;
        // bpf-linker's build script links `-lLLVM` from `$LLVM_PREFIX/lib` and records that
        // directory as its runpath: give it links to the toolchain's library, under both names.
        let prefix = root.join("llvm");
        let prefix_lib = prefix.join("lib");
        fs::create_dir_all(&prefix_lib)
            .with_context(|| format!("cannot create {}", prefix_lib.display()))?;
        for name in ["libLLVM.so", soname.as_str()] {
            let link = prefix_lib.join(name);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&libllvm, &link).with_context(|| {
                format!("cannot link {} to {}", link.display(), libllvm.display())
            })?;
        }
        std::env::set_var("LLVM_PREFIX", &prefix);
        let root_arg = root.to_string_lossy().into_owned();
        let feature = format!("llvm-{major}");
        run_cmd(
            "cargo",
            &[
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                &feature,
                "--root",
                &root_arg,
            ],
        )?;
        self.check_linker()
    }

    /// Fails unless the bpf-linker the build uses exists and links an LLVM of the same major
    /// version as this toolchain's rustc: the check `cargo xtask test` runs before building.
    pub fn check_linker(&self) -> Result<()> {
        let linker = toolchain::linker_path(&self.name)?;
        if !linker.is_file() {
            bail!(
                "bpf-linker for {} is missing ({}); run `cargo xtask setup --no-vm`",
                self.name,
                linker.display()
            );
        }
        linker_matches(
            &self.name,
            self.llvm_major()?,
            &linker,
            &needed_libraries(&linker)?,
        )
    }
}

/// Components every use of the pinned toolchain needs.
const COMPONENTS: &[&str] = &["rust-src", "clippy", "rustfmt"];

/// bpf-linker 0.13 links LLVM 21, 22 or 23 (its `llvm-<major>` features).
const BPF_LINKER_VERSION: &str = "0.13.0";

fn rustc_llvm_major(verbose_version: &str) -> Option<u32> {
    let version = verbose_version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))?;
    version.split('.').next()?.trim().parse().ok()
}

/// Compares the LLVM major of the toolchain's rustc with that of the libLLVM the linker needs.
fn linker_matches(
    toolchain: &str,
    toolchain_llvm: u32,
    linker: &Path,
    needed: &[String],
) -> Result<()> {
    let Some(linker_llvm) = needed.iter().find_map(|n| toolchain::llvm_major(n)) else {
        bail!(
            "bpf-linker {} links no shared libLLVM (it needs {}); run `cargo xtask setup --no-vm` \
             to build it against {toolchain}",
            linker.display(),
            needed.join(", ")
        );
    };
    if linker_llvm != toolchain_llvm {
        bail!(toolchain::mismatch_message(
            toolchain,
            toolchain_llvm,
            linker,
            linker_llvm
        ));
    }
    Ok(())
}

/// The DT_NEEDED entries of an ELF file, as `readelf -d` (binutils) prints them.
fn needed_libraries(path: &Path) -> Result<Vec<String>> {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(path)
        .output()
        .context("failed to run readelf (binutils)")?;
    if !out.status.success() {
        bail!(
            "readelf -d {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(parse_needed(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_needed(readelf: &str) -> Vec<String> {
    readelf
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| {
            let (_, rest) = l.split_once('[')?;
            let (name, _) = rest.split_once(']')?;
            Some(name.to_owned())
        })
        .collect()
}

fn runs(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
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

#[cfg(test)]
mod tests {
    use super::*;

    const READELF: &str = "
Dynamic section at offset 0x1d4c8e8 contains 31 entries:
  Tag        Type                         Name/Value
 0x000000000000001d (RUNPATH)            Library runpath: [/x/llvm/lib]
 0x0000000000000001 (NEEDED)             Shared library: [libLLVM.so.23.1-rust-1.101.0-nightly]
 0x0000000000000001 (NEEDED)             Shared library: [libgcc_s.so.1]
 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]
";

    #[test]
    fn reads_needed_libraries() {
        assert_eq!(
            parse_needed(READELF),
            [
                "libLLVM.so.23.1-rust-1.101.0-nightly",
                "libgcc_s.so.1",
                "libc.so.6"
            ]
        );
    }

    #[test]
    fn reads_rustc_llvm_major() {
        let text = "rustc 1.101.0-nightly (92ffebece 2026-10-28)\nhost: x86_64-unknown-linux-gnu\n\
                    release: 1.101.0-nightly\nLLVM version: 23.1.4\n";
        assert_eq!(rustc_llvm_major(text), Some(23));
        assert_eq!(rustc_llvm_major("rustc 1.95.0\n"), None);
    }

    #[test]
    fn a_linker_of_the_same_llvm_passes() {
        let needed = parse_needed(READELF);
        assert!(linker_matches("nightly-x", 23, Path::new("/b"), &needed).is_ok());
    }

    #[test]
    fn a_linker_of_another_llvm_fails_with_what_to_run() {
        // Debian's LLVM 22 bpf-linker with a nightly on LLVM 23: the failure of issue 14.
        let needed = vec!["libLLVM.so.22.1".to_owned(), "libc.so.6".to_owned()];
        let err = linker_matches("nightly-x", 23, Path::new("/usr/bin/bpf-linker"), &needed)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("LLVM 22") && err.contains("LLVM 23"), "{err}");
        assert!(err.contains("cargo xtask setup"), "{err}");
    }

    #[test]
    fn a_statically_linked_linker_fails() {
        let needed = vec!["libc.so.6".to_owned()];
        assert!(linker_matches("nightly-x", 23, Path::new("/b"), &needed).is_err());
    }
}

//! The toolchain that builds vrfexec-ebpf and the bpf-linker that goes with it: read in one way,
//! from one file (`rust-toolchain.toml` beside this one), by both vrfexec's build.rs and xtask,
//! which include this file with `#[path]`.
//!
//! rustc compiles the eBPF crate to LLVM bitcode and bpf-linker links it with its own LLVM; a
//! bitcode file from a newer LLVM cannot be read by an older one (`ERROR llvm: Invalid record`).
//! So the nightly is pinned, and `cargo xtask setup` builds bpf-linker against that nightly's
//! own libLLVM (every toolchain ships it as `<sysroot>/lib/libLLVM.so.<major>.<minor>-rust-*`)
//! into a directory named after the toolchain. The build names that bpf-linker to cargo
//! explicitly, so no other bpf-linker on PATH can stand in for it.

// Two crates include this file and each uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// The toolchain file, relative to the eBPF crate's directory.
pub const TOOLCHAIN_FILE: &str = "rust-toolchain.toml";

/// The environment variable with which cargo takes the BPF target's linker (cargo's config in
/// the environment: `target.bpfel-unknown-none.linker`).
pub const LINKER_ENV: &str = "CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER";

#[derive(serde::Deserialize)]
struct ToolchainFile {
    toolchain: Toolchain,
}

#[derive(serde::Deserialize)]
struct Toolchain {
    channel: String,
}

/// The pinned toolchain's name (for example `nightly-2026-10-29`), from the eBPF crate's
/// `rust-toolchain.toml`.
pub fn pinned(ebpf_dir: &Path) -> Result<String> {
    let path = ebpf_dir.join(TOOLCHAIN_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_pin(&text).with_context(|| format!("cannot read the toolchain pin in {}", path.display()))
}

fn parse_pin(text: &str) -> Result<String> {
    let file: ToolchainFile = toml::from_str(text)?;
    let channel = file.toolchain.channel.trim().to_owned();
    // A toolchain name becomes a directory name and a `rustup run` argument.
    if channel.is_empty()
        || !channel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        bail!("`{channel}` is not a toolchain name");
    }
    Ok(channel)
}

/// The cache every vrfexec build tool shares: `$XDG_CACHE_HOME/vrfexec` or `~/.cache/vrfexec`.
pub fn cache_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?,
        )
        .join(".cache"),
    };
    Ok(base.join("vrfexec"))
}

/// Where setup installs the bpf-linker built for `toolchain`: `<cache>/bpf-linker/<toolchain>`,
/// with the binary in `bin/` and the links to the toolchain's libLLVM in `llvm/lib/`.
pub fn linker_root(toolchain: &str) -> Result<PathBuf> {
    Ok(cache_dir()?.join("bpf-linker").join(toolchain))
}

/// The bpf-linker binary built for `toolchain`.
pub fn linker_path(toolchain: &str) -> Result<PathBuf> {
    Ok(linker_root(toolchain)?.join("bin").join("bpf-linker"))
}

/// The LLVM major version in a libLLVM file or soname: `libLLVM.so.23.1-rust-1.101.0-nightly`
/// (rustup's toolchains), `libLLVM-23-rust-...so` or `libLLVM.so.22.1` / `libLLVM-22.so`
/// (Debian's). None for any other name.
pub fn llvm_major(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("libLLVM.so.")
        .or_else(|| name.strip_prefix("libLLVM-"))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The one-line error for a bpf-linker whose LLVM is not the pinned toolchain's.
pub fn mismatch_message(
    toolchain: &str,
    toolchain_llvm: u32,
    linker: &Path,
    linker_llvm: u32,
) -> String {
    format!(
        "bpf-linker {} uses LLVM {linker_llvm} but the pinned eBPF toolchain {toolchain} uses LLVM \
         {toolchain_llvm}; run `cargo xtask setup --no-vm` to rebuild bpf-linker against {toolchain}",
        linker.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pin() {
        let text = "[toolchain]\nchannel = \"nightly-2026-10-29\"\ncomponents = [\"rust-src\"]\n";
        assert_eq!(parse_pin(text).ok().as_deref(), Some("nightly-2026-10-29"));
    }

    #[test]
    fn refuses_a_pin_that_is_not_a_name() {
        assert!(parse_pin("[toolchain]\nchannel = \"../x\"\n").is_err());
        assert!(parse_pin("[toolchain]\nchannel = \"\"\n").is_err());
        assert!(parse_pin("[toolchain]\n").is_err());
    }

    #[test]
    fn the_repository_pin_is_readable() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vrfexec-ebpf");
        let pin = pinned(&dir).ok();
        assert!(
            pin.as_deref().is_some_and(|p| p.starts_with("nightly-")),
            "{pin:?}"
        );
    }

    #[test]
    fn llvm_majors_from_library_names() {
        assert_eq!(llvm_major("libLLVM.so.23.1-rust-1.101.0-nightly"), Some(23));
        assert_eq!(llvm_major("libLLVM-23-rust-1.101.0-nightly.so"), Some(23));
        assert_eq!(llvm_major("libLLVM.so.22.1"), Some(22));
        assert_eq!(llvm_major("libLLVM-22.so"), Some(22));
        assert_eq!(llvm_major("libLLVMCore.so"), None);
        assert_eq!(llvm_major("libc.so.6"), None);
    }

    #[test]
    fn mismatch_says_what_to_run() {
        let message = mismatch_message("nightly-x", 23, Path::new("/b/bpf-linker"), 22);
        assert!(!message.contains('\n'));
        assert!(
            message.contains("LLVM 22") && message.contains("LLVM 23"),
            "{message}"
        );
        assert!(message.contains("cargo xtask setup"), "{message}");
    }
}

//! Builds `vrfexec-ebpf` for the bpfel target with the nightly toolchain and bpf-linker
//! (installed by `cargo xtask setup`) and leaves the object in OUT_DIR, where
//! `include_bytes_aligned!` embeds it. A plain `cargo build` therefore gives a complete binary.
use anyhow::{anyhow, Context as _};

fn main() -> anyhow::Result<()> {
    // vrfexec lives for milliseconds before it execs, so dynamic linking is a large part of
    // its run: pack the ~4000 relative relocations (DT_RELR, glibc >= 2.36), drop unneeded
    // libraries, and let ld optimise the hash tables. Binaries only: tests link as usual.
    for arg in ["-Wl,-z,pack-relative-relocs", "-Wl,--as-needed", "-Wl,-O1"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }

    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("MetadataCommand::exec")?;
    let ebpf_package = packages
        .into_iter()
        .find(|cargo_metadata::Package { name, .. }| name.as_str() == "vrfexec-ebpf")
        .ok_or_else(|| anyhow!("vrfexec-ebpf package not found"))?;
    let root_dir = ebpf_package
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("vrfexec-ebpf manifest has no parent directory"))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf_package.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
    .context(
        "building vrfexec-ebpf failed; run `cargo xtask setup` to install bpf-linker and rust-src",
    )
}

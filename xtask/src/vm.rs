//! The VM lab: a Debian kernel with the VRF driver under qemu (TCG). Placeholder; see the
//! helper's implementation.
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Default, ValueEnum)]
pub enum KernelChoice {
    /// Debian bookworm's linux-image-6.1.0-*-amd64.
    #[default]
    #[value(name = "6.1")]
    Bookworm61,
    /// Debian's linux-image-6.12.*-amd64 from the same archive.
    #[value(name = "6.12")]
    Debian612,
}

#[derive(Args)]
pub struct VmArgs {}

#[derive(Args)]
pub struct DemoArgs {}

pub fn fetch_kernel(_kernel: &KernelChoice) -> Result<()> {
    Ok(())
}

pub fn run(_args: &VmArgs) -> Result<()> {
    bail!("not implemented yet")
}

pub fn demo(_args: &DemoArgs) -> Result<()> {
    bail!("not implemented yet")
}

/// Runs the whole scenario suite in one boot; Err unless every scenario passed.
pub fn suite(_kernel: KernelChoice) -> Result<()> {
    bail!("not implemented yet")
}

//! `cargo xtask test`: the README's test command and what `.ci/run` calls. It installs what is
//! missing, checks formatting and lints, runs the unit, CLI and host tests, then the VM suite.
use anyhow::Result;
use clap::Args;

use crate::{run_cmd, run_cmd_env, setup, vm};

#[derive(Args)]
pub struct TestArgs {
    /// Skip the VM suite (real VRFs); everything else still runs.
    #[arg(long)]
    pub no_vm: bool,
    /// Kernel for the VM suite.
    #[arg(long, value_enum, default_value = "6.1")]
    pub kernel: vm::KernelChoice,
}

pub fn run(args: &TestArgs) -> Result<()> {
    setup::run(&setup::SetupArgs { no_vm: args.no_vm })?;
    let ebpf = setup::EbpfToolchain::pinned()?;
    // rustc and bpf-linker must share one LLVM major, or the eBPF build fails deep inside
    // bpf-linker (`Invalid record`): say so first, in one line with what to run.
    ebpf.check_linker()?;
    let plus = ebpf.plus();
    run_cmd("cargo", &[&plus, "fmt", "--all", "--check"])?;
    run_cmd(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--exclude",
            "vrfexec-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The eBPF crate only builds for the BPF target (no_std, no unwinding): its own pass.
    run_cmd(
        "cargo",
        &[
            &plus,
            "clippy",
            "--package",
            "vrfexec-ebpf",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run_cmd(
        "cargo",
        &["build", "--workspace", "--exclude", "vrfexec-ebpf"],
    )?;
    // The host suite skips everything where it cannot run (not root, no netns); here that is
    // a failure, not a pass.
    run_cmd_env(
        "cargo",
        &["test", "--workspace", "--exclude", "vrfexec-ebpf"],
        &[("VRFEXEC_HOST_SUITE_REQUIRED", "1")],
    )?;
    fuzz(&plus, 20)?;
    if !args.no_vm {
        // The suite installs the package in the guest (tests/vm/package.sh).
        crate::deb::build()?;
        vm::suite(args.kernel)?;
    }
    Ok(())
}

/// Runs each cargo-fuzz target (fuzz/) for `seconds`: the parsers of untrusted input (names
/// from the command line, the policy file) must never panic or accept a path escape.
pub fn fuzz(toolchain: &str, seconds: u32) -> Result<()> {
    let limit = format!("-max_total_time={seconds}");
    for target in ["names", "policy"] {
        run_cmd("cargo", &[toolchain, "fuzz", "run", target, "--", &limit])?;
    }
    Ok(())
}

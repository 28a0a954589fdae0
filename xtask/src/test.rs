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
    /// Kernel for the whole VM suite (repeatable); without it, the whole suite runs on Debian
    /// 12's 6.1 and the kernel-dependent part on Debian 11's 5.10 and 13's 6.12, one boot each.
    #[arg(long, value_enum)]
    pub kernel: Vec<vm::KernelChoice>,
}

/// The scenarios whose outcome depends on the kernel (binding, inheritance, re-created VRFs,
/// the fail-closed traps, mounts for /etc/vrf, link notifications, memlock, faults, FIB rules
/// and addresses, privilege, the two binaries), run on the other kernels. The rest (the same
/// client tools again, the built-in ping and route formatting, apt, the package) runs on 6.1:
/// a full suite under TCG takes about 15 minutes (25 on 5.10), and three would leave CI too
/// little of its 90. (Installing the package hung past the suite's 35 minutes on 5.10 once;
/// not yet understood, so it is not in this part.)
const KERNEL_DEPENDENT: &str = "^(curl-v4-red/|curl-v6-blue/|udp-v4-red/|ping-v4-blue/|recreate-\
    |inherit-|nest-|exit-status|concurrent-40|warm/|gc/|fail-closed/|dns/|wait/|fault/|memlock/\
    |check/|sec/|builds/)";

/// The kernels our users run: Debian 12 (the whole suite), 11 and 13 (the kernel-dependent
/// scenarios).
const KERNELS: [(vm::KernelChoice, Option<&str>); 3] = [
    (vm::KernelChoice::Bookworm61, None),
    (vm::KernelChoice::Bullseye510, Some(KERNEL_DEPENDENT)),
    (vm::KernelChoice::Debian612, Some(KERNEL_DEPENDENT)),
];

fn kernel_name(kernel: vm::KernelChoice) -> &'static str {
    match kernel {
        vm::KernelChoice::Bullseye510 => "5.10",
        vm::KernelChoice::Bookworm61 => "6.1",
        vm::KernelChoice::Debian612 => "6.12",
    }
}

/// The VM suite on each kernel, one boot each; all run even when one fails, and the result is
/// reported per kernel.
fn vm_suites(kernels: &[(vm::KernelChoice, Option<&str>)]) -> Result<()> {
    let mut results = Vec::new();
    for &(kernel, only) in kernels {
        let started = std::time::Instant::now();
        // The suite reads ONLY from the environment (tests/vm/suite.sh); xtask is one thread.
        match only {
            Some(only) => std::env::set_var("ONLY", only),
            None => std::env::remove_var("ONLY"),
        }
        let outcome = vm::suite(kernel);
        std::env::remove_var("ONLY");
        if let Err(err) = &outcome {
            eprintln!("xtask: VM suite on {}: {err:#}", kernel_name(kernel));
        }
        results.push((kernel, only.is_some(), outcome.is_ok(), started.elapsed()));
    }
    eprintln!("xtask: VM suite per kernel:");
    for (kernel, part, ok, took) in &results {
        eprintln!(
            "xtask:   Linux {:<5} {:<24} {} in {}m{:02}s",
            kernel_name(*kernel),
            if *part {
                "kernel-dependent part"
            } else {
                "whole suite"
            },
            if *ok { "passed" } else { "FAILED" },
            took.as_secs() / 60,
            took.as_secs() % 60
        );
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, _, ok, _)| !ok)
        .map(|(kernel, _, _, _)| kernel_name(*kernel))
        .collect();
    if !failed.is_empty() {
        anyhow::bail!("the VM suite failed on Linux {}", failed.join(", "));
    }
    Ok(())
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
        if args.kernel.is_empty() {
            vm_suites(&KERNELS)?;
        } else {
            let whole: Vec<_> = args.kernel.iter().map(|&k| (k, None)).collect();
            vm_suites(&whole)?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_dependent_part_is_one_extended_regex() {
        assert!(
            !KERNEL_DEPENDENT.contains(char::is_whitespace),
            "{KERNEL_DEPENDENT:?}"
        );
        assert!(KERNEL_DEPENDENT.starts_with("^(") && KERNEL_DEPENDENT.ends_with(')'));
        assert!(KERNEL_DEPENDENT.contains("|recreate-|inherit-|"));
        assert!(KERNEL_DEPENDENT.contains("|memlock/|check/|"));
        assert!(!KERNEL_DEPENDENT.contains("pkg/"));
    }
}

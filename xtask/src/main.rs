//! Project tasks: `cargo xtask <task>`. Everything CI and a newcomer need goes through here, so
//! that a fresh Debian machine gets from clone to green with the two commands in README.md.
mod deb;
mod install;
mod setup;
mod stage;
mod test;
#[path = "../../vrfexec-ebpf/toolchain.rs"]
mod toolchain;
mod vm;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "vrfexec project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing to build and test: apt packages, the pinned eBPF toolchain,
    /// bpf-linker built against its LLVM, cargo-fuzz, the VM kernel.
    ///
    /// The eBPF crate's nightly is pinned in vrfexec-ebpf/rust-toolchain.toml, because
    /// bpf-linker must use the same LLVM as that rustc. To move the pin, change `channel` there
    /// and run this again: it installs the toolchain and builds bpf-linker against its own
    /// libLLVM into ~/.cache/vrfexec/bpf-linker/<toolchain>. Running it twice changes nothing.
    Setup(setup::SetupArgs),
    /// Build the eBPF object (the same build vrfexec's build.rs runs).
    BuildEbpf,
    /// Build the Debian package (target/vrfexec_<version>-1_amd64.deb).
    Deb,
    /// Install vrfexec, its man pages and bash/zsh/fish completions under a prefix.
    Install(install::InstallArgs),
    /// Everything CI runs: setup, fmt, clippy, unit/CLI/host tests, and the VM suite.
    Test(test::TestArgs),
    /// Show vrfexec on a built-in lab of two VRFs with the same addresses (in the VM).
    Demo(vm::DemoArgs),
    /// Boot the VRF-capable Debian kernel under qemu and run a command or the suite in it.
    Vm(vm::VmArgs),
    /// Measure vrfexec against ip vrf exec in the VM lab (start-up, sockets, kernel objects).
    Bench {
        /// Kernel to benchmark on.
        #[arg(long, value_enum, default_value = "6.1")]
        kernel: vm::KernelChoice,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup(args) => setup::run(&args),
        Task::BuildEbpf => build_ebpf(),
        Task::Install(args) => install::run(&args),
        Task::Deb => deb::build().map(|_| ()),
        Task::Test(args) => test::run(&args),
        Task::Demo(args) => vm::demo(&args),
        Task::Vm(args) => vm::run(&args),
        Task::Bench { kernel } => vm::bench(kernel),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Runs a command in the workspace root, echoing it first; fails on a non-zero exit.
pub fn run_cmd(program: &str, args: &[&str]) -> Result<()> {
    run_cmd_env(program, args, &[])
}

/// [`run_cmd`] with extra environment variables.
pub fn run_cmd_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let shown: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("+ {shown}{program} {}", args.join(" "));
    let status = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("failed to start {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed: {status}", args.join(" "));
    }
    Ok(())
}

fn build_ebpf() -> Result<()> {
    // vrfexec's build.rs builds the eBPF crate through aya-build; building the package runs it.
    run_cmd("cargo", &["build", "--package", "vrfexec"])
}

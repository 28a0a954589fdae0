//! The VM lab: a Debian kernel with the VRF driver under qemu (TCG), booted with the host's root
//! filesystem shared read-only over virtio-9p under a tmpfs-backed overlay, so the guest has
//! every host tool and sees the workspace (and the staged vrfexec) at the same path.
//!
//! - `kernel`: fetch the kernel package into a cache with `apt-get download` + `dpkg -x`.
//! - `initramfs`: the per-boot initramfs (busybox, the modules needed to mount the root, the job).
//! - `qemu`: boot, stream the console, enforce the timeout, read the exit marker.
//!
//! The guest-side scripts are `vm/stage1.sh` (initramfs `/init`), `vm/stage2.sh` (PID 1 in the
//! overlay root) and `tests/vm/*.sh` (lab, suite, demo).
//!
//! - `chart`: the benchmark's chart, docs/bench.png, drawn from the numbers the bench prints.
mod chart;
mod initramfs;
mod kernel;
mod qemu;

use std::{path::Path, time::Duration};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};

pub use self::kernel::fetch_kernel;
use self::qemu::{Job, Show};
use crate::stage::{stage, Profile};

#[derive(Clone, Copy, Default, ValueEnum)]
pub enum KernelChoice {
    /// Debian bookworm's linux-image-6.1.0-*-amd64.
    #[default]
    #[value(name = "6.1")]
    Bookworm61,
    /// Debian's linux-image-6.12.*-amd64 from the same archive.
    #[value(name = "6.12")]
    Debian612,
    /// Debian 11 (bullseye)'s linux-image-5.10.0-*-amd64, the last before 5.11's memlock
    /// change, fetched with a private apt configuration (the host's is left alone).
    #[value(name = "5.10")]
    Bullseye510,
}

impl KernelChoice {
    fn label(self) -> &'static str {
        match self {
            KernelChoice::Bookworm61 => "6.1",
            KernelChoice::Debian612 => "6.12",
            KernelChoice::Bullseye510 => "5.10",
        }
    }
}

#[derive(Args)]
pub struct VmArgs {
    #[command(subcommand)]
    action: VmAction,
}

#[derive(Subcommand)]
enum VmAction {
    /// Download and unpack the VM kernel into the cache (nothing happens if it is there).
    Fetch {
        /// Which Debian kernel.
        #[arg(long, value_enum, default_value = "6.1")]
        kernel: KernelChoice,
    },
    /// Boot the VM and run a command in it (through `bash -c`, in the current directory);
    /// exits with the command's status.
    Run(RunArgs),
    /// Build vrfexec, boot the VM once and run the scenario suite (tests/vm/suite.sh).
    Suite {
        /// Which Debian kernel.
        #[arg(long, value_enum, default_value = "6.1")]
        kernel: KernelChoice,
    },
    /// Build the Debian package, boot the VM once with systemd as PID 1 and run the services
    /// scenarios (tests/vm/systemd.sh): units.conf, way 1, sockets, VRFs that come and go.
    Systemd {
        /// Which Debian kernel.
        #[arg(long, value_enum, default_value = "6.1")]
        kernel: KernelChoice,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Which Debian kernel.
    #[arg(long, value_enum, default_value = "6.1")]
    kernel: KernelChoice,
    /// Kill the VM and fail after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Also show the guest's boot output (normally only shown when the boot fails).
    #[arg(long)]
    verbose: bool,
    /// Boot systemd as PID 1 and run the command as its one service.
    #[arg(long)]
    systemd: bool,
    /// The command and its arguments, joined with spaces and run with `bash -c` (like ssh).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Which Debian kernel.
    #[arg(long, value_enum, default_value = "6.1")]
    kernel: KernelChoice,
    /// Kill the VM and fail after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

/// Timeout for the whole suite in one boot. Under TCG a full run takes about 15 minutes on this
/// machine kind (2 cores) when nothing else runs; the margin is for a busy host.
const SUITE_TIMEOUT: Duration = Duration::from_secs(35 * 60);

pub fn run(args: &VmArgs) -> Result<()> {
    match &args.action {
        VmAction::Fetch { kernel } => fetch_kernel(kernel),
        VmAction::Suite { kernel } => suite(*kernel),
        VmAction::Systemd { kernel } => {
            crate::deb::build()?;
            systemd(*kernel)
        }
        VmAction::Run(run) => run_command(run),
    }
}

fn run_command(args: &RunArgs) -> Result<()> {
    let kernel = kernel::ensure(args.kernel)?;
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let job = Job {
        command: args.command.join(" "),
        cwd: path_str(&cwd)?.to_owned(),
        env: if args.systemd {
            vec![systemd_init()]
        } else {
            Vec::new()
        },
    };
    let show = if args.verbose {
        Show::All
    } else {
        Show::AfterStart
    };
    let outcome = qemu::boot(&kernel, &job, Duration::from_secs(args.timeout), show)?;
    if outcome.status != 0 {
        eprintln!(
            "xtask: command in the VM exited with status {}",
            outcome.status
        );
        // The command's own status, as documented; `std::process::exit` skips no cleanup here
        // because the VM's temporary files were removed when `boot` returned.
        std::process::exit(outcome.status.clamp(1, 255));
    }
    Ok(())
}

pub fn demo(args: &DemoArgs) -> Result<()> {
    crate::setup::run(&crate::setup::SetupArgs { no_vm: false })?;
    let vrfexec = stage(Profile::Debug)?;
    let root = crate::workspace_root();
    let kernel = kernel::ensure(args.kernel)?;
    eprintln!(
        "xtask: booting Linux {} under qemu (TCG, no KVM: this takes a little while)...",
        kernel.version
    );
    let job = Job {
        command: "bash tests/vm/demo.sh".to_owned(),
        cwd: path_str(&root)?.to_owned(),
        env: vec![("VRFEXEC".to_owned(), path_str(&vrfexec)?.to_owned())],
    };
    let outcome = qemu::boot(
        &kernel,
        &job,
        Duration::from_secs(args.timeout),
        Show::AfterStart,
    )?;
    if outcome.status != 0 {
        bail!("the demo failed in the VM (exit status {})", outcome.status);
    }
    Ok(())
}

/// `cargo xtask bench`: builds release vrfexec (both builds, laid out as installed), runs
/// tests/vm/bench.sh in one boot, writes its tables to target/bench.md (BENCHMARKS.md records
/// a run) and draws docs/bench.png (README's chart) from the medians it printed.
pub fn bench(kernel: KernelChoice) -> Result<()> {
    let vrfexec = stage(Profile::Release)?;
    let root = crate::workspace_root();
    let kernel = kernel::ensure(kernel)?;
    eprintln!(
        "xtask: benchmark on Linux {} (qemu TCG, one boot; about 15 minutes)",
        kernel.version
    );
    let job = Job {
        command: "bash tests/vm/bench.sh".to_owned(),
        cwd: path_str(&root)?.to_owned(),
        env: vec![("VRFEXEC".to_owned(), path_str(&vrfexec)?.to_owned())],
    };
    let outcome = qemu::boot(
        &kernel,
        &job,
        Duration::from_secs(60 * 60),
        Show::AfterStart,
    )?;
    if outcome.status != 0 {
        bail!(
            "the benchmark failed in the VM (exit status {})",
            outcome.status
        );
    }
    let (chart_lines, tables): (Vec<&String>, Vec<&String>) = outcome
        .output
        .iter()
        .partition(|line| line.starts_with(chart::PREFIX));
    let report = root.join("target/bench.md");
    let mut text = tables
        .iter()
        .map(|line| line.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    text.truncate(text.trim_end().len());
    std::fs::write(&report, text + "\n")
        .with_context(|| format!("failed to write {}", report.display()))?;
    eprintln!("xtask: tables written to {}", report.display());
    let line = chart_lines
        .last()
        .context("the benchmark printed no `bench-chart` line to draw docs/bench.png from")?;
    let png = chart::render(&chart::Numbers::parse(line)?);
    let image = root.join("docs/bench.png");
    std::fs::create_dir_all(root.join("docs"))
        .with_context(|| format!("failed to create {}", root.join("docs").display()))?;
    std::fs::write(&image, png).with_context(|| format!("failed to write {}", image.display()))?;
    eprintln!("xtask: chart drawn to {}", image.display());
    Ok(())
}

/// Builds vrfexec (both builds, debug, laid out as installed) and runs the whole scenario suite
/// on it in one boot; Err unless every scenario passed.
pub fn suite(kernel: KernelChoice) -> Result<()> {
    let vrfexec = stage(Profile::Debug)?;
    let env = vec![("VRFEXEC".to_owned(), path_str(&vrfexec)?.to_owned())];
    scenarios(kernel, "VM suite", "tests/vm/suite.sh", env, SUITE_TIMEOUT)
}

/// What makes stage 2 exec systemd as PID 1 (xtask/src/vm/stage2.sh).
fn systemd_init() -> (String, String) {
    ("VM_INIT".to_owned(), "systemd".to_owned())
}

/// Timeout for the services scenarios' boot (about 5 minutes under TCG).
const SYSTEMD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Boots the VM with systemd as PID 1 and runs tests/vm/systemd.sh, which installs the Debian
/// package built before (`cargo xtask deb`); Err unless every scenario passed.
pub fn systemd(kernel: KernelChoice) -> Result<()> {
    let env = vec![systemd_init()];
    let script = "tests/vm/systemd.sh";
    scenarios(
        kernel,
        "services under systemd",
        script,
        env,
        SYSTEMD_TIMEOUT,
    )
}

/// Boots `kernel` once and runs the scenario script `script` (it reports through
/// tests/vm/report.sh) in the workspace with `env`, plus ONLY=REGEX from xtask's environment
/// (only the matching scenarios run, for debugging); Err unless every scenario passed.
fn scenarios(
    kernel: KernelChoice,
    what: &str,
    script: &str,
    mut env: Vec<(String, String)>,
    timeout: Duration,
) -> Result<()> {
    let root = crate::workspace_root();
    let kernel = kernel::ensure(kernel)?;
    eprintln!(
        "xtask: {what} on Linux {} (qemu TCG, one boot)",
        kernel.version
    );
    if let Some(only) = std::env::var("ONLY").ok().filter(|o| !o.is_empty()) {
        env.push(("ONLY".to_owned(), only));
    }
    let job = Job {
        command: format!("bash {script}"),
        cwd: path_str(&root)?.to_owned(),
        env,
    };
    let outcome = qemu::boot(&kernel, &job, timeout, Show::AfterStart)?;
    judge_suite(outcome.status, parse_summary(&outcome.output))
}

/// The counts from the suite's last `vm: N passed, N failed, N skipped` line.
#[derive(Debug, PartialEq)]
struct Summary {
    passed: u32,
    failed: u32,
    skipped: u32,
}

fn parse_summary(output: &[String]) -> Option<Summary> {
    output.iter().rev().find_map(|line| {
        let rest = line.trim().strip_prefix("vm: ")?;
        let mut counts = rest.split(", ").map(|part| {
            let (n, word) = part.split_once(' ')?;
            Some((n.parse::<u32>().ok()?, word))
        });
        let (passed, w1) = counts.next()??;
        let (failed, w2) = counts.next()??;
        let (skipped, w3) = counts.next()??;
        if counts.next().is_some() || (w1, w2, w3) != ("passed", "failed", "skipped") {
            return None;
        }
        Some(Summary {
            passed,
            failed,
            skipped,
        })
    })
}

fn judge_suite(status: i32, summary: Option<Summary>) -> Result<()> {
    let Some(s) = summary else {
        bail!(
            "VM suite: no `vm: N passed, N failed, N skipped` line in the output \
             (suite exit status {status})"
        );
    };
    let counts = format!(
        "{} passed, {} failed, {} skipped",
        s.passed, s.failed, s.skipped
    );
    if s.failed > 0 {
        bail!("VM suite failed: {counts}");
    }
    if s.passed == 0 {
        bail!("VM suite passed nothing: {counts}");
    }
    if status != 0 {
        bail!("VM suite exited with status {status} ({counts})");
    }
    eprintln!("xtask: VM suite OK: {counts}");
    Ok(())
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn summary_is_parsed_from_the_last_matching_line() {
        let out = lines(&[
            "PASS a",
            "vm: 9 passed, 9 failed, 9 skipped",
            "vm: 3 passed, 0 failed, 1 skipped",
            "after",
        ]);
        assert_eq!(
            parse_summary(&out),
            Some(Summary {
                passed: 3,
                failed: 0,
                skipped: 1
            })
        );
    }

    #[test]
    fn malformed_summaries_are_ignored() {
        for bad in [
            "vm: 3 passed, 0 failed",
            "vm: 3 passed, 0 failed, 1 skipped, 2 more",
            "vm: x passed, 0 failed, 1 skipped",
            "vm: 3 failed, 0 passed, 1 skipped",
        ] {
            assert_eq!(parse_summary(&lines(&[bad])), None, "{bad}");
        }
    }

    #[test]
    fn suite_verdicts() {
        let ok = |p, f| {
            Some(Summary {
                passed: p,
                failed: f,
                skipped: 0,
            })
        };
        assert!(judge_suite(0, ok(5, 0)).is_ok());
        assert!(judge_suite(0, ok(5, 1)).is_err());
        assert!(judge_suite(0, ok(0, 0)).is_err());
        assert!(judge_suite(1, ok(5, 0)).is_err());
        assert!(judge_suite(0, None).is_err());
    }
}

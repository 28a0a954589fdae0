//! The VM kernel: Debian's `linux-image-*-amd64`, fetched with `apt-get download` and unpacked
//! with `dpkg -x` into `~/.cache/vrfexec/vm/<version>/root` (never installed on the host), with
//! `depmod -b` run there so the guest can `modprobe` from it.
//!
//! Cache layout (`$XDG_CACHE_HOME` or `~/.cache`, then `vrfexec/vm/`):
//! - `<version>/root/{boot,lib}`: the unpacked package, plus `modules.dep` from depmod;
//! - `<version>/ready`: written last, so a half-done unpack is never used;
//! - `choice-<6.1|6.12>`: the version that choice resolved to (no apt query once cached).
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use super::KernelChoice;

/// A fetched kernel, ready to boot.
pub struct Kernel {
    /// `uname -r` of the guest, e.g. `6.1.0-56-amd64`.
    pub version: String,
    /// The unpacked package (`boot/vmlinuz-*`, `lib/modules/<version>`).
    pub root: PathBuf,
    /// The cache directory (`~/.cache/vrfexec/vm`), also used for per-boot scratch files.
    pub cache: PathBuf,
}

impl Kernel {
    pub fn vmlinuz(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.version))
    }

    pub fn modules(&self) -> PathBuf {
        self.root.join(format!("lib/modules/{}", self.version))
    }
}

/// Downloads and unpacks the kernel for `choice` unless it is cached; quiet when it is.
pub fn fetch_kernel(choice: &KernelChoice) -> Result<()> {
    ensure(*choice).map(|_| ())
}

/// The cached kernel for `choice`, fetching it first if needed.
pub fn ensure(choice: KernelChoice) -> Result<Kernel> {
    let cache = cache_dir()?;
    let choice_file = cache.join(format!("choice-{}", choice.label()));
    if let Ok(version) = fs::read_to_string(&choice_file) {
        let version = version.trim().to_owned();
        if let Some(kernel) = cached(&cache, &version) {
            return Ok(kernel);
        }
    }
    let package = resolve_package(&cache, choice)?;
    let version = package
        .strip_prefix("linux-image-")
        .with_context(|| format!("unexpected kernel package name {package}"))?
        .to_owned();
    let kernel = match cached(&cache, &version) {
        Some(kernel) => kernel,
        None => download(&cache, choice, &package, &version)?,
    };
    fs::write(&choice_file, format!("{version}\n"))
        .with_context(|| format!("failed to write {}", choice_file.display()))?;
    Ok(kernel)
}

fn cache_dir() -> Result<PathBuf> {
    let dir = crate::toolchain::cache_dir()?.join("vm");
    fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok(dir)
}

fn cached(cache: &Path, version: &str) -> Option<Kernel> {
    let dir = cache.join(version);
    let kernel = Kernel {
        version: version.to_owned(),
        root: dir.join("root"),
        cache: cache.to_owned(),
    };
    let complete = dir.join("ready").is_file()
        && kernel.vmlinuz().is_file()
        && kernel.modules().join("modules.dep").is_file();
    complete.then_some(kernel)
}

/// The meta package whose dependency names the newest kernel of that series.
fn meta_package(choice: KernelChoice) -> &'static str {
    match choice {
        KernelChoice::Bookworm61 => "linux-image-amd64",
        KernelChoice::Debian612 => "linux-image-6.12-amd64",
        KernelChoice::Bullseye510 => "linux-image-amd64",
    }
}

fn wanted_prefix(choice: KernelChoice) -> &'static str {
    match choice {
        KernelChoice::Bookworm61 => "linux-image-6.1.0-",
        KernelChoice::Debian612 => "linux-image-6.12.",
        KernelChoice::Bullseye510 => "linux-image-5.10.0-",
    }
}

/// The Debian release a choice comes from when the host's apt sources do not carry it.
fn private_suite(choice: KernelChoice) -> Option<&'static str> {
    match choice {
        KernelChoice::Bullseye510 => Some("bullseye"),
        KernelChoice::Bookworm61 | KernelChoice::Debian612 => None,
    }
}

/// apt options for `choice`: none for the host's own sources, or a private configuration
/// (`<cache>/apt-<suite>/`: its own sources.list, lists and archives) for another release.
/// The private sources list uses the mirror the host's apt sources already name, so no host
/// is written into this code, and the host's apt state is never touched.
fn apt_options(cache: &Path, choice: KernelChoice) -> Result<Vec<String>> {
    let Some(suite) = private_suite(choice) else {
        return Ok(Vec::new());
    };
    let dir = cache.join(format!("apt-{suite}"));
    for sub in ["lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("failed to create {}", dir.join(sub).display()))?;
    }
    let mirror = host_debian_mirror()?;
    let list = dir.join("sources.list");
    let line = format!(
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {suite} main\n"
    );
    if fs::read_to_string(&list).ok().as_deref() != Some(line.as_str()) {
        fs::write(&list, &line).with_context(|| format!("failed to write {}", list.display()))?;
    }
    let path = |p: &Path| super::path_str(p).map(str::to_owned);
    Ok(vec![
        "-o".into(),
        format!("Dir::Etc::SourceList={}", path(&list)?),
        "-o".into(),
        "Dir::Etc::SourceParts=/dev/null".into(),
        "-o".into(),
        format!("Dir::State::Lists={}", path(&dir.join("lists"))?),
        "-o".into(),
        format!("Dir::Cache={}", path(&dir.join("cache"))?),
        // As root apt hands downloads to `_apt`, which may not write into this cache.
        "-o".into(),
        "APT::Sandbox::User=root".into(),
    ])
}

/// The first Debian archive URI in the host's apt sources (deb822 `URIs:` or one-line `deb`
/// entries), skipping the security archive.
fn host_debian_mirror() -> Result<String> {
    let mut texts = Vec::new();
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        texts.push(text);
    }
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path.to_string_lossy().into_owned();
            if name.ends_with(".sources") || name.ends_with(".list") {
                texts.push(fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    texts
        .iter()
        .find_map(|text| debian_mirror_in(text))
        .context("no Debian archive in the host's apt sources to fetch the 5.10 kernel from")
}

fn debian_mirror_in(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let uri = if let Some(rest) = line.strip_prefix("URIs:") {
            rest.split_whitespace().next()?
        } else if let Some(rest) = line.strip_prefix("deb ") {
            rest.split_whitespace().find(|w| w.contains("://"))?
        } else {
            return None;
        };
        let uri = uri.trim_end_matches('/');
        (uri.ends_with("/debian") && !uri.contains("security")).then(|| uri.to_owned())
    })
}

/// Finds the versioned package (e.g. `linux-image-6.1.0-56-amd64`) through apt, running
/// `apt-get update` once if the package lists do not know it.
fn resolve_package(cache: &Path, choice: KernelChoice) -> Result<String> {
    let options = apt_options(cache, choice)?;
    if let Some(found) = query_package(&options, choice)? {
        return Ok(found);
    }
    eprintln!(
        "xtask: the apt lists know no {} kernel; running apt-get update",
        choice.label()
    );
    let mut args: Vec<&str> = options.iter().map(String::as_str).collect();
    args.extend(["update", "-qq"]);
    crate::run_cmd("apt-get", &args)?;
    if let Some(found) = query_package(&options, choice)? {
        return Ok(found);
    }
    bail!(
        "apt cannot find a Debian {} kernel ({}*-amd64, through the meta package {}); \
         add a Debian source that has it (for 6.12: bookworm-security/bookworm main, or \
         bookworm-backports) or use the default `--kernel 6.1`",
        choice.label(),
        wanted_prefix(choice),
        meta_package(choice)
    )
}

fn query_package(options: &[String], choice: KernelChoice) -> Result<Option<String>> {
    let out = Command::new("apt-cache")
        .args(options)
        .args(["depends", meta_package(choice)])
        .output()
        .context("failed to run apt-cache (is this a Debian machine?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = wanted_prefix(choice);
    let found = text.lines().find_map(|line| {
        let name = line.trim().strip_prefix("Depends:")?.trim();
        (name.starts_with(prefix) && name.ends_with("-amd64")).then(|| name.to_owned())
    });
    Ok(found)
}

fn download(cache: &Path, choice: KernelChoice, package: &str, version: &str) -> Result<Kernel> {
    eprintln!(
        "xtask: fetching {package} into {} (not installed)",
        cache.display()
    );
    let dir = cache.join(version);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("failed to remove {}", dir.display()))?;
    }
    let download = dir.join("download");
    fs::create_dir_all(&download)
        .with_context(|| format!("failed to create {}", download.display()))?;
    // As root apt hands downloads to the `_apt` user, which may not write into this cache.
    let status = Command::new("apt-get")
        .args(apt_options(cache, choice)?)
        .args(["download", "-q", "-o", "APT::Sandbox::User=root", package])
        .current_dir(&download)
        .status()
        .context("failed to run apt-get download")?;
    if !status.success() {
        bail!("`apt-get download {package}` failed: {status}");
    }
    let deb = fs::read_dir(&download)
        .with_context(|| format!("failed to list {}", download.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", download.display()))?;
    let root = dir.join("root");
    let deb_str = super::path_str(&deb)?;
    let root_str = super::path_str(&root)?.to_owned();
    run_quiet("dpkg", &["-x", deb_str, &root_str])?;
    let kernel = Kernel {
        version: version.to_owned(),
        root,
        cache: cache.to_owned(),
    };
    if !kernel.vmlinuz().is_file() || !kernel.modules().is_dir() {
        bail!("{package} did not contain boot/vmlinuz-{version} and lib/modules/{version}");
    }
    if !kernel
        .modules()
        .join("kernel/drivers/net")
        .read_dir()
        .is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("vrf.ko")))
        })
    {
        bail!("{package} has no vrf.ko module");
    }
    run_quiet("depmod", &["-b", &root_str, version])?;
    fs::remove_dir_all(&download)
        .with_context(|| format!("failed to remove {}", download.display()))?;
    fs::write(dir.join("ready"), format!("{package}\n"))
        .with_context(|| format!("failed to write {}/ready", dir.display()))?;
    eprintln!("xtask: kernel {version} ready in {}", dir.display());
    Ok(kernel)
}

fn run_quiet(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("failed to run {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed: {status}", args.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_debian_mirror_in_deb822_and_one_line_sources() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n\
                      Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n";
        assert_eq!(
            debian_mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let one_line = "# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            debian_mirror_in(one_line).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            debian_mirror_in("deb http://other.example/ubuntu jammy main\n"),
            None
        );
    }

    #[test]
    fn only_5_10_needs_a_private_apt() {
        assert_eq!(private_suite(KernelChoice::Bullseye510), Some("bullseye"));
        assert_eq!(private_suite(KernelChoice::Bookworm61), None);
        assert_eq!(
            wanted_prefix(KernelChoice::Bullseye510),
            "linux-image-5.10.0-"
        );
    }
}

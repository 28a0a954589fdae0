//! The per-boot initramfs, written directly as an uncompressed `newc` cpio archive (no root
//! needed for `/dev/console`, nothing to decompress under TCG): the host's static busybox, the
//! stage-1 `/init`, the modules needed to mount the root (virtio-pci, 9p, overlay and their
//! dependencies from `modules.dep`, minus what the kernel has built in, decompressed), and the
//! job (stage-2 script, command, directory, environment) under `/job`.
use std::{
    collections::{BTreeSet, HashMap},
    fs,
    path::Path,
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use super::{kernel::Kernel, qemu::Job};

const STAGE1: &str = include_str!("stage1.sh");
const STAGE2: &str = include_str!("stage2.sh");

/// Modules stage 1 loads before the root can be mounted (with their dependencies).
const ROOT_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay"];

const BUSYBOX: &str = "/bin/busybox";

pub fn build(kernel: &Kernel, job: &Job, nonce: &str) -> Result<Vec<u8>> {
    let busybox = fs::read(BUSYBOX).with_context(|| {
        format!("failed to read {BUSYBOX} (install the Debian package busybox-static)")
    })?;
    if has_interpreter(&busybox) {
        bail!("{BUSYBOX} is dynamically linked; install busybox-static instead of busybox");
    }
    let mut cpio = Cpio::default();
    for dir in [
        "bin", "dev", "proc", "sys", "newroot", "lower", "upper", "modules", "job",
    ] {
        cpio.dir(dir);
    }
    cpio.node("dev/console", 0o020_600, (5, 1));
    cpio.file("bin/busybox", 0o755, &busybox);
    cpio.file("init", 0o755, STAGE1.as_bytes());

    let mut order = String::new();
    for (name, path) in root_modules(kernel)? {
        let file = format!("{name}.ko");
        cpio.file(&format!("modules/{file}"), 0o644, &read_module(&path)?);
        order.push_str(&file);
        order.push('\n');
    }
    cpio.file("modules/order", 0o644, order.as_bytes());

    let mut env = String::new();
    let modules = kernel.modules();
    let vars = [
        ("VM_NONCE", nonce),
        ("VM_MODULES", super::path_str(&modules)?),
        ("VM_KERNEL", kernel.version.as_str()),
    ];
    for (key, value) in vars
        .iter()
        .map(|(k, v)| (*k, *v))
        .chain(job.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        env.push_str(&format!("export {key}={}\n", shell_quote(value)));
    }
    cpio.file("job/stage2.sh", 0o755, STAGE2.as_bytes());
    cpio.file("job/env", 0o644, env.as_bytes());
    cpio.file("job/cmd", 0o644, job.command.as_bytes());
    cpio.file("job/cwd", 0o644, job.cwd.as_bytes());
    Ok(cpio.finish())
}

/// Single-quotes `value` for bash.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// True if the ELF file has a PT_INTERP program header (i.e. it is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let at = phoff.saturating_add(i * usize::from(phentsize));
        elf.get(at..at.saturating_add(4)) == Some(&3u32.to_le_bytes()[..])
    })
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Module name of a `modules.dep` path (`kernel/fs/9p/9p.ko.xz` -> `9p`).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    normalize(stem)
}

/// The modules to load in stage 1, dependencies first, as (name, file) pairs.
fn root_modules(kernel: &Kernel) -> Result<Vec<(String, std::path::PathBuf)>> {
    let dir = kernel.modules();
    let dep_file = dir.join("modules.dep");
    let deps_text = fs::read_to_string(&dep_file)
        .with_context(|| format!("failed to read {}", dep_file.display()))?;
    let builtin_file = dir.join("modules.builtin");
    let builtin: BTreeSet<String> = fs::read_to_string(&builtin_file)
        .with_context(|| format!("failed to read {}", builtin_file.display()))?
        .lines()
        .map(module_name)
        .collect();
    let mut deps: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in deps_text.lines() {
        let Some((path, rest)) = line.split_once(':') else {
            continue;
        };
        let needs = rest.split_whitespace().map(module_name).collect();
        deps.insert(module_name(path), (path.to_owned(), needs));
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for name in ROOT_MODULES {
        visit(&normalize(name), &deps, &builtin, &mut seen, &mut order)?;
    }
    Ok(order
        .into_iter()
        .filter_map(|name| {
            let path = dir.join(&deps.get(&name)?.0);
            Some((name, path))
        })
        .collect())
}

fn visit(
    name: &str,
    deps: &HashMap<String, (String, Vec<String>)>,
    builtin: &BTreeSet<String>,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<String>,
) -> Result<()> {
    if builtin.contains(name) || !seen.insert(name.to_owned()) {
        return Ok(());
    }
    let Some((_, needs)) = deps.get(name) else {
        bail!("kernel module {name} is neither built in nor in modules.dep");
    };
    for need in needs {
        visit(need, deps, builtin, seen, order)?;
    }
    order.push(name.to_owned());
    Ok(())
}

/// Reads a module, decompressing `.ko.xz` / `.ko.zst` / `.ko.gz` with the host's tools so
/// busybox `insmod` needs no decompressor.
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        "xz"
    } else if name.ends_with(".zst") {
        "zstd"
    } else if name.ends_with(".gz") {
        "gzip"
    } else {
        return fs::read(path).with_context(|| format!("failed to read {name}"));
    };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .with_context(|| format!("failed to run {tool} to decompress {name}"))?;
    if !out.status.success() {
        bail!("`{tool} -dc {name}` failed: {}", out.status);
    }
    Ok(out.stdout)
}

/// A `newc` cpio archive being written.
#[derive(Default)]
struct Cpio {
    data: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), &[]);
    }

    fn node(&mut self, name: &str, mode: u32, rdev: (u32, u32)) {
        self.entry(name, mode, rdev, &[]);
    }

    fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | perm, (0, 0), data);
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.inode += 1;
        let nlink = if mode & 0o170_000 == 0o040_000 { 2 } else { 1 };
        let fields = [
            self.inode,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0, // check
        ];
        self.data.extend_from_slice(b"070701");
        for field in fields {
            self.data
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        assert_eq!(module_name("kernel/fs/9p/9p.ko.xz"), "9p");
        assert_eq!(
            module_name("kernel/drivers/virtio/virtio_pci.ko"),
            "virtio_pci"
        );
        assert_eq!(module_name("kernel/net/x/nf-foo.ko.zst"), "nf_foo");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn cpio_entries_are_aligned() {
        let mut cpio = Cpio::default();
        cpio.file("abc", 0o644, b"12345");
        let data = cpio.finish();
        assert_eq!(data.len() % 4, 0);
        assert!(data.starts_with(b"070701"));
    }
}

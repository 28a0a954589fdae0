//! Rebuild the eBPF object when bpf-linker changes (a new LLVM can change the output). vrfexec's
//! build.rs names the linker in the environment (`target.bpfel-unknown-none.linker`).
use std::env;

const LINKER_ENV: &str = "CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER";

fn main() {
    println!("cargo:rerun-if-env-changed={LINKER_ENV}");
    if let Some(linker) = env::var_os(LINKER_ENV) {
        println!("cargo:rerun-if-changed={}", linker.to_string_lossy());
    }
}

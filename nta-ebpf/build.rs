//! Codegen for the BPF target happens in bpf-linker, so CPU options go to it.
fn main() {
    println!("cargo::rerun-if-env-changed=CARGO_CFG_TARGET_ARCH");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("bpf") {
        // v3: 32-bit subregisters and the atomic fetch-and-op instructions
        // (Linux 5.12+) that the per-source counters and port sketch rely on.
        println!("cargo::rustc-link-arg=--cpu-features=+alu32");
    }
}

//! Generates the control-plane code and the file descriptor set (for gRPC server reflection).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("control_descriptor.bin"))
        .compile_protos(&["intelmq/control/v1/control.proto"], &["."])?;
    println!("cargo:rerun-if-changed=intelmq/control/v1/control.proto");
    Ok(())
}

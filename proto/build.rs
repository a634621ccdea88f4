fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::configure().compile_protos(&["intelmq/control/v1/control.proto"], &["."])?;
    println!("cargo:rerun-if-changed=intelmq/control/v1/control.proto");
    Ok(())
}

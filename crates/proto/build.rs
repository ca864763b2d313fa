//! Compiles every contract in `proto/` with protox (no protoc needed) and
//! keeps the encoded descriptor sets for gRPC server reflection.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "msgc/v1/bus.proto",
    "msgc/v1/mesh.proto",
    "eccluster/v1/node.proto",
    "eccluster/v1/logs.proto",
    "eccluster/v1/move.proto",
    "eccluster/v1/console.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let root = root.canonicalize()?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    let files = protox::compile(PROTOS, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // One descriptor set per service family, so each server's reflection
    // lists only what it serves.
    for (package, name) in [
        ("msgc.", "msgc_descriptor.bin"),
        ("eccluster.", "eccluster_descriptor.bin"),
    ] {
        let subset = prost_types::FileDescriptorSet {
            file: files
                .file
                .iter()
                .filter(|f| f.package().starts_with(package))
                .cloned()
                .collect(),
        };
        std::fs::write(out.join(name), subset.encode_to_vec())?;
    }
    tonic_prost_build::configure()
        .bytes(".")
        // A peer message is one enum; an install inline would make every
        // variant as large as it.
        .boxed(".msgc.v1.Install.record")
        .boxed(".msgc.v1.FlushState.holds")
        .compile_fds(files)?;
    Ok(())
}

//! Compiles the vendored protos with protox, so no protoc is needed:
//! - the Kubernetes API protos (proto/k8s, see its README) into a
//!   FileDescriptorSet that src/k8s.rs embeds and decodes with prost-reflect;
//! - the CRI v1 API (proto/cri) into tonic gRPC clients for src/cri.rs.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new("k8s");
    println!("cargo:rerun-if-changed=k8s");
    let mut files = Vec::new();
    collect(root, &mut files)?;
    files.sort();
    let files: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;
    let mut compiler = protox::Compiler::new([root])?;
    // Comments are most of the protos' size and the runtime needs none of them.
    compiler.include_source_info(false).include_imports(true);
    compiler.open_files(&files)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("k8s_descriptors.bin");
    std::fs::write(out, compiler.encode_file_descriptor_set())?;
    cri()
}

fn cri() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=cri");
    let mut compiler = protox::Compiler::new(["cri"])?;
    compiler.include_imports(true);
    compiler.open_files(["runtime/v1/api.proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

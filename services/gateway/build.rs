//! Rebuilds the crate when a migration is added or changed
//! (`embed_migrations!` reads migrations/catalog at compile time, and neither
//! cargo nor incremental compilation would notice a new folder otherwise),
//! and embeds the browser apps Vite built into web/dist (the gateway stays
//! one file): `$OUT_DIR/web_assets.rs` lists each file with its bytes.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/catalog");
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    collect(&dist, &mut files);
    if !files.iter().any(|f| f.ends_with("guest.html")) {
        panic!(
            "web/dist has no guest.html: the browser apps are not built. Run \
             `bash scripts/lib/deps.sh web` (npm ci and npm run build in web/), \
             then build again."
        );
    }
    files.sort();
    let mut out = String::from("/// The files of web/dist: (path under dist, bytes).\n");
    out.push_str("pub static ASSETS: &[(&str, &[u8])] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(&dist)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let abs = file.canonicalize().unwrap();
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("web_assets.rs");
    std::fs::write(target, out).unwrap();
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

//! Rebuilds the crate when a migration is added or changed:
//! `embed_migrations!` reads migrations/faces at compile time, and neither
//! cargo nor incremental compilation would notice a new folder otherwise.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/faces");
}

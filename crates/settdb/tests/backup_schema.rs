//! The checked-in protobuf code (src/backup/pb.rs) is what prost-build generates from the schema
//! (proto/backup.proto): a change to either without the other fails here. With
//! `SETTDB_REGENERATE_PB=1` the test rewrites pb.rs instead.

use std::path::Path;

#[test]
fn generated_code_matches_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::compile(["backup.proto"], [root.join("proto")]).expect("schema compiles");
    let out = tempfile::tempdir().expect("temp dir");
    prost_build::Config::new()
        // Byte fields as `bytes::Bytes`: decoding a frame held in `Bytes` then slices values
        // out of it instead of copying each one.
        .bytes(["."])
        .out_dir(out.path())
        .compile_fds(fds)
        .expect("prost-build generates");
    let generated = std::fs::read_to_string(out.path().join("settdb.backup.rs")).expect("output");
    let checked_in = root.join("src/backup/pb.rs");
    if std::env::var_os("SETTDB_REGENERATE_PB").is_some() {
        std::fs::write(&checked_in, &generated).expect("write pb.rs");
    }
    let current = std::fs::read_to_string(&checked_in).unwrap_or_default();
    assert!(
        current == generated,
        "src/backup/pb.rs is not what proto/backup.proto generates: run this test with \
         SETTDB_REGENERATE_PB=1"
    );
}

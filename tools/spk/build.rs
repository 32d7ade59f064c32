//! Generates the Rust readers and builders of `schema/package.capnp` (needs Debian's `capnp`).

fn main() {
    println!("cargo:rerun-if-changed=schema/package.capnp");
    capnpc::CompilerCommand::new()
        .src_prefix("schema")
        .file("schema/package.capnp")
        .run()
        .expect("compiling schema/package.capnp (is Debian's capnproto installed?)");
}

//! The packer driven as a user drives it: `spk keygen`, `spk pack` with the project's real
//! package definition, then `spk verify`/`unpack`; and the package checked apart from this
//! crate's code: libsodium (PyNaCl) opens the signature and Debian's `capnp` decodes the archive,
//! the manifest and the bridge configuration with a schema this test writes itself.
//!
//! One package is packed per test run (`fixture()`); tests that need a broken input copy it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use spk::Limits;

const SPK: &str = env!("CARGO_BIN_EXE_spk");
const MAGIC: [u8; 8] = [0x8f, 0xc6, 0xcd, 0xef, 0x45, 0x1a, 0xea, 0x96];

/// Sandstorm's types as this test reads them: only what it checks, with Sandstorm's ids and
/// ordinals (fields it does not read are `AnyPointer`, which keeps their slots).
const TEST_SCHEMA: &str = r#"@0xdf9bc20172856a3a;
struct LocalizedText @0x8b5db772377be249 { defaultText @0 :Text; localizations @1 :AnyPointer; }
struct KeyValue @0x94a081e4abb13424 { key @0 :Text; value @1 :Text; }
struct PermissionDef @0xf144a5e58889dafb {
  title @0 :LocalizedText; description @1 :LocalizedText; obsolete @2 :Bool; name @3 :Text;
}
struct RoleDef @0xcb3f7064eae4dc5a {
  title @0 :LocalizedText; verbPhrase @1 :LocalizedText; description @2 :LocalizedText;
  permissions @3 :List(Bool); obsolete @4 :Bool; default @5 :Bool;
}
struct ViewInfo @0xbc5e354741a8e665 { permissions @0 :List(PermissionDef); roles @1 :List(RoleDef); }
struct BridgeConfig { viewInfo @0 :ViewInfo; apiPath @1 :Text; saveIdentityCaps @2 :Bool; }
struct Manifest {
  minApiVersion @0 :UInt32; maxApiVersion @1 :UInt32; actions @2 :List(Action);
  continueCommand @3 :Command; appVersion @4 :UInt32; minUpgradableAppVersion @5 :UInt32;
  appMarketingVersion @6 :LocalizedText; appTitle @7 :LocalizedText; metadata @8 :AnyPointer;
  struct Command { deprecatedExecutablePath @0 :Text; argv @1 :List(Text); environ @2 :List(KeyValue); }
  struct Action {
    input :union { none @0 :Void; capability @1 :AnyPointer; }
    command @2 :Command; title @3 :LocalizedText; description @4 :LocalizedText;
    nounPhrase @5 :LocalizedText;
  }
}
struct KeyFile { publicKey @0 :Data; privateKey @1 :Data; }
struct Signature { publicKey @0 :Data; signature @1 :Data; }
struct Archive {
  files @0 :List(File);
  struct File {
    name @0 :Text;
    union { regular @1 :Data; executable @2 :Data; symlink @3 :Text; directory @4 :List(File); }
    lastModificationTimeNs @5 :Int64;
  }
}
"#;

/// Opens the signature with libsodium and writes the archive message to argv[3]; prints the
/// public key in hex. Splits the two messages by their segment tables.
const SODIUM_CHECK: &str = r#"
import hashlib, json, lzma, struct, subprocess, sys
import nacl.bindings
spk = open(sys.argv[1], "rb").read()
assert spk[:8] == bytes.fromhex("8fc6cdef451aea96"), "magic"
plain = lzma.decompress(spk[8:], format=lzma.FORMAT_XZ)
def message_length(buf):
    count = struct.unpack_from("<I", buf, 0)[0] + 1
    header = (4 + 4 * count + 7) // 8 * 8
    return header + 8 * sum(struct.unpack_from("<%dI" % count, buf, 4))
split = message_length(plain)
signature, archive = plain[:split], plain[split:]
assert message_length(archive) == len(archive), "archive framing"
fields = json.loads(subprocess.check_output(
    ["capnp", "convert", "binary:json", sys.argv[2], "Signature"], input=signature))
public_key, signed = bytes(fields["publicKey"]), bytes(fields["signature"])
assert len(signed) == 128, len(signed)
opened = nacl.bindings.crypto_sign_open(signed, public_key)
assert opened == hashlib.sha512(archive).digest(), "signed hash differs from the archive's"
open(sys.argv[3], "wb").write(archive)
print(public_key.hex())
"#;

struct Fixture {
    dir: PathBuf,
    spk: PathBuf,
    keyring: PathBuf,
    app_id: String,
    app: PathBuf,
    unpacked: PathBuf,
    pack_stdout: String,
    schema: PathBuf,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pkgdef() -> PathBuf {
    repo().join(".sandstorm/sandstorm-pkgdef.capnp")
}

fn run(args: &[&str]) -> Output {
    Command::new(SPK).args(args).output().expect("spk runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The quoted strings of the pkgdef's `name = [ … ]`, read from its text (comments left out).
fn pkgdef_list(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(pkgdef()).unwrap();
    let start = text
        .find(&format!("{name} = ["))
        .unwrap_or_else(|| panic!("the pkgdef has {name}"));
    let block = &text[start..start + text[start..].find(']').unwrap()];
    block
        .lines()
        .map(|line| line.split('#').next().unwrap())
        .flat_map(|line| line.split('"').skip(1).step_by(2).map(str::to_owned))
        .collect()
}

/// The pkgdef's `alwaysInclude` entries.
fn always_include() -> Vec<String> {
    pkgdef_list("alwaysInclude")
}

/// The server's path in the checkout: what the pkgdef's grain command runs after the bridge's
/// `--`, under /opt/app.
fn server() -> String {
    let argv = pkgdef_list("argv");
    let after = argv
        .iter()
        .position(|a| a == "--")
        .expect("argv runs the bridge");
    argv[after + 1]
        .strip_prefix("/opt/app/")
        .expect("the server is under /opt/app")
        .to_owned()
}

/// A stand-in for this checkout at /opt/app: a small file (or a directory of two, where the
/// checkout has a directory) for each `alwaysInclude` entry, so packing needs no release build.
fn make_app(app: &Path) {
    for entry in always_include() {
        let Some(rel) = entry.strip_prefix("opt/app/") else {
            continue;
        };
        let target = app.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        if repo().join(rel).is_dir() {
            std::fs::create_dir_all(target.join("sub")).unwrap();
            std::fs::write(target.join("a.txt"), format!("fixture {rel} a\n")).unwrap();
            std::fs::write(target.join("sub/b.txt"), format!("fixture {rel} b\n")).unwrap();
        } else {
            std::fs::write(&target, format!("fixture {rel}\n")).unwrap();
            if rel.starts_with("target/") || rel.ends_with(".sh") {
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
    }
    // A copy of a system file, which the packer must report as a duplicate.
    std::fs::create_dir_all(app.join("extra")).unwrap();
    std::fs::copy("/usr/lib/os-release", app.join("extra/os-release")).unwrap();
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("spk-test-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let keyring = dir.join("keyring");
        let keygen = run(&["keygen", "--keyring", path(&keyring)]);
        assert!(keygen.status.success(), "{}", stderr(&keygen));
        let app_id = stdout(&keygen).trim().to_owned();

        let app = dir.join("app");
        make_app(&app);
        // A file list as the project's computes one: package paths, a symlink and its target.
        let list = dir.join("files.list");
        std::fs::write(
            &list,
            "etc/os-release\nusr/lib/os-release\nopt/app/extra/os-release\n",
        )
        .unwrap();

        let spk = dir.join("test.spk");
        let pack = run(&[
            "pack",
            "--pkgdef",
            path(&pkgdef()),
            "--keyring",
            path(&keyring),
            "--app-id",
            &app_id,
            "--file-list",
            path(&list),
            "--source-map",
            &format!("opt/app={}", path(&app)),
            "--out",
            path(&spk),
        ]);
        assert!(pack.status.success(), "pack failed: {}", stderr(&pack));
        assert!(
            stderr(&pack).contains("leaves out sandstorm-http-bridge"),
            "pack says the bridge is missing: {}",
            stderr(&pack)
        );

        let unpacked = dir.join("unpacked");
        let unpack = run(&["unpack", path(&spk), path(&unpacked)]);
        assert!(
            unpack.status.success(),
            "unpack failed: {}",
            stderr(&unpack)
        );

        let schema = dir.join("schema/test.capnp");
        std::fs::create_dir_all(schema.parent().unwrap()).unwrap();
        std::fs::write(&schema, TEST_SCHEMA).unwrap();

        Fixture {
            dir,
            spk,
            keyring,
            app_id,
            app,
            unpacked,
            pack_stdout: stdout(&pack),
            schema,
        }
    })
}

/// Sandstorm's base32 of a public key, written apart from the crate's: one bit at a time.
fn base32(key: &[u8]) -> String {
    let alphabet: Vec<char> = "0123456789acdefghjkmnpqrstuvwxyz".chars().collect();
    let mut bits: Vec<u8> = key
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    while !bits.len().is_multiple_of(5) {
        bits.push(0);
    }
    bits.chunks(5)
        .map(|c| alphabet[c.iter().fold(0usize, |n, b| n * 2 + *b as usize)])
        .collect()
}

fn capnp_decode(schema: &Path, type_name: &str, input: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("capnp")
        .args(["decode", path(schema), type_name])
        .env_remove("PWD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("Debian's capnp is installed (scripts/setup)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "capnp decode {type_name}: {}",
        stderr(&output)
    );
    stdout(&output)
}

/// Text between `start` and the next occurrence of `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("`{start}` in {text}"))
        + start.len();
    let to = text[from..].find(end).map_or(text.len(), |i| from + i);
    &text[from..to]
}

#[test]
fn a_packed_package_verifies_and_names_its_app_and_package() {
    let f = fixture();
    let verify = run(&["verify", path(&f.spk)]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let out = stdout(&verify);
    let bytes = std::fs::read(&f.spk).unwrap();
    use sha2::Digest;
    let package_id = hex::encode(&sha2::Sha256::digest(&bytes)[..16]);
    assert!(out.contains(&format!("app id: {}\n", f.app_id)), "{out}");
    assert!(
        out.contains(&format!("package id: {package_id}\n")),
        "{out}"
    );
    assert!(out.contains("title: Desert Atlas "), "{out}");
    assert!(
        out.contains(&format!("size: {} bytes", bytes.len())),
        "{out}"
    );
    assert!(out.contains("bridge: MISSING"), "{out}");
    let mode = std::fs::metadata(&f.spk).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "a package is readable by all");
    // pack and verify count the same files.
    let files = |text: &str| between(text, "files: ", "\n").to_owned();
    assert_eq!(files(&out), files(&f.pack_stdout));

    // --require-bridge turns the missing bridge into a failure.
    let strict = run(&["verify", "--require-bridge", path(&f.spk)]);
    assert!(!strict.status.success());
    assert!(
        stderr(&strict).contains("sandstorm-http-bridge is missing"),
        "{}",
        stderr(&strict)
    );
}

#[test]
fn libsodium_opens_the_signature_over_the_archive() {
    let f = fixture();
    let script = f.dir.join("sodium_check.py");
    std::fs::write(&script, SODIUM_CHECK).unwrap();
    let archive = f.dir.join("archive-from-python.bin");
    let output = Command::new("/usr/bin/python3")
        .env_remove("PWD")
        .args([path(&script), path(&f.spk), path(&f.schema), path(&archive)])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "PyNaCl check failed: {}",
        stderr(&output)
    );
    let public_key = hex::decode(stdout(&output).trim()).unwrap();
    assert_eq!(
        base32(&public_key),
        f.app_id,
        "the app id is the signer's key"
    );

    // The archive Python split off decodes with Debian's capnp and holds the package's tree.
    let text = capnp_decode(&f.schema, "Archive", &std::fs::read(&archive).unwrap());
    for name in [
        "sandstorm-manifest",
        "sandstorm-http-bridge-config",
        "dev",
        "tmp",
        "var",
        "proc",
        "cpuinfo",
        "desert-atlas",
        "os-release",
    ] {
        assert!(
            text.contains(&format!("name = \"{name}\"")),
            "{name} in {text}"
        );
    }
    assert!(
        text.contains("symlink = \"../usr/lib/os-release\""),
        "{text}"
    );
    assert!(
        text.contains(&format!("executable = \"fixture {}\\n\"", server())),
        "{text}"
    );
    assert!(
        !text.contains("name = \"sandstorm-http-bridge\""),
        "no bridge was given"
    );
}

#[test]
fn the_manifest_holds_the_pkgdefs_app_commands_permissions_and_roles() {
    let f = fixture();
    let pkgdef_text = std::fs::read_to_string(pkgdef()).unwrap();
    let manifest = std::fs::read(f.unpacked.join("sandstorm-manifest")).unwrap();
    let text = capnp_decode(&f.schema, "Manifest", &manifest);

    assert!(text.contains("defaultText = \"Desert Atlas\""), "{text}");
    let version = between(&pkgdef_text, "appVersion = ", ",");
    assert!(text.contains(&format!("appVersion = {version},")), "{text}");
    let marketing = between(
        &pkgdef_text,
        "appMarketingVersion = (defaultText = \"",
        "\"",
    );
    assert!(
        text.contains(&format!("defaultText = \"{marketing}\"")),
        "{text}"
    );
    // One action making a new map, with the same command as continueCommand, and both with the
    // pkgdef's argv and environment.
    let actions = between(&text, "actions = [", "continueCommand");
    assert!(actions.contains("input = (none = void)"), "{actions}");
    assert!(
        actions.contains("nounPhrase = (defaultText = \"map\")"),
        "{actions}"
    );
    let argv = between(&pkgdef_text, "argv = [", "]");
    for arg in argv.split(',').map(|a| a.trim().trim_matches('"')) {
        assert!(
            actions.contains(&format!("\"{arg}\"")),
            "{arg} in {actions}"
        );
        let cont = between(&text, "continueCommand = (", "appVersion");
        assert!(cont.contains(&format!("\"{arg}\"")), "{arg} in {cont}");
    }
    assert!(text.contains("key = \"SANDSTORM\""), "{text}");

    // docs/api.md §3: permissions download, bookmarks; roles editor (both), bookmarker
    // (bookmarks), viewer (none) — in this order, which existing grains store by position.
    let config = std::fs::read(f.unpacked.join("sandstorm-http-bridge-config")).unwrap();
    let text = capnp_decode(&f.schema, "BridgeConfig", &config);
    let download = text
        .find("name = \"download\"")
        .expect("download permission");
    let bookmarks = text
        .find("name = \"bookmarks\"")
        .expect("bookmarks permission");
    assert!(download < bookmarks, "{text}");
    let roles = between(&text, "roles = [", "saveIdentityCaps");
    let order: Vec<(&str, &str)> = ["editor", "bookmarker", "viewer"]
        .iter()
        .map(|title| {
            let at = roles
                .find(&format!("defaultText = \"{title}\""))
                .unwrap_or_else(|| panic!("role {title} in {roles}"));
            (*title, between(&roles[at..], "permissions = [", "]"))
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("editor", "true, true"),
            ("bookmarker", "false, true"),
            ("viewer", "false, false")
        ]
    );
    let positions: Vec<usize> = ["editor", "bookmarker", "viewer"]
        .iter()
        .map(|t| roles.find(&format!("defaultText = \"{t}\"")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{roles}");
}

#[test]
fn unpack_writes_the_tree_with_modes_links_and_contents() {
    let f = fixture();
    let binary = f.unpacked.join("opt/app").join(server());
    assert_eq!(
        std::fs::read(&binary).unwrap(),
        std::fs::read(f.app.join(server())).unwrap()
    );
    assert_eq!(
        std::fs::metadata(&binary).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let link = f.unpacked.join("etc/os-release");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../usr/lib/os-release")
    );
    assert_eq!(
        std::fs::read(f.unpacked.join("usr/lib/os-release")).unwrap(),
        std::fs::read("/usr/lib/os-release").unwrap()
    );
    for dir in ["dev", "tmp", "var"] {
        let entries = std::fs::read_dir(f.unpacked.join(dir)).unwrap().count();
        assert_eq!(entries, 0, "/{dir} is an empty mount point");
    }
    assert_eq!(
        std::fs::read(f.unpacked.join("proc/cpuinfo"))
            .unwrap()
            .len(),
        0
    );

    // Unpacking over a non-empty directory is refused.
    let again = run(&["unpack", path(&f.spk), path(&f.unpacked)]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
}

#[test]
fn pack_reports_files_that_another_file_already_holds() {
    let f = fixture();
    assert!(
        f.pack_stdout.contains(
            "duplicate: usr/lib/os-release holds the same 267 bytes as opt/app/extra/os-release"
        ) || f
            .pack_stdout
            .contains("duplicate: opt/app/extra/os-release holds the same"),
        "{}",
        f.pack_stdout
    );
}

#[test]
fn every_tampered_byte_after_the_magic_is_refused() {
    let f = fixture();
    let good = std::fs::read(&f.spk).unwrap();
    assert!(spk::verify::verify(&good, Limits::SANDSTORM).is_ok());
    // Every byte of the first and last 512 (headers, signature, xz index and footer), every 7th
    // between.
    let positions: Vec<usize> = (MAGIC.len()..good.len())
        .filter(|&i| i < 520 || i + 512 >= good.len() || i % 7 == 0)
        .collect();
    for &i in &positions {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert!(
            spk::verify::verify(&bad, Limits::SANDSTORM).is_err(),
            "a flipped bit at byte {i} of {} went unnoticed",
            good.len()
        );
    }

    // And the command says so.
    let mut bad = good.clone();
    let middle = good.len() / 2;
    bad[middle] ^= 0xff;
    let said = verify_refuses(f, "tampered.spk", &bad, "tampered.spk");
    assert!(said.starts_with("spk: "), "{said}");
}

/// Writes `bytes` as `name` beside the fixture and runs `spk verify` on it, which must fail
/// saying `expected`; returns what it said.
fn verify_refuses(f: &Fixture, name: &str, bytes: &[u8], expected: &str) -> String {
    let file = f.dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    let out = run(&["verify", path(&file)]);
    assert!(!out.status.success(), "{name} was accepted");
    let said = stderr(&out);
    assert!(said.contains(expected), "{said}");
    said
}

#[test]
fn a_file_that_is_not_an_spk_is_refused_by_its_magic_number() {
    let f = fixture();
    let mut bytes = std::fs::read(&f.spk).unwrap();
    bytes[0] = b'P';
    verify_refuses(
        f,
        "wrong-magic.spk",
        &bytes,
        "does not start with the spk magic number",
    );
}

#[test]
fn a_truncated_package_is_refused() {
    let f = fixture();
    let bytes = std::fs::read(&f.spk).unwrap();
    for keep in [0, 5, 8, 9, 64, bytes.len() / 2, bytes.len() - 1] {
        let result = spk::verify::verify(&bytes[..keep], Limits::SANDSTORM);
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        let expected = if keep < 8 {
            "magic number"
        } else {
            "cut short"
        };
        assert!(message.contains(expected), "cut at {keep}: `{message}`");
    }
    verify_refuses(
        f,
        "truncated.spk",
        &bytes[..bytes.len() - 1],
        "damaged or cut short",
    );
}

#[test]
fn packages_over_sandstorms_limits_are_refused() {
    let f = fixture();
    let bytes = std::fs::read(&f.spk).unwrap();
    let verified = spk::verify::verify(&bytes, Limits::SANDSTORM).unwrap();

    let refusals = [
        (
            Limits {
                archive_bytes: verified.archive_bytes - 1,
                ..Limits::SANDSTORM
            },
            format!(
                "is {} bytes; Sandstorm accepts at most {} bytes",
                verified.archive_bytes,
                verified.archive_bytes - 1
            ),
        ),
        // Decompression stops soon after the limit instead of unpacking everything.
        (
            Limits {
                archive_bytes: 0,
                ..Limits::SANDSTORM
            },
            "Sandstorm accepts at most 0 bytes".to_string(),
        ),
        (
            Limits {
                file_bytes: 100,
                ..Limits::SANDSTORM
            },
            "Sandstorm packages hold files of at most 100 bytes".to_string(),
        ),
        (
            Limits {
                manifest_words: 8,
                ..Limits::SANDSTORM
            },
            "sandstorm-manifest is malformed".to_string(),
        ),
    ];
    for (limits, expected) in refusals {
        let message = spk::verify::verify(&bytes, limits).unwrap_err().to_string();
        assert!(message.contains(&expected), "{message}");
    }

    // A 512 MiB file (sparse: nothing is written) is refused before anything is read.
    let huge = f.dir.join("huge");
    std::fs::create_dir_all(&huge).unwrap();
    std::fs::File::create(huge.join("big.bin"))
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    let list = f.dir.join("huge.list");
    std::fs::write(&list, "opt/huge/big.bin\n").unwrap();
    let out = pack_with(
        f,
        &list,
        &[&format!("opt/huge={}", path(&huge))],
        "huge.spk",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("536870912 bytes; Sandstorm packages hold files of at most 536870911 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(
        !f.dir.join("huge.spk").exists(),
        "no package is left behind"
    );
}

fn pack_with(f: &Fixture, list: &Path, maps: &[&str], out: &str) -> Output {
    let mut args = vec![
        "pack".to_owned(),
        "--pkgdef".into(),
        path(&pkgdef()).into(),
        "--keyring".into(),
        path(&f.keyring).into(),
        "--app-id".into(),
        f.app_id.clone(),
        "--file-list".into(),
        path(list).into(),
        "--source-map".into(),
        format!("opt/app={}", path(&f.app)),
        "--out".into(),
        path(&f.dir.join(out)).into(),
    ];
    for map in maps {
        args.push("--source-map".into());
        args.push((*map).into());
    }
    Command::new(SPK).args(&args).output().unwrap()
}

#[test]
fn malformed_keyrings_are_refused_with_the_entry_at_fault() {
    let f = fixture();
    let good = std::fs::read(&f.keyring).unwrap();
    let encode = |text: &str| -> Vec<u8> {
        use std::io::Write;
        let mut child = Command::new("capnp")
            .args(["encode", path(&f.schema), "KeyFile"])
            .env_remove("PWD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let short_public = encode(&format!(
        "(publicKey = 0x\"{}\", privateKey = 0x\"{}\")",
        "11".repeat(31),
        "22".repeat(64)
    ));
    let mismatched = encode(&format!(
        "(publicKey = 0x\"{}\", privateKey = 0x\"{}\")",
        "11".repeat(32),
        "22".repeat(64)
    ));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"not a keyring at all".to_vec(),
            "entry 1 is not a key",
        ),
        (
            "cut short",
            good[..good.len() - 9].to_vec(),
            "entry 1 is not a key",
        ),
        (
            "second entry cut short",
            [good.clone(), good[..20].to_vec()].concat(),
            "entry 2 is not a key",
        ),
        (
            "31-byte public key",
            short_public,
            "public key has 31 bytes, not 32",
        ),
        (
            "mismatched halves",
            mismatched,
            "second half is not its public key",
        ),
        ("empty", Vec::new(), "the keyring is empty"),
    ];
    let list = f.dir.join("keyring-case.list");
    std::fs::write(&list, "").unwrap();
    for (case, bytes, expected) in cases {
        let keyring = f.dir.join("bad-keyring");
        std::fs::write(&keyring, &bytes).unwrap();
        let out = Command::new(SPK)
            .args([
                "pack",
                "--pkgdef",
                path(&pkgdef()),
                "--keyring",
                path(&keyring),
                "--app-id",
                &f.app_id,
                "--file-list",
                path(&list),
                "--out",
                path(&f.dir.join("never.spk")),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{case}");
        assert!(stderr(&out).contains(expected), "{case}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("bad-keyring"),
            "{case} names the file"
        );
    }

    // A keyring without the pkgdef's app id says which keys it has.
    let out = Command::new(SPK)
        .args([
            "pack",
            "--keyring",
            path(&f.keyring),
            "--pkgdef",
            path(&pkgdef()),
            "--out",
            path(&f.dir.join("never.spk")),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("it holds keys for: {}", f.app_id)),
        "{}",
        stderr(&out)
    );
    assert!(!f.dir.join("never.spk").exists());
}

#[test]
fn paths_the_source_map_hides_or_lacks_are_refused() {
    let f = fixture();
    for (line, expected) in [
        ("etc/passwd", "no file found for `etc/passwd`"),
        (
            "opt/app/no-such-file",
            "no file found for `opt/app/no-such-file`",
        ),
        ("/etc/os-release", "is not a package path"),
        ("usr/../etc/os-release", "is not a package path"),
    ] {
        let list = f.dir.join("bad.list");
        std::fs::write(&list, format!("usr/lib/os-release\n{line}\n")).unwrap();
        let out = pack_with(f, &list, &[], "never.spk");
        assert!(!out.status.success(), "{line}");
        assert!(stderr(&out).contains(expected), "{line}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("bad.list line 2"),
            "{line}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_package_definition_that_does_not_evaluate_is_refused() {
    let f = fixture();
    let broken = f.dir.join("broken-pkgdef.capnp");
    std::fs::write(
        &broken,
        "@0xb2a9e0e7a4d5c3f1;\nusing Spk = import \"/sandstorm/package.capnp\";\n\
         const pkgdef :Spk.PackageDefinition = (id = \"x\", noSuchField = 1);\n",
    )
    .unwrap();
    let out = Command::new(SPK)
        .args([
            "pack",
            "--pkgdef",
            path(&broken),
            "--keyring",
            path(&f.keyring),
            "--out",
            path(&f.dir.join("never.spk")),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the package definition does not evaluate"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("noSuchField"), "{}", stderr(&out));
}

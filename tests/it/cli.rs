//! The command line: modes, refusals, and errors a person can act on (docs/api.md §1).

use std::process::Command;

use crate::common::{BIN, TestServer, assert_error};

fn serve(args: &[&str], sandstorm: bool) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").args(args).env_remove("SANDSTORM");
    if sandstorm {
        cmd.env("SANDSTORM", "1");
    }
    cmd.output().expect("run desert-atlas")
}

#[test]
fn local_inside_a_grain_is_refused_with_one_line() {
    let out = serve(&["--local", "--listen", "127.0.0.1:0"], true);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--local"), "{err}");
}

#[test]
fn neither_local_nor_grain_is_refused() {
    let out = serve(&["--listen", "127.0.0.1:0"], false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--local"));
}

#[test]
fn a_busy_port_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = serve(
        &[
            "--listen",
            &addr,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        true,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
}

#[test]
fn an_unusable_data_dir_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            file.to_str().unwrap(),
        ],
        true,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data directory"), "{err}");
}

#[test]
fn a_bad_flag_is_refused() {
    let out = serve(&["--no-such-flag"], true);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    assert_error(server.get("/app/no-such-thing").await, 404).await;
    assert_error(server.get("/app/bookmark").await, 405).await;
}

#[tokio::test]
async fn status_lists_the_callers_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let viewer: serde_json::Value = server
        .get_as("/app/map-download-status", None, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(viewer["permissions"], serde_json::json!([]));
    let owner = server.get_json("/app/map-download-status").await;
    assert_eq!(
        owner["permissions"],
        serde_json::json!(["download", "bookmarks"])
    );
    for key in [
        "available-areas",
        "available-areas-status",
        "in-progress",
        "queued-for-download",
        "queued-for-deletion",
        "done",
        "tutorial-mode",
    ] {
        assert!(owner.get(key).is_some(), "status lacks {key}: {owner}");
    }
}

/// Scripts read the address from the server's stderr as it arrives: the line must never
/// arrive in pieces, or a reader takes `http://127.0` for the whole address (the browser
/// suite once sent its requests to 0.0.0.127 that way). Written piece by piece, a read
/// here returned part of the line in about one start of five, so forty starts are watched.
#[test]
fn the_listening_line_arrives_whole() {
    for _ in 0..40 {
        if let Err(what) = first_read_with_the_listening_line() {
            panic!("{what}");
        }
    }
}

/// Starts the server and reads its stderr as a script would, until the listening line shows;
/// an error if the read that brought it stopped before the line's end.
fn first_read_with_the_listening_line() -> Result<(), String> {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--local", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("SANDSTORM")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start desert-atlas");
    let mut pipe = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut chunk = [0u8; 4096];
    let verdict = loop {
        let n = pipe.read(&mut chunk).expect("read the server's stderr");
        if n == 0 {
            break Err(format!(
                "the server ended without saying where it listens: {seen}"
            ));
        }
        seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
        if let Some(at) = seen.find("listening on") {
            break if seen[at..].contains('\n') {
                Ok(())
            } else {
                Err(format!(
                    "a read returned part of the line: {:?}",
                    &seen[at..]
                ))
            };
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    verdict
}

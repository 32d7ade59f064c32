//! The grain's launcher: `serve --start-nginx` binds its port, starts nginx with the shipped
//! config, and the two live and die together (signals reach both; either one dying ends the
//! grain).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::BIN;
use crate::nginx::{free_port, packaged_nginx, shipped_config};

struct Grain {
    child: Child,
    nginx_pid: i32,
    front: u16,
    log: mpsc::Receiver<String>,
}

impl Grain {
    /// Starts `serve --start-nginx` on `var` with the shipped config, its ports and paths
    /// replaced by the test's; waits until nginx answers.
    fn start(var: &Path) -> Grain {
        let (front, backend) = (free_port(), free_port());
        let config = shipped_config(var, front, &format!("127.0.0.1:{backend}"));
        let conf = var.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{backend}")])
            .arg("--data-dir")
            .arg(var)
            .arg("--start-nginx")
            .arg(&conf)
            .arg("--nginx")
            .arg(packaged_nginx())
            .env("SANDSTORM", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut nginx_pid = None;
        while nginx_pid.is_none() {
            let line = log
                .recv_timeout(Duration::from_secs(30))
                .expect("the launcher says it started nginx");
            nginx_pid = line
                .split("nginx started (pid ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches(')').parse().ok());
        }
        let grain = Grain {
            child,
            nginx_pid: nginx_pid.unwrap(),
            front,
            log,
        };
        // A guard, not a measure: a loaded machine may take long to start nginx.
        for _ in 0..2400 {
            if std::net::TcpStream::connect(("127.0.0.1", front)).is_ok() {
                return grain;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nginx never listened");
    }

    fn signal_server(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for the server to exit; returns its status and the rest of its log, read until
    /// the pipe closes (the server and every nginx process gone): lines still on their way
    /// when the server exits are not lost, however late the reader runs.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let mut log = Vec::new();
        loop {
            match self.log.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => log.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the log never closed: an nginx process outlived the grain")
                }
            }
        }
        (status, log.join("\n"))
    }
}

/// Whether process `pid` is gone (a zombie counts as gone: it no longer serves).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// The state letter of process `pid` (`R`, `S`, `T`, `Z`…), if it exists.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// Kills nginx as a crash would, master and workers. The master is stopped first so that it
/// forks no worker after its children are read (it forks them after it listens, so under
/// load some may not exist yet when the port answers).
fn crash_nginx(master: i32) {
    // SAFETY: kill(2) on the nginx the server started.
    unsafe { libc::kill(master, libc::SIGSTOP) };
    while !matches!(state(master), Some('T' | 'Z') | None) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let workers = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default();
    // SAFETY: kill(2) on the stopped master and the workers it forked.
    unsafe { libc::kill(master, libc::SIGKILL) };
    for worker in workers.split_whitespace().filter_map(|w| w.parse().ok()) {
        unsafe { libc::kill(worker, libc::SIGKILL) };
    }
}

/// Waits for `pid` to be gone; false if it is still there after a generous while.
fn wait_gone(pid: i32) -> bool {
    for _ in 0..3000 {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

async fn page(front: u16) -> u16 {
    crate::common::http_client()
        .get(format!("http://127.0.0.1:{front}/app/map-download-status"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn sigterm_stops_the_server_and_nginx_cleanly() {
    let var = tempfile::tempdir().unwrap();
    let grain = Grain::start(var.path());
    assert_eq!(page(grain.front).await, 200);
    let nginx = grain.nginx_pid;
    grain.signal_server(libc::SIGTERM);
    let (status, log) = grain.wait();
    assert!(status.success(), "{status}: {log}");
    assert!(wait_gone(nginx), "nginx still runs after the grain stopped");
}

#[tokio::test]
async fn nginx_dying_ends_the_grain_with_an_error() {
    let var = tempfile::tempdir().unwrap();
    let grain = Grain::start(var.path());
    // A crash: SIGKILL, so nginx's workers are orphaned; they are killed too, not left behind.
    crash_nginx(grain.nginx_pid);
    let (status, log) = grain.wait();
    assert!(!status.success());
    assert!(log.contains("nginx stopped on its own"), "{log}");
}

#[tokio::test]
async fn the_server_dying_takes_nginx_with_it() {
    let var = tempfile::tempdir().unwrap();
    let grain = Grain::start(var.path());
    let nginx = grain.nginx_pid;
    grain.signal_server(libc::SIGKILL);
    let (status, _) = grain.wait();
    assert!(!status.success());
    assert!(wait_gone(nginx), "nginx outlived the server");
}

//! Starting the real `desert-atlas` binary for a test and talking to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_desert-atlas");

/// How a test wants the server started.
#[derive(Clone, Debug)]
pub struct Options {
    /// Grain mode (`SANDSTORM=1`) instead of `--local`.
    pub grain: bool,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Puts the data dir on a filesystem of this many KiB, so that the disk can really fill
    /// up: a tmpfs mounted in a mount namespace of the server's own (`unshare`), gone with
    /// the server. Read its files through [`TestServer::data_path`].
    pub disk_kib: Option<u64>,
    /// Limits the server's open files (RLIMIT_NOFILE) to this many.
    pub open_files: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            grain: true,
            extra_args: Vec::new(),
            env: Vec::new(),
            disk_kib: None,
            open_files: None,
        }
    }
}

pub struct TestServer {
    pub data_dir: PathBuf,
    pub base: String,
    pub client: reqwest::Client,
    child: Child,
    stderr: Arc<Mutex<String>>,
    options: Options,
}

impl TestServer {
    /// Starts a server in grain mode on a fresh temporary data dir.
    pub fn start(dir: &Path) -> TestServer {
        Self::start_with(dir, Options::default())
    }

    pub fn start_with(dir: &Path, options: Options) -> TestServer {
        let mut cmd = match options.disk_kib {
            None => Command::new(BIN),
            Some(kib) => {
                let mut cmd = Command::new("unshare");
                cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c"])
                    .arg(format!(
                        "mount -t tmpfs -o size={kib}k tmpfs \"$0\" && exec \"$@\""
                    ))
                    .arg(dir)
                    .arg(BIN);
                cmd
            }
        };
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(&options.extra_args)
            .env_remove("SANDSTORM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if options.grain {
            cmd.env("SANDSTORM", "1");
        } else {
            cmd.arg("--local");
        }
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        if let Some(files) = options.open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: files,
                        rlim_max: files,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = cmd.spawn().expect("start desert-atlas");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr piped");
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; its stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        TestServer {
            data_dir: dir.to_path_buf(),
            base,
            client: http_client(),
            child,
            stderr,
            options,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The log once `seen` holds for it: the server's stderr is read by a thread of its own,
    /// so a line written just before an answer may arrive after it. A guard, not a measure:
    /// gives up after 10 s and returns the log as it is then.
    pub async fn log_once(&self, seen: impl Fn(&str) -> bool) -> String {
        for _ in 0..500 {
            let log = self.log();
            if seen(&log) {
                return log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.log()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `relative` in the data dir as the server sees it (on its own disk with `disk_kib`).
    pub fn data_path(&self, relative: &str) -> PathBuf {
        let dir = match self.options.disk_kib {
            None => self.data_dir.clone(),
            Some(_) => Path::new(&format!("/proc/{}/root", self.pid()))
                .join(self.data_dir.strip_prefix("/").unwrap_or(&self.data_dir)),
        };
        dir.join(relative)
    }

    /// SIGKILL: no chance to clean up, as when a grain's machine dies.
    pub fn kill(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.data_dir.clone()
    }

    /// SIGTERM and wait, as when Sandstorm stops an idle grain: the server must exit by
    /// itself, successfully. The bound only catches a hang.
    pub fn stop(self) -> PathBuf {
        self.stop_timed().0
    }

    /// [`TestServer::stop`], also returning how long the exit took after the signal.
    pub fn stop_timed(mut self) -> (PathBuf, Duration) {
        let signalled = Instant::now();
        unsafe_sigterm(self.child.id());
        let deadline = signalled + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let took = signalled.elapsed();
                assert!(
                    status.success(),
                    "the server exited with {status} after SIGTERM; log:\n{}",
                    self.log()
                );
                return (self.data_dir.clone(), took);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "the server was still running 10 s after SIGTERM; log:\n{}",
            self.log()
        );
    }

    /// Kills this server and starts another one on the same data dir with the same options.
    pub fn restart(self) -> TestServer {
        let options = self.options.clone();
        let dir = self.kill();
        TestServer::start_with(&dir, options)
    }

    /// A GET as a grain user with the given permissions (comma-separated, may be empty).
    pub async fn get_as(&self, path: &str, user: Option<&str>, perms: &str) -> reqwest::Response {
        with_identity(self.client.get(self.url(path)), user, perms)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post_as(
        &self,
        path: &str,
        user: Option<&str>,
        perms: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        with_identity(self.client.post(self.url(path)), user, perms)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// A GET as the grain's owner (both permissions).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(path, Some("owner"), "download,bookmarks").await
    }

    /// A POST as the grain's owner (both permissions).
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.post_as(path, Some("owner"), "download,bookmarks", body)
            .await
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.expect("JSON body")
    }

    /// Polls the status endpoint until `done` says so, or panics after `timeout`.
    pub async fn wait_for_status(
        &self,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.get_json("/app/map-download-status").await;
            if done(&status) {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "status never got there; last status: {status:#}\nlog:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A reqwest client for talking to servers on loopback (no proxy from the environment).
pub fn http_client() -> reqwest::Client {
    // reqwest is built without a default TLS provider; rustls needs one chosen once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("build HTTP client")
}

fn with_identity(
    mut req: reqwest::RequestBuilder,
    user: Option<&str>,
    perms: &str,
) -> reqwest::RequestBuilder {
    if let Some(user) = user {
        req = req.header("X-Sandstorm-User-Id", user);
    }
    req.header("X-Sandstorm-Permissions", perms)
        .header("X-Sandstorm-Session-Id", "test-session")
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts the contract's error body: `{"error": "<sentence>"}` with a non-empty sentence.
pub async fn assert_error(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status(), status, "status");
    let body: serde_json::Value = resp.json().await.expect("error body is JSON");
    let msg = body["error"]
        .as_str()
        .expect("error body has \"error\"")
        .to_string();
    assert!(msg.len() > 10, "error message too short to act on: {msg:?}");
    msg
}

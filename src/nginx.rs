//! Starting nginx in front of the server inside a grain, so that the grain needs no shell
//! launcher: `desert-atlas serve --start-nginx CONF` binds its port first, then starts nginx
//! (which sandstorm-http-bridge waits for on port 8003), so nginx never answers 502 for a
//! server still starting. The two live and die together: SIGTERM stops both, nginx exiting
//! on its own stops the server with an error, and the server dying takes nginx with it
//! (`PR_SET_PDEATHSIG`); the bridge then restarts the grain.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

pub struct Nginx {
    child: Child,
}

impl Nginx {
    /// Starts the nginx at `binary` in the foreground with `config`, its log on our stderr. The directories the
    /// shipped config writes into (`run/`, `lib/nginx/` under the grain's `/var`) are created
    /// in `var` first.
    ///
    /// Call this from the thread that lives as long as the process: the kernel sends nginx
    /// SIGTERM when the thread that started it exits.
    pub fn start(binary: &Path, config: &Path, var: &Path) -> Result<Nginx, String> {
        for dir in ["run", "lib/nginx"] {
            let dir: PathBuf = var.join(dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {} for nginx: {e}", dir.display()))?;
        }
        let mut command = Command::new(binary);
        command
            .arg("-c")
            .arg(config)
            .args(["-e", "stderr", "-g", "daemon off;"])
            .stdin(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        tracing::info!("nginx started (pid {})", child.id());
        Ok(Nginx { child })
    }

    /// Runs until nginx exits or `shutdown` completes. On shutdown nginx is stopped (SIGTERM)
    /// and waited for: `Ok`. nginx exiting on its own is an error: the grain cannot be reached
    /// without it.
    pub async fn supervise(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), String> {
        let pid = self.child.id();
        let (tx, exited) = tokio::sync::oneshot::channel::<std::io::Result<ExitStatus>>();
        let mut child = self.child;
        std::thread::Builder::new()
            .name("nginx".into())
            .spawn(move || {
                let _ = tx.send(child.wait());
            })
            .map_err(|e| format!("cannot watch nginx: {e}"))?;
        tokio::pin!(exited);
        tokio::select! {
            status = &mut exited => {
                let status = match status {
                    Ok(Ok(s)) => s.to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "unknown status".into(),
                };
                Err(format!("nginx stopped on its own ({status}); stopping the grain"))
            }
            () = shutdown => {
                // SAFETY: kill(2) with a pid of our own child, which is not reaped before
                // the watcher's wait returns.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                let _ = exited.await;
                tracing::info!("nginx stopped");
                Ok(())
            }
        }
    }
}

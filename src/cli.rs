//! The command line (docs/api.md §1): parses flags, decides the mode, and runs a subcommand.
//!
//! Every failure ends as one line on stderr and a non-zero exit; clap's own usage errors
//! already look that way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::grain::Mode;

/// The map-data server that existing Desert Atlas grains download regions from.
pub const DEFAULT_MAP_DATA_URL: &str =
    "https://desert-atlas.danielkrol.com/1700099624.161532/1700099624.161532/";

#[derive(Parser, Debug)]
#[command(
    name = "desert-atlas",
    version,
    about = "Desert Atlas: a self-hosted world map"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the map: the grain server (SANDSTORM=1) or a local app (--local).
    Serve(ServeArgs),
    /// Make region packages for a map-data server.
    #[command(subcommand)]
    Region(RegionCommand),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Run outside Sandstorm: every request is the user `local` with every permission.
    #[arg(long)]
    pub local: bool,
    /// Address to listen on (default 127.0.0.1:3857).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Data directory (default /var in a grain, a per-user directory with --local).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Base URL of the map-data server.
    #[arg(long, default_value = DEFAULT_MAP_DATA_URL)]
    pub map_data_url: String,
    /// Directory of the generated assets: `web/` (the web client) and `base-map/` (default:
    /// build/assets under the current dir with --local, /opt/app/build/assets in a grain).
    #[arg(long)]
    pub assets: Option<PathBuf>,
    /// Start nginx with this config once the port is bound, and live and die with it (the
    /// grain's launcher).
    #[arg(long, value_name = "NGINX_CONF")]
    pub start_nginx: Option<PathBuf>,
    /// The nginx binary `--start-nginx` runs: the package ships its own build
    /// (scripts/build-nginx); elsewhere Debian's.
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/nginx")]
    pub nginx: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum RegionCommand {
    /// Pack a PMTiles archive and a search CSV as a region package.
    Pack(PackArgs),
}

#[derive(Args, Debug, Clone)]
pub struct PackArgs {
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub tiles: PathBuf,
    #[arg(long)]
    pub search: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub part_size: u64,
    /// MINLAT,MINLNG,MAXLAT,MAXLNG (default: the PMTiles header's bounds).
    #[arg(long)]
    pub bounds: Option<String>,
}

/// Everything `serve` needs, with the defaults of the chosen mode filled in.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub mode: Mode,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub map_data_url: String,
    pub assets: PathBuf,
    pub start_nginx: Option<PathBuf>,
    pub nginx: PathBuf,
}

impl ServeArgs {
    /// Applies docs/api.md §1: `SANDSTORM=1` means grain mode, `--local` local mode, both or
    /// neither is refused.
    pub fn resolve(self, sandstorm_env: bool) -> Result<ServeConfig, String> {
        let mode = match (sandstorm_env, self.local) {
            (true, true) => {
                return Err("--local cannot be used inside a Sandstorm grain (SANDSTORM=1 is set); drop one of them".into());
            }
            (false, false) => {
                return Err("not in a Sandstorm grain (SANDSTORM=1 is not set): pass --local to run on this machine".into());
            }
            (true, false) => Mode::Grain,
            (false, true) => Mode::Local,
        };
        let listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3857)));
        let data_dir = match (self.data_dir, mode) {
            (Some(dir), _) => dir,
            (None, Mode::Grain) => PathBuf::from("/var"),
            (None, Mode::Local) => {
                let dir = local_data_dir()?;
                eprintln!("desert-atlas: keeping data in {}", dir.display());
                dir
            }
        };
        let assets = match (self.assets, mode) {
            (Some(dir), _) => dir,
            (None, Mode::Grain) => PathBuf::from("/opt/app/build/assets"),
            (None, Mode::Local) => PathBuf::from("build/assets"),
        };
        Ok(ServeConfig {
            mode,
            listen,
            data_dir,
            map_data_url: self.map_data_url,
            assets,
            start_nginx: self.start_nginx,
            nginx: self.nginx,
        })
    }
}

/// `$XDG_DATA_HOME/desert-atlas`, else `~/.local/share/desert-atlas`.
fn local_data_dir() -> Result<PathBuf, String> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("desert-atlas"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/desert-atlas")),
        None => Err("cannot choose a data directory: HOME is not set; pass --data-dir".into()),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            let sandstorm = std::env::var("SANDSTORM").is_ok_and(|v| v == "1");
            args.resolve(sandstorm).and_then(crate::server::run)
        }
        Command::Region(RegionCommand::Pack(args)) => crate::regions::pack::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("desert-atlas: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(local: bool) -> ServeArgs {
        ServeArgs {
            local,
            listen: None,
            data_dir: Some("/tmp/x".into()),
            map_data_url: DEFAULT_MAP_DATA_URL.into(),
            assets: None,
            start_nginx: None,
            nginx: "/usr/sbin/nginx".into(),
        }
    }

    #[test]
    fn sandstorm_env_means_grain_mode_with_the_grain_port() {
        let c = args(false).resolve(true).unwrap();
        assert_eq!(c.mode, Mode::Grain);
        assert_eq!(c.listen.to_string(), "127.0.0.1:3857");
    }

    #[test]
    fn local_and_sandstorm_together_are_refused() {
        assert!(args(true).resolve(true).unwrap_err().contains("--local"));
    }

    #[test]
    fn neither_local_nor_sandstorm_is_refused() {
        assert!(args(false).resolve(false).unwrap_err().contains("--local"));
    }
}

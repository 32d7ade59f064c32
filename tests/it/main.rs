//! Integration tests: the real binary, started on a loopback port with its own data dir,
//! driven over HTTP. One test crate (modules below) so the suite links once.

mod basemap;
mod bookmarks;
mod bridge;
mod cli;
mod common;
mod fixtures;
mod full_disk;
mod grain;
mod hostile;
mod launcher;
mod mapserver;
mod nginx;
mod packages;
mod powerbox;
mod regions;
mod requests;
mod search;
mod search_eval;
mod shutdown;
mod stalls;
mod tiles;
mod tutorial;
mod upgrade;

//! Desert Atlas grain server: a self-hosted world map for Sandstorm.
//!
//! The crate is a library so that the binary, the integration tests and the benchmarks share
//! one implementation. `cli` is the front door; `app` holds every route.

pub mod app;
pub mod atomic_file;
pub mod basemap;
pub mod bookmarks;
pub mod cli;
pub mod db;
pub mod error;
pub mod grain;
pub mod json_body;
pub mod layout;
pub mod listener;
pub mod memory;
pub mod nginx;
pub mod quiet;
pub mod regions;
pub mod same_origin;
pub mod sandstorm;
pub mod search;
pub mod server;
pub mod status;
pub mod task;
pub mod tile_id;
pub mod tiles;
pub mod tutorial;
pub mod web;

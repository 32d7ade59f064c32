//! `desert-atlas region pack`. (Being built.)

use crate::cli::PackArgs;

pub fn run(_args: &PackArgs) -> Result<(), String> {
    Err("region pack is not built yet".into())
}

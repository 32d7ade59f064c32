#!/bin/bash
# vagrant-spk: builds what the package holds: the release binary (stripped) and the assets
# (web client, base map). Run from the repository root as /opt/app.
set -euo pipefail
cd /opt/app
export PATH="$HOME/.cargo/bin:$PATH"
scripts/build-assets
# Without the `tls` feature: in a grain, sandstorm-http-bridge makes the https requests.
cargo build --release --locked -p desert-atlas --no-default-features
# What the package holds: the binary, nginx and their libraries, the assets, the nginx config.
scripts/file-list

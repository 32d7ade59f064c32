#!/bin/bash
# vagrant-spk: builds what the package holds: the release binary (stripped) and the assets
# (web client, base map). Run from the repository root as /opt/app.
set -euo pipefail
cd /opt/app
export PATH="$HOME/.cargo/bin:$PATH"
scripts/build-assets
# The server as the package ships it: static, without the `tls` feature (see the script).
scripts/build-grain-binary >/dev/null
# What the package holds: the binary, nginx and their libraries, the assets, the nginx config.
scripts/file-list

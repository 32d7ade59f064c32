#!/bin/bash
# vagrant-spk: prepares the build VM (Debian) once.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends build-essential dpkg-dev musl-tools curl ca-certificates python3 python3-pip nodejs npm
if ! command -v cargo >/dev/null 2>&1; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi

#!/bin/sh
# Builds the statically linked binaries (glibc, crt-static) and the `tessera:local` image.
# Then: docker compose up
set -eu
cd "$(dirname "$0")/.."
# Stripped and without debug info: the image carries only what runs.
CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
    --target x86_64-unknown-linux-gnu -p notary-node -p coordinator -p tessera-cli
docker build -f deploy/Dockerfile -t tessera:local .

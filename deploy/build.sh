#!/bin/sh
# Builds the statically linked binaries (glibc, crt-static) and the `tessera:local` image.
# Then: docker compose up
set -eu
cd "$(dirname "$0")/.."
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
    --target x86_64-unknown-linux-gnu -p notary-node -p coordinator -p tessera-client
docker build -f deploy/Dockerfile -t tessera:local .

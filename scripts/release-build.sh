#!/usr/bin/env bash
# Builds the release binary for one target, exactly as release.yml's build jobs do, and
# prints its path. The musl targets go through cargo-zigbuild (zig as the C toolchain and
# linker, so the result is static); the Apple targets through plain cargo on macOS.
# CARGO_TARGET_DIR is honoured (scripts/release-local.sh keeps its own, cached).
#
#   scripts/release-build.sh TARGET
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:?usage: scripts/release-build.sh TARGET}"
case "$target" in
    *-unknown-linux-musl)
        cargo zigbuild --locked --release --target "$target" >&2
        ;;
    *-apple-darwin)
        cargo build --locked --release --target "$target" >&2
        ;;
    *)
        echo "release-build: no release recipe for target $target" >&2
        exit 2
        ;;
esac
bin="${CARGO_TARGET_DIR:-target}/$target/release/ccr-setup"
if [ ! -x "$bin" ]; then
    echo "release-build: the build succeeded but left no $bin" >&2
    exit 1
fi
echo "$bin"

#!/usr/bin/env bash
# Packages one built binary as a release asset: DIST/ccr-setup-VERSION-TARGET.tar.gz
# (one directory holding the binary, README.md, CONTRIBUTING.md and docs/, so the
# README's links work inside the archive) and its .sha256 ("<hex>  <name>",
# what `sha256sum -c` and install.sh read). release.yml and scripts/release-local.sh
# both call this, so what is tested here is what ships.
#
#   scripts/release-package.sh VERSION TARGET BINARY DIST
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:?usage: scripts/release-package.sh VERSION TARGET BINARY DIST}"
target="${2:?missing TARGET}"
binary="${3:?missing BINARY}"
dist="${4:?missing DIST}"
[ -x "$binary" ] || { echo "release-package: $binary is not an executable file" >&2; exit 1; }

name="ccr-setup-$version-$target"
mkdir -p "$dist"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
cp "$binary" "$stage/$name/ccr-setup"
chmod 755 "$stage/$name/ccr-setup"
cp README.md CONTRIBUTING.md "$stage/$name/"
cp -R docs "$stage/$name/docs"
tar -czf "$dist/$name.tar.gz" -C "$stage" "$name"
(
    cd "$dist"
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$name.tar.gz" >"$name.tar.gz.sha256"
    else
        shasum -a 256 "$name.tar.gz" >"$name.tar.gz.sha256"
    fi
    cat "$name.tar.gz.sha256"
)

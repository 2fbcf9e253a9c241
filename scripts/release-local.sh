#!/usr/bin/env bash
# The release path of .github/workflows/release.yml, run on this machine for the two
# Linux targets (the Apple ones need macOS): build x86_64- and aarch64-unknown-linux-musl
# with scripts/release-build.sh (cargo zigbuild, as the release does), package them with
# scripts/release-package.sh and scripts/release-dist.sh (the release's own packaging),
# then scripts/release-verify.sh installs each from a loopback mirror with
# `install.sh --no-init` and runs it: --version, doctor --json, a proxy round trip.
# The aarch64 binary runs under qemu-user through binfmt_misc (see below).
# A prerelease version is also packaged to check it gets no LATEST.
#
# Tools (zig, cargo-zigbuild, the musl targets, qemu-user-static) come from
# scripts/ci-deps.sh; the release build is cached in $CCR_CI_CACHE/release-target.
# Takes ~15 min on 2 cores from cold, well under a minute when cached.
#
#   scripts/release-local.sh
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "release-local: $*"; }
die() {
    echo "release-local: FAILED: $*" >&2
    exit 1
}

# shellcheck source=scripts/ci-deps.sh
CCR_CI_DEPS_FUNCTIONS_ONLY=1 source scripts/ci-deps.sh
mkdir -p "$CCR_CI_CACHE" || die "cannot create $CCR_CI_CACHE"
ccr_ci_locked rustup ccr_ci_toolchain || die "the toolchain rust-toolchain.toml pins"
if ! ccr_ci_locked rustup-targets ccr_ci_musl_targets; then
    # The Rust standard library for a target comes only from rustup's own server.
    echo "release-local: ==================================================================" >&2
    echo "release-local: SKIPPED: the musl targets' standard library cannot be installed" >&2
    echo "release-local: here (\`rustup target add\` failed; log: $CCR_CI_CACHE/rustup-targets.log)." >&2
    echo "release-local: The release path was NOT built, packaged, installed or run." >&2
    echo "release-local: ==================================================================" >&2
    # Under CI a skipped release path is a failure, not a quiet pass.
    if [ -n "${CI:-}" ]; then exit 1; fi
    exit 0
fi
ccr_ci_zigbuild || die "the zigbuild toolchain (see the ci-deps line above)"
ccr_ci_qemu || die "qemu-user-static (see the ci-deps line above)"
export CARGO_TARGET_DIR="$CCR_CI_CACHE/release-target"

# The version as release.yml reads it (it checks the tag against this line).
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
[ -n "$version" ] || die "no version in Cargo.toml"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dist="$work/dist"
# Signed as release.yml signs, but with a throwaway key: install.sh is pointed at its
# public key through CCR_SETUP_MINISIGN_PUBKEY (the real key is pinned in install.sh).
command -v minisign >/dev/null 2>&1 || die "minisign (scripts/ci-deps.sh installs it)"
minisign -G -W -p "$work/release.pub" -s "$work/release.key" >/dev/null </dev/null ||
    die "generating a throwaway minisign key"
export CCR_SETUP_MINISIGN_SECRET_KEY_FILE="$work/release.key"
CCR_SETUP_MINISIGN_PUBKEY="$(sed -n 2p "$work/release.pub")"
export CCR_SETUP_MINISIGN_PUBKEY CCR_SETUP_REQUIRE_SIGNING=1
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
for target in "${targets[@]}"; do
    say "building $target (cargo zigbuild --locked --release)"
    start=$SECONDS
    bin="$(scripts/release-build.sh "$target")" || die "building $target"
    say "built $bin in $((SECONDS - start)) s"
    # Static: no program interpreter (dynamic loader) in the ELF headers.
    if readelf -l "$bin" | grep -q 'program interpreter'; then
        die "$bin is dynamically linked"
    fi
    scripts/release-package.sh "$version" "$target" "$bin" "$dist" >/dev/null
done
scripts/release-dist.sh "$version" "$dist" >/dev/null
[ "$(cat "$dist/LATEST")" = "$version" ] || die "LATEST does not name $version"

[ -f "$dist/ccr-setup-$version-x86_64-unknown-linux-musl.tar.gz.minisig" ] || die "the archives were not signed"
CCR_SETUP_REQUIRE_SIGNATURE=1 scripts/release-verify.sh "$dist" x86_64-unknown-linux-musl

# aarch64: qemu-aarch64-static runs aarch64 ELF files through binfmt_misc. A machine that
# already has a handler (a CI VM that registered qemu-user-static) is used as it is;
# otherwise one is registered in a binfmt_misc instance private to a new user and mount
# namespace (Linux 6.7+), so nothing changes for the rest of the machine.
aarch64_bin="$CARGO_TARGET_DIR/aarch64-unknown-linux-musl/release/ccr-setup"
"$CCR_CI_QEMU_AARCH64" "$aarch64_bin" --version >/dev/null || die "$aarch64_bin does not run under qemu-user"
if grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    say "aarch64 through the machine's binfmt_misc handler (qemu-aarch64)"
    scripts/release-verify.sh "$dist" aarch64-unknown-linux-musl ||
        die "aarch64-unknown-linux-musl under qemu-user"
else
    magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare --user --map-root-user --mount sh -c '
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || exit 90
        echo ":ccr-setup-aarch64:M::$1:$2:$3:F" > /proc/sys/fs/binfmt_misc/register || exit 91
        shift 3
        exec "$@"' sh "$magic" "$mask" "$CCR_CI_QEMU_AARCH64" \
        scripts/release-verify.sh "$dist" aarch64-unknown-linux-musl ||
        die "aarch64-unknown-linux-musl under qemu-user (exit 90/91: no binfmt_misc in a user namespace; Linux 6.7+ and unprivileged user namespaces are needed)"
fi

# A prerelease: packaged the same way, it must get no LATEST and install by version.
pre="$work/pre"
scripts/release-package.sh "$version-rc.1" x86_64-unknown-linux-musl \
    "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/ccr-setup" "$pre" >/dev/null
scripts/release-dist.sh "$version-rc.1" "$pre" >/dev/null
[ ! -e "$pre/LATEST" ] || die "the prerelease $version-rc.1 got a LATEST"
say "prerelease $version-rc.1: no LATEST written"
say "ok: both musl targets built, packaged, installed with install.sh and run"

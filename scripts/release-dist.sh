#!/usr/bin/env bash
# Completes a release directory: verifies every archive against its .sha256, signs each
# with minisign when CCR_SETUP_MINISIGN_SECRET_KEY_FILE names a (passwordless) secret
# key (`<archive>.minisig`, which install.sh checks against the key it pins; required
# when CCR_SETUP_REQUIRE_SIGNING=1, as release.yml's publish job sets), adds
# install.sh, and writes LATEST (the version install.sh resolves "latest" to) only for a
# final version. A prerelease (a version with "-", like 1.0.0-rc.1) gets no LATEST, so no
# installer is ever sent to it. Under GitHub Actions it also sets the step output
# `prerelease=true|false`, which the publish step passes on to the release.
#
#   scripts/release-dist.sh VERSION DIST
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:?usage: scripts/release-dist.sh VERSION DIST}"
dist="${2:?missing DIST}"
case "$version" in
    v*) echo "release-dist: give the version without the leading v ($version)" >&2; exit 2 ;;
    *-*) prerelease=true ;;
    *) prerelease=false ;;
esac

shopt -s nullglob
archives=("$dist"/ccr-setup-"$version"-*.tar.gz)
if [ "${#archives[@]}" -eq 0 ]; then
    echo "release-dist: no ccr-setup-$version-*.tar.gz in $dist" >&2
    exit 1
fi
for archive in "${archives[@]}"; do
    [ -f "$archive.sha256" ] || { echo "release-dist: $archive has no .sha256" >&2; exit 1; }
done
(
    cd "$dist"
    for archive in ccr-setup-"$version"-*.tar.gz; do
        if command -v sha256sum >/dev/null 2>&1; then
            sha256sum -c "$archive.sha256"
        else
            shasum -a 256 -c "$archive.sha256"
        fi
    done
)
key="${CCR_SETUP_MINISIGN_SECRET_KEY_FILE:-}"
if [ -n "$key" ]; then
    command -v minisign >/dev/null 2>&1 || { echo "release-dist: minisign is not installed" >&2; exit 1; }
    for archive in "${archives[@]}"; do
        minisign -S -s "$key" -m "$archive" -t "ccr-setup $version $(basename "$archive")" </dev/null >/dev/null ||
            { echo "release-dist: signing $archive failed" >&2; exit 1; }
    done
    # The signatures must verify with the key install.sh will use.
    pubkey="${CCR_SETUP_MINISIGN_PUBKEY:-$(sed -n 's/^CCR_SETUP_RELEASE_PUBKEY="\(.*\)"$/\1/p' install.sh)}"
    for archive in "${archives[@]}"; do
        minisign -V -q -P "$pubkey" -m "$archive" >/dev/null ||
            { echo "release-dist: $archive.minisig does not verify with the key install.sh pins" >&2; exit 1; }
    done
elif [ "${CCR_SETUP_REQUIRE_SIGNING:-}" = 1 ]; then
    echo "release-dist: CCR_SETUP_REQUIRE_SIGNING=1 but no CCR_SETUP_MINISIGN_SECRET_KEY_FILE" >&2
    exit 1
fi
cp install.sh "$dist/install.sh"
if [ "$prerelease" = true ]; then
    rm -f "$dist/LATEST"
    echo "release-dist: $version is a prerelease: no LATEST (installers keep the latest final release)"
else
    echo "$version" >"$dist/LATEST"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "prerelease=$prerelease" >>"$GITHUB_OUTPUT"
fi
ls -l "$dist"

#!/usr/bin/env bash
# Build and test times of one or more checkouts, for comparing layouts (the
# crates/ccr-proxy split was measured with it). Each checkout gets a fresh target dir
# seeded with prebuilt dependencies only (so "clean" is our crates, not the 300
# dependencies), then, in order:
#   clean build       cargo build --workspace --all-targets   (everything the tests need)
#   unit tests        cargo test --workspace --lib             (run time, already built)
#   touch proxy       a proxy file touched, rebuild all targets
#   touch CLI         a CLI command file touched, rebuild all targets
#   proxy tests alone cargo test -p ccr-proxy --lib: once (its own feature set builds
#                     the dependencies again), then after touching the proxy file,
#                     against all unit tests after the same touch (only where the
#                     checkout has the proxy crate)
# Wall and CPU (user+sys) seconds; run it on a quiet machine and name its load.
#
#   scripts/build-times.sh --seed /path/to/target-with-deps LABEL=CHECKOUT...
set -euo pipefail

seed=""
runs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seed) seed="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *=*) runs+=("$1"); shift ;;
        *) echo "error: expected LABEL=CHECKOUT, got $1" >&2; exit 2 ;;
    esac
done
if [ -z "$seed" ] || [ ! -d "$seed/debug/deps" ]; then
    echo "error: --seed DIR must hold debug/deps" >&2
    exit 2
fi
[ ${#runs[@]} -gt 0 ] || { echo "error: name at least one LABEL=CHECKOUT" >&2; exit 2; }

# Prints "wall cpu" in seconds for the command.
timed() {
    local out
    out=$(mktemp)
    /usr/bin/time -f '%e %U %S' -o "$out" "$@" >/dev/null 2>&1 || { echo "error: $* failed" >&2; cat "$out" >&2; exit 1; }
    awk '{ printf "%.1f %.1f\n", $1, $2 + $3 }' "$out"
    rm -f "$out"
}

echo "Run $(date -u +%FT%RZ); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg) before."
echo
echo "| checkout | step | wall s | CPU s |"
echo "| --- | --- | ---: | ---: |"
for run in "${runs[@]}"; do
    label="${run%%=*}"
    tree="${run#*=}"
    target=$(mktemp -d)
    mkdir -p "$target/debug"
    (cd "$seed/debug" && tar --exclude=./incremental --exclude='*ccr_setup*' --exclude='*ccr-setup*' \
        --exclude='*ccr_proxy*' --exclude='*ccr-proxy*' -cf - .) | tar -xf - -C "$target/debug"
    # (A checkout from before the split has no crates/: find's complaint is expected.)
    proxy_file=$({ find "$tree/src" "$tree/crates" -path '*proxy/translate/stream/mod.rs' 2>/dev/null || true; } | head -1)
    [ -n "$proxy_file" ] || { echo "error: no proxy/translate/stream/mod.rs in $tree" >&2; exit 1; }
    cli_file="$tree/src/commands/stats.rs"
    export CARGO_TARGET_DIR="$target"
    cd "$tree"
    row() { read -r wall cpu; echo "| $label | $1 | $wall | $cpu |"; }
    timed cargo build --workspace --all-targets | row "clean build (all targets)"
    timed cargo test --workspace --lib | row "unit tests (run)"
    touch "$proxy_file"
    timed cargo build --workspace --all-targets | row "touch a proxy file, rebuild"
    touch "$cli_file"
    timed cargo build --workspace --all-targets | row "touch a CLI file, rebuild"
    if [ -f crates/ccr-proxy/Cargo.toml ]; then
        # Built alone, the crate unifies its dependencies' features without the CLI's,
        # so the first run builds them again; later runs are incremental.
        timed cargo test -p ccr-proxy --lib | row "proxy unit tests alone, first time"
        touch "$proxy_file"
        timed cargo test -p ccr-proxy --lib | row "touch a proxy file, proxy unit tests alone"
        touch "$proxy_file"
        timed cargo test --workspace --lib | row "touch a proxy file, all unit tests"
    fi
    cd - >/dev/null
    rm -rf "$target"
done
echo
echo "Load $(cut -d' ' -f1-3 /proc/loadavg) after."

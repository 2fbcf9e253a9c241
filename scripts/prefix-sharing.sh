#!/usr/bin/env bash
# How much of Claude Code's prompt two different users share, as a team's replica sees
# it (its prompt cache can serve only the shared prefix to the second user).
#
#   scripts/prefix-sharing.sh [--keep] [--env K=V]...
#
# --env adds a variable to Claude Code's environment (e.g. CLAUDE_CODE_DISABLE_AUTO_MEMORY=1,
# which drops the per-user memory path from the system prompt) to see what it changes.
#
# Captures the first main-loop /v1/messages request of two "users" from the real
# Claude Code ($CCR_E2E_CLAUDE, with the environment `ccr-setup code` sets): different
# HOME and working directory, each a git repository with a different status, and a
# CLAUDE.md in one. Writes them to tests/fixtures/prefix/, then runs the `it` test
# `prefix_sharing`, which translates both as the proxy sends them upstream and prints
# the shared prefix (bytes of the upstream JSON, and o200k tokens of the prompt text)
# and checks that the proxy does not end it earlier than the client's own differences.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[prefix] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ -z "${CCR_E2E_CLAUDE:-}" ] || [ ! -x "$CCR_E2E_CLAUDE" ]; then
    die "set CCR_E2E_CLAUDE (source scripts/ci-deps.sh)"
fi
KEEP=0
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) KEEP=1 ;;
        --env) shift; EXTRA+=("${1:?--env needs K=V}") ;;
        *) die "unknown argument $1" ;;
    esac
    shift
done
WORK="$(mktemp -d)"
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT
OUT=tests/fixtures/prefix
mkdir -p "$OUT"

cargo build --quiet --bin ccr-setup
BIN="${CARGO_TARGET_DIR:-target}/debug/ccr-setup"
mkdir -p "$WORK/env-home"
cat >"$WORK/env-config.json" <<JSON
{"Providers": [{"name": "team", "api_base_url": ["http://10.0.0.2:8000/v1/chat/completions", "http://10.0.0.3:8000/v1/chat/completions"],
   "api_key": "local", "models": ["gpt-oss"], "context_window": 65536}],
 "Router": {"default": "team,gpt-oss"}}
JSON
HOME="$WORK/env-home" "$BIN" --config "$WORK/env-config.json" env >"$WORK/env.sh" || die "ccr-setup env failed"
for kv in "${EXTRA[@]}"; do printf "export %s='%s'\n" "${kv%%=*}" "${kv#*=}" >>"$WORK/env.sh"; done

git_repo() { # dir
    git -C "$1" init -q
    git -C "$1" -c user.name=u -c user.email=u@example.com commit -q --allow-empty -m init
}
# User a: a project with a CLAUDE.md, a committed file and an uncommitted change.
A="$WORK/alice/home"; PA="$WORK/alice/src/payments-service"
mkdir -p "$A" "$PA"
git_repo "$PA"
printf 'def pay(amount):\n    return amount\n' >"$PA/pay.py"
git -C "$PA" add pay.py && git -C "$PA" -c user.name=a -c user.email=a@example.com commit -q -m "add pay"
printf '# Payments\nUse pytest. Never log card numbers.\n' >"$PA/CLAUDE.md"
echo "# todo" >>"$PA/pay.py"
# User b: another path, a clean repository on another branch, no CLAUDE.md.
B="$WORK/bob/home"; PB="$WORK/bob/work/frontend"
mkdir -p "$B" "$PB"
git_repo "$PB"
git -C "$PB" checkout -q -b feature/login
printf 'export const x = 1;\n' >"$PB/index.ts"
git -C "$PB" add index.ts && git -C "$PB" -c user.name=b -c user.email=b@example.com commit -q -m "add index"

version="$("$CCR_E2E_CLAUDE" --version | awk '{print $1}')"
for who in a b; do
    if [ "$who" = a ]; then home="$A" cwd="$PA"; else home="$B" cwd="$PB"; fi
    say "capturing user $who (Claude Code $version, cwd $cwd)"
    python3 scripts/bench/capture_first_request.py --claude "$CCR_E2E_CLAUDE" \
        --env-file "$WORK/env.sh" --cwd "$cwd" --home "$home" --out "$OUT/user-$who.json"
done
printf '%s%s\n' "$version" "${EXTRA[*]:+ with ${EXTRA[*]}}" >"$OUT/claude-version"
say "measuring (cargo test --test it prefix_sharing)"
cargo test --quiet --test it prefix_sharing -- --nocapture 2>&1 | grep -oE '\[prefix\].*|test result.*|FAILED.*|panicked.*' >&2

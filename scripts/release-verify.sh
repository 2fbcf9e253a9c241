#!/usr/bin/env bash
# Installs one target's archive from a release directory the way a user does, and runs
# what was installed. Used by release.yml (on a runner that runs TARGET) and by
# scripts/release-local.sh (aarch64 under qemu-user), so both check the same things:
#   1. DIST is served on 127.0.0.1 in GitHub's release layout (latest/download/LATEST,
#      download/v<version>/…) and its own install.sh installs with --no-init into an
#      empty HOME, resolving "latest" through LATEST (a prerelease, which has no LATEST,
#      is asked for by version);
#   2. the installed file is byte for byte the binary in TARGET's archive;
#   3. `ccr-setup --version` names the version;
#   4. `ccr-setup doctor --json` prints the list of checks (its exit code is not judged:
#      a bare machine has no Ollama);
#   5. `ccr-setup proxy`, with a config whose provider is a fake OpenAI-compatible
#      upstream on 127.0.0.1, answers POST /v1/messages with an Anthropic message that
#      carries the upstream's text.
# The machine's uname -m (and, on macOS, the Rosetta probe) is overridden for install.sh
# so it picks TARGET: that is how x86_64-apple-darwin runs on arm64 (`arch -x86_64`) and
# aarch64 musl on x86_64 (qemu-user through binfmt_misc).
#
#   scripts/release-verify.sh DIST TARGET
set -euo pipefail
cd "$(dirname "$0")/.."

dist="$(cd "${1:?usage: scripts/release-verify.sh DIST TARGET}" && pwd)"
target="${2:?missing TARGET}"

say() { echo "release-verify[$target]: $*"; }
die() {
    echo "release-verify[$target]: FAILED: $*" >&2
    exit 1
}

shopt -s nullglob
archives=("$dist"/ccr-setup-*-"$target".tar.gz)
[ "${#archives[@]}" -eq 1 ] || die "expected one ccr-setup-*-$target.tar.gz in $dist, found ${#archives[@]}"
archive="${archives[0]}"
version="$(basename "$archive" .tar.gz)"
version="${version#ccr-setup-}"
version="${version%-"$target"}"
[ -f "$dist/install.sh" ] || die "$dist has no install.sh (run scripts/release-dist.sh first)"

work="$(mktemp -d)"
pids=()
cleanup() {
    local pid
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
    for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Runs "$@" for at most $1 seconds (perl's alarm: coreutils `timeout` is not on macOS).
bounded() {
    local secs="$1"
    shift
    perl -e 'alarm shift; exec @ARGV or die "exec $ARGV[0]: $!\n"' "$secs" "$@"
}

# Waits (at most 15 s, polling) until FILE has a line matching REGEX, then prints the
# first such line; fails when PID has exited first.
wait_for_line() {
    local file="$1" regex="$2" pid="$3" i line
    for ((i = 0; i < 150; i++)); do
        line="$(grep -m 1 -E "$regex" "$file" 2>/dev/null || true)"
        if [ -n "$line" ]; then
            echo "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "process $pid exited; its output:" >&2; cat "$file" >&2; return 1; }
        perl -e 'select undef, undef, undef, 0.1'
    done
    echo "no line matching /$regex/ within 15 s; output so far:" >&2
    cat "$file" >&2
    return 1
}

# --- 1. mirror and install
mirror="$work/mirror"
mkdir -p "$mirror/download/v$version" "$mirror/latest/download"
cp "$dist"/ccr-setup-"$version"-*.tar.gz "$dist"/ccr-setup-"$version"-*.tar.gz.sha256 "$mirror/download/v$version/"
# Signatures when the release was signed (release-dist.sh with a key).
for sig in "$dist"/ccr-setup-"$version"-*.tar.gz.minisig; do
    cp "$sig" "$mirror/download/v$version/"
done
latest_env=()
if [ -f "$dist/LATEST" ]; then
    cp "$dist/LATEST" "$mirror/latest/download/LATEST"
else
    latest_env=(CCR_SETUP_VERSION="$version")
fi
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$mirror" >"$work/mirror.log" 2>&1 &
pid=$!
pids+=("$pid")
line="$(wait_for_line "$work/mirror.log" 'port [0-9]+' "$pid")" || die "the mirror did not start"
mirror_port="$(echo "$line" | sed -E 's/.*port ([0-9]+).*/\1/')"
say "mirror of $dist on http://127.0.0.1:$mirror_port"

# install.sh must choose TARGET: report its architecture, and no Rosetta translation.
shims="$work/shims"
mkdir -p "$shims"
case "$target" in
    aarch64-*) arch=aarch64 ;;
    x86_64-*) arch=x86_64 ;;
    *) die "unknown architecture in $target" ;;
esac
real_uname="$(command -v uname)"
# shellcheck disable=SC2016 # "$1", "$2" and "$@" are the shims' own
printf '#!/bin/sh\n[ "$1" = -m ] && { echo %s; exit 0; }\nexec %s "$@"\n' "$arch" "$real_uname" >"$shims/uname"
if real_sysctl="$(command -v sysctl)"; then
    # shellcheck disable=SC2016
    printf '#!/bin/sh\n[ "$2" = sysctl.proc_translated ] && { echo 0; exit 0; }\nexec %s "$@"\n' "$real_sysctl" >"$shims/sysctl"
fi
chmod 755 "$shims"/*

home="$work/home"
mkdir -p "$home"
bounded 120 env ${latest_env[@]+"${latest_env[@]}"} HOME="$home" PATH="$shims:$PATH" \
    CCR_SETUP_DOWNLOAD_URL="http://127.0.0.1:$mirror_port" CCR_SETUP_ALLOW_HTTP=1 \
    sh "$dist/install.sh" --no-init </dev/null >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; die "install.sh --no-init"; }
grep -q "ccr-setup-$version-$target.tar.gz" "$work/install.log" ||
    { cat "$work/install.log" >&2; die "install.sh did not download the $target archive"; }
bin="$home/.local/bin/ccr-setup"
say "install.sh installed $bin"

# --- 2. the installed file is the archive's binary
mkdir "$work/unpacked"
tar -xzf "$archive" -C "$work/unpacked"
cmp -s "$bin" "$work/unpacked/ccr-setup-$version-$target/ccr-setup" ||
    die "$bin differs from the binary in $(basename "$archive")"

# --- 3. --version
got="$(HOME="$home" bounded 60 "$bin" --version)" || die "$bin --version"
[ "$got" = "ccr-setup $version" ] || die "--version printed \"$got\", expected \"ccr-setup $version\""
say "--version: $got"

# --- 4. doctor --json: a JSON list of checks with ids, whatever the machine lacks
set +e
HOME="$home" bounded 120 "$bin" doctor --json </dev/null >"$work/doctor.json" 2>"$work/doctor.err"
doctor_rc=$?
set -e
python3 - "$work/doctor.json" <<'PY' || { cat "$work/doctor.err" >&2; die "doctor --json (exit $doctor_rc) did not print a list of checks"; }
import json, sys
checks = json.load(open(sys.argv[1]))
assert isinstance(checks, list) and checks, "not a non-empty list"
ids = [c["id"] for c in checks]
assert "platform.os" in ids, ids
assert all(c["status"] in ("ok", "warn", "fail") for c in checks), checks
print(f"{len(ids)} checks: " + " ".join(ids))
PY
say "doctor --json exit $doctor_rc (a bare machine may fail checks)"

# --- 5. proxy round trip against a fake OpenAI-compatible upstream
cat >"$work/upstream.py" <<'PY'
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Upstream(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = self.path.endswith("/chat/completions") and not body.get("stream")
        answer = {
            "id": "chatcmpl-release", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "pong from the fake upstream"}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
        }
        data = json.dumps(answer if ok else {"error": {"message": f"unexpected {self.path}"}}).encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Upstream)
print(f"upstream port {server.server_address[1]}", flush=True)
server.serve_forever()
PY
python3 -u "$work/upstream.py" >"$work/upstream.log" 2>&1 &
pid=$!
pids+=("$pid")
line="$(wait_for_line "$work/upstream.log" 'upstream port [0-9]+' "$pid")" || die "the fake upstream did not start"
upstream_port="${line##* }"

mkdir -p "$home/.claude-code-router"
cat >"$home/.claude-code-router/config.json" <<JSON
{
  "HOST": "127.0.0.1",
  "PORT": 3456,
  "Providers": [{"name": "fake", "api_base_url": "http://127.0.0.1:$upstream_port/v1/chat/completions",
                 "api_key": "release-check", "models": ["tiny"]}],
  "Router": {"default": "fake,tiny"}
}
JSON
chmod 600 "$home/.claude-code-router/config.json"
HOME="$home" "$bin" proxy --port 0 </dev/null >"$work/proxy.log" 2>&1 &
pid=$!
pids+=("$pid")
line="$(wait_for_line "$work/proxy.log" 'listening on http://127\.0\.0\.1:[0-9]+' "$pid")" ||
    die "the installed proxy did not start"
proxy_url="$(echo "$line" | sed -E 's|.*listening on (http://127\.0\.0\.1:[0-9]+).*|\1|')"
say "proxy on $proxy_url, upstream on 127.0.0.1:$upstream_port"

curl -sS --max-time 60 -o "$work/answer.json" -w '%{http_code}' "$proxy_url/v1/messages" \
    -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' \
    -d '{"model":"claude-release-check","max_tokens":32,"messages":[{"role":"user","content":"ping"}]}' \
    >"$work/status" || die "POST $proxy_url/v1/messages"
python3 - "$work/answer.json" "$(cat "$work/status")" <<'PY' || die "the proxy round trip did not give the upstream's answer as an Anthropic message"
import json, sys
status, answer = sys.argv[2], json.load(open(sys.argv[1]))
assert status == "200", (status, answer)
assert answer["type"] == "message" and answer["role"] == "assistant", answer
assert answer["content"] == [{"type": "text", "text": "pong from the fake upstream"}], answer
assert answer["stop_reason"] == "end_turn", answer
assert answer["usage"]["input_tokens"] == 7 and answer["usage"]["output_tokens"] == 5, answer
print("proxy answered:", json.dumps(answer["content"][0]))
PY
say "ok"

#!/usr/bin/env bash
# Instructions per request of the proxy, counted by valgrind's callgrind: a figure that,
# unlike CPU time on a shared VM, does not move by 5–15% from run to run, so two builds
# a few percent apart can be told apart. User-space only (the kernel's share, syscalls
# and context switches, is what scripts/bench-proxy.sh's CPU figure adds).
#
#   scripts/bench-instructions.sh [--init-config] [--body small|small-stream|large-stream]
#                                 [--concurrency N] [--duration SECS]
#                                 --ccr-setup-bin LABEL=PATH [--ccr-setup-bin LABEL=PATH ...]
#
# Each build runs under callgrind in front of the bench's nginx upstream (the same
# fixtures and config as scripts/bench-proxy.sh; --init-config gives the config `init`
# writes). wrk warms it up, the counters are zeroed, wrk runs again, and the counters
# are dumped: instructions of that run / requests completed. Prints a markdown table
# with each build's top functions by instructions per request. Needs valgrind, nginx
# and wrk. Loopback only; stops only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."

INIT_CONFIG=0
BODY=small
CONCURRENCY=4
DURATION=10
BINS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --init-config) INIT_CONFIG=1 ;;
        --body) BODY="$2"; shift ;;
        --concurrency) CONCURRENCY="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --ccr-setup-bin) BINS+=("$2"); shift ;;
        -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-instructions: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$BODY" in
    small) GROUP=json ;;
    small-stream | large-stream) GROUP=sse ;;
    *) echo "bench-instructions: --body is small, small-stream or large-stream" >&2; exit 2 ;;
esac
[ ${#BINS[@]} -gt 0 ] || { echo "bench-instructions: give at least one --ccr-setup-bin LABEL=PATH" >&2; exit 2; }
for tool in valgrind callgrind_control callgrind_annotate nginx wrk; do
    command -v "$tool" >/dev/null || { echo "bench-instructions: $tool is not installed" >&2; exit 2; }
done

WORK="$(mktemp -d)"
# nginx's worker runs as another user: it must read the fixtures.
chmod 755 "$WORK"
STARTED_PIDS=()
cleanup() {
    for pid in "${STARTED_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # port what
    for _ in $(seq 1 120); do
        if curl -s -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null; then return 0; fi
        sleep 0.5
    done
    echo "bench-instructions: $2 did not answer on port $1" >&2
    exit 1
}

# shellcheck source=scripts/bench/upstream.sh
. scripts/bench/upstream.sh
start_fake_upstream "$WORK"
wait_http "$NGINX_PORT" nginx
ENDPOINT="http://127.0.0.1:$NGINX_PORT/$GROUP/v1/chat/completions"

load() { # seconds url -> requests completed; exits when any failed
    local line
    line="$(BENCH_BODY="$WORK/fixtures/$BODY.json" wrk -t1 -c"$CONCURRENCY" -d"$1s" --timeout 30s \
        -s scripts/bench/post.lua "$2" | grep '^BENCH_JSON ')"
    python3 - "${line#BENCH_JSON }" <<'PY'
import json, sys
run = json.loads(sys.argv[1])
failed = sum(v for k, v in run.items() if k.startswith("errors_"))
if failed:
    sys.exit(f"bench-instructions: {failed} of {run['requests']} requests failed: {run}")
print(run["requests"])
PY
}

echo "| build | body | concurrency | config | requests | instructions per request |"
echo "| --- | --- | ---: | --- | ---: | ---: |"
TOPS=""
for pair in "${BINS[@]}"; do
    label="${pair%%=*}"
    bin="${pair#*=}"
    port="$(free_port)"
    if [ "$INIT_CONFIG" = 1 ]; then
        extra='"APIKEY": "sk-bench-key", "LOG": true,'
        window=', "context_window": 131072'
        config_name="init's"
    else
        extra='"LOG": false,'
        window=''
        config_name="bench"
    fi
    cat >"$WORK/$label.json" <<EOF
{ $extra "HOST": "127.0.0.1", "PORT": $port,
  "Providers": [{"name": "bench", "api_base_url": "$ENDPOINT", "api_key": "bench", "models": ["bench-model"]$window}],
  "Router": {"default": "bench,bench-model"} }
EOF
    HOME="$WORK/$label-home" valgrind --tool=callgrind --callgrind-out-file="$WORK/$label.cg" \
        --dump-instr=no "$bin" --quiet --config "$WORK/$label.json" \
        proxy --host 127.0.0.1 --port "$port" >"$WORK/$label.log" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    wait_http "$port" "$label"
    status="$(curl -s -o "$WORK/preflight" -w '%{http_code}' -H 'content-type: application/json' \
        -H 'anthropic-version: 2023-06-01' -H 'x-api-key: sk-bench-key' \
        --data-binary "@$WORK/fixtures/$BODY.json" "http://127.0.0.1:$port/v1/messages")"
    if [ "$status" != 200 ]; then
        echo "bench-instructions: $label answered $status: $(head -c 400 "$WORK/preflight")" >&2
        exit 1
    fi
    load 3 "http://127.0.0.1:$port/v1/messages" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    requests="$(load "$DURATION" "http://127.0.0.1:$port/v1/messages")"
    callgrind_control -d "$pid" >/dev/null 2>&1
    sleep 1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # The dump callgrind_control asked for (the file without a suffix is the final one).
    dump="$WORK/$label.cg.1"
    total="$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')"
    echo "| $label | $BODY | $CONCURRENCY | $config_name | $requests | $(python3 -c "print(f'{$total / $requests:,.0f}')") |"
    TOPS+="$(printf '\n%s, top functions (instructions per request, self):\n' "$label")"
    TOPS+="$(printf '\n%s' "$(callgrind_annotate --inclusive=no --threshold=100 --auto=no "$dump" 2>/dev/null |
        grep -E '^ *[0-9,]+ \(' | grep -v TOTALS |
        awk -v n="$requests" -v total="$total" '{ v = $1; gsub(",", "", v); v += 0 }
            # The thread entry points callgrind charges a whole thread to: not "self".
            v > total / 2 { next }
            { sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, ""); sub(/^[^:]*:/, "")
              printf "  %8.0f %s\n", v / n, substr($0, 1, 110) }' | sort -rn | head -n 12)")"
done
printf '%s\n' "$TOPS"

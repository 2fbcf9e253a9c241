#!/usr/bin/env bash
# Peer benchmark: ccr-setup's proxy against claude-code-router 2.0.0 (and optionally
# LiteLLM), all in front of the same fast fake upstream (nginx serving a fixed
# chat.completion and a fixed 200-chunk SSE stream), with the upstream hit directly as
# the floor. Load from wrk (scripts/bench/post.lua). Not part of CI's pass or fail.
#
#   scripts/bench-proxy.sh [--with-litellm] [--duration SECS] [--warmup SECS]
#                          [--ccr-setup-bin [LABEL=]PATH ... | --no-ccr-setup] [--no-ccr]
#                          [--init-config] [--rounds N]
#
# Scenarios: small non-streaming, small streaming, and a 76 KB Claude Code-shaped
# streaming request, each at concurrency 1 and 32. Reports req/s, p50/p99, p50 added
# over the floor, CPU per request (the proxy process's utime+stime over the run / the
# requests completed), RSS idle and peak (VmRSS/VmHWM of the listening process), and
# the median time to first byte of a small stream. Prints markdown; writes
# target/bench/proxy.json (and the raw target/bench/proxy.jsonl).
# --ccr-setup-bin LABEL=PATH, given more than once, compares builds in one run (target
# ccr-setup@LABEL each); --rounds N runs the proxies N times, interleaved, and reports
# medians; --init-config gives ccr-setup the config `init` writes (APIKEY, LOG: true,
# the provider's context_window) instead of the bare one.
#
# Loopback only; bounded loops; stops only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

DURATION=10
WARMUP=2
WITH_LITELLM=0
WITH_CCR=1
WITH_CCR_SETUP=1
CCR_SETUP_BIN=""
# LABEL=PATH pairs from --ccr-setup-bin, in the order given.
CCR_SETUP_BINS=()
INIT_CONFIG=0
ROUNDS=1
TTFB_SAMPLES=30
CCR_VERSION="2.0.0"
# The key every request carries (LiteLLM insists on a master key; the others have no
# APIKEY configured and ignore it).
export BENCH_API_KEY="sk-bench-key"

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

while [ "$#" -gt 0 ]; do
    case "$1" in
        --with-litellm) WITH_LITELLM=1 ;;
        --no-ccr) WITH_CCR=0 ;;
        --no-ccr-setup) WITH_CCR_SETUP=0 ;;
        --ccr-setup-bin) CCR_SETUP_BINS+=("$2"); shift ;;
        --init-config) INIT_CONFIG=1 ;;
        --rounds) ROUNDS="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "bench-proxy: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "bench-proxy: $*" >&2; }
die() { echo "bench-proxy: error: $*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------
# nginx and wrk come from apt through ci-deps.sh (functions only: no llama build).
# shellcheck source=scripts/ci-deps.sh
CCR_CI_DEPS_FUNCTIONS_ONLY=1 source scripts/ci-deps.sh
ccr_ci_apt || die "could not install nginx/wrk"
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin" ;; esac
CACHE="$CCR_CI_CACHE"

install_ccr() {
    local bin="$CACHE/ccr/node_modules/.bin/ccr"
    if [ -x "$bin" ] && [ "$(HOME="$WORK" "$bin" -v 2>/dev/null | grep -o '[0-9][0-9.]*' | head -n 1)" = "$CCR_VERSION" ]; then
        return 0
    fi
    say "npm install @musistudio/claude-code-router@$CCR_VERSION"
    rm -rf "$CACHE/ccr" && mkdir -p "$CACHE/ccr"
    npm install --prefix "$CACHE/ccr" --no-audit --no-fund --loglevel=error \
        "@musistudio/claude-code-router@$CCR_VERSION" >"$WORK/ccr-npm.log" 2>&1 ||
        die "npm install of claude-code-router failed (log: $WORK/ccr-npm.log)"
}

install_litellm() {
    local venv="$CACHE/litellm-venv"
    if [ -x "$venv/bin/litellm" ]; then return 0; fi
    say "pip install 'litellm[proxy]' into $venv"
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'litellm[proxy]'; } >"$WORK/litellm-pip.log" 2>&1; then
        die "pip install litellm[proxy] failed (log: $WORK/litellm-pip.log)"
    fi
}

# --- process bookkeeping -----------------------------------------------------------
WORK="$(mktemp -d)"
# nginx's workers drop root privileges and must read the fixtures.
chmod 755 "$WORK"
STARTED_PIDS=()
OUT_DIR="$ROOT/target/bench"
mkdir -p "$OUT_DIR"
RESULTS="$OUT_DIR/proxy.jsonl"
: >"$RESULTS"

stop_pid() {
    local pid="$1" _
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The pid of the process listening on 127.0.0.1:$1 (a launcher may have forked it).
listener_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# Waits (bounded) until something answers HTTP on the port while $2 is alive.
wait_http() {
    local port="$1" pid="$2" what="$3" _
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || die "$what exited during startup (log: $WORK/$what.log: $(tail -n 3 "$WORK/$what.log" 2>/dev/null | tr '\n' ' '))"
        if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then return 0; fi
        sleep 0.1
    done
    die "$what did not answer on 127.0.0.1:$port within 30 s"
}

proc_kib() { # pid field(VmRSS|VmHWM)
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# --- fixtures and the fake upstream -------------------------------------------------
FIXTURES="$WORK/fixtures"
# shellcheck source=scripts/bench/upstream.sh
. scripts/bench/upstream.sh
start_fake_upstream "$WORK"
wait_http "$NGINX_PORT" "$NGINX_PID" nginx
UPSTREAM="http://127.0.0.1:$NGINX_PORT"

# A second, slow upstream: first token at once, the rest after a pause. Shows whether a
# proxy forwards stream chunks as they come or buffers them.
TRICKLE_PAUSE_MS=300
TRICKLE_PORT="$(free_port)"
python3 scripts/bench/trickle_upstream.py "$TRICKLE_PORT" "$TRICKLE_PAUSE_MS" >"$WORK/trickle.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_http "$TRICKLE_PORT" "$!" trickle
TRICKLE="http://127.0.0.1:$TRICKLE_PORT"

# The upstream base (…/v1) that a group's provider points at.
upstream_base() {
    if [ "$1" = trickle ]; then echo "$TRICKLE/v1"; else echo "$UPSTREAM/$1/v1"; fi
}

# --- targets -----------------------------------------------------------------------
# group: "json" (upstream answers chat.json), "sse" (upstream answers chat.sse) or
# "trickle" (the slow upstream). The proxies are restarted per group with the provider
# pointing at that upstream.
TARGET_URL=""
TARGET_PID=""
TARGET_LAUNCHER=""

start_target() { # name group
    local name="$1" group="$2" port log
    local endpoint
    endpoint="$(upstream_base "$group")/chat/completions"
    TARGET_PID=""
    TARGET_LAUNCHER=""
    case "$name" in
        direct)
            TARGET_URL="$endpoint"
            return 0
            ;;
        ccr-setup*)
            port="$(free_port)"
            if [ "$INIT_CONFIG" = 1 ]; then
                # As `init` writes it: a proxy key, request logging, the model's window.
                cat >"$WORK/ccr-setup-$group.json" <<EOF
{
  "APIKEY": "$BENCH_API_KEY",
  "LOG": true,
  "HOST": "127.0.0.1",
  "PORT": $port,
  "Providers": [{"name": "bench", "api_base_url": "$endpoint", "api_key": "bench", "models": ["bench-model"], "context_window": 131072}],
  "Router": {"default": "bench,bench-model"}
}
EOF
            else
                cat >"$WORK/ccr-setup-$group.json" <<EOF
{
  "LOG": false,
  "HOST": "127.0.0.1",
  "PORT": $port,
  "Providers": [{"name": "bench", "api_base_url": "$endpoint", "api_key": "bench", "models": ["bench-model"]}],
  "Router": {"default": "bench,bench-model"}
}
EOF
            fi
            log="$WORK/$name.log"
            HOME="$WORK/$name-home" "$(ccr_setup_bin "$name")" --quiet --config "$WORK/ccr-setup-$group.json" \
                proxy --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
            ;;
        ccr)
            port="$(free_port)"
            local home="$WORK/ccr-home-$group"
            mkdir -p "$home/.claude-code-router"
            cat >"$home/.claude-code-router/config.json" <<EOF
{
  "LOG": false,
  "HOST": "127.0.0.1",
  "PORT": $port,
  "API_TIMEOUT_MS": 600000,
  "Providers": [{"name": "bench", "api_base_url": "$endpoint", "api_key": "bench", "models": ["bench-model"]}],
  "Router": {"default": "bench,bench-model"}
}
EOF
            log="$WORK/ccr.log"
            HOME="$home" "$CACHE/ccr/node_modules/.bin/ccr" start >"$log" 2>&1 &
            ;;
        litellm)
            port="$(free_port)"
            cat >"$WORK/litellm-$group.yaml" <<EOF
model_list:
  - model_name: claude-opus-4-8
    litellm_params:
      model: hosted_vllm/bench-model
      api_base: $(upstream_base "$group")
      api_key: bench
litellm_settings:
  set_verbose: false
general_settings:
  master_key: $BENCH_API_KEY
EOF
            log="$WORK/litellm.log"
            "$CACHE/litellm-venv/bin/litellm" --config "$WORK/litellm-$group.yaml" \
                --host 127.0.0.1 --port "$port" --num_workers 1 >"$log" 2>&1 &
            ;;
        *) die "unknown target $name" ;;
    esac
    TARGET_LAUNCHER="$!"
    STARTED_PIDS+=("$TARGET_LAUNCHER")
    wait_http "$port" "$TARGET_LAUNCHER" "$name"
    TARGET_PID="$(listener_pid "$port")"
    [ -n "$TARGET_PID" ] || TARGET_PID="$TARGET_LAUNCHER"
    TARGET_URL="http://127.0.0.1:$port/v1/messages"
}

# The binary behind target ccr-setup or ccr-setup@LABEL.
ccr_setup_bin() {
    local pair
    if [ "$1" = ccr-setup ]; then echo "$CCR_SETUP_BIN"; return 0; fi
    for pair in "${CCR_SETUP_BINS[@]}"; do
        if [ "ccr-setup@${pair%%=*}" = "$1" ]; then echo "${pair#*=}"; return 0; fi
    done
    die "no binary for target $1"
}

# utime + stime of a process so far, in clock ticks (0 when it is gone).
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

stop_target() {
    if [ -n "$TARGET_LAUNCHER" ]; then
        stop_pid "$TARGET_LAUNCHER"
        if [ -n "$TARGET_PID" ] && [ "$TARGET_PID" != "$TARGET_LAUNCHER" ]; then
            stop_pid "$TARGET_PID"
        fi
    fi
}

# A request must come back whole before we time anything: status 200 and the ending
# of its kind (message_stop for Anthropic streams through a proxy, [DONE] direct).
preflight() { # name url body expect
    local name="$1" url="$2" body="$3" expect="$4" code
    code="$(curl -s -o "$WORK/preflight.out" -w '%{http_code}' --max-time 30 -X POST \
        -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' -H "x-api-key: $BENCH_API_KEY" \
        --data-binary "@$body" "$url")" || code="curl-failed"
    if [ "$code" != 200 ] || ! grep -q -- "$expect" "$WORK/preflight.out"; then
        say "$name: preflight $(basename "$body") got HTTP $code, wanted 200 with '$expect': $(head -c 300 "$WORK/preflight.out" | tr '\n' ' ')"
        return 1
    fi
}

record() { echo "$1" >>"$RESULTS"; }

run_wrk() { # name scenario body concurrency url round
    local name="$1" scenario="$2" body="$3" conc="$4" url="$5" round="$6" line cpu=null before
    BENCH_BODY="$body" wrk -t1 -c"$conc" -d"${WARMUP}s" --timeout 30s -s scripts/bench/post.lua "$url" >/dev/null 2>&1 || true
    if [ -n "$TARGET_PID" ]; then before="$(cpu_ticks "$TARGET_PID")"; fi
    line="$(BENCH_BODY="$body" wrk -t1 -c"$conc" -d"${DURATION}s" --timeout 30s -s scripts/bench/post.lua "$url" 2>&1 | grep '^BENCH_JSON ' | head -n 1)" || true
    if [ -n "$TARGET_PID" ]; then cpu="$(($(cpu_ticks "$TARGET_PID") - before))"; fi
    if [ -z "$line" ]; then
        say "$name $scenario c=$conc: wrk produced no summary"
        return 0
    fi
    record "{\"kind\":\"load\",\"target\":\"$name\",\"scenario\":\"$scenario\",\"concurrency\":$conc,\"round\":$round,\"cpu_ticks\":$cpu,\"clk_tck\":$CLK_TCK,\"wrk\":${line#BENCH_JSON }}"
    say "$name $scenario c=$conc: $(echo "${line#BENCH_JSON }" | CPU="$cpu" python3 -c 'import json,os,sys; d=json.load(sys.stdin); c=os.environ["CPU"]; t=int(os.environ["CLK_TCK"]); n=d["requests"]; cpu="" if c == "null" or not n else ", CPU %.3f ms/req" % (int(c) * 1000 / t / n); print("%.0f req/s, p50 %.2f ms, p99 %.2f ms, non-2xx %d%s" % (n/(d["duration_us"]/1e6), d["p50_us"]/1e3, d["p99_us"]/1e3, d["errors_status"], cpu))')"
}

ttfb() { # name url
    local name="$1" url="$2" _
    : >"$WORK/ttfb"
    for _ in $(seq 1 "$TTFB_SAMPLES"); do
        curl -s -o /dev/null -w '%{time_starttransfer} %{time_total}\n' --max-time 30 -X POST \
            -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' -H "x-api-key: $BENCH_API_KEY" \
            --data-binary "@$FIXTURES/small-stream.json" "$url" >>"$WORK/ttfb" || true
    done
    record "{\"kind\":\"ttfb\",\"target\":\"$name\",\"samples\":[$(awk '{printf "%s[%s,%s]", (NR>1?",":""), $1, $2}' "$WORK/ttfb")]}"
}

bench_target() { # name round
    local name="$1" round="$2" group scenario body conc expect idle hwm ok
    for group in json sse trickle; do
        start_target "$name" "$group"
        if [ "$name" = direct ]; then expect='\[DONE\]\|chat.completion'; else expect='message_stop\|"type":"message"'; fi
        if [ "$group" = trickle ]; then
            if preflight "$name" "$TARGET_URL" "$FIXTURES/small-stream.json" "$expect" &&
                python3 scripts/bench/first_token.py "$TARGET_URL" "$FIXTURES/small-stream.json" 10 >"$WORK/first_token.json"; then
                record "{\"kind\":\"first_token\",\"target\":\"$name\",\"pause_ms\":$TRICKLE_PAUSE_MS,\"result\":$(cat "$WORK/first_token.json")}"
            else
                record "{\"kind\":\"failed\",\"target\":\"$name\",\"group\":\"$group\"}"
            fi
            stop_target
            continue
        fi
        ok=1
        for scenario in small small-stream large-stream; do
            case "$scenario" in
                small) [ "$group" = json ] || continue; body="$FIXTURES/small.json" ;;
                small-stream) [ "$group" = sse ] || continue; body="$FIXTURES/small-stream.json" ;;
                large-stream) [ "$group" = sse ] || continue; body="$FIXTURES/large-stream.json" ;;
            esac
            preflight "$name" "$TARGET_URL" "$body" "$expect" || { ok=0; break; }
        done
        if [ "$ok" = 0 ]; then
            record "{\"kind\":\"failed\",\"target\":\"$name\",\"group\":\"$group\"}"
            stop_target
            continue
        fi
        idle=0
        if [ -n "$TARGET_PID" ]; then idle="$(proc_kib "$TARGET_PID" VmRSS)"; fi
        if [ "$group" = sse ]; then ttfb "$name" "$TARGET_URL"; fi
        for scenario in small small-stream large-stream; do
            case "$scenario" in
                small) [ "$group" = json ] || continue; body="$FIXTURES/small.json" ;;
                small-stream) [ "$group" = sse ] || continue; body="$FIXTURES/small-stream.json" ;;
                large-stream) [ "$group" = sse ] || continue; body="$FIXTURES/large-stream.json" ;;
            esac
            for conc in 1 32; do
                run_wrk "$name" "$scenario" "$body" "$conc" "$TARGET_URL" "$round"
            done
        done
        if [ -n "$TARGET_PID" ]; then
            hwm="$(proc_kib "$TARGET_PID" VmHWM)"
            record "{\"kind\":\"rss\",\"target\":\"$name\",\"group\":\"$group\",\"idle_kib\":$idle,\"after_kib\":$(proc_kib "$TARGET_PID" VmRSS),\"peak_kib\":$hwm}"
        fi
        stop_target
    done
}

# --- run ---------------------------------------------------------------------------
export CLK_TCK
CLK_TCK="$(getconf CLK_TCK)"
TARGETS=(direct)
if [ "$WITH_CCR_SETUP" = 1 ] && [ "${#CCR_SETUP_BINS[@]}" -gt 1 ]; then
    for pair in "${CCR_SETUP_BINS[@]}"; do
        case "$pair" in *=*) ;; *) die "--ccr-setup-bin given more than once wants LABEL=PATH, got $pair" ;; esac
        [ -x "${pair#*=}" ] || die "${pair#*=} is not executable"
        TARGETS+=("ccr-setup@${pair%%=*}")
    done
    CCR_SETUP_BIN="${CCR_SETUP_BINS[0]#*=}"
elif [ "$WITH_CCR_SETUP" = 1 ]; then
    if [ "${#CCR_SETUP_BINS[@]}" = 1 ]; then CCR_SETUP_BIN="${CCR_SETUP_BINS[0]#*=}"; fi
    if [ -z "$CCR_SETUP_BIN" ]; then
        say "cargo build --release --bin ccr-setup"
        cargo build --release --locked --bin ccr-setup >"$WORK/cargo.log" 2>&1 ||
            die "cargo build --release failed (see: cargo build --release --bin ccr-setup)"
        CCR_SETUP_BIN="$ROOT/target/release/ccr-setup"
    fi
    [ -x "$CCR_SETUP_BIN" ] || die "$CCR_SETUP_BIN is not executable"
    TARGETS+=(ccr-setup)
fi
if [ "$WITH_CCR" = 1 ]; then install_ccr; TARGETS+=(ccr); fi
if [ "$WITH_LITELLM" = 1 ]; then install_litellm; TARGETS+=(litellm); fi

machine="$(python3 - <<'EOF'
import json, os, platform
cpu = ""
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
osname = ""
try:
    for line in open("/etc/os-release"):
        if line.startswith("PRETTY_NAME="):
            osname = line.split("=", 1)[1].strip().strip('"')
except OSError:
    pass
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 ** 3)
print(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem,
                  "kernel": platform.release(), "os": osname}))
EOF
)"
versions="{\"nginx\":\"$(nginx -v 2>&1 | sed 's#.*/##')\",\"wrk\":\"$({ wrk -v 2>&1 || true; } | head -n 1 | awk '{print $2}')\""
if [ "$WITH_CCR_SETUP" = 1 ]; then versions="$versions,\"ccr-setup\":\"$("$CCR_SETUP_BIN" --version | awk '{print $2}')\""; fi
if [ "$WITH_CCR" = 1 ]; then versions="$versions,\"claude-code-router\":\"$CCR_VERSION\",\"node\":\"$(node --version)\""; fi
if [ "$WITH_LITELLM" = 1 ]; then versions="$versions,\"litellm\":\"$("$CACHE/litellm-venv/bin/pip" show litellm 2>/dev/null | awk '/^Version/{print $2}')\""; fi
versions="$versions}"
record "{\"kind\":\"meta\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\",\"rounds\":$ROUNDS,\"init_config\":$([ "$INIT_CONFIG" = 1 ] && echo true || echo false),\"duration_s\":$DURATION,\"warmup_s\":$WARMUP,\"load_avg_before\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"machine\":$machine,\"versions\":$versions}"

say "targets: ${TARGETS[*]}; ${DURATION}s per run after ${WARMUP}s warmup; $ROUNDS round(s); upstream nginx on 127.0.0.1:$NGINX_PORT"
# The floor once; the proxies once per round, interleaved, so a busy spell on a shared
# machine falls on all of them alike.
for round in $(seq 1 "$ROUNDS"); do
    for target in "${TARGETS[@]}"; do
        if [ "$target" = direct ] && [ "$round" -gt 1 ]; then continue; fi
        bench_target "$target" "$round"
    done
done
record "{\"kind\":\"end\",\"load_avg_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"

python3 scripts/bench/report.py "$RESULTS" "$OUT_DIR/proxy.json"
say "wrote $OUT_DIR/proxy.json"

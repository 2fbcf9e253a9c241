#!/usr/bin/env bash
# Session replay benchmark: does the local prompt cache survive a real Claude Code
# session? Replays the recorded session (tests/fixtures/session/, Claude Code 2.1.197:
# a title request, 9 main-loop turns with 7 tool round trips, a 2-request subagent) in
# order, each with a small max_tokens, to a real llama-server (SmolLM2-135M, 32k context)
# through ccr-setup, claude-code-router 2.0.0 and llama-server's own /v1/messages, with
# one and with two slots. Reports, per request and in total, the prompt tokens
# llama-server evaluated (timings.prompt_n), served from its cache (cache_n), wall time,
# and the ideal (each request evaluates only what it adds to its conversation).
#
#   scripts/bench-session.sh [--runs "SPEC …"] [--max-tokens N] [--ctx N] [--name NAME]
#                            [--ccr-setup-bin PATH] [--fixture FILE] [--long]
#   scripts/bench-session.sh --record [--long] [--ccr-setup-bin PATH]
#
# A run SPEC is TARGET:SLOTS[:nocache][:bgcloud], TARGET one of ccr-setup, ccr, llama;
# `nocache` starts llama-server with --cache-ram 0 (no host-memory prompt cache, like
# Ollama); `bgcloud` (ccr-setup only) is the cloud-fallback default: Router.background
# goes to an Anthropic-kind stand-in for the cloud and subagents are sent as Haiku, as
# `ccr-setup code` makes Claude Code do.
# Default: "ccr-setup:1 ccr:1 llama:1 ccr-setup:1:nocache ccr-setup:1:nocache:bgcloud
# ccr-setup:2:nocache".
# --record re-records the fixture from the real Claude Code in a PTY, with the
# environment `ccr-setup env` prints, against a scripted upstream.
# --long uses the long read-heavy session (claude-code-2.1.197-long.jsonl: 9 files of
# 5-7k tokens read one at a time, which outgrows the CTX window) and its ideal:
# scripts/bench/session_ideal.py simulates the clear rule on the fixture alone (exact
# o200k counts from a ccr-setup proxy, llama-server's own tokens for the prompts) and
# the report adds the clears each ccr-setup run made against that minimum.
# Prints markdown; writes target/bench/NAME.json (rows in target/bench/NAME.jsonl;
# NAME defaults to session). Rows of several runs combine with
# `cat A.jsonl B.jsonl > all.jsonl && scripts/bench/session_report.py all.jsonl all.json`.
#
# Loopback only; bounded waits; stops only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

FIXTURE="$ROOT/tests/fixtures/session/claude-code-2.1.197.jsonl"
RUNS="ccr-setup:1 ccr:1 llama:1 ccr-setup:1:nocache ccr-setup:1:nocache:bgcloud ccr-setup:2:nocache"
MAX_TOKENS=1
NAME=session
CTX=32768
CCR_SETUP_BIN=""
RECORD=0
LONG=0
CCR_VERSION="2.0.0"

usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; }

while [ "$#" -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift ;;
        --max-tokens) MAX_TOKENS="$2"; shift ;;
        --ctx) CTX="$2"; shift ;;
        --name) NAME="$2"; shift ;;
        --ccr-setup-bin) CCR_SETUP_BIN="$2"; shift ;;
        --fixture) FIXTURE="$2"; shift ;;
        --record) RECORD=1 ;;
        --long) LONG=1; FIXTURE="$ROOT/tests/fixtures/session/claude-code-2.1.197-long.jsonl" ;;
        -h | --help) usage; exit 0 ;;
        *) echo "bench-session: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "bench-session: $*" >&2; }
die() { echo "bench-session: error: $*" >&2; exit 1; }

# Real Claude Code, llama-server and the model (cached by ci-deps.sh).
# shellcheck source=scripts/ci-deps.sh
source scripts/ci-deps.sh || die "scripts/ci-deps.sh failed"
CACHE="$CCR_CI_CACHE"

WORK="$(mktemp -d)"
STARTED_PIDS=()
OUT_DIR="$ROOT/target/bench"
mkdir -p "$OUT_DIR"

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
listener_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}
wait_http() { # port pid what path seconds
    local port="$1" pid="$2" what="$3" path="${4:-/}" secs="${5:-30}" _
    for _ in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || die "$what exited during startup (log: $(tail -n 3 "$WORK/$what.log" 2>/dev/null | tr '\n' ' '))"
        if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port$path"; then return 0; fi
        sleep 0.1
    done
    die "$what did not answer on 127.0.0.1:$port$path within $secs s"
}

# ccr-setup: the given binary, else a release build of this checkout.
if [ -z "$CCR_SETUP_BIN" ]; then
    say "cargo build --release --bin ccr-setup"
    cargo build --release --locked --bin ccr-setup >"$WORK/cargo.log" 2>&1 ||
        die "cargo build --release failed (see: cargo build --release --bin ccr-setup)"
    CCR_SETUP_BIN="$ROOT/target/release/ccr-setup"
fi
[ -x "$CCR_SETUP_BIN" ] || die "$CCR_SETUP_BIN is not executable"

# The environment `ccr-setup code` gives Claude Code for a local default route with a
# CTX-token window: `ccr-setup env` against such a config.
ccr_setup_env() { # out-file
    mkdir -p "$WORK/env-home"
    cat >"$WORK/env-config.json" <<EOF
{
  "Providers": [{"name": "llama", "api_base_url": "http://127.0.0.1:8080/v1/chat/completions",
                 "api_key": "local", "models": ["smollm2"], "context_window": $CTX}],
  "Router": {"default": "llama,smollm2"}
}
EOF
    HOME="$WORK/env-home" "$CCR_SETUP_BIN" --config "$WORK/env-config.json" env >"$1" ||
        die "ccr-setup env failed"
}

if [ "$RECORD" = 1 ]; then
    ccr_setup_env "$WORK/env.sh"
    mkdir -p "$(dirname "$FIXTURE")"
    say "recording Claude Code $("$CCR_E2E_CLAUDE" --version | awk '{print $1}') in a PTY with: $(cut -d= -f1 "$WORK/env.sh" | sed 's/^export //' | tr '\n' ' ')"
    record_args=()
    [ "$LONG" = 1 ] && record_args+=(--long)
    python3 scripts/bench/record_session.py --claude "$CCR_E2E_CLAUDE" --env-file "$WORK/env.sh" \
        --out "$FIXTURE" --raw-dir "$OUT_DIR/session-raw" "${record_args[@]}"
    say "wrote $FIXTURE (unscrubbed bodies in $OUT_DIR/session-raw)"
    exit 0
fi
[ -s "$FIXTURE" ] || die "no fixture at $FIXTURE (record one with --record)"

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
case " $RUNS " in *" ccr:"*) install_ccr ;; esac

LLAMA_PORT=""
LLAMA_PID=""
start_llama() { # slots cache(yes|no)
    local slots="$1" cache="$2"
    local -a extra=()
    [ "$cache" = no ] && extra+=(--cache-ram 0)
    LLAMA_PORT="$(free_port)"
    # --no-repack: on a CPU that reports AMX, llama.cpp's repacked-weight path
    # (ggml_backend_amx_mul_mat) dies of a general protection fault at the first
    # matmul on this VM; repacking changes speed only, never the tokens evaluated.
    # --override-kv: llama-server caps each slot at the model's trained context (8192
    # for SmolLM2) and refuses longer prompts; the long session's reach 13k. Output
    # quality does not matter here (max_tokens 1).
    nice -n 10 "$CCR_E2E_LLAMA_SERVER" -m "$CCR_E2E_GGUF" --alias smollm2 --host 127.0.0.1 \
        --port "$LLAMA_PORT" -c "$((CTX * slots))" -np "$slots" --jinja -t 2 --slots --metrics \
        --no-repack --override-kv "llama.context_length=int:$CTX" "${extra[@]}" \
        >"$WORK/llama.log" 2>&1 &
    LLAMA_PID="$!"
    STARTED_PIDS+=("$LLAMA_PID")
    wait_http "$LLAMA_PORT" "$LLAMA_PID" llama /health 120
}

wait_file() { # path: non-empty within 10 s
    local _
    for _ in $(seq 1 100); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    die "$1 stayed empty"
}

TARGET_URL=""
TARGET_PIDS=()
BGCLOUD=0
start_target() { # name
    local name="$1" port endpoint="http://127.0.0.1:$LLAMA_PORT/v1/chat/completions"
    TARGET_PIDS=()
    case "$name" in
        llama)
            TARGET_URL="http://127.0.0.1:$LLAMA_PORT/v1/messages"
            return 0
            ;;
        ccr-setup)
            port="$(free_port)"
            local cloud="" background=""
            if [ "$BGCLOUD" = 1 ]; then
                python3 scripts/bench/session_upstream.py >"$WORK/cloud.port" 2>"$WORK/cloud.log" &
                STARTED_PIDS+=("$!")
                TARGET_PIDS+=("$!")
                wait_file "$WORK/cloud.port"
                cloud=",{\"name\": \"cloud\", \"api_base_url\": \"http://127.0.0.1:$(cat "$WORK/cloud.port")/v1/messages\", \"api_key\": \"stand-in\", \"models\": [\"claude-haiku-4-5\"]}"
                background=", \"background\": \"cloud,claude-haiku-4-5\""
            fi
            cat >"$WORK/ccr-setup.json" <<EOF
{
  "HOST": "127.0.0.1",
  "PORT": $port,
  "API_TIMEOUT_MS": 900000,
  "Providers": [{"name": "llama", "api_base_url": "$endpoint", "api_key": "local",
                 "models": ["smollm2"], "context_window": $CTX}$cloud],
  "Router": {"default": "llama,smollm2"$background}
}
EOF
            # Info lines (`context editing …`) to the log, which replay_session.py reads.
            HOME="$WORK/ccr-setup-home" RUST_LOG=ccr_setup=info,ccr_proxy=info \
                "$CCR_SETUP_BIN" --quiet --config "$WORK/ccr-setup.json" \
                proxy --host 127.0.0.1 --port "$port" >"$WORK/ccr-setup.log" 2>&1 &
            ;;
        ccr)
            port="$(free_port)"
            local home="$WORK/ccr-home"
            mkdir -p "$home/.claude-code-router"
            cat >"$home/.claude-code-router/config.json" <<EOF
{
  "LOG": false,
  "HOST": "127.0.0.1",
  "PORT": $port,
  "API_TIMEOUT_MS": 900000,
  "Providers": [{"name": "llama", "api_base_url": "$endpoint", "api_key": "local", "models": ["smollm2"]}],
  "Router": {"default": "llama,smollm2"}
}
EOF
            HOME="$home" "$CACHE/ccr/node_modules/.bin/ccr" start >"$WORK/ccr.log" 2>&1 &
            ;;
        *) die "unknown target $name (ccr-setup, ccr or llama)" ;;
    esac
    local launcher="$!"
    TARGET_PIDS+=("$launcher")
    STARTED_PIDS+=("$launcher")
    wait_http "$port" "$launcher" "$name"
    local listener
    listener="$(listener_pid "$port")"
    if [ -n "$listener" ] && [ "$listener" != "$launcher" ]; then
        TARGET_PIDS+=("$listener")
        STARTED_PIDS+=("$listener")
    fi
    TARGET_URL="http://127.0.0.1:$port/v1/messages"
}

ROWS="$OUT_DIR/$NAME.jsonl"
: >"$ROWS"
report_args=()
if [ "$LONG" = 1 ]; then
    # The ideal from the fixture alone: o200k counts and translation by this ccr-setup
    # (with no window, so it edits nothing), llama-server's template and tokenizer.
    IDEAL="$OUT_DIR/$NAME.ideal.json"
    start_llama 1 yes
    say "simulating the ideal clears of $(basename "$FIXTURE")"
    python3 scripts/bench/session_ideal.py --fixture "$FIXTURE" --ccr-setup-bin "$CCR_SETUP_BIN" \
        --llama "http://127.0.0.1:$LLAMA_PORT" --window "$CTX" --out "$IDEAL" ||
        die "session_ideal.py failed"
    stop_pid "$LLAMA_PID"
    report_args+=(--ideal "$IDEAL")
fi
say "fixture $(basename "$FIXTURE"): $(wc -l <"$FIXTURE") requests; runs: $RUNS"
for spec in $RUNS; do
    IFS=: read -r target slots flags <<<"$spec"
    cache=yes
    BGCLOUD=0
    extra=()
    label="$target"
    [ "$target" = llama ] && label="llama-server's /v1/messages"
    label="$label, $slots slot$([ "$slots" = 1 ] || echo s)"
    case ":${flags:-}:" in *:nocache:*) cache=no; label="$label, no host cache" ;; esac
    case ":${flags:-}:" in
        *:bgcloud:*)
            [ "$target" = ccr-setup ] || die "bgcloud is a ccr-setup default ($spec)"
            BGCLOUD=1
            extra=(--subagent-model claude-haiku-4-5)
            label="$label, subagents to cloud Haiku"
            ;;
    esac
    start_llama "$slots" "$cache"
    start_target "$target"
    say "run: $label"
    [ "$target" = ccr-setup ] && extra+=(--proxy-log "$WORK/ccr-setup.log")
    python3 scripts/bench/replay_session.py --fixture "$FIXTURE" --url "$TARGET_URL" \
        --llama "http://127.0.0.1:$LLAMA_PORT" --label "$label" --out "$ROWS" \
        --max-tokens "$MAX_TOKENS" "${extra[@]}" ||
        say "run $label had failures (rows kept; llama log: $WORK/llama.log)"
    for pid in "${TARGET_PIDS[@]}"; do stop_pid "$pid"; done
    stop_pid "$LLAMA_PID"
done

python3 scripts/bench/session_report.py "$ROWS" "$OUT_DIR/$NAME.json" "${report_args[@]}"
say "wrote $OUT_DIR/$NAME.json"

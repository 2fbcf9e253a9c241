#!/usr/bin/env bash
# The project's test command (README's second command). Installs and caches the real
# software the end-to-end tests need, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real tools for the tests: validators, Claude Code, llama-server, the tiny model.
# Exports the CCR_E2E_* variables the end-to-end tests read.
# shellcheck source=scripts/ci-deps.sh
source scripts/ci-deps.sh

cargo test --workspace --all-targets

#!/usr/bin/env bash
# Sourced by scripts/test.sh: install (once, cached under ~/.cache/ccr-setup-ci/) the
# real software the tests run against, and export where it is.
CCR_CI_CACHE="${CCR_CI_CACHE:-$HOME/.cache/ccr-setup-ci}"
mkdir -p "$CCR_CI_CACHE"
export CCR_CI_CACHE

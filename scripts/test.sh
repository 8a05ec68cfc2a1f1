#!/usr/bin/env bash
# Runs Ferry's whole test suite on a fresh machine: installs the tools the tests need
# (Binaryen's wasm-opt for instrumenting uploads; clang + wasi-libc only if you rebuild the
# guests) when they are missing, then builds every module and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh
exec mvn -B -ntp verify "$@"

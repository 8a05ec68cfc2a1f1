#!/usr/bin/env bash
# Runs Ferry's whole test suite on a fresh machine: first scripts/install-tools.sh, which, if
# any guest build tool is missing, installs the whole set with apt-get (root or sudo; Debian 12):
# Binaryen's wasm-opt, which the tests need to instrument uploads, and clang, lld, wasi-libc
# and compiler-rt, which only a rebuild of the guests needs. Then builds every module and runs
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh
exec mvn -B -ntp verify "$@"

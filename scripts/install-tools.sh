#!/usr/bin/env bash
# Installs the tools needed to (re)build the guest test programs under guests/:
#   binaryen (wasm-opt), clang + lld (wasm-ld), wasi-libc (the wasm32-wasi sysroot)
#   and libclang-rt-14-dev-wasm32 (compiler-rt builtins for wasm32).
# Target: Debian 12 (bookworm). Idempotent: does nothing when everything is present.
#
# Usage: scripts/install-tools.sh           install whatever is missing
#        scripts/install-tools.sh --check   only report; exit 1 if something is missing
set -euo pipefail

PACKAGES=(binaryen clang lld wasi-libc libclang-rt-14-dev-wasm32)
COMMANDS=(wasm-opt clang wasm-ld)
FILES=(
  /usr/include/wasm32-wasi/stdio.h
  /usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a
)

check_only=0
case "${1:-}" in
  "") ;;
  --check) check_only=1 ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "unknown argument: $1 (expected --check)" >&2; exit 2 ;;
esac

missing() {
  local c f
  for c in "${COMMANDS[@]}"; do
    command -v "$c" >/dev/null 2>&1 || echo "command $c"
  done
  for f in "${FILES[@]}"; do
    [[ -e "$f" ]] || echo "file $f"
  done
}

report=$(missing)
if [[ -z "$report" ]]; then
  echo "all guest build tools present"
  exit 0
fi

echo "missing:"
sed 's/^/  /' <<<"$report"
if (( check_only )); then
  exit 1
fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "not root and sudo is not available; install as root: apt-get install -y ${PACKAGES[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y "${PACKAGES[@]}"

report=$(missing)
if [[ -n "$report" ]]; then
  echo "still missing after install:" >&2
  sed 's/^/  /' <<<"$report" >&2
  exit 1
fi
echo "all guest build tools present"

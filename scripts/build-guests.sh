#!/usr/bin/env bash
# Rebuilds the guest test programs: guests/src/*.c -> guests/wasm/*.wasm.
#
#   clang --target=wasm32-wasi --sysroot=/usr -O2   ->  X.plain.wasm (temp dir)
#   wasm-opt -O1 --asyncify                          ->  guests/wasm/X.wasm
#   spin.c additionally: wasm-opt -O1 --log-execution --asyncify
#                                                    ->  guests/wasm/spin-preemptible.wasm
#   lines.c additionally kept uninstrumented         ->  guests/wasm/lines.plain.wasm
#   guests/wasm/not-a-module.wasm                    =   a few bytes of text
#
# Then checks every module: it validates, the instrumented ones export the
# asyncify_* functions, and imports come only from wasi_snapshot_preview1
# (plus env.log_execution / env.launch_missiles where intended).
# The output is deterministic: rebuilding gives identical bytes.
# Tools: scripts/install-tools.sh (Debian 12: binaryen clang lld wasi-libc
# libclang-rt-14-dev-wasm32).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/guests/src"
out="$root/guests/wasm"
programs=(churn files clock lines spin pages datasize generations dirty bad-import)

"$root/scripts/install-tools.sh" --check >/dev/null || {
  echo "guest build tools missing; run scripts/install-tools.sh" >&2
  exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# Compile from inside the source dir with relative names, so no absolute path
# can end up in the output.
for p in "${programs[@]}"; do
  (cd "$src" && clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra \
      -o "$tmp/$p.plain.wasm" "$p.c")
  wasm-opt -O1 --asyncify "$tmp/$p.plain.wasm" -o "$out/$p.wasm"
done
# Loop heads call env.log_execution(i32), which Asyncify then treats as an
# import that may unwind: a migration point inside the CPU loop.
wasm-opt -O1 --log-execution --asyncify "$tmp/spin.plain.wasm" -o "$out/spin-preemptible.wasm"
install -m 644 "$tmp/lines.plain.wasm" "$out/lines.plain.wasm"
printf 'this is not a WebAssembly module\n' >"$out/not-a-module.wasm"

# ---- checks -------------------------------------------------------------
status=0
problem() { echo "CHECK FAILED: $*" >&2; status=1; }

check_module() { # file, allowed non-WASI imports (regex, or empty), instrumented?
  local f="$out/$1" extra="$2" instrumented="$3" text imports e
  if ! text=$(wasm-opt "$f" --print 2>/dev/null); then
    problem "$1 does not validate"
    return
  fi
  imports=$(grep -oE '^ \(import "[^"]+" "[^"]+"' <<<"$text" | sed -E 's/^ \(import "([^"]+)" "([^"]+)"/\1.\2/')
  while read -r imp; do
    [[ -z "$imp" || "$imp" == wasi_snapshot_preview1.* ]] && continue
    [[ -n "$extra" && "$imp" =~ ^($extra)$ ]] && continue
    problem "$1 has unexpected import $imp"
  done <<<"$imports"
  if [[ -n "$extra" ]] && ! grep -qE "^($extra)$" <<<"$imports"; then
    problem "$1 lacks the expected import $extra"
  fi
  if [[ "$instrumented" == yes ]]; then
    for e in asyncify_start_unwind asyncify_stop_unwind asyncify_start_rewind \
             asyncify_stop_rewind asyncify_get_state; do
      grep -q "(export \"$e\"" <<<"$text" || problem "$1 does not export $e"
    done
  elif grep -q '(export "asyncify_' <<<"$text"; then
    problem "$1 should not be instrumented"
  fi
  grep -q '(export "_start"' <<<"$text" || problem "$1 does not export _start"
}

for p in churn files clock lines spin pages datasize generations dirty; do
  check_module "$p.wasm" "" yes
done
check_module spin-preemptible.wasm "env\.log_execution" yes
check_module bad-import.wasm "env\.launch_missiles" yes
check_module lines.plain.wasm "" no
if wasm-opt "$out/not-a-module.wasm" --print >/dev/null 2>&1; then
  problem "not-a-module.wasm parses as a module"
fi

(cd "$out" && ls -l -- *.wasm | awk '{printf "%9d  %s\n", $5, $NF}')
exit $status

#!/usr/bin/env bash
# Live-migration benchmark between separate node JVMs on loopback (docs/BENCHMARKS.md).
#
#   scripts/bench-migration.sh [--no-build] [options of MigrationBench]
#
# e.g. scripts/bench-migration.sh --migrations 20 --sizes 50,1M,16M,64M
#
# Builds what it needs with Maven (the integration module's test classes and every module they
# need, in one reactor, installing nothing), then runs dev.ferry.integration.bench.MigrationBench
# on the integration module's test class path. The report goes to stdout and to
# integration/target/bench/migration-<time>.md (every migration in the .csv next to it);
# progress and the node-log directory go to stderr.
# Options: --migrations N (20), --warmup N (3), --sizes 50,1M,16M,64M, --nodes N (2),
# --engine compiled|interpreter (compiled), --heap 2g, --gap-ms 200, --settle-ms 2000,
# --wait-mode http|poll, --out FILE.md; see MigrationBench's class comment for all.
# FERRY_MVN_ARGS adds Maven options (e.g. -o to build offline); FERRY_BENCH_SOURCE names the
# measured source in the report when it is not a git checkout.
#
# Node JVMs are always stopped: by the benchmark when it ends or fails, by its shutdown hook on
# Ctrl-C / SIGTERM, and, should the benchmark JVM itself be killed, by this script's exit trap
# (which kills only the pids the benchmark recorded, after checking they are still Ferry nodes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$root"

build=1
args=()
for a in "$@"; do
  if [[ "$a" == "--no-build" ]]; then build=0; else args+=("$a"); fi
done

bench_dir="$root/integration/target/bench"
cp_file="$bench_dir/classpath.txt"
mkdir -p "$bench_dir"

# shellcheck disable=SC2206
mvn=(mvn -q -B -Dstyle.color=never ${FERRY_MVN_ARGS:-})
if [[ $build == 1 || ! -f "$cp_file" ]]; then
  echo "bench-migration: building (mvn -pl integration -am test-compile) ..." >&2
  # In the reactor, nothing installed into ~/.m2: the class path names the modules' target/classes
  # (the benchmark copies it before starting nodes). Every module writes the class path file in
  # turn; integration comes last. Maven's output (3.8 prints colour resets even in batch mode)
  # goes to stderr, cleaned, so that stdout carries only the report.
  "${mvn[@]}" -pl integration -am test-compile dependency:build-classpath \
      -Dmdep.includeScope=test -Dmdep.outputFile="$cp_file" 2>&1 \
    | sed -e 's/\x1b\[[0-9;]*m//g' >&2
fi

pid_file="$bench_dir/nodes-$$.pid"
rm -f "$pid_file"
cleanup() {
  [[ -f "$pid_file" ]] || return 0
  local pid left=()
  while read -r pid; do
    # Only if that pid is still a Ferry node JVM (not a reused pid).
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "dev.ferry.api.cli.FerryCli daemon"; then
      kill -TERM "$pid" 2>/dev/null && left+=("$pid")
    fi
  done <"$pid_file"
  for pid in "${left[@]}"; do
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || continue 2; sleep 1; done
    kill -KILL "$pid" 2>/dev/null || true # still there after a minute
  done
  rm -f "$pid_file"
}
trap cleanup EXIT

# What source is measured, for the report: the commit, or FERRY_BENCH_SOURCE when there is no git
# (an exported tree).
if [[ -n "${FERRY_BENCH_SOURCE:-}" ]]; then
  commit="$FERRY_BENCH_SOURCE"
else
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    commit="$commit with uncommitted changes"
  fi
fi

java -Xmx512m -cp "$root/integration/target/test-classes:$(cat "$cp_file")" \
  dev.ferry.integration.bench.MigrationBench \
  --pid-file "$pid_file" --commit "$commit" \
  --command "scripts/bench-migration.sh${args[*]:+ ${args[*]}}" \
  ${args[@]+"${args[@]}"}

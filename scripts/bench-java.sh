#!/usr/bin/env bash
# Runs one of the benchmarks between separate node JVMs (docs/BENCHMARKS.md); what
# scripts/bench-migration.sh and scripts/bench-paging.sh share.
#
#   scripts/bench-java.sh <main class> <script name> [--no-build] [options of the benchmark]
#
# Builds what it needs with Maven (the integration module's test classes and every module they
# need, in one reactor, installing nothing), then runs dev.ferry.integration.bench.<main class> on
# the integration module's test class path with --pid-file, --commit and --command (the script's
# command line, for the report) before the given options. The report goes to stdout (Maven's output
# and the benchmark's progress go to stderr). FERRY_MVN_ARGS adds Maven options (e.g. -o to build
# offline); FERRY_BENCH_SOURCE names the measured source in the report when it is not a git
# checkout; FERRY_BENCH_XMX is the driver JVM's heap (512m).
#
# Node JVMs are always stopped: by the benchmark when it ends or fails, by its shutdown hook on
# Ctrl-C / SIGTERM, and, should the benchmark JVM itself be killed, by this script's exit trap
# (which kills only the pids the benchmark recorded, after checking they are still Ferry nodes).
set -euo pipefail

main_class="$1"
name="$2"
shift 2

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
  echo "$name: building (mvn -pl integration -am test-compile) ..." >&2
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

java "-Xmx${FERRY_BENCH_XMX:-512m}" -cp "$root/integration/target/test-classes:$(cat "$cp_file")" \
  "dev.ferry.integration.bench.$main_class" \
  --pid-file "$pid_file" --commit "$commit" \
  --command "scripts/$name.sh${args[*]:+ ${args[*]}}" \
  ${args[@]+"${args[@]}"}

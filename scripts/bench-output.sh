#!/usr/bin/env bash
# Output-heavy guest on one node: how long `lines N 1000 unbuffered` runs (one fd_write per line,
# a line on stderr every 1000), from the process's own startedAt to its endedAt, for one or more
# built trees side by side (docs/BENCHMARKS.md, "the output check").
#
#   scripts/bench-output.sh TREE [TREE...]
#
# Each TREE is a checkout whose classes are built and whose class path is in
# integration/target/bench/classpath.txt (any run of scripts/bench-migration.sh there writes it).
# Per round, every tree starts a node JVM (512 MiB, compiled engine, the JVM options the launcher
# gives), runs the guest RUNS times (the first is a warm-up, not counted) and stops it; the order
# of the trees is reversed every other round. Environment: N (lines, 200000), ROUNDS (6), RUNS (4).
# Prints one line per run, then each tree's median of the counted runs.
set -euo pipefail
(( $# >= 1 )) || { sed -n '2,14p' "$0" >&2; exit 2; }
N=${N:-200000}
ROUNDS=${ROUNDS:-6}
RUNS=${RUNS:-4}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wasm="$here/guests/wasm/lines.wasm"
flags=(--add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  -XX:CompileCommand=quiet)
for p in node.cluster node.process node.runtime strategies statestore; do
  flags+=("-XX:CompileCommand=CompileThresholdScaling,dev.ferry.$p.*::*,0.01")
done
results=$(mktemp)
node_pid=
trap '[[ -n "$node_pid" ]] && kill -TERM "$node_pid" 2>/dev/null; rm -f "$results"' EXIT

one() { # tree index
  local tree=$1 port=$((31100 + 10 * $2)) dir
  local http=$((port + 1))
  dir=$(mktemp -d)
  java -Xmx512m "${flags[@]}" -cp "$(cat "$tree/integration/target/bench/classpath.txt")" \
    dev.ferry.api.cli.FerryCli daemon --name n1 --host 127.0.0.1 --port $port \
    --http-port $http --data-dir "$dir" --engine compiled >"$dir/node.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 150); do
    curl -sf "http://127.0.0.1:$http/v1/nodes" >/dev/null 2>&1 && break
    sleep 0.2
  done
  local hash
  hash=$(curl -sf -X POST --data-binary "@$wasm" "http://127.0.0.1:$http/v1/modules" |
    python3 -c 'import sys,json;print(json.load(sys.stdin)["hash"])')
  for r in $(seq "$RUNS"); do
    local pid st
    pid=$(curl -sf -H 'Content-Type: application/json' "http://127.0.0.1:$http/v1/processes" \
      -d "{\"module\":\"$hash\",\"args\":[\"$N\",\"1000\",\"unbuffered\"]}" |
      python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
    st=$(curl -sf "http://127.0.0.1:$http/v1/processes/$pid/wait?timeout=600s")
    python3 - "$tree" "$r" "$st" <<'PY' | tee -a "$results"
import sys, json, datetime
tree, r, st = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
ms = (t(st["endedAt"]) - t(st["startedAt"])).total_seconds() * 1000
print(f"{tree}\t{r}\t{st['state']}\t{st.get('exitCode')}\t{st['stdoutBytes']}\t{ms:.1f}")
PY
  done
  kill -TERM "$node_pid"
  wait "$node_pid" 2>/dev/null || true
  node_pid=
  rm -rf "$dir"
}

trees=("$@")
for round in $(seq "$ROUNDS"); do
  order=$(seq 0 $(($# - 1)))
  (( round % 2 )) || order=$(seq $(($# - 1)) -1 0)
  for i in $order; do one "${trees[$i]}" "$i"; done
done
python3 - "$results" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tree, r, state, code, out, ms = line.split("\t")
    if state != "exited" or code != "0":
        print(f"{tree}: a run ended {state} {code}")
    if r != "1":
        runs[tree].append(float(ms))
for tree, v in runs.items():
    print(f"{tree}: {len(v)} runs, median {statistics.median(v):.0f} ms, "
          f"min {min(v):.0f}, max {max(v):.0f}")
PY

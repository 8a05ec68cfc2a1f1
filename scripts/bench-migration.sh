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
# measured source in the report when it is not a git checkout. The building, the clean-up of the
# node JVMs and the rest are in scripts/bench-java.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/bench-java.sh" MigrationBench bench-migration "$@"

#!/usr/bin/env bash
# Paging-strategy benchmark between three node JVMs on loopback (docs/BENCHMARKS.md, "Paging
# strategies"): freeze time, total time, bytes moved and the guest's slowdown after its resume,
# for address spaces × dirty fractions × strategies, with ratios against a full copy.
#
#   scripts/bench-paging.sh [--no-build] [options of PagingBench]
#
# e.g. scripts/bench-paging.sh --runs 3 --strategies data-segment,gfvm
#      scripts/bench-paging.sh --node-setting ferry.strategies.flushing.file-server=n3
#
# Builds what it needs with Maven (see scripts/bench-java.sh), then runs
# dev.ferry.integration.bench.PagingBench on the integration module's test class path. The report
# goes to stdout and to integration/target/bench/paging-<time>.md (every run in the .csv next to
# it); progress and the node-log directory go to stderr.
# Options: --sizes 16,64,256 (MiB), --dirty 1,10,50 (%), --strategies
# data-segment,gfvm,pre-copy,post-copy,flushing (one the nodes refuse as unknown is reported as
# not offered and skipped), --runs N (5), --jit-warmup S (15), --warmup N (1), --node-setting
# KEY=VALUE (repeatable, passed to every node), --heap 4g, --node-jvm-opt X, --engine
# compiled|interpreter, --window N (50), --gap-ms 500, --settle-timeout S (300), --out FILE.md;
# see PagingBench's class comment.
exec "$(dirname "${BASH_SOURCE[0]}")/bench-java.sh" PagingBench bench-paging "$@"

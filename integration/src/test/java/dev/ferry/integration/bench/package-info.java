/**
 * Benchmarks run by hand, never by {@code mvn verify} (surefire excludes this package): {@link
 * dev.ferry.integration.bench.MigrationBench} measures live migration between separate {@code ferry
 * daemon} JVMs on loopback, {@link dev.ferry.integration.bench.PagingBench} compares the paging
 * strategies (freeze, total, bytes moved, slowdown after the resume) against a full copy. Run them
 * with {@code scripts/bench-migration.sh} and {@code scripts/bench-paging.sh}; the method, the
 * machine and the results are in docs/BENCHMARKS.md.
 */
package dev.ferry.integration.bench;

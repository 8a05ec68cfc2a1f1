/**
 * Benchmarks run by hand, never by {@code mvn verify} (surefire excludes this package): {@link
 * dev.ferry.integration.bench.MigrationBench} measures live migration between separate {@code ferry
 * daemon} JVMs on loopback. Run it with {@code scripts/bench-migration.sh}; the method, the machine
 * and the results are in docs/BENCHMARKS.md.
 */
package dev.ferry.integration.bench;

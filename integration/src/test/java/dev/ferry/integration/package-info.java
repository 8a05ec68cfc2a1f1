/**
 * Ferry's integration tests: real {@code ferry daemon} JVMs on loopback, driven over HTTP and
 * through the CLI. {@link dev.ferry.integration.NodeHarness} starts nodes (any engine, any
 * installed JDK, alone or as a cluster) and guarantees none outlives the test JVM; each test
 * asserts what a user sees: exit codes, and output byte-identical to an uninterrupted run or to the
 * guest's own definition ({@link dev.ferry.integration.Guests}).
 *
 * <p>Node JVMs run from a private copy of the test class path, so a concurrent {@code mvn install}
 * cannot change their classes under them. Node logs end in {@code
 * integration/target/it/<TestClass>-<time>/<node>/node.log}, kept when a test fails.
 */
package dev.ferry.integration;

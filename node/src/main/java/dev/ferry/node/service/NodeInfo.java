package dev.ferry.node.service;

/**
 * A cluster member.
 *
 * @param status the member's status (up, joining, leaving, exiting, down, removed) and
 *     "unreachable" when the failure detector says so
 * @param engine its default engine, or null if it did not answer
 * @param jdk the Java runtime it runs on ("17.0.15 (Debian)"), or null
 * @param load its one-minute load average divided by its processors, or -1 if unknown
 */
public record NodeInfo(
    String name,
    String address,
    String status,
    String engine,
    String jdk,
    double load,
    int processes,
    int running,
    String httpUrl) {}

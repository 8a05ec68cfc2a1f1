package dev.ferry.node.service;

import java.time.Instant;

/**
 * One migration and what it cost. Times are in microseconds, following the paper's breakdown:
 * {@code captureMicros} to write the state out at the source, {@code transferMicros} to move it,
 * {@code restoreMicros} to read it back and resume at the destination; {@code totalFreezeMicros} is
 * how long the process stood still.
 *
 * @param state pending, freezing, transferring, restoring, committed, aborted or cancelled
 */
public record MigrationInfo(
    String id,
    String pid,
    String fromNode,
    String toNode,
    String strategy,
    String state,
    Instant requestedAt,
    Instant finishedAt,
    long freezeMicros,
    long captureMicros,
    long transferMicros,
    long restoreMicros,
    long totalFreezeMicros,
    long totalMicros,
    long bytesMoved,
    long imageBytes,
    String fromEngine,
    String toEngine,
    String error,
    long streamMicros,
    long storeMicros) {}

package dev.ferry.node.service;

import java.time.Instant;
import java.util.List;

/**
 * A process as clients see it.
 *
 * @param node name of the node it runs (or is stored) on
 * @param exitCode set once EXITED
 * @param error why it FAILED, or null
 * @param lastCheckpoint the latest checkpoint taken, or null
 * @param paging the paging file of a paged process that runs, or null
 * @param outputHeld while its node's store refuses its output (full): what waits, else null
 */
public record ProcessInfo(
    String id,
    ProcessState state,
    Engine engine,
    String node,
    String moduleHash,
    List<String> args,
    Integer exitCode,
    long stdoutBytes,
    long stderrBytes,
    Instant startedAt,
    Instant endedAt,
    CheckpointResult lastCheckpoint,
    String error,
    PagingInfo paging,
    String outputHeld) {}

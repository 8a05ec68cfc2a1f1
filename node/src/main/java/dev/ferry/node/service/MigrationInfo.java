package dev.ferry.node.service;

import java.time.Instant;
import java.util.List;

/**
 * One migration and what it cost. Times are in microseconds, following the paper's breakdown:
 * {@code captureMicros} to write the state out at the source, {@code transferMicros} to move it,
 * {@code restoreMicros} to read it back and resume at the destination; {@code totalFreezeMicros} is
 * how long the process stood still.
 *
 * @param state pending, freezing, transferring, restoring, committed, aborted or cancelled
 * @param pages what a paging strategy (gfvm) moved, or null for data-segment
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
    long storeMicros,
    Pages pages) {
  /**
   * Pages a paging strategy moved.
   *
   * @param dirtyAtFreeze pages dirty when the process froze
   * @param beforeFreeze pages moved while it still ran (pre-copy rounds)
   * @param duringFreeze pages written out while it stood still
   * @param afterFreeze pages moved after it resumed
   * @param rounds copy rounds while it ran
   * @param remoteFaultsAfterResume pages the destination fetched from another node on a fault
   * @param bytesDuringFreeze bytes sent to other nodes while it stood still
   * @param bytesRemaining while the migration runs, bytes still to move (when known)
   * @param replicas nodes holding replicas of the paging file afterwards
   */
  public record Pages(
      long dirtyAtFreeze,
      long beforeFreeze,
      long duringFreeze,
      long afterFreeze,
      int rounds,
      long remoteFaultsAfterResume,
      long bytesDuringFreeze,
      long bytesRemaining,
      List<String> replicas) {}
}

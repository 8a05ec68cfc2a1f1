package dev.ferry.strategies;

import java.util.List;

/**
 * What a paging strategy reports about a migration, for its record and events.
 *
 * @param dirtyAtFreeze pages dirty when the process froze
 * @param beforeFreeze pages moved while the process still ran (pre-copy rounds)
 * @param duringFreeze pages moved while it stood still
 * @param afterFreeze pages moved after it resumed at the destination (post-copy)
 * @param rounds copy rounds while running
 * @param bytesDuringFreeze bytes sent to other nodes while it stood still
 * @param replicas the nodes holding replicas of the paging file after the migration
 * @param remoteFaultsAfterResume pages the destination fetched from another node on a fault
 * @param bytesRemaining while the migration runs, bytes still to move (0 when none or unknown)
 */
public record PageReport(
    long dirtyAtFreeze,
    long beforeFreeze,
    long duringFreeze,
    long afterFreeze,
    int rounds,
    long bytesDuringFreeze,
    List<String> replicas,
    long remoteFaultsAfterResume,
    long bytesRemaining) {
  public PageReport {
    replicas = List.copyOf(replicas);
  }
}

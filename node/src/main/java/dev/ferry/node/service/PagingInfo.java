package dev.ferry.node.service;

import java.util.List;

/**
 * A paged process's memory and paging file (gfvm), as {@code ferry status} shows them.
 *
 * @param pageSize bytes per page
 * @param pages pages of linear memory
 * @param resident pages materialised in the node's memory
 * @param dirty pages written since they were last written to the paging file
 * @param stored pages in the local copy of the paging file (all-zero pages are not stored)
 * @param faults pages read from the paging file on first access since the process started here
 * @param flushed pages written out since the process started here
 * @param replicas the other copies: node, state (in-sync, seeding, lost, missing) and pages held
 */
public record PagingInfo(
    int pageSize,
    long pages,
    long resident,
    long dirty,
    long stored,
    long faults,
    long flushed,
    List<Replica> replicas) {
  public PagingInfo {
    replicas = List.copyOf(replicas);
  }

  /** One replica of the paging file. {@code node} is empty for a missing one. */
  public record Replica(String node, String state, long pages) {}
}

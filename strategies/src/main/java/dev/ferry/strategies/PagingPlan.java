package dev.ferry.strategies;

import java.util.List;

/**
 * How a paged process's paging file is to be found once the process runs at the destination,
 * written into the bundle's record.
 *
 * @param file the file's name there (null: the same file)
 * @param replicas the nodes holding replicas of it
 * @param fetchFrom a node whose copy of {@code fetchFile} serves the pages the destination's copy
 *     lacks (post-copy: the source; flushing: the file server), or null
 * @param fetchFile the file's name on {@code fetchFrom}
 * @param remoteBacked the destination keeps no copy: {@code fetchFrom} holds the file (flushing)
 */
public record PagingPlan(
    String file, List<String> replicas, String fetchFrom, String fetchFile, boolean remoteBacked) {
  public PagingPlan {
    replicas = List.copyOf(replicas);
  }

  /** The same file, now replicated on {@code replicas} (gfvm, pre-copy). */
  public static PagingPlan replicated(List<String> replicas) {
    return new PagingPlan(null, replicas, null, null, false);
  }
}

package dev.ferry.strategies;

import java.util.List;

/**
 * A paged process's paging file, as the source sees it when a migration starts.
 *
 * @param pageSize bytes per page
 * @param replicas the nodes holding a replica (the source holds the primary copy)
 * @param pages pages of linear memory
 * @param dirty pages written since they were last written to the paging file
 * @param busy why the process cannot move now (its pages are still arriving by post-copy), or null
 */
public record PagingView(int pageSize, List<String> replicas, long pages, long dirty, String busy) {
  public PagingView {
    replicas = List.copyOf(replicas);
  }

  public PagingView(int pageSize, List<String> replicas, long pages, long dirty) {
    this(pageSize, replicas, pages, dirty, null);
  }
}

package dev.ferry.strategies;

import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * A way to move a process. The coordinator calls, in order: {@link #chooseDestination} (when the
 * operator named none), {@link #prepare} (while the process runs), {@link #freezeAndCapture},
 * {@link #transfer}, {@link #restore}, {@link #commit}. If any phase throws, or the migration is
 * cancelled before commit, it calls {@link #abort}, which must leave the process running at the
 * source. After commit the process exists only at the destination.
 */
public interface MigrationStrategy {
  /** The name operators use ({@code --strategy}, {@code ferry.strategies.<name>}). */
  String name();

  /** A node to move to, among the candidates (the source excluded); default: least loaded. */
  default Optional<String> chooseDestination(List<NodeCandidate> candidates) {
    return candidates.stream()
        .min(Comparator.comparingDouble(NodeCandidate::load).thenComparing(NodeCandidate::name))
        .map(NodeCandidate::name);
  }

  /**
   * Why this strategy cannot move the process to {@code toNode}, the operator's explicit choice, or
   * empty if it can. Asked before a migration is created, so a refusal changes nothing.
   */
  default Optional<String> refuse(String pid, String toNode, Optional<PagingView> paging) {
    return Optional.empty();
  }

  /** Why a migration without {@code --to} found no node: what {@link #chooseDestination} needs. */
  default String noDestination(String pid) {
    return "no other node to move " + pid + " to";
  }

  /** Work done while the process still runs (pre-copy rounds, replication...). Default: none. */
  default void prepare(MigrationContext ctx) throws MigrationException {}

  Capture freezeAndCapture(MigrationContext ctx) throws MigrationException;

  void transfer(MigrationContext ctx, Capture capture) throws MigrationException;

  void restore(MigrationContext ctx, Capture capture) throws MigrationException;

  void commit(MigrationContext ctx, Capture capture);

  /** Undo: the process must run on at the source. {@code capture} is null if never frozen. */
  void abort(MigrationContext ctx, Capture capture, Throwable cause);

  /**
   * A node a process could move to.
   *
   * @param holdsReplica whether it holds a replica of the process's paging file
   */
  record NodeCandidate(String name, double load, int processes, boolean holdsReplica) {
    public NodeCandidate(String name, double load, int processes) {
      this(name, load, processes, false);
    }
  }
}

package dev.ferry.node.service;

import dev.ferry.transport.proto.FerryEvent;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;

/**
 * A node's view of the whole cluster: its members, migrations between them, and the cluster-wide
 * event stream. The {@link ProcessService} methods of a clustered node reach a process on whichever
 * node it runs.
 */
public interface ClusterService extends ProcessService {

  /** Every cluster member with its status and, if it answers, its engine, JDK and load. */
  CompletionStage<List<NodeInfo>> nodes();

  /**
   * Starts moving a running process to node {@code toNode} (null: the strategy chooses) with {@code
   * strategy} (null: data-segment). Completes when the migration has been accepted; its record then
   * tells how it goes. Unknown node or process, a process that is not running, a move to the node
   * it is on, or a second migration of a moving process: a clear error, nothing changed.
   */
  CompletionStage<MigrationInfo> migrate(String pid, String toNode, String strategy);

  /** Every migration the cluster's nodes remember, newest first. */
  CompletionStage<List<MigrationInfo>> migrations();

  CompletionStage<MigrationInfo> migration(String id);

  /** Cancels a migration that has not committed; the process runs on at its source. */
  CompletionStage<MigrationInfo> cancelMigration(String id);

  /**
   * Commits by hand a migration held in doubt ({@code in_doubt}): its destination restarted holding
   * the process durably, before it recorded that it runs there, and its source cannot say whether
   * the migration committed (it has left the cluster, or came back without its record of it). The
   * destination then runs the process. Any other state, a source that can still answer, or an
   * unreachable member: a conflict, nothing changed. For when the source is gone for good. If it
   * comes back with the migration unfinished in its records, it drops the copy its stop left (the
   * destination holds the process); if it had recorded the migration aborted (it resumed the
   * process, then was lost), its copy stays failed or checkpointed there and must not be restored.
   */
  CompletionStage<MigrationInfo> commitInDoubt(String id);

  /** Subscribes to the cluster-wide event stream (from now on). */
  Subscription subscribe(Consumer<FerryEvent> listener);

  /** An event subscription; close it to stop receiving. */
  interface Subscription extends AutoCloseable {
    @Override
    void close();
  }
}

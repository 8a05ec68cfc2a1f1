package dev.ferry.api.http;

import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ProtoRecords;
import dev.ferry.transport.proto.FerryEvent;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The final records of migrations as the cluster's event stream reports them, for a request that
 * waits for a migration to end: it is answered when the event arrives instead of at its next
 * question for the record. Subscribed before the migration is started (or cancelled), so that one
 * that ends before that call returns is not missed. Events may be lost (a node leaving); the
 * waiting request asks for the record now and then all the same.
 */
final class MigrationEnds implements AutoCloseable {
  private final ClusterService.Subscription subscription;

  /** Migrations that ended before anyone waited for them (only while this is open). */
  private final Map<String, MigrationInfo> ended = new HashMap<>();

  private final Map<String, Consumer<MigrationInfo>> waiting = new HashMap<>();

  MigrationEnds(ClusterService service) {
    this.subscription = service.subscribe(this::onEvent);
  }

  private void onEvent(FerryEvent e) {
    if (!e.hasMigration()) {
      return;
    }
    MigrationInfo m = ProtoRecords.migration(e.getMigration());
    if (!MigrationStates.isEnded(m)) {
      return;
    }
    Consumer<MigrationInfo> w;
    synchronized (this) {
      w = waiting.remove(m.id());
      if (w == null) {
        ended.put(m.id(), m);
      }
    }
    if (w != null) {
      w.accept(m);
    }
  }

  /** Calls {@code then} with the final record of migration {@code id} once it is reported. */
  void onEnd(String id, Consumer<MigrationInfo> then) {
    MigrationInfo m;
    synchronized (this) {
      m = ended.remove(id);
      if (m == null) {
        waiting.put(id, then);
        return;
      }
    }
    then.accept(m);
  }

  @Override
  public void close() {
    subscription.close();
  }
}

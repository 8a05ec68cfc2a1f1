package dev.ferry.api.http;

import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ProtoRecords;
import dev.ferry.transport.proto.FerryEvent;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The final records of migrations as the cluster's event stream reports them, for requests that
 * wait for a migration to end: they are answered when the event arrives instead of at their next
 * question for the record. One subscription serves every waiting request of a server, open while at
 * least one waits (so a drain of many processes, each waited for, does not hand every event to
 * every waiter). A request starts watching before it starts (or cancels) the migration, so that one
 * that ends before that call returns is not missed: ends reported while anyone watches are
 * remembered (the latest {@link #REMEMBERED}). Events may be lost (a node leaving); a waiting
 * request asks for the record now and then all the same.
 */
final class MigrationEnds {
  static final int REMEMBERED = 1024;

  private final ClusterService service;

  // all guarded by this
  private ClusterService.Subscription subscription;
  private int watching;
  private final Map<String, List<Consumer<MigrationInfo>>> waiting = new HashMap<>();
  private final Map<String, MigrationInfo> ended =
      new LinkedHashMap<>() {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, MigrationInfo> eldest) {
          return size() > REMEMBERED;
        }
      };

  MigrationEnds(ClusterService service) {
    this.service = service;
  }

  /** Starts watching; close the watch when the request no longer waits. */
  Watch watch() {
    synchronized (this) {
      if (watching++ > 0) {
        return new Watch();
      }
    }
    ClusterService.Subscription s;
    try {
      s = service.subscribe(this::onEvent);
    } catch (RuntimeException e) {
      synchronized (this) {
        watching--;
      }
      throw e;
    }
    synchronized (this) {
      subscription = s;
    }
    return new Watch();
  }

  private void onEvent(FerryEvent e) {
    if (!e.hasMigration() || e.getMigration().getFinishedAtMicros() == 0) {
      return;
    }
    MigrationInfo m = ProtoRecords.migration(e.getMigration());
    if (!MigrationStates.isEnded(m)) {
      return;
    }
    List<Consumer<MigrationInfo>> them;
    synchronized (this) {
      ended.put(m.id(), m);
      them = waiting.remove(m.id());
    }
    if (them != null) {
      them.forEach(w -> w.accept(m));
    }
  }

  /** One waiting request's interest. */
  final class Watch implements AutoCloseable {
    private String id;
    private Consumer<MigrationInfo> then;
    private boolean closed;

    /** Calls {@code then} with the final record of migration {@code id} once it is reported. */
    void onEnd(String id, Consumer<MigrationInfo> then) {
      MigrationInfo m;
      synchronized (MigrationEnds.this) {
        if (closed) {
          return;
        }
        m = ended.get(id);
        if (m == null) {
          this.id = id;
          this.then = then;
          waiting.computeIfAbsent(id, k -> new ArrayList<>()).add(then);
          return;
        }
      }
      then.accept(m);
    }

    @Override
    public void close() {
      ClusterService.Subscription last = null;
      synchronized (MigrationEnds.this) {
        if (closed) {
          return;
        }
        closed = true;
        if (id != null) {
          List<Consumer<MigrationInfo>> w = waiting.get(id);
          if (w != null) {
            w.remove(then);
            if (w.isEmpty()) {
              waiting.remove(id);
            }
          }
        }
        if (--watching == 0) {
          last = subscription;
          subscription = null;
          ended.clear();
        }
      }
      if (last != null) {
        last.close();
      }
    }
  }
}

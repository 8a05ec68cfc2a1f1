package dev.ferry.node.cluster;

import dev.ferry.transport.proto.ProcessReply;
import java.time.Duration;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The requests a node has carried out, by request id, so that a copy of a request that changes a
 * process (sent again because its first answer did not come) gets the answer of the first instead
 * of being carried out twice. A copy that arrives while the first is still being carried out waits
 * for its answer.
 *
 * <p>Bounded: an id is remembered for {@code keep} after it was first seen, and at most {@code
 * capacity} ids are remembered (the oldest is forgotten first). A sender repeats a request only
 * until its ask timeout, well within {@code keep}.
 */
final class RepeatedRequests {
  private final int capacity;
  private final long keepNanos;
  private final LongSupplier clock;
  private final LinkedHashMap<String, Seen> byId = new LinkedHashMap<>();

  private record Seen(long atNanos, CompletableFuture<ProcessReply> answer) {}

  RepeatedRequests(int capacity, Duration keep) {
    this(capacity, keep, System::nanoTime);
  }

  RepeatedRequests(int capacity, Duration keep, LongSupplier clock) {
    if (capacity < 1) {
      throw new IllegalArgumentException("capacity must be at least 1");
    }
    this.capacity = capacity;
    this.keepNanos = keep.toNanos();
    this.clock = clock;
  }

  /**
   * The answer to request {@code id}: {@code work}'s, run now if this id has not been seen (or has
   * been forgotten), else the first run's (completed or still to come). An empty id is never
   * remembered: {@code work} runs.
   */
  CompletionStage<ProcessReply> once(String id, Supplier<CompletionStage<ProcessReply>> work) {
    if (id == null || id.isEmpty()) {
      return work.get();
    }
    CompletableFuture<ProcessReply> mine;
    synchronized (this) {
      long now = clock.getAsLong();
      forgetOld(now);
      Seen seen = byId.get(id);
      if (seen != null) {
        return seen.answer();
      }
      mine = new CompletableFuture<>();
      byId.put(id, new Seen(now, mine));
      if (byId.size() > capacity) {
        Iterator<Map.Entry<String, Seen>> it = byId.entrySet().iterator();
        it.next();
        it.remove();
      }
    }
    CompletionStage<ProcessReply> w;
    try {
      w = work.get();
    } catch (RuntimeException e) {
      mine.completeExceptionally(e);
      return mine;
    }
    w.whenComplete(
        (r, e) -> {
          if (e != null) {
            mine.completeExceptionally(e);
          } else {
            mine.complete(r);
          }
        });
    return mine;
  }

  /** Whether {@code id} is remembered (for tests). */
  synchronized boolean remembers(String id) {
    forgetOld(clock.getAsLong());
    return byId.containsKey(id);
  }

  private void forgetOld(long now) {
    Iterator<Seen> it = byId.values().iterator();
    while (it.hasNext() && now - it.next().atNanos() > keepNanos) {
      it.remove();
    }
  }
}

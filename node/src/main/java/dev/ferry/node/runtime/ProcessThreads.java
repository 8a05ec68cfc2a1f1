package dev.ferry.node.runtime;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The platform threads processes run on, with one started ahead of need.
 *
 * <p>Creating and starting a thread with a process's large stack took 0.2–0.3 ms on a migration's
 * destination, on the path between the last chunk's arrival and the answer to the source (an
 * instrumented run, docs/BENCHMARKS.md). So one thread waits, started, for the next process; a
 * process takes it ({@link #take}) and hands it its body when the process may run ({@link
 * Slot#run}); only then is the next spare made, a little later, off the path of the process that
 * took it. When no spare is waiting (two processes in quick succession, or the spare could not be
 * made) a thread is made on the spot, as it always was: a failure to make it (no memory for another
 * thread) is known to the caller.
 */
public final class ProcessThreads {
  /** The interpreter recurses on the JVM stack for every wasm call: deep guests need room. */
  private static final long STACK_BYTES = 512L << 20;

  /** How long after a spare was taken the next one is made. */
  private static final long REPLENISH_DELAY_MILLIS = 50;

  private static final Object LOCK = new Object();
  private static Slot spare; // guarded by LOCK
  private static boolean replenishing; // guarded by LOCK

  private static final ScheduledExecutorService MAKER =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "ferry-process-thread-maker");
            t.setDaemon(true);
            return t;
          });

  private ProcessThreads() {}

  /** A started thread that waits for the one body it will run. */
  static final class Slot {
    private final CompletableFuture<Runnable> body = new CompletableFuture<>();
    private final Thread thread;

    private Slot() {
      thread = new Thread(null, () -> body.join().run(), "ferry-spare-process-thread", STACK_BYTES);
      thread.setDaemon(true);
      thread.start();
    }

    Thread thread() {
      return thread;
    }

    /**
     * Lets the thread run {@code r}; only the first call counts. The next spare is made soon after.
     */
    void run(Runnable r) {
      if (body.complete(r)) {
        replenishSoon();
      }
    }
  }

  /**
   * A started thread named {@code name}, waiting for its body: the spare if one waits, else a new
   * one (which throws {@link OutOfMemoryError} if the JVM cannot make another thread).
   */
  static Slot take(String name) {
    Slot s;
    synchronized (LOCK) {
      s = spare;
      spare = null;
    }
    if (s == null) {
      s = new Slot();
    }
    s.thread.setName(name);
    return s;
  }

  private static void replenishSoon() {
    synchronized (LOCK) {
      if (spare != null || replenishing) {
        return;
      }
      replenishing = true;
    }
    MAKER.schedule(ProcessThreads::replenish, REPLENISH_DELAY_MILLIS, TimeUnit.MILLISECONDS);
  }

  /** On the maker thread, the only place a spare is made: none waits while it runs. */
  private static void replenish() {
    Slot s = null;
    try {
      s = new Slot();
    } catch (OutOfMemoryError e) {
      // no spare for now: the next process makes its own thread (and hears why if it cannot)
    } finally {
      synchronized (LOCK) {
        replenishing = false;
        spare = s;
      }
    }
  }

  /** Makes the first spare soon (at a node's start), so that the first process finds one. */
  public static void prepare() {
    replenishSoon();
  }
}

package dev.ferry.node.wasi;

/**
 * The guest's monotonic clock: host {@link System#nanoTime()} plus an offset chosen so that, after
 * a restore on any node, the clock continues from the last value the guest could have seen. It
 * never goes backwards, even when called from several threads.
 */
public final class GuestClock {
  private final long offset;
  private long last;

  private GuestClock(long startAt) {
    this.offset = startAt - System.nanoTime();
    this.last = startAt;
  }

  /** A clock for a new process, starting near zero. */
  public static GuestClock start() {
    return new GuestClock(1_000_000L);
  }

  /** A clock that continues from {@code monotonicNanos} (a value saved in an image). */
  public static GuestClock resumeAt(long monotonicNanos) {
    return new GuestClock(monotonicNanos + 1);
  }

  public synchronized long monotonicNanos() {
    long now = System.nanoTime() + offset;
    if (now > last) {
      last = now;
    }
    return last;
  }

  /** The value to save in an image: at least any value already returned. */
  public synchronized long snapshot() {
    return monotonicNanos();
  }
}

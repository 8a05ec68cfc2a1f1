package dev.ferry.node.process;

import dev.ferry.node.wasi.OutputSink;
import dev.ferry.statestore.LogStore;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;

/**
 * A process's stdout (stream 1) and stderr (stream 2): one byte stream each, owned by the process
 * and addressed by byte offset. Writes are buffered in memory and appended to the store when the
 * buffer grows past {@link #FLUSH_BYTES}, on the node's periodic flush, and always before a
 * checkpoint is written ({@link #flush()}); readers see flushed and buffered bytes alike.
 *
 * <p>A store that refuses the bytes (full) does not fail the process: they stay here, readable, and
 * are stored when the store takes them again (tried at most every {@link #RETRY_NANOS}); once
 * {@link #HOLD_BYTES} wait, the process's next write of output waits for room ({@link #accepting}),
 * where it can still be migrated, checkpointed or killed.
 *
 * <p>Not guaranteed: bytes still buffered when the node's JVM dies without a shutdown are lost; a
 * restore then re-runs the process from its last image, which re-produces them.
 */
public final class ProcessLog implements OutputSink {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(ProcessLog.class);

  static final int FLUSH_BYTES = 64 * 1024;

  /** Output kept in memory while the store refuses it, before the process's writes wait. */
  static final int HOLD_BYTES = 1 << 20;

  /** While the store refuses output, how often it is offered again. */
  static final long RETRY_NANOS = 200_000_000L;

  private final String pid;
  private final LogStore store;
  private final ByteArrayOutputStream[] pending = {
    null, new ByteArrayOutputStream(), new ByteArrayOutputStream()
  };
  private final long[] flushed = new long[3];
  private boolean closed;
  private volatile RuntimeException refused; // the store's last refusal, while it lasts
  private java.time.Instant refusedSince;
  private long triedAt;

  /**
   * Told (with what happened and a detail) when the store first refuses this log's output ({@code
   * output-held}) and when it has taken all of it again ({@code output-stored}); called under this
   * log's lock, so it must not block.
   */
  public interface Notices {
    void on(String what, String detail);
  }

  private volatile Notices notices = (what, detail) -> {};

  /** Where {@link Notices} go (the node's process events). */
  public void notices(Notices n) {
    this.notices = n;
  }

  public ProcessLog(String pid, LogStore store) {
    this(pid, store, store.length(pid, 1), store.length(pid, 2));
  }

  /** A log whose streams are known to hold these many bytes in the store (or soon will). */
  ProcessLog(String pid, LogStore store, long stdoutLength, long stderrLength) {
    this.pid = pid;
    this.store = store;
    flushed[1] = stdoutLength;
    flushed[2] = stderrLength;
  }

  @Override
  public synchronized void write(int stream, byte[] data, int off, int len) {
    pending[stream].write(data, off, len);
    if (pending[stream].size() >= FLUSH_BYTES) {
      offer(false, stream, stream);
    }
    notifyAll();
  }

  /**
   * True unless the store refuses output and {@link #HOLD_BYTES} wait here. Without a refusal no
   * more than {@link #FLUSH_BYTES} wait, so an output write does not take this log's lock for it.
   */
  @Override
  public boolean accepting() {
    return refused == null || roomWhileRefused();
  }

  private synchronized boolean roomWhileRefused() {
    return pending[1].size() + pending[2].size() < HOLD_BYTES || tryFlush(false);
  }

  /**
   * While the store refuses this log's output: since when, what waits in memory and whether the
   * process waits too ({@code ferry status}); else null. Takes no lock unless refused.
   */
  public String held() {
    if (refused == null) {
      return null;
    }
    synchronized (this) {
      if (refused == null) {
        return null;
      }
      int waiting = pending[1].size() + pending[2].size();
      return "since "
          + refusedSince
          + " its node's store refuses its output ("
          + refused.getMessage()
          + "); "
          + waiting
          + " bytes wait in memory"
          + (waiting >= HOLD_BYTES
              ? ", and the process waits at its next write to stdout or stderr"
              : "");
    }
  }

  /**
   * Appends everything buffered to the store (not yet synced to disk).
   *
   * @throws dev.ferry.statestore.StoreException if the store refuses it (the bytes stay here)
   */
  public synchronized void flush() {
    if (!tryFlush(true)) {
      throw refused;
    }
  }

  /**
   * Appends everything buffered to the store, if it takes it; a refusal keeps the bytes here, to be
   * offered again (with {@code now} false, not before {@link #RETRY_NANOS} has passed since the
   * last refusal). True if nothing is left buffered.
   */
  public synchronized boolean tryFlush(boolean now) {
    return offer(now, 1, 2);
  }

  /**
   * {@link #tryFlush} of the streams {@code from} to {@code to} (an output write offers only its
   * own); a refusal ends once nothing of either stream is left buffered.
   */
  private boolean offer(boolean now, int from, int to) {
    long t = System.nanoTime();
    if (refused != null && !now && t - triedAt < RETRY_NANOS) {
      return false;
    }
    triedAt = t;
    try {
      for (int s = from; s <= to; s++) {
        flushStream(s);
      }
    } catch (RuntimeException e) {
      if (refused == null) {
        refusedSince = java.time.Instant.now();
        String held =
            "its node's store refuses its output ("
                + e.getMessage()
                + "): up to "
                + HOLD_BYTES
                + " bytes of it wait in memory, then the process waits at its next write to"
                + " stdout or stderr, until the store takes them or it is migrated";
        notices.on("output-held", held);
        log.warn("process {}: {}", pid, held);
      }
      refused = e;
      return false;
    }
    if (refused != null && pending[1].size() == 0 && pending[2].size() == 0) {
      long ms = java.time.Duration.between(refusedSince, java.time.Instant.now()).toMillis();
      log.info("the output of {} is stored again, after {} ms", pid, ms);
      refused = null;
      notices.on("output-stored", "its output is stored again, after " + ms + " ms");
    }
    return true;
  }

  private void flushStream(int s) {
    if (pending[s].size() > 0) {
      byte[] b = pending[s].toByteArray();
      store.append(pid, s, b, 0, b.length);
      flushed[s] += b.length;
      pending[s].reset();
    }
  }

  public synchronized long length(int stream) {
    return flushed[stream] + pending[stream].size();
  }

  /** The whole stream, stored and buffered bytes alike. */
  public synchronized byte[] readAll(int stream) {
    int stored = (int) flushed[stream];
    byte[] fromStore = store.read(pid, stream, 0, stored);
    if (fromStore.length != stored) {
      throw new IllegalStateException(
          "the stored log of "
              + pid
              + "/"
              + stream
              + " holds "
              + fromStore.length
              + " bytes, not "
              + stored);
    }
    byte[] all = Arrays.copyOf(fromStore, stored + pending[stream].size());
    byte[] buffered = pending[stream].toByteArray();
    System.arraycopy(buffered, 0, all, stored, buffered.length);
    return all;
  }

  /** Up to {@code max} bytes from {@code offset}; empty at the end. */
  public synchronized byte[] read(int stream, long offset, int max) {
    if (offset < flushed[stream]) {
      int n = (int) Math.min(max, flushed[stream] - offset);
      return store.read(pid, stream, offset, n);
    }
    int from = (int) (offset - flushed[stream]);
    byte[] buf = pending[stream].toByteArray();
    if (from >= buf.length) {
      return new byte[0];
    }
    return Arrays.copyOfRange(buf, from, from + Math.min(max, buf.length - from));
  }

  /**
   * Waits up to {@code millis} until the stream has bytes past {@code offset} or the log is closed.
   * Returns true if there are bytes to read.
   */
  public synchronized boolean awaitData(int stream, long offset, long millis)
      throws InterruptedException {
    long deadline = System.currentTimeMillis() + millis;
    while (length(stream) <= offset && !closed) {
      long left = deadline - System.currentTimeMillis();
      if (left <= 0) {
        break;
      }
      wait(left);
    }
    return length(stream) > offset;
  }

  /** Drops everything past the given lengths: used on restore so no byte is repeated. */
  public synchronized void truncate(long stdoutLength, long stderrLength) {
    flush();
    store.truncate(pid, 1, stdoutLength);
    store.truncate(pid, 2, stderrLength);
    flushed[1] = store.length(pid, 1);
    flushed[2] = store.length(pid, 2);
    closed = false;
  }

  /**
   * The process can write no more: flushes (what the store refuses stays here, readable, and is
   * offered again by the node's periodic flush), and wakes every waiting reader.
   */
  public synchronized void close() {
    tryFlush(true);
    closed = true;
    notifyAll();
  }

  public synchronized boolean isClosed() {
    return closed;
  }
}

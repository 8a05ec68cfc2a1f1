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
 * <p>Not guaranteed: bytes still buffered when the node's JVM dies without a shutdown are lost; a
 * restore then re-runs the process from its last image, which re-produces them.
 */
public final class ProcessLog implements OutputSink {
  static final int FLUSH_BYTES = 64 * 1024;

  private final String pid;
  private final LogStore store;
  private final ByteArrayOutputStream[] pending = {
    null, new ByteArrayOutputStream(), new ByteArrayOutputStream()
  };
  private final long[] flushed = new long[3];
  private boolean closed;

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
      flushStream(stream);
    }
    notifyAll();
  }

  /** Appends everything buffered to the store (not yet synced to disk). */
  public synchronized void flush() {
    flushStream(1);
    flushStream(2);
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

  /** The process can write no more: flushes, and wakes every waiting reader. */
  public synchronized void close() {
    flush();
    closed = true;
    notifyAll();
  }

  public synchronized boolean isClosed() {
    return closed;
  }
}

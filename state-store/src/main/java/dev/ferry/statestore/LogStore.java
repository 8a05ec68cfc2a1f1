package dev.ferry.statestore;

/**
 * Each process's output streams (stdout, stderr, …) as append-only byte logs, addressed by byte
 * offset.
 *
 * <p>A log is identified by the process id and a stream number (0..255; by convention 1 is stdout
 * and 2 is stderr). Offsets are stable: the byte at offset n is the same byte for every reader,
 * until the log is truncated below n. Each method is atomic; an append is either entirely in the
 * log or not at all, and concurrent appends to one log are serialized (neither is lost). Appends
 * are durable only after {@link FerryStore#sync()}; a restore should {@link #truncate} to the
 * length recorded in the image, so that output written after that image is not repeated.
 *
 * <p>It does not interpret bytes (no lines, no encodings), and it does not notify readers of new
 * data: followers poll {@link #length}.
 */
public interface LogStore {
  /** The stream number of a process's standard output. */
  int STDOUT = 1;

  /** The stream number of a process's standard error. */
  int STDERR = 2;

  /** Appends {@code data[off, off + len)} to the log; returns the log's new length. */
  long append(String pid, int stream, byte[] data, int off, int len);

  /** The log's length in bytes; 0 if nothing was ever written. */
  long length(String pid, int stream);

  /**
   * Up to {@code maxBytes} bytes starting at {@code offset}: fewer near the end, none at or past
   * the end.
   */
  byte[] read(String pid, int stream, long offset, int maxBytes);

  /** Drops every byte at or past {@code length}; nothing happens if the log is not longer. */
  void truncate(String pid, int stream, long length);

  /** Removes every stream of process {@code pid}. */
  void delete(String pid);
}

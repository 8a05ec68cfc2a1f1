package dev.ferry.statestore;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import org.lmdbjava.Cursor;
import org.lmdbjava.Dbi;
import org.lmdbjava.GetOp;
import org.lmdbjava.Txn;

/**
 * A {@link LogStore} in one LMDB database, {@code logs}, holding each log as chunks keyed by where
 * they start.
 *
 * <pre>
 *  key: [pid length:2][pid UTF-8][stream:1][start offset:8, big-endian]   value: the bytes
 *
 *  log (p1, stdout):  |---- chunk @0 ----|---- chunk @1900 ----|-- chunk @3800 --|
 *                                                                       ^ length = 3800 + size
 * </pre>
 *
 * <p>Big-endian offsets make LMDB's byte order the log's order, so the chunk holding any offset is
 * one range seek away, and the last chunk (hence the length) is one seek from the end of the (pid,
 * stream) range. Appends are small and frequent: each is one write transaction that tops up the
 * last chunk to {@value #CHUNK_BYTES} bytes and starts new chunks past that. That size keeps two
 * chunks per 4 KiB page (no overflow pages), so an append rewrites a page or two, not a megabyte.
 * The length-prefixed pid means no pid's range can contain another pid's keys.
 */
final class LmdbLogStore implements LogStore {
  /** Most bytes per chunk; see the class comment. */
  static final int CHUNK_BYTES = 1900;

  /** Longest process id, in UTF-8 bytes (the key must fit LMDB's 511 with 11 bytes of framing). */
  static final int MAX_PID_BYTES = 500;

  private static final byte[] NO_BYTES = new byte[0];

  private final FerryStore store;
  private final Dbi<ByteBuffer> logs;

  LmdbLogStore(FerryStore store, Dbi<ByteBuffer> logs) {
    this.store = store;
    this.logs = logs;
  }

  @Override
  public long append(String pid, int stream, byte[] data, int off, int len) {
    byte[] prefix = streamPrefix(pid, stream);
    Objects.checkFromIndexSize(off, len, Objects.requireNonNull(data, "data").length);
    if (len == 0) {
      return length(pid, stream);
    }
    return store.write(
        () -> "append " + len + " bytes to the log of " + pid + "/" + stream,
        txn -> append(txn, prefix, data, off, len));
  }

  @Override
  public long length(String pid, int stream) {
    byte[] prefix = streamPrefix(pid, stream);
    return store.read(
        () -> "length of the log of " + pid + "/" + stream,
        txn -> {
          Chunk last = last(txn, prefix, false);
          return last == null ? 0L : last.end();
        });
  }

  @Override
  public byte[] read(String pid, int stream, long offset, int maxBytes) {
    byte[] prefix = streamPrefix(pid, stream);
    if (offset < 0) {
      throw new IllegalArgumentException("offset must not be negative, got " + offset);
    }
    if (maxBytes < 0) {
      throw new IllegalArgumentException("maxBytes must not be negative, got " + maxBytes);
    }
    if (maxBytes == 0) {
      return NO_BYTES;
    }
    return store.read(
        () -> "read the log of " + pid + "/" + stream, txn -> read(txn, prefix, offset, maxBytes));
  }

  @Override
  public void truncate(String pid, int stream, long length) {
    byte[] prefix = streamPrefix(pid, stream);
    if (length < 0) {
      throw new IllegalArgumentException("length must not be negative, got " + length);
    }
    store.write(
        () -> "truncate the log of " + pid + "/" + stream + " to " + length + " bytes",
        txn -> {
          truncate(txn, prefix, length);
          return null;
        });
  }

  @Override
  public void delete(String pid) {
    byte[] prefix = pidPrefix(pid);
    store.write(
        () -> "delete the logs of " + pid,
        txn -> {
          List<byte[]> keys = new ArrayList<>();
          try (Cursor<ByteBuffer> cursor = logs.openCursor(txn)) {
            boolean found = cursor.get(Bytes.key(prefix), GetOp.MDB_SET_RANGE);
            while (found && Bytes.startsWith(cursor.key(), prefix)) {
              keys.add(Bytes.copy(cursor.key()));
              found = cursor.next();
            }
          }
          for (byte[] key : keys) {
            logs.delete(txn, Bytes.key(key));
          }
          return null;
        });
  }

  // ---- inside a transaction ----

  private long append(Txn<ByteBuffer> txn, byte[] prefix, byte[] data, int off, int len) {
    Chunk last = last(txn, prefix, true);
    long length = last == null ? 0 : last.end();
    int done = 0;
    if (last != null && last.bytes != null) {
      // Top up the last chunk: rewrite it longer (its old bytes were copied out by last(),
      // because the rewrite may move them within the page).
      int fill = Math.min(len, CHUNK_BYTES - last.size);
      ByteBuffer target = logs.reserve(txn, key(prefix, last.start), last.size + fill);
      target.put(0, last.bytes);
      target.put(last.size, data, off, fill);
      done = fill;
    }
    while (done < len) {
      int n = Math.min(CHUNK_BYTES, len - done);
      ByteBuffer target = logs.reserve(txn, key(prefix, length + done), n);
      target.put(0, data, off + done, n);
      done += n;
    }
    return length + len;
  }

  private byte[] read(Txn<ByteBuffer> txn, byte[] prefix, long offset, int maxBytes) {
    try (Cursor<ByteBuffer> cursor = logs.openCursor(txn)) {
      if (!floor(cursor, prefix, offset)) {
        return NO_BYTES;
      }
      long start = Bytes.longAt(cursor.key(), prefix.length);
      ByteBuffer value = cursor.val();
      if (offset >= start + value.remaining()) {
        return NO_BYTES; // at or past the end
      }
      byte[] out = new byte[Math.min(maxBytes, 64 * 1024)];
      int filled = 0;
      int from = (int) (offset - start);
      long expected = start;
      while (true) {
        int n = Math.min(value.remaining() - from, maxBytes - filled);
        if (filled + n > out.length) {
          out = Arrays.copyOf(out, (int) Math.min(maxBytes, Math.max(2L * out.length, filled + n)));
        }
        value.get(from, out, filled, n);
        filled += n;
        expected += value.remaining();
        if (filled == maxBytes || !cursor.next() || !ours(cursor.key(), prefix)) {
          break;
        }
        long next = Bytes.longAt(cursor.key(), prefix.length);
        if (next != expected) {
          throw new StoreException(
              "store corrupt: a log has a chunk at " + next + " where " + expected + " was due");
        }
        value = cursor.val();
        from = 0;
      }
      return filled == out.length ? out : Arrays.copyOf(out, filled);
    }
  }

  private void truncate(Txn<ByteBuffer> txn, byte[] prefix, long length) {
    List<Long> doomed = new ArrayList<>();
    Chunk kept = null;
    try (Cursor<ByteBuffer> cursor = logs.openCursor(txn)) {
      boolean found = floor(cursor, prefix, length);
      if (!found) {
        found = cursor.get(key(prefix, length), GetOp.MDB_SET_RANGE) && ours(cursor.key(), prefix);
      }
      while (found) {
        long start = Bytes.longAt(cursor.key(), prefix.length);
        int size = cursor.val().remaining();
        if (start >= length) {
          doomed.add(start);
        } else if (start + size > length) {
          byte[] bytes = new byte[(int) (length - start)];
          cursor.val().get(0, bytes);
          kept = new Chunk(start, bytes.length, bytes);
        }
        found = cursor.next() && ours(cursor.key(), prefix);
      }
    }
    for (long start : doomed) {
      logs.delete(txn, key(prefix, start));
    }
    if (kept != null) {
      logs.reserve(txn, key(prefix, kept.start), kept.bytes.length).put(0, kept.bytes);
    }
  }

  /**
   * The last chunk of a log, or null. Its bytes are copied only if {@code withBytes} and it can
   * still grow (an append tops it up); otherwise {@code bytes} is null.
   */
  private Chunk last(Txn<ByteBuffer> txn, byte[] prefix, boolean withBytes) {
    try (Cursor<ByteBuffer> cursor = logs.openCursor(txn)) {
      ByteBuffer probe = Bytes.keyB().put(prefix).putLong(-1L).flip(); // past every offset
      boolean positioned = cursor.get(probe, GetOp.MDB_SET_RANGE) ? cursor.prev() : cursor.last();
      if (!positioned || !ours(cursor.key(), prefix)) {
        return null;
      }
      long start = Bytes.longAt(cursor.key(), prefix.length);
      ByteBuffer value = cursor.val();
      int size = value.remaining();
      return new Chunk(start, size, withBytes && size < CHUNK_BYTES ? Bytes.copy(value) : null);
    }
  }

  /** Positions {@code cursor} on the chunk with the greatest start at or before {@code offset}. */
  private static boolean floor(Cursor<ByteBuffer> cursor, byte[] prefix, long offset) {
    boolean found = cursor.get(key(prefix, offset), GetOp.MDB_SET_RANGE);
    if (found
        && ours(cursor.key(), prefix)
        && Bytes.longAt(cursor.key(), prefix.length) == offset) {
      return true;
    }
    boolean positioned = found ? cursor.prev() : cursor.last();
    return positioned && ours(cursor.key(), prefix);
  }

  private static boolean ours(ByteBuffer key, byte[] prefix) {
    return key.remaining() == prefix.length + 8 && Bytes.startsWith(key, prefix);
  }

  private static ByteBuffer key(byte[] prefix, long start) {
    return Bytes.keyA().put(prefix).putLong(start).flip();
  }

  private static byte[] pidPrefix(String pid) {
    byte[] id = Bytes.utf8("pid", pid, MAX_PID_BYTES);
    byte[] prefix = new byte[2 + id.length];
    prefix[0] = (byte) (id.length >>> 8);
    prefix[1] = (byte) id.length;
    System.arraycopy(id, 0, prefix, 2, id.length);
    return prefix;
  }

  private static byte[] streamPrefix(String pid, int stream) {
    if (stream < 0 || stream > 255) {
      throw new IllegalArgumentException("stream must be 0..255, got " + stream);
    }
    byte[] pidPrefix = pidPrefix(pid);
    byte[] prefix = Arrays.copyOf(pidPrefix, pidPrefix.length + 1);
    prefix[pidPrefix.length] = (byte) stream;
    return prefix;
  }

  /** A chunk's start offset, size, and (when asked for and copied) its bytes. */
  private record Chunk(long start, int size, byte[] bytes) {
    long end() {
      return start + size;
    }
  }
}

package dev.ferry.statestore;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.lmdbjava.Cursor;
import org.lmdbjava.Dbi;
import org.lmdbjava.GetOp;
import org.lmdbjava.Txn;

/**
 * A {@link Table} over two LMDB databases: {@code <name>} holds one entry per key, {@code
 * <name>.chunks} holds the pieces of large values.
 *
 * <pre>
 *  <name>                                   <name>.chunks
 *  key "a" -> [0][value bytes ...]          (small value: inline, tag 0)
 *  key "b" -> [1][length:8][count:4][size:4]
 *                     |                     "b" + [0,0,0,0] -> bytes [0, size)
 *                     +-------------------> "b" + [0,0,0,1] -> bytes [size, 2*size)
 *                                           "b" + [0,0,0,2] -> the rest
 * </pre>
 *
 * <p>Why chunks, and why not one MDB_RESERVE'd value: a single LMDB value lives in one run of
 * contiguous overflow pages. A several-hundred-MiB image would need hundreds of MiB of
 * <em>contiguous</em> free pages; after a few deletes the free space is fragmented, LMDB scans its
 * free list for such a run (slowly) and then grows the file instead of reusing the space. Chunks of
 * about 1 MiB reuse freed space well, and each is written with MDB_RESERVE, straight from the
 * caller's array into LMDB's page: no direct buffer is allocated for values at all. Chunk keys have
 * a fixed 4-byte suffix, so two different keys can never produce the same chunk key, and {@link
 * #keys} never sees chunks (they are in the other database). All chunks of a value are written,
 * replaced and deleted in the same transaction as its head entry, except those of a staged value.
 *
 * <p>A staged value ({@link StagedValue}, format 2 of the store) has its chunks written ahead, each
 * in its own transaction, under a base of their own: its key, a 0xFF byte (never in UTF-8, so never
 * in a key) and six random bytes, so that two stagings of one key never share chunks. Its head,
 * written when it is published, says so and names the base: {@code [2][length:8][count:4][size:4]
 * [base]}. Chunks that no head owns (a staged value not published when the store was closed) are
 * removed when the store is opened.
 */
final class LmdbTable implements Table {
  /**
   * Bytes per chunk: with LMDB's 16-byte overflow page header a chunk fills exactly 256 pages of 4
   * KiB. Values up to this size (minus the tag byte) are stored inline.
   */
  static final int CHUNK_BYTES = (1 << 20) - 16;

  private static final byte INLINE = 0;
  private static final byte CHUNKED = 1;

  /** Chunked, with chunks under a base of their own, written ahead (a {@link StagedValue}). */
  private static final byte STAGED = 2;

  private static final int HEADER_BYTES = 1 + 8 + 4 + 4;

  /**
   * A staged value's chunk base: its key, this byte (never in UTF-8, so never in a key) and {@link
   * #STAGE_TAG_BYTES} random bytes: two stagings of one key (a migration tried again while the
   * first attempt's pieces are still being removed) never write the same chunks.
   */
  private static final byte STAGE_MARK = (byte) 0xFF;

  private static final int STAGE_TAG_BYTES = 6;
  private static final java.security.SecureRandom STAGE_TAGS = new java.security.SecureRandom();

  private final FerryStore store;
  private final TableName name;
  private final Dbi<ByteBuffer> heads;
  private final Dbi<ByteBuffer> chunks;

  LmdbTable(FerryStore store, TableName name, Dbi<ByteBuffer> heads, Dbi<ByteBuffer> chunks) {
    this.store = store;
    this.name = name;
    this.heads = heads;
    this.chunks = chunks;
  }

  @Override
  public TableName name() {
    return name;
  }

  @Override
  public Optional<byte[]> get(String key) {
    byte[] k = encode(key);
    return Optional.ofNullable(store.read(() -> "get " + describe(key), txn -> get(txn, k)));
  }

  @Override
  public void put(String key, byte[] value) {
    byte[] k = encode(key);
    if (value == null) {
      throw new NullPointerException("value");
    }
    store.write(
        () -> "put " + describe(key) + " (" + value.length + " bytes)",
        txn -> {
          put(txn, k, value);
          return null;
        });
  }

  @Override
  public boolean delete(String key) {
    byte[] k = encode(key);
    return store.write(() -> "delete " + describe(key), txn -> delete(txn, k));
  }

  @Override
  public boolean contains(String key) {
    byte[] k = encode(key);
    return store.read(
        () -> "look up " + describe(key), txn -> heads.get(txn, Bytes.key(k)) != null);
  }

  @Override
  public List<String> keys() {
    return keys("");
  }

  @Override
  public List<String> keys(String prefix) {
    if (prefix == null) {
      throw new NullPointerException("prefix");
    }
    byte[] p = prefix.getBytes(StandardCharsets.UTF_8);
    return store.read(() -> "list " + name + " keys", txn -> keys(txn, p));
  }

  @Override
  public long valueSize(String key) {
    byte[] k = encode(key);
    return store.read(
        () -> "size of " + describe(key),
        txn -> {
          ByteBuffer head = heads.get(txn, Bytes.key(k));
          if (head == null) {
            return -1L;
          }
          return head.get(0) == INLINE ? head.remaining() - 1L : Bytes.longAt(head, 1);
        });
  }

  @Override
  public StagedValue stage(String key, long length) {
    byte[] k = encode(key);
    if (length <= 0 || length > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("cannot stage a value of " + length + " bytes");
    }
    if (contains(key)) {
      throw new IllegalStateException(
          describe(key) + " has a value: a staged one cannot replace it");
    }
    return new Staged(key, k, length);
  }

  /** A value of this table whose chunks are written ahead of its head. */
  final class Staged implements StagedValue {
    private final String key;
    private final byte[] keyBytes;
    private final byte[] k; // the chunks' base
    private final long length;
    private final boolean[] written;
    private int missing;
    private boolean published;
    private boolean discarded;

    Staged(String key, byte[] k, long length) {
      this.key = key;
      byte[] tag = new byte[STAGE_TAG_BYTES];
      STAGE_TAGS.nextBytes(tag);
      this.k = new byte[k.length + 1 + STAGE_TAG_BYTES];
      System.arraycopy(k, 0, this.k, 0, k.length);
      this.k[k.length] = STAGE_MARK;
      System.arraycopy(tag, 0, this.k, k.length + 1, STAGE_TAG_BYTES);
      this.keyBytes = k;
      this.length = length;
      int count = (int) ((length + (long) CHUNK_BYTES - 1) / CHUNK_BYTES);
      this.written = new boolean[count];
      this.missing = count;
    }

    LmdbTable owner() {
      return LmdbTable.this;
    }

    @Override
    public TableName table() {
      return name;
    }

    @Override
    public String key() {
      return key;
    }

    @Override
    public long length() {
      return length;
    }

    @Override
    public int pieces() {
      return written.length;
    }

    @Override
    public int pieceBytes() {
      return CHUNK_BYTES;
    }

    @Override
    public synchronized void writePiece(int index, byte[] src, int offset) {
      if (published || discarded || written[index]) {
        throw new IllegalStateException(
            "piece " + index + " of staged " + describe(key) + " cannot be written now");
      }
      int n = pieceLength(index);
      store.write(
          () -> "write piece " + index + " of staged " + describe(key) + " (" + n + " bytes)",
          txn -> {
            chunks.reserve(txn, chunkKey(k, index), n).put(0, src, offset, n);
            return null;
          });
      written[index] = true;
      missing--;
    }

    @Override
    public synchronized boolean complete() {
      return missing == 0;
    }

    @Override
    public synchronized void discard() {
      if (published || discarded) {
        return;
      }
      discarded = true;
      store.write(
          () -> "discard staged " + describe(key),
          txn -> {
            for (int i = 0; i < written.length; i++) {
              if (written[i]) {
                chunks.delete(txn, chunkKey(k, i));
              }
            }
            return null;
          });
    }

    /** Writes the head, in the caller's transaction: the value is then its key's. */
    synchronized void publish(Txn<ByteBuffer> txn) {
      if (published || discarded || missing > 0) {
        throw new IllegalStateException(
            "staged "
                + describe(key)
                + (missing > 0 ? " misses " + missing + " pieces" : " was published or discarded"));
      }
      if (heads.get(txn, Bytes.key(keyBytes)) != null) {
        throw new IllegalStateException(describe(key) + " got a value while staged");
      }
      writeHead(txn, keyBytes, length, written.length, k);
      published = true;
      // Published only if the transaction commits: otherwise its pieces are still to discard.
      store.onAbort(this::unpublish);
    }

    private synchronized void unpublish() {
      published = false;
    }
  }

  /**
   * Removes chunks that belong to no value: written ahead for a staged value that was never
   * published because the node stopped first.
   */
  void deleteOrphanChunks(Txn<ByteBuffer> txn) {
    try (Cursor<ByteBuffer> cursor = chunks.openCursor(txn)) {
      boolean found = cursor.first();
      while (found) {
        byte[] chunkKey = Bytes.copy(cursor.key());
        byte[] base = java.util.Arrays.copyOf(chunkKey, chunkKey.length - 4);
        int index = ByteBuffer.wrap(chunkKey, chunkKey.length - 4, 4).getInt();
        int mark = base.length - 1 - STAGE_TAG_BYTES;
        boolean staged = mark >= 0 && base[mark] == STAGE_MARK;
        byte[] k = staged ? java.util.Arrays.copyOf(base, mark) : base;
        ByteBuffer head = heads.get(txn, Bytes.keyB().put(k).flip());
        boolean owned = false;
        if (head != null && head.get(0) != INLINE) {
          try {
            Header h = Header.read(head, this, k);
            owned = index < h.count() && java.util.Arrays.equals(h.base(), base);
          } catch (StoreException corrupt) {
            owned = true; // left alone: reading that value says what is wrong with it
          }
        }
        if (!owned) {
          cursor.delete();
        }
        found = cursor.next();
      }
    }
  }

  /** The number of chunk entries, for tests: 0 once every large value is gone. */
  long chunkEntries() {
    return store.read(() -> "count chunks of " + name, txn -> chunks.stat(txn).entries);
  }

  // ---- inside a transaction ----

  byte[] get(Txn<ByteBuffer> txn, byte[] k) {
    ByteBuffer head = heads.get(txn, Bytes.key(k));
    if (head == null) {
      return null;
    }
    if (head.get(0) == INLINE) {
      byte[] out = new byte[head.remaining() - 1];
      head.get(1, out);
      return out;
    }
    Header header = Header.read(head, this, k);
    byte[] out = new byte[(int) header.length];
    int position = 0;
    for (int i = 0; i < header.count; i++) {
      ByteBuffer chunk = chunks.get(txn, chunkKey(header.base, i));
      if (chunk == null || position + chunk.remaining() > out.length) {
        throw corrupt(k, "chunk " + i + " of " + header.count + " is missing or too long");
      }
      int n = chunk.remaining();
      chunk.get(0, out, position, n);
      position += n;
    }
    if (position != out.length) {
      throw corrupt(k, "chunks hold " + position + " of " + out.length + " bytes");
    }
    return out;
  }

  void put(Txn<ByteBuffer> txn, byte[] k, byte[] value) {
    put(txn, k, ByteBuffer.wrap(value));
  }

  /** Stores the bytes from {@code value}'s position to its limit (it is not moved). */
  void put(Txn<ByteBuffer> txn, byte[] k, ByteBuffer value) {
    deleteChunks(txn, k);
    int length = value.remaining();
    int base = value.position();
    if (length < CHUNK_BYTES) {
      ByteBuffer target = heads.reserve(txn, Bytes.key(k), 1 + length);
      target.put(0, INLINE);
      target.put(1, value, base, length);
      return;
    }
    int count = (int) ((length + (long) CHUNK_BYTES - 1) / CHUNK_BYTES);
    for (int i = 0; i < count; i++) {
      int offset = i * CHUNK_BYTES;
      int n = Math.min(CHUNK_BYTES, length - offset);
      ByteBuffer target = chunks.reserve(txn, chunkKey(k, i), n);
      target.put(0, value, base + offset, n);
    }
    writeHead(txn, k, length, count, k);
  }

  /**
   * The head of a chunked value of {@code k}: its chunks under {@code base} ({@code k} itself, or a
   * staged value's base, which the head then names).
   */
  private void writeHead(Txn<ByteBuffer> txn, byte[] k, long length, int count, byte[] base) {
    boolean staged = base != k;
    ByteBuffer target =
        heads
            .reserve(txn, Bytes.key(k), HEADER_BYTES + (staged ? base.length : 0))
            .order(ByteOrder.BIG_ENDIAN);
    target.put(0, staged ? STAGED : CHUNKED);
    target.putLong(1, length);
    target.putInt(9, count);
    target.putInt(13, CHUNK_BYTES);
    if (staged) {
      target.put(HEADER_BYTES, base);
    }
  }

  boolean delete(Txn<ByteBuffer> txn, byte[] k) {
    deleteChunks(txn, k);
    return heads.delete(txn, Bytes.key(k));
  }

  private void deleteChunks(Txn<ByteBuffer> txn, byte[] k) {
    ByteBuffer head = heads.get(txn, Bytes.key(k));
    if (head == null || head.get(0) == INLINE) {
      return;
    }
    Header header = Header.read(head, this, k);
    for (int i = 0; i < header.count; i++) {
      chunks.delete(txn, chunkKey(header.base, i));
    }
  }

  private List<String> keys(Txn<ByteBuffer> txn, byte[] prefix) {
    List<String> out = new ArrayList<>();
    try (Cursor<ByteBuffer> cursor = heads.openCursor(txn)) {
      boolean found =
          prefix.length == 0 ? cursor.first() : cursor.get(Bytes.key(prefix), GetOp.MDB_SET_RANGE);
      while (found) {
        ByteBuffer key = cursor.key();
        if (!Bytes.startsWith(key, prefix)) {
          break;
        }
        out.add(new String(Bytes.copy(key), StandardCharsets.UTF_8));
        found = cursor.next();
      }
    }
    return out;
  }

  private static ByteBuffer chunkKey(byte[] k, int index) {
    return Bytes.keyA().put(k).putInt(index).flip();
  }

  private byte[] encode(String key) {
    return Bytes.utf8("key", key, MAX_KEY_BYTES);
  }

  private String describe(String key) {
    return name + "/" + (key.length() > 80 ? key.substring(0, 77) + "..." : key);
  }

  private StoreException corrupt(byte[] k, String problem) {
    return new StoreException(
        "store corrupt: " + describe(new String(k, StandardCharsets.UTF_8)) + ": " + problem);
  }

  /** The head entry of a chunked value. */
  private record Header(long length, int count, byte[] base) {
    static Header read(ByteBuffer head, LmdbTable table, byte[] k) {
      byte[] base;
      if (head.get(0) == CHUNKED && head.remaining() == HEADER_BYTES) {
        base = k;
      } else if (head.get(0) == STAGED && head.remaining() > HEADER_BYTES) {
        base = new byte[head.remaining() - HEADER_BYTES];
        head.get(HEADER_BYTES, base);
      } else {
        throw table.corrupt(k, "unknown value format " + head.get(0));
      }
      long length = Bytes.longAt(head, 1);
      int count = Bytes.intAt(head, 9);
      if (length < 0 || length > Integer.MAX_VALUE - 8 || count < 0) {
        throw table.corrupt(k, "bad header: length " + length + ", " + count + " chunks");
      }
      return new Header(length, count, base);
    }
  }
}

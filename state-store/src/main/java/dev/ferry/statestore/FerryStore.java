package dev.ferry.statestore;

import dev.ferry.config.StoreSettings;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;
import org.lmdbjava.ByteBufferProxy;
import org.lmdbjava.Dbi;
import org.lmdbjava.DbiFlags;
import org.lmdbjava.Env;
import org.lmdbjava.EnvFlags;
import org.lmdbjava.LmdbException;
import org.lmdbjava.LmdbNativeException;
import org.lmdbjava.Txn;

/**
 * A node's store: one LMDB environment in one directory, holding the {@link TableName tables} and
 * the process {@link #logs() logs}.
 *
 * <p><b>Durability.</b> The environment is opened with {@code MDB_NOSYNC}: a commit reaches the
 * operating system but not necessarily the disk. A write is durable only once {@link #sync()} has
 * returned after it; callers sync before acknowledging a checkpoint or a migration commit. If the
 * JVM dies, committed writes survive (they are in the OS page cache); if the machine loses power
 * before a sync, the latest writes may be lost, and on a file system that reorders writes LMDB does
 * not promise the file stays intact either. {@link #close()} syncs.
 *
 * <p><b>Atomicity.</b> Each method of {@link Table} and {@link LogStore} is one transaction. {@link
 * #write} groups puts and deletes across tables into one: all or nothing. Inside its callback,
 * calls to this store's tables and logs on the same thread join that transaction (they see the
 * batch's writes and commit or roll back with it), rather than deadlocking on LMDB's single writer
 * lock.
 *
 * <p><b>Threads.</b> Any number of threads may use one store. Reads run in short read-only
 * transactions ({@code MDB_NOTLS}, pooled) and never wait for writers; writes are serialized by
 * LMDB. A batch callback should be short and must not wait for another thread's write to this
 * store, which would wait for it in turn.
 *
 * <p><b>Failures.</b> A full map or disk raises {@link StoreFullException} ("store full: … increase
 * ferry.store.map-size"), other failures {@link StoreException}; the failed transaction is rolled
 * back and the store stays usable. Only one {@code FerryStore} may be open on a directory in a JVM,
 * and no other process should open it while it is open here.
 *
 * <p><b>Room freed.</b> LMDB reuses the pages a transaction frees only from the second transaction
 * after it (the one just before stays intact). So on a store that is nearly full and otherwise
 * idle, the write right after a large delete would find no room; a write that finds the map full is
 * therefore tried once more after a small commit that makes that room usable. A {@link
 * #write(Consumer)} callback may so run twice: it should only read and write through the store.
 *
 * <p><b>Growing.</b> After {@link #growWhenFull()} (a node saving its running processes as it shuts
 * down), a write that still finds the map full grows it instead of failing, past the map size it
 * was opened with. The file keeps what was written; opened again with a smaller map size, LMDB
 * gives it at least the size of its data.
 */
public final class FerryStore implements AutoCloseable {
  private static final Set<Path> OPEN_DIRS = ConcurrentHashMap.newKeySet();

  private static final int MAX_DBS = 32;
  private static final int MAX_READERS = 1024;
  private static final int MAX_IDLE_READERS = 64;

  /** 2: large values may have their chunks under a base of their own (staged values). */
  private static final int FORMAT = 2;

  // errno values (Linux; ENOSPC and EIO are the same on macOS).
  private static final int EIO = 5;
  private static final int ENOSPC = 28;
  private static final int EDQUOT = 122;

  private final Path dir;
  private final long mapSize;

  /** The map's size now: {@link #mapSize}, or more once it has grown. */
  private volatile long mapNow;

  private volatile boolean mayGrow;

  /** Whether the last commit was {@link #reuseFreed}'s. */
  private volatile boolean lastCommitFreedRoom;

  /** How many times one write may grow the map. */
  private static final int MAX_GROWTHS = 16;

  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(FerryStore.class);
  private final Env<ByteBuffer> env;
  private final Map<TableName, LmdbTable> tables = new EnumMap<>(TableName.class);
  private final LmdbLogStore logs;

  /** Held shared by every operation, exclusively by close(): the env never closes under a txn. */
  private final ReentrantReadWriteLock lifecycle = new ReentrantReadWriteLock();

  private boolean closed; // guarded by lifecycle

  /** This thread's open write transaction, which nested calls join. */
  private final ThreadLocal<Txn<ByteBuffer>> writeTxn = new ThreadLocal<>();

  /**
   * What to undo outside LMDB if this thread's write transaction does not commit; null until
   * something registers ({@link #onAbort}).
   */
  private final ThreadLocal<java.util.List<Runnable>> onAbort = new ThreadLocal<>();

  /** Every named database of the environment, for {@link #roomAtMost}. */
  private final java.util.List<Dbi<ByteBuffer>> dbis = new java.util.ArrayList<>();

  /** The store's own small table: its format, and the key {@link #reuseFreed} writes. */
  private final Dbi<ByteBuffer> format;

  private static final byte[] REUSE_KEY = "reuse-freed".getBytes(StandardCharsets.US_ASCII);

  /** Reset read transactions, renewed instead of allocated for each read. */
  private final ConcurrentLinkedQueue<Txn<ByteBuffer>> idleReaders = new ConcurrentLinkedQueue<>();

  private final AtomicInteger idleCount = new AtomicInteger();

  private FerryStore(Path dir, long mapSize, Env<ByteBuffer> env) {
    this.dir = dir;
    this.mapSize = mapSize;
    this.mapNow = mapSize;
    this.env = env;
    for (TableName name : TableName.values()) {
      Dbi<ByteBuffer> heads = env.openDbi(name.dbiName(), DbiFlags.MDB_CREATE);
      Dbi<ByteBuffer> chunks = env.openDbi(name.dbiName() + ".chunks", DbiFlags.MDB_CREATE);
      tables.put(name, new LmdbTable(this, name, heads, chunks));
      dbis.add(heads);
      dbis.add(chunks);
    }
    Dbi<ByteBuffer> logDbi = env.openDbi("logs", DbiFlags.MDB_CREATE);
    this.logs = new LmdbLogStore(this, logDbi);
    this.format = env.openDbi("format", DbiFlags.MDB_CREATE);
    dbis.add(logDbi);
    dbis.add(format);
    checkFormat(format);
    write(
        () -> "remove the pieces of values staged before the store was last closed",
        txn -> {
          for (LmdbTable t : tables.values()) {
            t.deleteOrphanChunks(txn);
          }
          return null;
        });
  }

  /**
   * Opens (creating if needed) the store in {@code dir}.
   *
   * @param mapSizeBytes the most the store can ever hold; the file is sparse and grows with use. A
   *     store that already holds more keeps its size.
   * @throws StoreException if the directory cannot be created or opened, or is already open in this
   *     JVM
   */
  public static FerryStore open(Path dir, long mapSizeBytes) {
    Objects.requireNonNull(dir, "dir");
    if (mapSizeBytes <= 0) {
      throw new IllegalArgumentException("map size must be positive, got " + mapSizeBytes);
    }
    Path real;
    try {
      Files.createDirectories(dir);
      real = dir.toRealPath();
    } catch (IOException e) {
      throw new StoreException("cannot create the store directory " + dir + ": " + e, e);
    }
    if (!OPEN_DIRS.add(real)) {
      throw new StoreException(
          "the store at " + real + " is already open in this JVM; share that FerryStore");
    }
    Env<ByteBuffer> env = null;
    try {
      env =
          Env.create(ByteBufferProxy.PROXY_OPTIMAL)
              .setMapSize(mapSizeBytes)
              .setMaxDbs(MAX_DBS)
              .setMaxReaders(MAX_READERS)
              .open(real.toFile(), EnvFlags.MDB_NOSYNC, EnvFlags.MDB_NOTLS);
      return new FerryStore(real, mapSizeBytes, env);
    } catch (RuntimeException e) {
      if (env != null) {
        env.close();
      }
      OPEN_DIRS.remove(real);
      if (e instanceof LmdbException lmdb) {
        throw translate(lmdb, "open the store at " + real, real, mapSizeBytes);
      }
      throw e;
    }
  }

  /** Opens the store in {@code dir} with the map size of {@code ferry.store}. */
  public static FerryStore open(Path dir, StoreSettings settings) {
    return open(dir, settings.mapSize());
  }

  /** One table; the same object on every call. */
  public Table table(TableName name) {
    return tables.get(Objects.requireNonNull(name, "name"));
  }

  /** The processes' output logs. */
  public LogStore logs() {
    return logs;
  }

  /**
   * Runs {@code batch} and commits everything it wrote in one transaction. If it throws, nothing is
   * written and the exception propagates. Not durable until {@link #sync()}.
   */
  public void write(Consumer<WriteBatch> batch) {
    Objects.requireNonNull(batch, "batch");
    String[] current = {"write batch"};
    write(
        () -> current[0],
        txn -> {
          Batch b = new Batch(txn, current);
          try {
            batch.accept(b);
          } finally {
            b.done = true;
          }
          return null;
        });
  }

  /** Forces every write committed so far to disk; when it returns, they are durable. */
  public void sync() {
    Lock lock = lifecycle.readLock();
    lock.lock();
    try {
      checkOpen();
      env.sync(true);
    } catch (LmdbException e) {
      throw translate(e, "sync");
    } finally {
      lock.unlock();
    }
  }

  /** The store's directory (its real path). */
  public Path directory() {
    return dir;
  }

  /**
   * At most how many more bytes the store can take now: the smaller of what its map has left and
   * what its disk has left (free space, and the part of its file no table uses), counting every
   * page no table uses as free. An upper bound: a write larger than this certainly does not fit
   * (pages that readers still see, and LMDB's own bookkeeping, leave less).
   */
  public long roomAtMost() {
    return read(
        () -> "measure the room left in the store",
        txn -> {
          org.lmdbjava.Stat main = env.stat();
          long pages = 2 + main.branchPages + main.leafPages + main.overflowPages; // 2: the metas
          for (Dbi<ByteBuffer> d : dbis) {
            org.lmdbjava.Stat s = d.stat(txn);
            pages += s.branchPages + s.leafPages + s.overflowPages;
          }
          long used = pages * main.pageSize;
          long mapRoom = env.info().mapSize - used;
          long diskRoom;
          try {
            long file = Files.size(dir.resolve("data.mdb"));
            diskRoom = Files.getFileStore(dir).getUsableSpace() + Math.max(0, file - used);
          } catch (IOException e) {
            diskRoom = Long.MAX_VALUE; // not known: the map's room is the bound
          }
          return Math.max(0, Math.min(mapRoom, diskRoom));
        });
  }

  /** The map size asked for when opening. */
  public long mapSize() {
    return mapSize;
  }

  /**
   * Syncs and closes the store, after operations in progress finish. Later calls fail with a {@link
   * StoreException}. Closing twice is harmless.
   *
   * @throws IllegalStateException if called from inside an operation or write batch
   */
  @Override
  public void close() {
    if (writeTxn.get() != null || lifecycle.getReadHoldCount() > 0) {
      throw new IllegalStateException("close() called from inside a store operation");
    }
    Lock lock = lifecycle.writeLock();
    lock.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      try {
        env.sync(true);
      } finally {
        Txn<ByteBuffer> txn;
        while ((txn = idleReaders.poll()) != null) {
          closeReader(txn);
        }
        env.close();
        OPEN_DIRS.remove(dir);
      }
    } catch (LmdbException e) {
      throw translate(e, "close");
    } finally {
      lock.unlock();
    }
  }

  @Override
  public String toString() {
    return "FerryStore[" + dir + "]";
  }

  // ---- transactions, for the tables and the log store ----

  /** Runs {@code body} in a read transaction (or in this thread's write transaction, if any). */
  <T> T read(Supplier<String> what, Function<Txn<ByteBuffer>, T> body) {
    Txn<ByteBuffer> joined = writeTxn.get();
    if (joined != null) {
      return joined(joined, what, body);
    }
    Lock lock = lifecycle.readLock();
    lock.lock();
    try {
      checkOpen();
      Txn<ByteBuffer> txn = borrowReader();
      try {
        return body.apply(txn);
      } finally {
        returnReader(txn);
      }
    } catch (LmdbException e) {
      throw translate(e, what.get());
    } finally {
      lock.unlock();
    }
  }

  /**
   * Runs {@code body} in a write transaction and commits it (or joins this thread's write
   * transaction). If {@code body} throws, the transaction is aborted.
   */
  <T> T write(Supplier<String> what, Function<Txn<ByteBuffer>, T> body) {
    Txn<ByteBuffer> joined = writeTxn.get();
    if (joined != null) {
      return joined(joined, what, body);
    }
    for (int grown = 0; ; ) {
      Lock lock = lifecycle.readLock();
      lock.lock();
      try {
        checkOpen();
        return writeOnce(body);
      } catch (RuntimeException e) {
        if (!mapFull(e)) {
          throw translated(e, what);
        }
        // (see "Room freed" above; once is enough: what such a commit frees is next to nothing)
        if (!lastCommitFreedRoom && reuseFreed()) {
          continue;
        }
        if (!mayGrow || grown >= MAX_GROWTHS || lifecycle.getReadHoldCount() > 1) {
          throw translated(e, what);
        }
      } finally {
        lock.unlock();
      }
      grow(what);
      grown++;
    }
  }

  private RuntimeException translated(RuntimeException e, Supplier<String> what) {
    return e instanceof LmdbException lmdb ? translate(lmdb, what.get()) : e;
  }

  /**
   * From now on a write that finds the map full grows it (by a quarter, at least 64 MiB, each time)
   * instead of failing: for a node that must store its running processes as it shuts down rather
   * than lose them. Each growth is logged.
   */
  public void growWhenFull() {
    mayGrow = true;
  }

  private void grow(Supplier<String> what) {
    Lock lock = lifecycle.writeLock(); // no transaction in progress while the map is remapped
    lock.lock();
    try {
      checkOpen();
      long from = mapNow;
      long to = from + Math.max(64L << 20, from / 4);
      env.setMapSize(to);
      mapNow = to;
      log.warn(
          "the store at {} grew from {} to {} bytes, past ferry.store.map-size ({} bytes), to {};"
              + " raise ferry.store.map-size",
          dir,
          from,
          to,
          mapSize,
          what.get());
    } catch (LmdbException e) {
      throw translate(e, "grow the map to store " + what.get());
    } finally {
      lock.unlock();
    }
  }

  private <T> T writeOnce(Function<Txn<ByteBuffer>, T> body) {
    boolean committed = false;
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      T result;
      writeTxn.set(txn);
      try {
        result = body.apply(txn);
      } finally {
        writeTxn.remove();
      }
      txn.commit();
      committed = true;
      lastCommitFreedRoom = false;
      return result;
    } finally {
      java.util.List<Runnable> undo = onAbort.get();
      if (undo != null) {
        onAbort.remove();
        if (!committed) {
          undo.forEach(Runnable::run);
        }
      }
    }
  }

  /**
   * Registers {@code undo}, to run if this thread's write transaction (which must be open) ends
   * without committing: for state kept outside LMDB that a write changes.
   */
  void onAbort(Runnable undo) {
    if (writeTxn.get() == null) {
      throw new IllegalStateException("not inside a write transaction");
    }
    java.util.List<Runnable> list = onAbort.get();
    if (list == null) {
      list = new java.util.ArrayList<>(1);
      onAbort.set(list);
    }
    list.add(undo);
  }

  private static boolean mapFull(Throwable e) {
    return e instanceof Env.MapFullException
        || (e instanceof StoreFullException && e.getCause() instanceof Env.MapFullException);
  }

  /**
   * Commits a transaction that changes nothing but is a commit, so that the pages freed by the
   * transaction before it can be reused by the next. False if even that did not fit.
   */
  private boolean reuseFreed() {
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      format.reserve(txn, Bytes.key(REUSE_KEY), 1).put(0, (byte) 0);
      format.delete(txn, Bytes.key(REUSE_KEY));
      txn.commit();
      lastCommitFreedRoom = true;
      return true;
    } catch (LmdbException e) {
      return false;
    }
  }

  /**
   * Runs a nested call in this thread's write transaction. Its failure is translated here, so the
   * batch callback it was called from never sees an lmdbjava exception; the enclosing write then
   * aborts when the exception leaves the callback.
   */
  private <T> T joined(
      Txn<ByteBuffer> txn, Supplier<String> what, Function<Txn<ByteBuffer>, T> body) {
    try {
      return body.apply(txn);
    } catch (LmdbException e) {
      throw translate(e, what.get());
    }
  }

  private Txn<ByteBuffer> borrowReader() {
    Txn<ByteBuffer> txn = idleReaders.poll();
    if (txn == null) {
      return env.txnRead();
    }
    idleCount.decrementAndGet();
    try {
      txn.renew();
      return txn;
    } catch (LmdbException e) {
      closeReader(txn);
      return env.txnRead();
    }
  }

  private void returnReader(Txn<ByteBuffer> txn) {
    try {
      if (idleCount.incrementAndGet() <= MAX_IDLE_READERS) {
        txn.reset(); // releases the snapshot, keeps the reader slot
        idleReaders.offer(txn);
        return;
      }
    } catch (LmdbException e) {
      // fall through and close it
    }
    idleCount.decrementAndGet();
    txn.close();
  }

  private static void closeReader(Txn<ByteBuffer> txn) {
    try {
      txn.renew(); // lmdbjava frees a reset transaction only from the ready state
    } catch (LmdbException e) {
      // closed below either way
    }
    txn.close();
  }

  private void checkOpen() {
    if (closed) {
      throw new StoreException("the store at " + dir + " is closed");
    }
  }

  private void checkFormat(Dbi<ByteBuffer> format) {
    try (Txn<ByteBuffer> txn = env.txnWrite()) {
      byte[] key = "format".getBytes(StandardCharsets.US_ASCII);
      ByteBuffer found = format.get(txn, Bytes.key(key));
      if (found == null) {
        format.reserve(txn, Bytes.key(key), 4).putInt(0, FORMAT);
        txn.commit();
        return;
      }
      int version = found.remaining() == 4 ? Bytes.intAt(found, 0) : -1;
      if (version == 1) {
        // Format 2 adds staged values (LmdbTable); a format-1 store is a format-2 store without
        // them. Recorded, so that a Ferry that reads only format 1 refuses it from now on.
        format.reserve(txn, Bytes.key(key), 4).putInt(0, FORMAT);
        txn.commit();
        return;
      }
      if (version != FORMAT) {
        throw new StoreException(
            "the store at "
                + dir
                + " has format "
                + version
                + "; this Ferry reads format "
                + FORMAT);
      }
    }
  }

  private StoreException translate(LmdbException e, String what) {
    return translate(e, what, dir, mapNow);
  }

  private static StoreException translate(LmdbException e, String what, Path dir, long mapSize) {
    if (e instanceof Env.MapFullException) {
      return new StoreFullException(
          "store full: "
              + what
              + " does not fit in the LMDB map of "
              + mapSize
              + " bytes at "
              + dir
              + "; increase ferry.store.map-size",
          e);
    }
    if (e instanceof Txn.TxFullException) {
      return new StoreException(
          "transaction too large: " + what + " dirties more pages than one LMDB transaction can",
          e);
    }
    if (e instanceof Env.ReadersFullException) {
      return new StoreException(
          "too many concurrent readers: " + what + " found all " + MAX_READERS + " slots taken", e);
    }
    if (e instanceof LmdbNativeException n) {
      int code = n.getResultCode();
      if (code == ENOSPC || code == EDQUOT) {
        return new StoreFullException(
            "disk full: "
                + what
                + " could not be written to "
                + dir
                + " ("
                + e.getMessage()
                + "); free disk space",
            e);
      }
      if (code == EIO) {
        // LMDB also reports a short write (a disk that filled up mid-commit) as EIO.
        return new StoreException(
            "disk error: "
                + what
                + " failed writing to "
                + dir
                + " ("
                + e.getMessage()
                + "); check that the disk has free space and is healthy",
            e);
      }
    }
    return new StoreException("store error: " + what + ": " + e.getMessage(), e);
  }

  /** The batch given to a {@link #write(Consumer)} callback; dead once the callback returns. */
  private final class Batch implements WriteBatch {
    private final Txn<ByteBuffer> txn;
    private final String[] current;
    private boolean done;

    Batch(Txn<ByteBuffer> txn, String[] current) {
      this.txn = txn;
      this.current = current;
    }

    @Override
    public void put(TableName table, String key, byte[] value) {
      put(table, key, ByteBuffer.wrap(Objects.requireNonNull(value, "value")));
    }

    @Override
    public void put(TableName table, String key, ByteBuffer value) {
      byte[] k = Bytes.utf8("key", key, Table.MAX_KEY_BYTES);
      Objects.requireNonNull(value, "value");
      check();
      current[0] = "write batch (put " + table + "/" + key + ", " + value.remaining() + " bytes)";
      LmdbTable target = tables.get(Objects.requireNonNull(table, "table"));
      joined(
          txn,
          () -> current[0],
          t -> {
            target.put(t, k, value);
            return null;
          });
    }

    @Override
    public void putStaged(StagedValue value) {
      check();
      if (!(value instanceof LmdbTable.Staged staged)
          || staged.owner() != tables.get(value.table())) {
        throw new IllegalArgumentException("not a value staged in this store: " + value);
      }
      current[0] = "write batch (publish staged " + value.table() + "/" + value.key() + ")";
      joined(
          txn,
          () -> current[0],
          t -> {
            staged.publish(t);
            return null;
          });
    }

    @Override
    public void delete(TableName table, String key) {
      byte[] k = Bytes.utf8("key", key, Table.MAX_KEY_BYTES);
      check();
      current[0] = "write batch (delete " + table + "/" + key + ")";
      LmdbTable target = tables.get(Objects.requireNonNull(table, "table"));
      joined(txn, () -> current[0], t -> target.delete(t, k));
    }

    private void check() {
      if (done) {
        throw new IllegalStateException("a WriteBatch is only valid inside its write() callback");
      }
    }
  }
}

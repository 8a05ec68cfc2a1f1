package dev.ferry.node.memory;

import com.dylibso.chicory.runtime.ChicoryInterruptedException;
import com.dylibso.chicory.runtime.ConstantEvaluators;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.runtime.WasmRuntimeException;
import com.dylibso.chicory.wasm.ChicoryException;
import com.dylibso.chicory.wasm.UninstantiableException;
import com.dylibso.chicory.wasm.types.ActiveDataSegment;
import com.dylibso.chicory.wasm.types.DataSegment;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import com.dylibso.chicory.wasm.types.PassiveDataSegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.function.LongBinaryOperator;

/**
 * A wasm linear memory for Chicory made of fixed-size Ferry pages (4 KiB by default, any power of
 * two from 4 KiB to 64 KiB, so one 64 KiB wasm page is several Ferry pages) that are materialised
 * on first access from a {@link PageSource}, and whose writes are tracked per page: a dirty bit and
 * the epoch of the last write. It is the memory a paging-file strategy (GFVM, Sprite-style
 * flushing, post-copy) needs: the guest runs on it unchanged while pages fault in lazily and a
 * flusher writes back only what changed.
 *
 * <pre>
 *   address ──┬── addr &gt;&gt;&gt; shift ──► page number ──► pages[page] ──► byte[pageSize]
 *             └── addr &amp;  mask  ──► offset in the page (little-endian VarHandle access)
 *
 *   page states
 *     absent ──first read or write: source.load(page)───────────────► resident, clean
 *     absent ──write covering the whole page (source not asked)─────► resident, dirty
 *     absent ──zero(), unless the source is PageSource.ZEROS────────► absent, zeroed, dirty
 *     absent, zeroed ──first read or write (source not asked)───────► resident
 *     resident, clean ──any write (every width, bulk, fill, copy
 *                       destination, data segment, atomic)──────────► resident, dirty
 *     resident, dirty ──clearDirty(page) (the flusher)──────────────► resident, clean
 *     any ──installPage(page, bytes)────────────────────────────────► resident, dirty bit as is
 * </pre>
 *
 * Semantics follow Chicory's {@code ByteArrayMemory}: the same bounds checks and exception types
 * ({@link WasmRuntimeException} "out of bounds memory access…", {@link UninstantiableException} for
 * a data segment outside memory), {@link #grow} returns -1 past the maximum, writes are
 * all-or-nothing, {@link #copy} handles overlap both ways. Pages grown by {@link #grow} are absent
 * like any other: the source is asked for them too, so a source must answer null for pages it has
 * nothing for.
 *
 * <p><b>Threads.</b> One thread at a time mutates the memory: the guest's thread, which also runs
 * {@link #installPage}, {@link #grow}, page faults and the host's WASI calls (hand-over to another
 * thread must be ordered, e.g. by {@link Thread#start}). Any number of other threads — a flusher —
 * may concurrently call {@link #pageCount}, {@link #isResident}, {@link #isDirty}, {@link
 * #dirtyPages}, {@link #dirtyCount}, {@link #clearDirty}, {@link #clearAll}, {@link #copyPage},
 * {@link #lastWrite}, {@link #epoch}, {@link #tick} and the counters. The write-back protocol:
 *
 * <pre>
 *   guest thread                          flusher thread
 *   store the bytes into the page         if (clearDirty(p)) {        // atomic and-not
 *   dirty[p / 64] |= bit  (release)         byte[] b = copyPage(p);   // acquire, then copy
 *   lastWrite[p] = epoch  (opaque)          write b back
 *                                         }
 * </pre>
 *
 * The flusher must clear the bit <em>before</em> copying. A write whose bit-set the clear observed
 * happened before the copy, so the copy contains it; a write racing with the copy sets the bit
 * again after the clear, so the page is flushed again later. A copy may therefore hold a torn mix
 * of old and new bytes, but never as the last word: a page is never reported clean while holding
 * bytes no copy has seen. The guest sets its bit with a plain read and a release store (no atomic
 * instruction on the hot path); that store can put back a bit the flusher cleared in the same word
 * an instant before, so a page may occasionally be reported dirty when it is not (one needless
 * write-back), never the reverse.
 *
 * <p>Not guaranteed: a guest with several threads mutating one shared memory (wasm threads) is not
 * supported, though atomics and wait/notify behave correctly for one guest thread; a misaligned
 * atomic access (which Chicory's engines trap before it reaches the memory) throws {@link
 * IllegalStateException} here. Memory is never shrunk and pages are never evicted.
 */
public final class PagedMemory implements Memory {
  /** The default Ferry page size: 4 KiB, the page size of the hosts' MMUs and of CRIU. */
  public static final int DEFAULT_PAGE_SIZE = 4096;

  public static final int MIN_PAGE_SIZE = 4096;
  public static final int MAX_PAGE_SIZE = PAGE_SIZE;

  private static final VarHandle BYTE = MethodHandles.arrayElementVarHandle(byte[].class);
  private static final VarHandle SHORT =
      MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle INT =
      MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle LONG =
      MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle PAGE_REF = MethodHandles.arrayElementVarHandle(byte[][].class);
  private static final VarHandle WORD = MethodHandles.arrayElementVarHandle(long[].class);
  private static final VarHandle EPOCH;

  static {
    try {
      EPOCH = MethodHandles.lookup().findVarHandle(PagedMemory.class, "epoch", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private static final LongBinaryOperator ADD = (a, b) -> a + b;
  private static final LongBinaryOperator AND = (a, b) -> a & b;
  private static final LongBinaryOperator OR = (a, b) -> a | b;
  private static final LongBinaryOperator XOR = (a, b) -> a ^ b;
  private static final LongBinaryOperator XCHG = (a, b) -> b;

  /**
   * The per-page arrays as one consistent snapshot for other threads. The guest replaces them
   * (bigger) when memory grows past their capacity; a reader holding an older snapshot sees every
   * page that existed then, and a newer snapshot holds every page reference of an older one.
   */
  private record Tables(byte[][] pages, long[] dirty, long[] lastWrite) {}

  private final MemoryLimits limits;
  private final PageSource source;
  private final boolean sourceHoldsContent;
  private final int pageSize;
  private final int shift;
  private final int mask;
  private final int pagesPerWasmPage;
  private final int maxPages;

  // The guest thread's own references to the current tables: read on every access, so plain
  // fields. Capacity may exceed pageCount(); slots past it stay null, so a non-null page is
  // always inside memory.
  private byte[][] pages;
  private long[] dirty;
  private long[] lastWrite;

  /** Absent pages that {@link #zero()} made zeros: the source is not asked for them. Guest only. */
  private long[] zeroed;

  /** The same tables, published for other threads (always written before {@link #wasmPages}). */
  private volatile Tables tables;

  private volatile int wasmPages;

  /** Accessed through {@link #EPOCH}: opaque on the write path, so it is never hoisted. */
  @SuppressWarnings("unused")
  private long epoch = 1;

  private final AtomicInteger resident = new AtomicInteger();
  private final AtomicLong faults = new AtomicLong();
  private final AtomicLong cleared = new AtomicLong();
  private final AtomicLong zeroFills = new AtomicLong();
  private final Object atomicLock = new Object();
  private final Map<Integer, WaitState> waitStates;
  private DataSegment[] dataSegments;

  /** A memory of 4 KiB pages that all start as zeros. */
  public PagedMemory(MemoryLimits limits) {
    this(limits, DEFAULT_PAGE_SIZE, PageSource.zeros());
  }

  /**
   * @param pageSize a power of two from {@link #MIN_PAGE_SIZE} to {@link #MAX_PAGE_SIZE}
   * @param source asked for each page's content on its first access
   */
  public PagedMemory(MemoryLimits limits, int pageSize, PageSource source) {
    this(limits, pageSize, source, false);
  }

  /**
   * @param sourceHoldsContent true when {@code source} already holds the memory's whole current
   *     content (a paging file being restored): {@link #zero()} and the module's active data
   *     segments, which Chicory applies on every instantiation, then change nothing, and every page
   *     is read from the source on first access
   */
  public PagedMemory(
      MemoryLimits limits, int pageSize, PageSource source, boolean sourceHoldsContent) {
    checkPageSize(pageSize);
    this.sourceHoldsContent = sourceHoldsContent;
    this.limits = Objects.requireNonNull(limits, "limits");
    this.source = Objects.requireNonNull(source, "source");
    this.pageSize = pageSize;
    this.shift = Integer.numberOfTrailingZeros(pageSize);
    this.mask = pageSize - 1;
    this.pagesPerWasmPage = PAGE_SIZE / pageSize;
    this.maxPages = maximumPages() * pagesPerWasmPage;
    int initial = limits.initialPages();
    if (initial > maximumPages()) {
      throw new IllegalArgumentException(
          "initial pages " + initial + " exceed the maximum " + maximumPages());
    }
    int capacity = initial * pagesPerWasmPage;
    this.pages = new byte[capacity][];
    this.dirty = new long[words(capacity)];
    this.lastWrite = new long[capacity];
    this.zeroed = new long[words(capacity)];
    this.tables = new Tables(pages, dirty, lastWrite);
    this.wasmPages = initial;
    this.waitStates = limits.shared() ? new ConcurrentHashMap<>() : null;
  }

  /**
   * For {@code Instance.builder(module).withMemoryFactory(...)}: each instance gets its own memory
   * of {@code pageSize} pages filled from {@code source}. The created memory is {@code
   * instance.memory()}, to be cast back to {@code PagedMemory}.
   */
  public static Function<MemoryLimits, Memory> factory(int pageSize, PageSource source) {
    checkPageSize(pageSize);
    Objects.requireNonNull(source, "source");
    return limits -> new PagedMemory(limits, pageSize, source);
  }

  /**
   * For restoring a process whose memory is wholly in {@code source} (its paging file): the
   * instance's memory starts with no page resident and nothing dirty, and Chicory's zeroing and
   * data segments are skipped (see {@link #PagedMemory(MemoryLimits, int, PageSource, boolean)}).
   */
  public static Function<MemoryLimits, Memory> restoreFactory(int pageSize, PageSource source) {
    checkPageSize(pageSize);
    Objects.requireNonNull(source, "source");
    return limits -> new PagedMemory(limits, pageSize, source, true);
  }

  /** {@link #factory(int, PageSource)} with 4 KiB pages that start as zeros. */
  public static Function<MemoryLimits, Memory> factory() {
    return factory(DEFAULT_PAGE_SIZE, PageSource.zeros());
  }

  private static void checkPageSize(int pageSize) {
    if (pageSize < MIN_PAGE_SIZE || pageSize > MAX_PAGE_SIZE || Integer.bitCount(pageSize) != 1) {
      throw new IllegalArgumentException(
          "page size must be a power of two from 4096 to 65536, not " + pageSize);
    }
  }

  private static int words(int pageCount) {
    return (pageCount + 63) >>> 6;
  }

  // ---------------------------------------------------------------------------------------------
  // Paging: sizes, residency, dirty pages (any thread unless said otherwise)

  /** Bytes per Ferry page. */
  public int pageSize() {
    return pageSize;
  }

  /** The current size in Ferry pages ({@link #pages()} is in 64 KiB wasm pages). */
  public int pageCount() {
    return wasmPages * pagesPerWasmPage;
  }

  /** Pages materialised so far: loaded, zero-filled, wholly overwritten or installed. */
  public int residentPages() {
    return resident.get();
  }

  /** How many times the {@link PageSource} was asked for a page (at most once per page). */
  public long faults() {
    return faults.get();
  }

  /** Of {@link #faults()}, those where the source had nothing (null): the page started as zeros. */
  public long zeroFills() {
    return zeroFills.get();
  }

  public boolean isResident(int page) {
    Objects.checkIndex(page, pageCount());
    return PAGE_REF.getAcquire(tables.pages(), page) != null;
  }

  public boolean isDirty(int page) {
    Objects.checkIndex(page, pageCount());
    long w = (long) WORD.getAcquire(tables.dirty(), page >>> 6);
    return (w & (1L << page)) != 0;
  }

  /** How many pages are dirty now (a moment later the guest may have dirtied more). */
  public int dirtyCount() {
    int n = pageCount();
    long[] d = tables.dirty();
    int count = 0;
    for (int w = 0; w < words(n); w++) {
      count += Long.bitCount((long) WORD.getAcquire(d, w));
    }
    return count;
  }

  /** The dirty pages, in increasing order, as of the scan (not a snapshot of one instant). */
  public int[] dirtyPages() {
    int n = pageCount();
    long[] d = tables.dirty();
    int[] out = new int[16];
    int count = 0;
    for (int w = 0; w < words(n); w++) {
      long bits = (long) WORD.getAcquire(d, w);
      while (bits != 0) {
        if (count == out.length) {
          out = Arrays.copyOf(out, count * 2);
        }
        out[count++] = (w << 6) + Long.numberOfTrailingZeros(bits);
        bits &= bits - 1;
      }
    }
    return Arrays.copyOf(out, count);
  }

  /**
   * Marks {@code page} clean and says whether it was dirty. Atomic, with a full fence: a flusher
   * calls it <em>before</em> {@link #copyPage} (see the class comment).
   */
  public boolean clearDirty(int page) {
    Objects.checkIndex(page, pageCount());
    long bit = 1L << page;
    long old = (long) WORD.getAndBitwiseAnd(tables.dirty(), page >>> 6, ~bit);
    boolean was = (old & bit) != 0;
    if (was) {
      cleared.incrementAndGet(); // before the caller copies the page: see restoreClean
    }
    return was;
  }

  /** How many times a dirty bit has been cleared ({@link #clearDirty}, {@link #clearAll}). */
  public long clearedCount() {
    return cleared.get();
  }

  /** The dirty bits of pages {@code from} (inclusive) to {@code to} (exclusive), bit 0 = from. */
  public java.util.BitSet dirtyBits(int from, int to) {
    java.util.BitSet b = new java.util.BitSet(Math.max(0, to - from));
    for (int page = from; page < to; page++) {
      if (isDirty(page)) {
        b.set(page - from);
      }
    }
    return b;
  }

  /**
   * Guest thread only: marks clean again the pages {@code from} to {@code to} not set in {@code
   * wasDirty} ({@link #dirtyBits} taken earlier from page {@code base}), for a caller that has put
   * back exactly the bytes they held then; does nothing if any dirty bit was cleared since {@code
   * clearedBefore} ({@link #clearedCount} taken with it), since a flusher may then have written out
   * the bytes in between. A flusher that cleared a bit just before this check but counted it after
   * has not copied the page yet, so its copy holds the bytes put back. Returns whether it marked
   * them.
   */
  public boolean restoreClean(
      int base, int from, int to, java.util.BitSet wasDirty, long clearedBefore) {
    if (cleared.get() != clearedBefore) {
      return false;
    }
    long[] d = dirty;
    for (int page = from; page < to && page < pageCount(); page++) {
      if (!wasDirty.get(page - base)) {
        WORD.getAndBitwiseAnd(d, page >>> 6, ~(1L << page));
      }
    }
    return true;
  }

  /** Marks every page clean, word by word (each word atomically). */
  public void clearAll() {
    int n = pageCount();
    long[] d = tables.dirty();
    cleared.incrementAndGet();
    for (int w = 0; w < words(n); w++) {
      WORD.getAndSet(d, w, 0L);
    }
  }

  /**
   * A copy of page {@code page}'s bytes. Never faults: a page that is not resident copies as all
   * zeros whatever the {@link PageSource} holds for it. That is its true content when it is dirty
   * (a dirty page is resident, or absent after {@link #zero()}); an absent clean page was never
   * touched here and its content is the source's. Safe from any thread; racing with the guest's
   * writes the copy may be torn, which the dirty protocol covers.
   */
  public byte[] copyPage(int page) {
    Objects.checkIndex(page, pageCount());
    byte[] p = (byte[]) PAGE_REF.getAcquire(tables.pages(), page);
    return p == null ? new byte[pageSize] : p.clone();
  }

  /**
   * {@link #copyPage(int)} into {@code dst} at {@code offset}; returns false (and writes zeros) if
   * the page is not resident.
   */
  public boolean copyPage(int page, byte[] dst, int offset) {
    Objects.checkIndex(page, pageCount());
    byte[] p = (byte[]) PAGE_REF.getAcquire(tables.pages(), page);
    if (p == null) {
      Arrays.fill(dst, offset, offset + pageSize, (byte) 0);
      return false;
    }
    System.arraycopy(p, 0, dst, offset, pageSize);
    return true;
  }

  /**
   * Places {@code bytes} (exactly one page, copied) as page {@code page}, resident from now on,
   * without asking the source, counting a fault, or changing its dirty bit or last-write epoch: for
   * restoring a page whose content is already safe elsewhere. Guest thread only (or before the
   * guest runs). Note that {@code Instance.build()} writes the module's data segments through
   * {@link #initialize}, which dirties their pages like any write; a restorer that installs pages
   * afterwards may want {@link #clearAll()}.
   */
  public void installPage(int page, byte[] bytes) {
    Objects.checkIndex(page, pageCount());
    if (bytes.length != pageSize) {
      throw new IllegalArgumentException("a page is " + pageSize + " bytes, not " + bytes.length);
    }
    byte[] copy = bytes.clone();
    boolean wasResident = pages[page] != null;
    PAGE_REF.setRelease(pages, page, copy);
    if (!wasResident) {
      resident.incrementAndGet();
    }
  }

  /**
   * The {@link #epoch()} the guest saw at its last write to {@code page}, or 0 if it never wrote
   * it. The guest reads the epoch without synchronisation, so just after a {@link #tick()} a write
   * may still record the previous epoch.
   */
  public long lastWrite(int page) {
    Objects.checkIndex(page, pageCount());
    return (long) WORD.getOpaque(tables.lastWrite(), page);
  }

  /** The current write epoch; starts at 1. */
  public long epoch() {
    return (long) EPOCH.getVolatile(this);
  }

  /**
   * Starts a new write epoch and returns it. A flusher that ticks on each pass finds pages that
   * have "gone quiet" as those whose {@link #lastWrite} is older than a few epochs.
   */
  public long tick() {
    return (long) EPOCH.getAndAdd(this, 1L) + 1;
  }

  // ---------------------------------------------------------------------------------------------
  // Guest-thread internals: bounds, faults, marking

  private int sizeInBytes() {
    return wasmPages * PAGE_SIZE;
  }

  /** Records a write to {@code page}: its dirty bit (release, after the data) and the epoch. */
  private void touched(int page) {
    long[] d = dirty;
    int w = page >>> 6;
    WORD.setRelease(d, w, d[w] | (1L << page));
    WORD.setOpaque(lastWrite, page, (long) EPOCH.getOpaque(this));
  }

  /** The page, faulting it in if absent. The caller has checked that it lies inside memory. */
  private byte[] residentPage(int page) {
    byte[] p = pages[page];
    return p != null ? p : fault(page);
  }

  private byte[] fault(int page) {
    if ((zeroed[page >>> 6] & (1L << page)) != 0) {
      byte[] p = new byte[pageSize];
      PAGE_REF.setRelease(pages, page, p);
      resident.incrementAndGet();
      return p;
    }
    byte[] loaded = source.load(page);
    faults.incrementAndGet();
    byte[] p;
    if (loaded == null) {
      zeroFills.incrementAndGet();
      p = new byte[pageSize];
    } else if (loaded.length != pageSize) {
      throw new IllegalStateException(
          "page source returned "
              + loaded.length
              + " bytes for page "
              + page
              + ", not "
              + pageSize);
    } else {
      p = loaded.clone();
    }
    PAGE_REF.setRelease(pages, page, p);
    resident.incrementAndGet();
    return p;
  }

  /**
   * The page a write of {@code len} bytes at {@code offset} lands in: when it covers the whole of
   * an absent page, the old content does not matter and the source is not asked.
   */
  private byte[] pageForWrite(int page, int offset, int len) {
    byte[] p = pages[page];
    if (p != null) {
      return p;
    }
    if (offset == 0 && len == pageSize) {
      p = new byte[pageSize];
      PAGE_REF.setRelease(pages, page, p);
      resident.incrementAndGet();
      return p;
    }
    return fault(page);
  }

  /** Bounds of a single access of {@code width} bytes, as the slow paths check them. */
  private void checkAccess(int addr, int width) {
    if (addr < 0 || (long) addr + width > sizeInBytes()) {
      throw new WasmRuntimeException(outOfBounds(addr, sizeInBytes(), width));
    }
  }

  /** ByteArrayMemory's check of a range (an empty range may end exactly at the limit). */
  private static void checkBounds(
      int addr, int size, int limit, Function<String, ChicoryException> exception) {
    if (addr < 0 || size < 0 || addr > limit || (size > 0 && (long) addr + size > limit)) {
      throw exception.apply(outOfBounds(addr, limit, size));
    }
  }

  private static String outOfBounds(int addr, int limit, int size) {
    return "out of bounds memory access: attempted to access address: "
        + addr
        + " but limit is: "
        + limit
        + " and size: "
        + size;
  }

  private void ensureCapacity(int pageCount) {
    if (pageCount <= pages.length) {
      return;
    }
    int capacity = Math.max(pageCount, (int) Math.min(maxPages, 2L * pages.length));
    byte[][] p = Arrays.copyOf(pages, capacity);
    long[] d = Arrays.copyOf(dirty, words(capacity));
    long[] l = Arrays.copyOf(lastWrite, capacity);
    zeroed = Arrays.copyOf(zeroed, words(capacity));
    pages = p;
    dirty = d;
    lastWrite = l;
    tables = new Tables(p, d, l);
  }

  /** Slow read: straddles two pages, touches an absent page, or is out of bounds. */
  private long readSlow(int addr, int width) {
    checkAccess(addr, width);
    long v = 0;
    for (int i = 0; i < width; i++) {
      int a = addr + i;
      v |= (residentPage(a >>> shift)[a & mask] & 0xFFL) << (8 * i);
    }
    return v;
  }

  /** Slow write, all or nothing: checks the whole access before the first byte. */
  private void writeSlow(int addr, int width, long value) {
    checkAccess(addr, width);
    for (int i = 0; i < width; i++) {
      int a = addr + i;
      int page = a >>> shift;
      residentPage(page)[a & mask] = (byte) (value >>> (8 * i));
      touched(page);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Memory: size

  @Override
  public int pages() {
    return wasmPages;
  }

  @Override
  public synchronized int grow(int size) {
    int prev = wasmPages;
    int next = prev + size;
    if (next > maximumPages() || next < prev) {
      return -1;
    }
    ensureCapacity(next * pagesPerWasmPage);
    wasmPages = next;
    return prev;
  }

  @Override
  public int initialPages() {
    return limits.initialPages();
  }

  @Override
  public int maximumPages() {
    return Math.min(limits.maximumPages(), RUNTIME_MAX_PAGES);
  }

  @Override
  public boolean shared() {
    return limits.shared();
  }

  // ---------------------------------------------------------------------------------------------
  // Memory: data segments

  @Override
  public void initialize(Instance instance, DataSegment[] dataSegments) {
    initialize(instance, dataSegments, 0);
  }

  @Override
  public void initialize(Instance instance, DataSegment[] dataSegments, int memoryIndex) {
    this.dataSegments = dataSegments;
    if (dataSegments == null || sourceHoldsContent) {
      return;
    }
    for (DataSegment s : dataSegments) {
      if (s instanceof ActiveDataSegment) {
        ActiveDataSegment segment = (ActiveDataSegment) s;
        if (segment.index() != memoryIndex) {
          continue;
        }
        byte[] data = segment.data();
        int offset =
            (int)
                ConstantEvaluators.computeConstantValue(instance, segment.offsetInstructions())[0];
        checkBounds(offset, data.length, sizeInBytes(), UninstantiableException::new);
        write(offset, data, 0, data.length);
      } else if (!(s instanceof PassiveDataSegment)) {
        throw new ChicoryException("Data segment should be active or passive: " + s);
      }
    }
  }

  @Override
  public void initPassiveSegment(int segmentId, int dest, int offset, int size) {
    write(dest, dataSegments[segmentId].data(), offset, size);
  }

  @Override
  public void drop(int segment) {
    dataSegments[segment] = PassiveDataSegment.EMPTY;
  }

  // ---------------------------------------------------------------------------------------------
  // Memory: bulk access

  @Override
  public void write(int addr, byte[] data, int offset, int size) {
    checkBounds(offset, size, data.length, WasmRuntimeException::new);
    checkBounds(addr, size, sizeInBytes(), WasmRuntimeException::new);
    while (size > 0) {
      int page = addr >>> shift;
      int off = addr & mask;
      int chunk = Math.min(size, pageSize - off);
      System.arraycopy(data, offset, pageForWrite(page, off, chunk), off, chunk);
      touched(page);
      addr += chunk;
      offset += chunk;
      size -= chunk;
    }
  }

  @Override
  public byte[] readBytes(int addr, int len) {
    checkBounds(addr, len, sizeInBytes(), WasmRuntimeException::new);
    byte[] result = new byte[len];
    int done = 0;
    while (done < len) {
      int a = addr + done;
      int off = a & mask;
      int chunk = Math.min(len - done, pageSize - off);
      System.arraycopy(residentPage(a >>> shift), off, result, done, chunk);
      done += chunk;
    }
    return result;
  }

  /**
   * Makes every byte zero without materialising absent pages: Chicory calls this on every memory
   * when it instantiates a module, and a fresh memory must stay lazy. An absent page is already
   * zeros if the source is {@link PageSource#ZEROS} and is left as it is; otherwise it is recorded
   * as zeroed (the source will not be asked for it) and marked dirty, still absent.
   */
  @Override
  public void zero() {
    if (sourceHoldsContent) {
      return; // the source's pages are the content; nothing to clear
    }
    int n = pageCount();
    for (int page = 0; page < n; page++) {
      byte[] p = pages[page];
      if (p != null) {
        Arrays.fill(p, (byte) 0);
        touched(page);
      } else if (source != PageSource.ZEROS) {
        zeroed[page >>> 6] |= 1L << page;
        touched(page);
      }
    }
  }

  @Override
  public void fill(byte value, int fromIndex, int toIndex) {
    int addr = fromIndex;
    int remaining = toIndex - fromIndex;
    checkBounds(addr, remaining, sizeInBytes(), WasmRuntimeException::new);
    while (remaining > 0) {
      int page = addr >>> shift;
      int off = addr & mask;
      int chunk = Math.min(remaining, pageSize - off);
      byte[] p = pageForWrite(page, off, chunk);
      Arrays.fill(p, off, off + chunk, value);
      touched(page);
      addr += chunk;
      remaining -= chunk;
    }
  }

  @Override
  public void copy(int dest, int src, int size) {
    int limit = sizeInBytes();
    checkBounds(dest, size, limit, WasmRuntimeException::new);
    checkBounds(src, size, limit, WasmRuntimeException::new);
    if (dest > src && dest < src + size) {
      copyBackward(dest, src, size);
    } else {
      copyForward(dest, src, size);
    }
  }

  private void copyForward(int dest, int src, int size) {
    while (size > 0) {
      int destOff = dest & mask;
      int srcOff = src & mask;
      int chunk = Math.min(size, pageSize - Math.max(destOff, srcOff));
      byte[] from = residentPage(src >>> shift);
      int page = dest >>> shift;
      System.arraycopy(from, srcOff, pageForWrite(page, destOff, chunk), destOff, chunk);
      touched(page);
      dest += chunk;
      src += chunk;
      size -= chunk;
    }
  }

  /** For dest inside (src, src + size): copies from the end so no source byte is overwritten. */
  private void copyBackward(int dest, int src, int size) {
    int destEnd = dest + size;
    int srcEnd = src + size;
    while (size > 0) {
      int destRoom = destEnd & mask;
      int srcRoom = srcEnd & mask;
      int chunk =
          Math.min(
              size,
              Math.min(destRoom == 0 ? pageSize : destRoom, srcRoom == 0 ? pageSize : srcRoom));
      destEnd -= chunk;
      srcEnd -= chunk;
      byte[] from = residentPage(srcEnd >>> shift);
      int page = destEnd >>> shift;
      int destOff = destEnd & mask;
      System.arraycopy(from, srcEnd & mask, pageForWrite(page, destOff, chunk), destOff, chunk);
      touched(page);
      size -= chunk;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Memory: single values. The fast path is an access within one resident page: a shift, a mask,
  // an array load and a VarHandle access (plus, for writes, the dirty bit and epoch). Everything
  // else — straddling two pages, an absent page, out of bounds — takes readSlow / writeSlow.

  /**
   * The resident page holding the {@code width} bytes at {@code addr}, if they lie within one page
   * and it is resident; otherwise null, and the caller takes its slow path.
   */
  private byte[] fast(int addr, int width) {
    byte[][] pg = pages;
    int page = addr >>> shift;
    return (addr & mask) + width <= pageSize && page < pg.length ? pg[page] : null;
  }

  @Override
  public byte read(int addr) {
    byte[] p = fast(addr, 1);
    return p != null ? p[addr & mask] : (byte) readSlow(addr, 1);
  }

  @Override
  public void writeByte(int addr, byte data) {
    byte[] p = fast(addr, 1);
    if (p != null) {
      p[addr & mask] = data;
      touched(addr >>> shift);
    } else {
      writeSlow(addr, 1, data);
    }
  }

  @Override
  public short readShort(int addr) {
    byte[] p = fast(addr, 2);
    return p != null ? (short) SHORT.get(p, addr & mask) : (short) readSlow(addr, 2);
  }

  @Override
  public long readU16(int addr) {
    return readShort(addr) & 0xFFFFL;
  }

  @Override
  public void writeShort(int addr, short data) {
    byte[] p = fast(addr, 2);
    if (p != null) {
      SHORT.set(p, addr & mask, data);
      touched(addr >>> shift);
    } else {
      writeSlow(addr, 2, data);
    }
  }

  @Override
  public int readInt(int addr) {
    byte[] p = fast(addr, 4);
    return p != null ? (int) INT.get(p, addr & mask) : (int) readSlow(addr, 4);
  }

  @Override
  public void writeI32(int addr, int data) {
    byte[] p = fast(addr, 4);
    if (p != null) {
      INT.set(p, addr & mask, data);
      touched(addr >>> shift);
    } else {
      writeSlow(addr, 4, data);
    }
  }

  @Override
  public long readLong(int addr) {
    byte[] p = fast(addr, 8);
    return p != null ? (long) LONG.get(p, addr & mask) : readSlow(addr, 8);
  }

  @Override
  public void writeLong(int addr, long data) {
    byte[] p = fast(addr, 8);
    if (p != null) {
      LONG.set(p, addr & mask, data);
      touched(addr >>> shift);
    } else {
      writeSlow(addr, 8, data);
    }
  }

  // Floats go through their raw bits, so NaN payloads survive exactly.

  @Override
  public void writeF32(int addr, float data) {
    writeI32(addr, Float.floatToRawIntBits(data));
  }

  @Override
  public long readF32(int addr) {
    return readInt(addr);
  }

  @Override
  public float readFloat(int addr) {
    return Float.intBitsToFloat(readInt(addr));
  }

  @Override
  public void writeF64(int addr, double data) {
    writeLong(addr, Double.doubleToRawLongBits(data));
  }

  @Override
  public double readDouble(int addr) {
    return Double.longBitsToDouble(readLong(addr));
  }

  @Override
  public long readF64(int addr) {
    return readLong(addr);
  }

  // ---------------------------------------------------------------------------------------------
  // Memory: atomics. Chicory's engines check alignment before calling, so an atomic access never
  // straddles a page. Read-modify-writes are serialised on one lock: atomic among themselves, which
  // is all one guest thread (or a future multi-threaded one) can observe of them.

  /** The resident page of an aligned atomic access, after the bounds and alignment checks. */
  private byte[] atomicPage(int addr, int width) {
    checkAccess(addr, width);
    if ((addr & (width - 1)) != 0) {
      throw new IllegalStateException(
          "misaligned atomic access of " + width + " bytes at address " + addr);
    }
    return residentPage(addr >>> shift);
  }

  private static long getVolatile(byte[] p, int off, int width) {
    switch (width) {
      case 1:
        return (byte) BYTE.getVolatile(p, off);
      case 2:
        return (short) SHORT.getVolatile(p, off);
      case 4:
        return (int) INT.getVolatile(p, off);
      default:
        return (long) LONG.getVolatile(p, off);
    }
  }

  private static void setVolatile(byte[] p, int off, int width, long v) {
    switch (width) {
      case 1:
        BYTE.setVolatile(p, off, (byte) v);
        break;
      case 2:
        SHORT.setVolatile(p, off, (short) v);
        break;
      case 4:
        INT.setVolatile(p, off, (int) v);
        break;
      default:
        LONG.setVolatile(p, off, v);
        break;
    }
  }

  private long atomicRead(int addr, int width) {
    return getVolatile(atomicPage(addr, width), addr & mask, width);
  }

  private void atomicWrite(int addr, int width, long value) {
    byte[] p = atomicPage(addr, width);
    setVolatile(p, addr & mask, width, value);
    touched(addr >>> shift);
  }

  /** Applies {@code op(old, operand)} atomically and returns the old value (sign-extended). */
  private long rmw(int addr, int width, LongBinaryOperator op, long operand) {
    synchronized (atomicLock) {
      byte[] p = atomicPage(addr, width);
      int off = addr & mask;
      long old = getVolatile(p, off, width);
      setVolatile(p, off, width, op.applyAsLong(old, operand));
      touched(addr >>> shift);
      return old;
    }
  }

  /** Compare-and-exchange; expected and the old value compare in {@code width} bytes. */
  private long cmpxchg(int addr, int width, long expected, long replacement) {
    synchronized (atomicLock) {
      byte[] p = atomicPage(addr, width);
      int off = addr & mask;
      long old = getVolatile(p, off, width);
      if (old == expected) {
        setVolatile(p, off, width, replacement);
        touched(addr >>> shift);
      }
      return old;
    }
  }

  @Override
  public void atomicFence() {
    VarHandle.fullFence();
  }

  @Override
  public byte atomicReadByte(int addr) {
    return (byte) atomicRead(addr, 1);
  }

  @Override
  public short atomicReadShort(int addr) {
    return (short) atomicRead(addr, 2);
  }

  @Override
  public int atomicReadInt(int addr) {
    return (int) atomicRead(addr, 4);
  }

  @Override
  public long atomicReadLong(int addr) {
    return atomicRead(addr, 8);
  }

  @Override
  public void atomicWriteByte(int addr, byte value) {
    atomicWrite(addr, 1, value);
  }

  @Override
  public void atomicWriteShort(int addr, short value) {
    atomicWrite(addr, 2, value);
  }

  @Override
  public void atomicWriteInt(int addr, int value) {
    atomicWrite(addr, 4, value);
  }

  @Override
  public void atomicWriteLong(int addr, long value) {
    atomicWrite(addr, 8, value);
  }

  @Override
  public byte atomicAddByte(int addr, byte delta) {
    return (byte) rmw(addr, 1, ADD, delta);
  }

  @Override
  public short atomicAddShort(int addr, short delta) {
    return (short) rmw(addr, 2, ADD, delta);
  }

  @Override
  public int atomicAddInt(int addr, int delta) {
    return (int) rmw(addr, 4, ADD, delta);
  }

  @Override
  public long atomicAddLong(int addr, long delta) {
    return rmw(addr, 8, ADD, delta);
  }

  @Override
  public byte atomicAndByte(int addr, byte bits) {
    return (byte) rmw(addr, 1, AND, bits);
  }

  @Override
  public short atomicAndShort(int addr, short bits) {
    return (short) rmw(addr, 2, AND, bits);
  }

  @Override
  public int atomicAndInt(int addr, int bits) {
    return (int) rmw(addr, 4, AND, bits);
  }

  @Override
  public long atomicAndLong(int addr, long bits) {
    return rmw(addr, 8, AND, bits);
  }

  @Override
  public byte atomicOrByte(int addr, byte bits) {
    return (byte) rmw(addr, 1, OR, bits);
  }

  @Override
  public short atomicOrShort(int addr, short bits) {
    return (short) rmw(addr, 2, OR, bits);
  }

  @Override
  public int atomicOrInt(int addr, int bits) {
    return (int) rmw(addr, 4, OR, bits);
  }

  @Override
  public long atomicOrLong(int addr, long bits) {
    return rmw(addr, 8, OR, bits);
  }

  @Override
  public byte atomicXorByte(int addr, byte bits) {
    return (byte) rmw(addr, 1, XOR, bits);
  }

  @Override
  public short atomicXorShort(int addr, short bits) {
    return (short) rmw(addr, 2, XOR, bits);
  }

  @Override
  public int atomicXorInt(int addr, int bits) {
    return (int) rmw(addr, 4, XOR, bits);
  }

  @Override
  public long atomicXorLong(int addr, long bits) {
    return rmw(addr, 8, XOR, bits);
  }

  @Override
  public byte atomicXchgByte(int addr, byte value) {
    return (byte) rmw(addr, 1, XCHG, value);
  }

  @Override
  public short atomicXchgShort(int addr, short value) {
    return (short) rmw(addr, 2, XCHG, value);
  }

  @Override
  public int atomicXchgInt(int addr, int value) {
    return (int) rmw(addr, 4, XCHG, value);
  }

  @Override
  public long atomicXchgLong(int addr, long value) {
    return rmw(addr, 8, XCHG, value);
  }

  @Override
  public byte atomicCmpxchgByte(int addr, byte expected, byte replacement) {
    return (byte) cmpxchg(addr, 1, expected, replacement);
  }

  @Override
  public short atomicCmpxchgShort(int addr, short expected, short replacement) {
    return (short) cmpxchg(addr, 2, expected, replacement);
  }

  @Override
  public int atomicCmpxchgInt(int addr, int expected, int replacement) {
    return (int) cmpxchg(addr, 4, expected, replacement);
  }

  @Override
  public long atomicCmpxchgLong(int addr, long expected, long replacement) {
    return cmpxchg(addr, 8, expected, replacement);
  }

  // ---------------------------------------------------------------------------------------------
  // Memory: wait / notify, as Chicory's ByteArrayMemory does them (shared memories only). With one
  // guest thread a wait whose value matches can only time out (or block for ever if untimed).

  /** Waiters on one address; guarded by itself. 0 &lt;= pendingWakeups &lt;= waiters. */
  private static final class WaitState {
    int waiters;
    int pendingWakeups;
  }

  // lock, waitOn and notify are deprecated for removal in Chicory but still abstract: implemented
  // as ByteArrayMemory does, reached through the atomicWait / atomicNotify defaults.

  @Override
  @Deprecated
  @SuppressWarnings("removal")
  public Object lock(int address) {
    throw new UnsupportedOperationException();
  }

  @Override
  @SuppressWarnings("removal")
  public int waitOn(int address, int expected, long timeout) {
    return waitOn(address, () -> atomicReadInt(address) == expected, timeout);
  }

  @Override
  @SuppressWarnings("removal")
  public int waitOn(int address, long expected, long timeout) {
    return waitOn(address, () -> atomicReadLong(address) == expected, timeout);
  }

  /** 0 woken, 1 value not as expected, 2 timed out (timeout in nanoseconds, negative: none). */
  private int waitOn(int address, BooleanSupplier condition, long timeout) {
    if (!shared()) {
      throw new ChicoryException("Attempt to wait on a non-shared memory, not supported.");
    }
    long deadline = timeout < 0 ? Long.MAX_VALUE : System.nanoTime() + timeout;
    WaitState state = waitStates.computeIfAbsent(address, k -> new WaitState());
    synchronized (state) {
      if (!condition.getAsBoolean()) {
        return 1;
      }
      state.waiters++;
      try {
        while (state.pendingWakeups == 0) {
          long remaining = deadline - System.nanoTime();
          if (remaining <= 0) {
            return 2;
          }
          try {
            state.wait(remaining / 1_000_000L, (int) (remaining % 1_000_000L));
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ChicoryInterruptedException("Thread interrupted");
          }
        }
        return 0;
      } finally {
        if (state.pendingWakeups > 0) {
          state.pendingWakeups--;
        }
        state.waiters--;
      }
    }
  }

  @Override
  @SuppressWarnings("removal")
  public int notify(int address, int maxThreads) {
    if (!shared()) {
      return 0;
    }
    WaitState state = waitStates.get(address);
    if (state == null) {
      return 0;
    }
    synchronized (state) {
      int waiting = state.waiters - state.pendingWakeups;
      if (waiting == 0) {
        return 0;
      }
      int toWake = maxThreads < 0 ? waiting : Math.min(waiting, maxThreads);
      state.pendingWakeups += toWake;
      state.notifyAll();
      return toWake;
    }
  }
}

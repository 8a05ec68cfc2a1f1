package dev.ferry.node.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.runtime.WasmRuntimeException;
import com.dylibso.chicory.wasm.ChicoryException;
import com.dylibso.chicory.wasm.UninstantiableException;
import com.dylibso.chicory.wasm.types.ActiveDataSegment;
import com.dylibso.chicory.wasm.types.DataSegment;
import com.dylibso.chicory.wasm.types.Instruction;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import com.dylibso.chicory.wasm.types.OpCode;
import com.dylibso.chicory.wasm.types.PassiveDataSegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * PagedMemory is a drop-in Chicory memory: it behaves exactly like Chicory's own ByteArrayMemory
 * under every operation (results, exceptions, contents), and on top tracks exactly the pages each
 * write touches and loads each page once from its source.
 */
class PagedMemoryTest {

  // ---------------------------------------------------------------------------------------------
  // Equivalence with ByteArrayMemory

  /** One operation's outcome, comparable across memories: a value or the exception's type. */
  private record Outcome(Object value, Class<?> thrown) {}

  private static Outcome apply(Memory m, Function<Memory, Object> op) {
    try {
      Object v = op.apply(m);
      if (v instanceof byte[]) {
        v = ByteBuffer.wrap((byte[]) v);
      } else if (v instanceof Float) {
        v = Float.floatToRawIntBits((Float) v);
      } else if (v instanceof Double) {
        v = Double.doubleToRawLongBits((Double) v);
      }
      return new Outcome(v, null);
    } catch (RuntimeException e) {
      if (e instanceof WasmRuntimeException) {
        assertTrue(e.getMessage().startsWith("out of bounds memory access"), e.getMessage());
      }
      return new Outcome(null, e.getClass());
    }
  }

  /** Addresses where things go wrong: page edges of both sizes, the end of memory, outside it. */
  private static int address(Random r, int size, int pageSize) {
    int k = r.nextInt(100);
    if (k < 35) {
      return (r.nextInt(size / pageSize + 1)) * pageSize + r.nextInt(19) - 9;
    } else if (k < 50) {
      return (r.nextInt(size / 65536 + 1)) * 65536 + r.nextInt(19) - 9;
    } else if (k < 58) {
      return size + r.nextInt(33) - 16;
    } else if (k < 61) {
      int[] far = {-1, -4, -8, Integer.MIN_VALUE, Integer.MAX_VALUE - 3, size + (1 << 20)};
      return far[r.nextInt(far.length)];
    }
    return r.nextInt(size);
  }

  private static int length(Random r, int pageSize) {
    int k = r.nextInt(100);
    if (k < 3) {
      return -1 - r.nextInt(5);
    } else if (k < 10) {
      return 0;
    } else if (k < 80) {
      return r.nextInt(64);
    }
    return r.nextInt(3 * pageSize + 100);
  }

  private static Function<Memory, Object> randomOp(Random r, int size, int pageSize) {
    int addr = address(r, size, pageSize);
    int k = r.nextInt(100);
    if (k < 1) {
      int delta = r.nextInt(5) - 1;
      return m -> m.grow(delta);
    } else if (k < 2) {
      return m -> {
        m.zero();
        return null;
      };
    } else if (k < 25) {
      long v = r.nextLong();
      int width = r.nextInt(6);
      return m -> {
        switch (width) {
          case 0:
            m.writeByte(addr, (byte) v);
            break;
          case 1:
            m.writeShort(addr, (short) v);
            break;
          case 2:
            m.writeI32(addr, (int) v);
            break;
          case 3:
            m.writeLong(addr, v);
            break;
          case 4:
            m.writeF32(addr, Float.intBitsToFloat((int) v));
            break;
          default:
            m.writeF64(addr, Double.longBitsToDouble(v));
            break;
        }
        return null;
      };
    } else if (k < 50) {
      int kind = r.nextInt(17);
      return m -> {
        switch (kind) {
          case 0:
            return m.read(addr);
          case 1:
            return m.readShort(addr);
          case 2:
            return m.readU16(addr);
          case 3:
            return m.readInt(addr);
          case 4:
            return m.readLong(addr);
          case 5:
            return m.readFloat(addr);
          case 6:
            return m.readDouble(addr);
          case 7:
            return m.readF32(addr);
          case 8:
            return m.readF64(addr);
          case 9:
            return m.readU8(addr);
          case 10:
            return m.readI8(addr);
          case 11:
            return m.readI16(addr);
          case 12:
            return m.readU32(addr);
          case 13:
            return m.readI32(addr);
          case 14:
            return m.readI64(addr);
          case 15:
            return m.readCString(Math.max(0, addr));
          default:
            return m.readString(addr, 3);
        }
      };
    } else if (k < 60) {
      int len = length(r, pageSize);
      byte[] data = new byte[Math.max(0, len) + r.nextInt(3)];
      r.nextBytes(data);
      int off = r.nextInt(10) == 0 ? r.nextInt(5) - 2 : 0;
      return m -> {
        m.write(addr, data, off, len);
        return null;
      };
    } else if (k < 68) {
      int len = length(r, pageSize);
      return m -> m.readBytes(addr, len);
    } else if (k < 76) {
      int len = length(r, pageSize);
      byte value = (byte) r.nextInt();
      return m -> {
        m.fill(value, addr, addr + len);
        return null;
      };
    } else if (k < 86) {
      int len = length(r, pageSize);
      // Overlapping both ways half the time: memmove's hard cases.
      int src = r.nextBoolean() ? addr + r.nextInt(2 * pageSize + 1) - pageSize : addr(r, size);
      int dest = r.nextBoolean() ? addr : src + r.nextInt(41) - 20;
      return m -> {
        m.copy(dest, src, len);
        return null;
      };
    } else if (k < 93) {
      return atomicOp(r, addr);
    } else {
      int segment = r.nextInt(SEGMENTS.length);
      int len = length(r, pageSize);
      int off = r.nextInt(10) == 0 ? r.nextInt(200) - 10 : r.nextInt(64);
      boolean drop = r.nextInt(20) == 0;
      return m -> {
        if (drop) {
          m.drop(segment);
        } else {
          m.initPassiveSegment(segment, addr, off, len);
        }
        return null;
      };
    }
  }

  private static int addr(Random r, int size) {
    return r.nextInt(size);
  }

  /** Atomics as Chicory's engines issue them: naturally aligned (they trap otherwise). */
  private static Function<Memory, Object> atomicOp(Random r, int addr) {
    int width = 1 << r.nextInt(4);
    int a = addr & -width;
    int op = r.nextInt(8);
    long v = r.nextLong();
    boolean matching = r.nextBoolean();
    return m -> {
      switch (width) {
        case 1:
          return atomicByte(m, a, op, (byte) v, matching);
        case 2:
          return atomicShort(m, a, op, (short) v, matching);
        case 4:
          return atomicInt(m, a, op, (int) v, matching);
        default:
          return atomicLong(m, a, op, v, matching);
      }
    };
  }

  private static Object atomicByte(Memory m, int a, int op, byte v, boolean matching) {
    switch (op) {
      case 0:
        return m.atomicReadByte(a);
      case 1:
        m.atomicWriteByte(a, v);
        return null;
      case 2:
        return m.atomicAddByte(a, v);
      case 3:
        return m.atomicAndByte(a, v);
      case 4:
        return m.atomicOrByte(a, v);
      case 5:
        return m.atomicXorByte(a, v);
      case 6:
        return m.atomicXchgByte(a, v);
      default:
        byte expected = matching ? m.atomicReadByte(a) : v;
        return m.atomicCmpxchgByte(a, expected, (byte) (v * 31 + 7));
    }
  }

  private static Object atomicShort(Memory m, int a, int op, short v, boolean matching) {
    switch (op) {
      case 0:
        return m.atomicReadShort(a);
      case 1:
        m.atomicWriteShort(a, v);
        return null;
      case 2:
        return m.atomicAddShort(a, v);
      case 3:
        return m.atomicAndShort(a, v);
      case 4:
        return m.atomicOrShort(a, v);
      case 5:
        return m.atomicXorShort(a, v);
      case 6:
        return m.atomicXchgShort(a, v);
      default:
        short expected = matching ? m.atomicReadShort(a) : v;
        return m.atomicCmpxchgShort(a, expected, (short) (v * 31 + 7));
    }
  }

  private static Object atomicInt(Memory m, int a, int op, int v, boolean matching) {
    switch (op) {
      case 0:
        return m.atomicReadInt(a);
      case 1:
        m.atomicWriteInt(a, v);
        return null;
      case 2:
        return m.atomicAddInt(a, v);
      case 3:
        return m.atomicAndInt(a, v);
      case 4:
        return m.atomicOrInt(a, v);
      case 5:
        return m.atomicXorInt(a, v);
      case 6:
        return m.atomicXchgInt(a, v);
      default:
        int expected = matching ? m.atomicReadInt(a) : v;
        return m.atomicCmpxchgInt(a, expected, v * 31 + 7);
    }
  }

  private static Object atomicLong(Memory m, int a, int op, long v, boolean matching) {
    switch (op) {
      case 0:
        return m.atomicReadLong(a);
      case 1:
        m.atomicWriteLong(a, v);
        return null;
      case 2:
        return m.atomicAddLong(a, v);
      case 3:
        return m.atomicAndLong(a, v);
      case 4:
        return m.atomicOrLong(a, v);
      case 5:
        return m.atomicXorLong(a, v);
      case 6:
        return m.atomicXchgLong(a, v);
      default:
        long expected = matching ? m.atomicReadLong(a) : v;
        return m.atomicCmpxchgLong(a, expected, v * 31 + 7);
    }
  }

  private static final DataSegment[] SEGMENTS = segments();

  private static DataSegment[] segments() {
    Random r = new Random(99);
    int[] sizes = {1, 100, 5000, 70000};
    DataSegment[] s = new DataSegment[sizes.length];
    for (int i = 0; i < sizes.length; i++) {
      byte[] data = new byte[sizes[i]];
      r.nextBytes(data);
      s[i] = new PassiveDataSegment(data);
    }
    return s;
  }

  /** Fresh copies, since drop() replaces entries of the array a memory was initialised with. */
  private static DataSegment[] segmentsCopy() {
    return Arrays.copyOf(SEGMENTS, SEGMENTS.length);
  }

  @ParameterizedTest(name = "page size {0}")
  @ValueSource(ints = {4096, 65536})
  void behavesExactlyLikeByteArrayMemoryUnderRandomOperations(int pageSize) {
    for (long seed = 1; seed <= 6; seed++) {
      Random r = new Random(seed * 7919 + pageSize);
      MemoryLimits limits = new MemoryLimits(2, 6);
      ByteArrayMemory expected = new ByteArrayMemory(limits);
      // Odd seeds: the zeros source, which zero() knows; even seeds: another source of zeros, so
      // zero() must record absent pages as zeroed.
      PageSource source = seed % 2 == 1 ? PageSource.zeros() : page -> null;
      PagedMemory got = new PagedMemory(limits, pageSize, source);
      expected.initialize(null, segmentsCopy());
      got.initialize(null, segmentsCopy());
      int thrown = 0;
      for (int i = 0; i < 5000; i++) {
        Function<Memory, Object> op = randomOp(r, expected.pages() * 65536, pageSize);
        Outcome want = apply(expected, op);
        Outcome have = apply(got, op);
        assertEquals(want, have, "seed " + seed + ", operation " + i);
        thrown += want.thrown() != null ? 1 : 0;
        assertEquals(expected.pages(), got.pages());
      }
      assertTrue(thrown > 200, "too few out-of-bounds cases: " + thrown);
      assertTrue(expected.pages() > 2, "memory never grew");
      int size = expected.pages() * 65536;
      assertArrayEquals(expected.readBytes(0, size), got.readBytes(0, size), "seed " + seed);
    }
  }

  @Test
  void growsAndFailsToGrowLikeByteArrayMemory() {
    for (Memory m :
        List.of(
            new ByteArrayMemory(new MemoryLimits(1, 3)),
            new PagedMemory(new MemoryLimits(1, 3), 4096, PageSource.zeros()))) {
      assertEquals(1, m.grow(0));
      assertEquals(1, m.grow(1));
      assertEquals(-1, m.grow(2));
      assertEquals(-1, m.grow(-1));
      assertEquals(2, m.grow(1));
      assertEquals(3, m.pages());
      assertEquals(-1, m.grow(1));
      assertEquals(3, m.maximumPages());
      assertEquals(1, m.initialPages());
    }
    PagedMemory unbounded = new PagedMemory(new MemoryLimits(0, MemoryLimits.MAX_PAGES));
    assertEquals(Memory.RUNTIME_MAX_PAGES, unbounded.maximumPages());
    assertEquals(0, unbounded.pageCount());
    assertThrows(WasmRuntimeException.class, () -> unbounded.read(0));
    assertEquals(0, unbounded.grow(3));
    assertEquals(3 * 16, unbounded.pageCount());
    unbounded.writeLong(3 * 65536 - 8, -1L);
    assertEquals(-1L, unbounded.readLong(3 * 65536 - 8));
  }

  @Test
  void activeDataSegmentsInitialiseLikeByteArrayMemory() {
    byte[] data = new byte[10000];
    new Random(5).nextBytes(data);
    DataSegment[] ok = {segmentAt(4090, data), new PassiveDataSegment(new byte[3])};
    DataSegment[] outside = {segmentAt(65536 - 100, data)};
    ByteArrayMemory expected = new ByteArrayMemory(new MemoryLimits(1, 1));
    PagedMemory got = new PagedMemory(new MemoryLimits(1, 1));
    expected.initialize(null, ok);
    got.initialize(null, ok);
    assertArrayEquals(expected.readBytes(0, 65536), got.readBytes(0, 65536));
    assertArrayEquals(new int[] {0, 1, 2, 3}, got.dirtyPages());
    assertThrows(UninstantiableException.class, () -> expected.initialize(null, outside));
    assertThrows(UninstantiableException.class, () -> got.initialize(null, outside));
  }

  private static ActiveDataSegment segmentAt(int offset, byte[] data) {
    return new ActiveDataSegment(
        0, List.of(new Instruction(0, OpCode.I32_CONST, new long[] {offset})), data);
  }

  @Test
  void waitAndNotifyBehaveLikeByteArrayMemoryForOneThread() {
    for (boolean shared : new boolean[] {false, true}) {
      MemoryLimits limits = new MemoryLimits(1, 1, shared);
      List<Memory> both = List.of(new ByteArrayMemory(limits), new PagedMemory(limits));
      for (Memory m : both) {
        m.atomicWriteInt(8, 5);
        if (shared) {
          assertEquals(1, m.atomicWait(8, 6, -1), "value differs: no wait");
          assertEquals(2, m.atomicWait(8, 5, 1_000_000L), "value matches: times out");
          assertEquals(1, m.atomicWait(8, 5L << 32 | 5L, -1), "64-bit value differs");
          assertEquals(2, m.atomicWait(8, 5L, 1_000_000L), "64-bit value matches");
          assertEquals(0, m.atomicNotify(8, 1));
          assertThrows(WasmRuntimeException.class, () -> m.atomicWait(65536, 0, 1));
        } else {
          assertThrows(ChicoryException.class, () -> m.atomicWait(8, 5, 1_000_000L));
          assertEquals(0, m.atomicNotify(8, 1));
        }
      }
    }
  }

  @Test
  void misalignedAtomicsThrowWhileOutOfBoundsOnesTrap() {
    PagedMemory m = new PagedMemory(new MemoryLimits(1, 1));
    assertThrows(IllegalStateException.class, () -> m.atomicAddInt(2, 1));
    assertThrows(WasmRuntimeException.class, () -> m.atomicAddInt(65536, 1));
    assertThrows(WasmRuntimeException.class, () -> m.atomicReadLong(-8));
  }

  @Test
  void refusesPageSizesThatAreNotPowersOfTwoFrom4KiBTo64KiB() {
    MemoryLimits l = new MemoryLimits(1, 1);
    for (int bad : new int[] {0, 2048, 3000, 4097, 131072}) {
      assertThrows(IllegalArgumentException.class, () -> new PagedMemory(l, bad, p -> null));
      assertThrows(IllegalArgumentException.class, () -> PagedMemory.factory(bad, p -> null));
    }
    for (int good : new int[] {4096, 8192, 16384, 32768, 65536}) {
      PagedMemory m = (PagedMemory) PagedMemory.factory(good, p -> null).apply(l);
      assertEquals(good, m.pageSize());
      assertEquals(65536 / good, m.pageCount());
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Dirty tracking

  /** Clears every dirty bit, runs {@code op}, and checks exactly {@code pages} became dirty. */
  private static void assertDirties(PagedMemory m, Consumer<PagedMemory> op, int... pages) {
    m.clearAll();
    assertEquals(0, m.dirtyCount());
    op.accept(m);
    assertArrayEquals(pages, m.dirtyPages());
    assertEquals(pages.length, m.dirtyCount());
    for (int p : pages) {
      assertTrue(m.isDirty(p));
    }
  }

  @ParameterizedTest(name = "page size {0}")
  @ValueSource(ints = {4096, 16384, 65536})
  void everyWriteMarksExactlyThePagesItTouches(int ps) {
    PagedMemory m = new PagedMemory(new MemoryLimits(8, 8), ps, PageSource.zeros());
    m.initialize(null, new DataSegment[] {new PassiveDataSegment(new byte[ps + 2])});
    assertDirties(m, x -> x.writeByte(3 * ps + 5, (byte) 1), 3);
    assertDirties(m, x -> x.writeShort(ps - 1, (short) 1), 0, 1);
    assertDirties(m, x -> x.writeI32(ps - 2, 1), 0, 1);
    assertDirties(m, x -> x.writeI32(ps - 4, 1), 0);
    assertDirties(m, x -> x.writeLong(2 * ps - 4, 1), 1, 2);
    assertDirties(m, x -> x.writeF32(4 * ps + 8, 1f), 4);
    assertDirties(m, x -> x.writeF64(5 * ps - 1, 1d), 4, 5);
    assertDirties(m, x -> x.write(ps - 10, new byte[20]), 0, 1);
    assertDirties(m, x -> x.write(2 * ps, new byte[3 * ps]), 2, 3, 4);
    assertDirties(m, x -> x.writeString(6 * ps - 2, "abc"), 5, 6);
    assertDirties(m, x -> x.fill((byte) 7, ps + 1, 3 * ps), 1, 2);
    assertDirties(m, x -> x.copy(4 * ps - 8, 0, 16), 3, 4);
    assertDirties(m, x -> x.copy(ps + 8, ps, 2 * ps), 1, 2, 3);
    assertDirties(m, x -> x.copy(ps, ps + 8, 2 * ps), 1, 2);
    assertDirties(m, x -> x.initPassiveSegment(0, 3 * ps - 1, 0, ps + 2), 2, 3, 4);
    assertDirties(m, x -> x.atomicAddInt(5 * ps, 1), 5);
    assertDirties(m, x -> x.atomicWriteByte(6 * ps + 3, (byte) 1), 6);
    assertDirties(m, x -> x.atomicXchgLong(7 * ps + 8, 1), 7);
    assertDirties(m, x -> x.atomicCmpxchgShort(2, (short) 12345, (short) 1)); // no exchange
    // zero() on the zeros source rewrites the resident pages only: the absent ones are zeros.
    int[] resident = IntStream.range(0, m.pageCount()).filter(m::isResident).toArray();
    assertTrue(ps == 65536 || resident.length < m.pageCount());
    assertDirties(m, PagedMemory::zero, resident);
    // Nothing that only reads, and nothing empty or failed, dirties a page.
    assertDirties(
        m,
        x -> {
          x.read(5);
          x.readLong(ps - 4);
          x.readBytes(0, 3 * ps);
          x.atomicReadInt(ps);
          x.write(ps, new byte[0]);
          x.fill((byte) 1, ps, ps);
          x.copy(0, ps, 0);
          assertThrows(WasmRuntimeException.class, () -> x.writeLong(8 * 65536 - 4, 1));
          assertThrows(WasmRuntimeException.class, () -> x.write(8 * 65536 - 4, new byte[8]));
        });
  }

  @Test
  void clearDirtySaysWhetherThePageWasDirty() {
    PagedMemory m = new PagedMemory(new MemoryLimits(2, 2));
    m.writeI32(4096 * 20, 1);
    assertTrue(m.clearDirty(20));
    assertFalse(m.clearDirty(20));
    assertFalse(m.isDirty(20));
    assertThrows(IndexOutOfBoundsException.class, () -> m.clearDirty(32));
  }

  @Test
  void lastWriteRecordsTheEpochOfEachPagesLatestWrite() {
    PagedMemory m = new PagedMemory(new MemoryLimits(1, 1));
    assertEquals(1, m.epoch());
    assertEquals(0, m.lastWrite(3));
    m.writeByte(4096 * 3, (byte) 1);
    assertEquals(1, m.lastWrite(3));
    assertEquals(2, m.tick());
    assertEquals(2, m.epoch());
    m.fill((byte) 1, 4096 * 4 + 1, 4096 * 5 + 1);
    assertEquals(1, m.lastWrite(3));
    assertEquals(2, m.lastWrite(4));
    assertEquals(2, m.lastWrite(5));
    m.tick();
    m.read(4096 * 4);
    assertEquals(2, m.lastWrite(4), "a read is not a write");
    assertEquals(0, m.lastWrite(6));
  }

  // ---------------------------------------------------------------------------------------------
  // Demand paging

  /** A source serving known pages and counting how often each is asked for. */
  private static final class CountingSource implements PageSource {
    final Map<Integer, byte[]> pages = new ConcurrentHashMap<>();
    final Map<Integer, Integer> asked = new ConcurrentHashMap<>();

    @Override
    public byte[] load(int page) {
      asked.merge(page, 1, Integer::sum);
      return pages.get(page);
    }

    int asked(int page) {
      return asked.getOrDefault(page, 0);
    }
  }

  private static byte[] pattern(int page, int size) {
    byte[] b = new byte[size];
    new Random(page).nextBytes(b);
    return b;
  }

  @ParameterizedTest(name = "page size {0}")
  @ValueSource(ints = {4096, 65536})
  void pagesFaultInOnceFromTheirSource(int ps) {
    CountingSource source = new CountingSource();
    source.pages.put(1, pattern(1, ps));
    PagedMemory m = new PagedMemory(new MemoryLimits(8, 10), ps, source);
    assertEquals(0, m.residentPages());
    assertFalse(m.isResident(1));

    // Reads return the source's bytes; page 2, which it does not have, reads as zeros.
    assertEquals(pattern(1, ps)[7], m.read(ps + 7));
    long expectedLong =
        ByteBuffer.wrap(pattern(1, ps)).order(ByteOrder.LITTLE_ENDIAN).getLong(ps - 16);
    assertEquals(expectedLong, m.readLong(2 * ps - 16));
    byte[] span = m.readBytes(2 * ps - 4, 8);
    assertArrayEquals(Arrays.copyOfRange(pattern(1, ps), ps - 4, ps), Arrays.copyOf(span, 4));
    assertArrayEquals(new byte[4], Arrays.copyOfRange(span, 4, 8));
    for (int i = 0; i < 100; i++) {
      m.readInt(ps + 4 * i);
      m.read(2 * ps + i);
    }
    assertEquals(1, source.asked(1));
    assertEquals(1, source.asked(2));
    assertEquals(2, m.residentPages());
    assertEquals(2, m.faults());
    assertEquals(1, m.zeroFills());
    assertTrue(m.isResident(1) && m.isResident(2));
    assertArrayEquals(new int[0], m.dirtyPages(), "faulting in is not writing");

    // The memory copied the source's array: changing it later changes nothing.
    source.pages.get(1)[7]++;
    assertEquals(pattern(1, ps)[7], m.read(ps + 7));

    // A partial write loads the page first; a write of a whole page does not ask the source.
    source.pages.put(3, pattern(3, ps));
    m.writeI32(3 * ps + 8, 0);
    byte[] three = pattern(3, ps);
    Arrays.fill(three, 8, 12, (byte) 0);
    assertArrayEquals(three, m.readBytes(3 * ps, ps));
    source.pages.put(7, pattern(7, ps));
    m.write(7 * ps + 10, new byte[] {1, 2, 3});
    m.fill((byte) 9, 7 * ps + 20, 7 * ps + 30);
    m.copy(7 * ps + 40, 7 * ps + 10, 3);
    byte[] seven = pattern(7, ps);
    System.arraycopy(new byte[] {1, 2, 3}, 0, seven, 10, 3);
    Arrays.fill(seven, 20, 30, (byte) 9);
    System.arraycopy(new byte[] {1, 2, 3}, 0, seven, 40, 3);
    assertArrayEquals(seven, m.copyPage(7), "partial bulk writes keep the loaded bytes");
    assertEquals(1, source.asked(7));
    m.write(4 * ps, pattern(44, ps));
    assertEquals(0, source.asked(4));
    assertArrayEquals(pattern(44, ps), m.copyPage(4));
    assertEquals(5, m.residentPages());
    assertEquals(4, m.faults());

    // copyPage does not fault: an absent page copies as zeros and stays absent.
    assertArrayEquals(new byte[ps], m.copyPage(5));
    assertFalse(m.isResident(5));
    assertEquals(0, source.asked(5));

    // installPage places a page without asking, counting a fault, or dirtying it.
    m.installPage(6, pattern(66, ps));
    assertTrue(m.isResident(6));
    assertFalse(m.isDirty(6));
    assertEquals(pattern(66, ps)[100], m.read(6 * ps + 100));
    assertEquals(0, source.asked(6));
    assertEquals(4, m.faults());
    assertEquals(6, m.residentPages());
    assertThrows(IllegalArgumentException.class, () -> m.installPage(7, new byte[ps / 2]));
    assertThrows(IndexOutOfBoundsException.class, () -> m.installPage(m.pageCount(), new byte[ps]));

    // Grown pages are absent like the others: the source is asked for them too.
    int firstNew = m.pageCount();
    assertEquals(8, m.grow(2));
    int nine = 9 * (65536 / ps); // the first Ferry page of wasm page 9
    source.pages.put(nine, pattern(nine, ps));
    assertEquals(pattern(nine, ps)[1], m.read(nine * ps + 1));
    assertTrue(nine >= firstNew);
    assertEquals(1, source.asked(nine));
  }

  @Test
  void zeroMakesAbsentPagesZerosWithoutAskingTheSourceOrMaterialisingThem() {
    CountingSource source = new CountingSource();
    for (int p = 0; p < 16; p++) {
      source.pages.put(p, pattern(p, 4096));
    }
    PagedMemory m = new PagedMemory(new MemoryLimits(1, 2), 4096, source);
    assertEquals(pattern(1, 4096)[5], m.read(4096 + 5));
    m.clearAll();
    m.zero();
    assertEquals(1, m.residentPages(), "zero() materialises nothing");
    assertEquals(16, m.dirtyCount(), "every page changed, resident or not");
    assertArrayEquals(new byte[4096], m.copyPage(1));
    assertArrayEquals(new byte[4096], m.copyPage(2));
    assertArrayEquals(new byte[2 * 4096], m.readBytes(4096, 2 * 4096));
    assertEquals(0, source.asked(2), "a zeroed page is not loaded");
    assertEquals(1, m.faults());
    assertEquals(2, m.residentPages());
    // Pages grown later are absent again, and come from the source.
    m.grow(1);
    source.pages.put(16, pattern(16, 4096));
    assertEquals(pattern(16, 4096)[9], m.read(16 * 4096 + 9));
  }

  @Test
  void aSourceThatReturnsAPageOfTheWrongSizeIsAnError() {
    PagedMemory m = new PagedMemory(new MemoryLimits(1, 1), 4096, p -> new byte[10]);
    assertThrows(IllegalStateException.class, () -> m.read(0));
  }

  // ---------------------------------------------------------------------------------------------
  // The flusher protocol

  /**
   * A flusher on another thread copies dirty pages (clear, then copy) while the guest writes and
   * grows; after a last pass its copies equal memory: no write was missed.
   */
  @Test
  void aConcurrentFlusherThatClearsBeforeCopyingMissesNoWrite() throws Exception {
    PagedMemory m = new PagedMemory(new MemoryLimits(1, 8), 4096, PageSource.zeros());
    List<byte[]> shadow = new ArrayList<>();
    AtomicBoolean done = new AtomicBoolean();
    Thread flusher =
        new Thread(
            () -> {
              while (!done.get()) {
                flushPass(m, shadow);
              }
            });
    flusher.start();
    Random r = new Random(3);
    for (int i = 0; i < 3_000_000; i++) {
      if (i % 400_000 == 0 && i > 0) {
        m.grow(1);
      }
      int size = m.pages() * 65536;
      int kind = r.nextInt(10);
      if (kind < 7) {
        m.writeLong(r.nextInt(size - 8), i);
      } else if (kind < 9) {
        m.writeByte(r.nextInt(size), (byte) i);
      } else {
        int from = r.nextInt(size - 100);
        m.fill((byte) i, from, from + r.nextInt(100));
      }
      if (i % 100_000 == 0) {
        m.tick();
      }
    }
    done.set(true);
    flusher.join();
    flushPass(m, shadow);
    for (int p = 0; p < m.pageCount(); p++) {
      byte[] flushed = p < shadow.size() && shadow.get(p) != null ? shadow.get(p) : new byte[4096];
      assertArrayEquals(m.copyPage(p), flushed, "page " + p);
    }
  }

  private static void flushPass(PagedMemory m, List<byte[]> shadow) {
    for (int p : m.dirtyPages()) {
      if (m.clearDirty(p)) {
        byte[] copy = m.copyPage(p);
        synchronized (shadow) {
          while (shadow.size() <= p) {
            shadow.add(null);
          }
          shadow.set(p, copy);
        }
      }
    }
  }

  @Test
  void installedPagesCanBeReadBackAndAreNotFlushed() {
    PagedMemory m = new PagedMemory(new MemoryLimits(1, 1));
    byte[] page = pattern(1, 4096);
    m.installPage(2, page);
    page[0]++;
    assertEquals((byte) (page[0] - 1), m.read(2 * 4096));
    assertEquals(0, m.dirtyCount());
    assertEquals(1, m.residentPages());
  }

  /**
   * A region borrowed and put back byte for byte (the Asyncify buffer) leaves clean pages clean,
   * unless a flusher cleared a dirty bit meanwhile (it may have written the borrowed bytes out).
   */
  @Test
  void pagesPutBackAsTheyWereAreCleanAgainUnlessAFlusherWroteMeanwhile() {
    PagedMemory m = new PagedMemory(new MemoryLimits(1, 1), 4096, PageSource.zeros());
    m.writeI32(0, 7); // page 0 dirty; pages 1..15 clean
    java.util.BitSet before = m.dirtyBits(0, 16);
    long cleared = m.clearedCount();
    byte[] saved = m.readBytes(4096, 8192);
    m.write(4096, new byte[8192]); // borrowed: pages 1 and 2 written
    m.write(4096, saved); // put back
    assertTrue(m.isDirty(1) && m.isDirty(2));
    assertTrue(m.restoreClean(0, 1, 3, before, cleared));
    assertFalse(m.isDirty(1) || m.isDirty(2), "put back as they were: clean");
    assertTrue(m.isDirty(0), "dirty before: still dirty");

    before = m.dirtyBits(0, 16);
    cleared = m.clearedCount();
    m.write(4096, new byte[4096]);
    assertTrue(m.clearDirty(0)); // a flusher wrote page 0 out meanwhile
    m.write(4096, saved, 0, 4096);
    assertFalse(m.restoreClean(0, 1, 2, before, cleared));
    assertTrue(m.isDirty(1), "a flush happened meanwhile: left dirty, written out again");
  }
}

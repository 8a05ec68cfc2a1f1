package dev.ferry.node.process;

import static dev.ferry.node.process.ProcessHarness.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.statestore.TableName;
import dev.ferry.transport.proto.LinearMemory;
import dev.ferry.transport.proto.MemoryRun;
import dev.ferry.transport.proto.ProcessImage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Memory correctness across checkpoint and restore, with the {@code generations} guest: it keeps
 * writing a generation number into every 4 KiB page of an area, checks each page before rewriting
 * it and the whole area after each of its WASI calls, and fails (exit 3) on a page that does not
 * hold what it wrote. Checkpointed and restored many times mid-round on every pair of engines, it
 * must finish exactly like an uninterrupted run; and every captured image must hold the current
 * generation in the pages before the write cursor and the previous one after it. Corrupting one
 * page of a stored image before the restore must make the guest fail, so the test can fail.
 *
 * <p>This is the single-node form of the check that paged migration strategies will need: there,
 * the guest is migrated mid-round instead of checkpointed and restored.
 */
class GenerationMemoryTest {

  static final int MIB = 2;
  static final int ROUNDS = 48;
  static final int PAGE_BYTES = 4096;
  static final int PAGES_PER_CALL = 16;
  static final int NPAGES = MIB * 1024 * 1024 / PAGE_BYTES;
  static final List<String> ARGS =
      List.of(
          String.valueOf(MIB),
          String.valueOf(ROUNDS),
          String.valueOf(PAGE_BYTES),
          String.valueOf(PAGES_PER_CALL));

  /** The second word of page i holds TAG | i. */
  static final long TAG = 0x47454E5300000000L;

  static final int WASM_PAGE = 65536;

  @TempDir static Path dir;
  static ProcessHarness node;
  static String hash;
  static byte[] referenceStdout;

  @BeforeAll
  static void startNode() {
    node = new ProcessHarness(dir, Map.of());
    hash = node.upload("generations");
    ProcessInfo p = node.run(hash, Engine.COMPILED, ARGS, Map.of());
    ProcessInfo done = get(node.processes.awaitExit(p.id()));
    assertEquals(ProcessState.EXITED, done.state(), "reference run failed: " + done.error());
    assertEquals(0, done.exitCode(), "reference run exit code");
    assertEquals(0, node.log(p.id(), LogStream.STDERR).length, "reference run wrote to stderr");
    referenceStdout = node.log(p.id(), LogStream.STDOUT);
    String out = new String(referenceStdout, StandardCharsets.UTF_8);
    assertTrue(out.startsWith("area " + NPAGES + " pages of " + PAGE_BYTES + " bytes"), out);
    assertTrue(out.contains("\nround " + ROUNDS + " ok\nchecksum "), out);
    assertTrue(out.endsWith("generations ok\n"), out);
  }

  @AfterAll
  static void stopNode() {
    if (node != null) {
      node.close();
    }
  }

  static Stream<Arguments> enginePairs() {
    return Stream.of(ProcessHarness.ENGINE_PAIRS).map(p -> Arguments.of(p[0], p[1]));
  }

  @ParameterizedTest(name = "{0} -> {1}")
  @MethodSource("enginePairs")
  void everyPageKeepsItsGenerationAcrossRepeatedCheckpoints(Engine from, Engine to)
      throws Exception {
    ProcessInfo p = node.run(hash, from, ARGS, Map.of());
    List<byte[]> images = new ArrayList<>();
    int restoresOnOther = 0;
    Engine current = from;
    for (int i = 0; i < 8; i++) {
      // On the interpreter: after 1/10, 2/10, ... of the output (a line per round). The compiled
      // engine runs the whole program in some 50 ms, so there: as soon as the area exists. Then a
      // varying millisecond or two, so that freezes land at different places inside a round.
      awaitStdout(
          p.id(), current == Engine.INTERPRETER ? referenceStdout.length * (i + 1L) / 10 : 1);
      Thread.sleep(i % 3);
      boolean leaveRunning = i == 1 || i == 4;
      try {
        get(node.processes.checkpoint(p.id(), leaveRunning));
      } catch (FerryException e) {
        if (e.kind() == FerryException.Kind.CONFLICT
            && get(node.processes.status(p.id())).state().isFinal()) {
          break; // it finished before this checkpoint
        }
        throw e;
      }
      // Checked after the run: a process left running should not race ahead meanwhile.
      var image = node.store.table(TableName.IMAGES).get(p.id());
      if (image.isEmpty() && leaveRunning) {
        // Left running, it finished at once (the compiled engine is quick): an ended process
        // keeps no image.
        assertTrue(get(node.processes.status(p.id())).state().isFinal(), "image missing");
        break;
      }
      images.add(image.orElseThrow());
      if (!leaveRunning) {
        assertEquals(ProcessState.CHECKPOINTED, get(node.processes.status(p.id())).state());
        Engine next = i % 2 == 0 ? to : from;
        restoresOnOther += next != current ? 1 : 0;
        current = next;
        assertEquals(next, get(node.processes.restore(p.id(), next)).engine());
      }
    }
    ProcessInfo done = get(node.processes.awaitExit(p.id()));
    byte[] stderr = node.log(p.id(), LogStream.STDERR);

    assertEquals(
        "", new String(stderr, StandardCharsets.UTF_8), "stderr (a FAIL line is a wrong page)");
    assertEquals(ProcessState.EXITED, done.state(), "state; error: " + done.error());
    assertEquals(0, done.exitCode(), "exit code");
    assertArrayEquals(referenceStdout, node.log(p.id(), LogStream.STDOUT), "stdout differs");
    List<Snapshot> seen = new ArrayList<>();
    for (byte[] image : images) {
      seen.add(Snapshot.of(ProcessImage.parseFrom(image)));
    }
    assertTrue(seen.size() >= 5, "only " + seen.size() + " checkpoints happened: " + seen);
    if (from != to) {
      assertTrue(restoresOnOther >= 1, "never restored on the other engine");
    }
    assertTrue(
        seen.stream().filter(Snapshot::midRound).count() >= 3,
        "too few checkpoints inside a round: " + seen);
    assertTrue(
        new TreeSet<>(seen.stream().map(Snapshot::cursor).toList()).size() >= 2,
        "every checkpoint at the same place in a round: " + seen);
  }

  @Test
  void aCorruptedGenerationInTheImageMakesTheGuestFail() throws Exception {
    String pid = checkpointMidRun(Engine.INTERPRETER);
    ProcessImage image = storedImage(pid);
    Snapshot s = Snapshot.of(image);
    int page = s.cursor() - 1; // the last page written: it holds s.generation()
    long wrong = s.generation() ^ 1;
    byte[] mem = memory(image);
    putLong(mem, s.base() + (long) page * PAGE_BYTES, wrong);
    storeImage(pid, image, mem);

    assertGuestFails(
        pid,
        Engine.COMPILED,
        "FAIL: page "
            + page
            + " holds generation "
            + wrong
            + ", expected "
            + s.generation()
            + "\n");
  }

  @Test
  void swappedPagesInTheImageMakeTheGuestFail() throws Exception {
    String pid = checkpointMidRun(Engine.INTERPRETER);
    ProcessImage image = storedImage(pid);
    Snapshot s = Snapshot.of(image);
    byte[] mem = memory(image);
    int a = 3;
    int b = NPAGES - 2;
    long offA = s.base() + (long) a * PAGE_BYTES;
    long offB = s.base() + (long) b * PAGE_BYTES;
    byte[] pageA = Arrays.copyOfRange(mem, (int) offA, (int) offA + PAGE_BYTES);
    System.arraycopy(mem, (int) offB, mem, (int) offA, PAGE_BYTES);
    System.arraycopy(pageA, 0, mem, (int) offB, PAGE_BYTES);
    storeImage(pid, image, mem);

    assertGuestFails(
        pid,
        Engine.INTERPRETER,
        String.format(
            "FAIL: page %d holds tag %016x, expected %016x\n", a, TAG | b, TAG | (long) a));
  }

  /** Starts the guest on engine and checkpoints it (stopped) after round 2. */
  private static String checkpointMidRun(Engine engine) {
    ProcessInfo p = node.run(hash, engine, ARGS, Map.of());
    String out = new String(referenceStdout, StandardCharsets.UTF_8);
    awaitStdout(p.id(), out.indexOf("round 2 ok\n") + "round 2 ok\n".length());
    get(node.processes.checkpoint(p.id(), false));
    assertEquals(ProcessState.CHECKPOINTED, get(node.processes.status(p.id())).state());
    return p.id();
  }

  private static void assertGuestFails(String pid, Engine engine, String expectedStderr) {
    get(node.processes.restore(pid, engine));
    ProcessInfo done = get(node.processes.awaitExit(pid));
    assertEquals(ProcessState.EXITED, done.state(), "state; error: " + done.error());
    assertEquals(
        expectedStderr,
        new String(node.log(pid, LogStream.STDERR), StandardCharsets.UTF_8),
        "stderr");
    assertEquals(3, done.exitCode(), "exit code");
    String out = new String(node.log(pid, LogStream.STDOUT), StandardCharsets.UTF_8);
    assertFalse(out.contains("generations ok"), out);
  }

  private static void awaitStdout(String pid, long bytes) {
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (System.nanoTime() < deadline) {
      ProcessInfo s = get(node.processes.status(pid));
      if (s.stdoutBytes() >= bytes || s.state().isFinal()) {
        return;
      }
      try {
        Thread.sleep(1);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
    fail("no progress: " + pid + " wrote fewer than " + bytes + " bytes of stdout");
  }

  private static ProcessImage storedImage(String pid) throws InvalidProtocolBufferException {
    return ProcessImage.parseFrom(node.store.table(TableName.IMAGES).get(pid).orElseThrow());
  }

  /** Replaces the stored image of pid by image with its memory replaced by mem. */
  private static void storeImage(String pid, ProcessImage image, byte[] mem) {
    LinearMemory.Builder lm = LinearMemory.newBuilder().setPages(image.getMemory().getPages());
    lm.addRuns(MemoryRun.newBuilder().setFirstPage(0).setData(ByteString.copyFrom(mem)));
    byte[] bytes = image.toBuilder().setMemory(lm).build().toByteArray();
    node.store.write(b -> b.put(TableName.IMAGES, pid, bytes));
  }

  /** The whole linear memory an image describes. */
  static byte[] memory(ProcessImage image) {
    byte[] mem = new byte[image.getMemory().getPages() * WASM_PAGE];
    for (MemoryRun r : image.getMemory().getRunsList()) {
      r.getData().copyTo(mem, r.getFirstPage() * WASM_PAGE);
    }
    return mem;
  }

  static long getLong(byte[] mem, long off) {
    return ByteBuffer.wrap(mem).order(ByteOrder.LITTLE_ENDIAN).getLong((int) off);
  }

  static void putLong(byte[] mem, long off, long v) {
    ByteBuffer.wrap(mem).order(ByteOrder.LITTLE_ENDIAN).putLong((int) off, v);
  }

  /**
   * Where the guest's area was in a captured image: its address, the newest generation in it and
   * how many pages (from the first) hold that generation; the others must hold the one before.
   */
  record Snapshot(long base, long generation, int cursor) {
    boolean midRound() {
      return cursor < NPAGES;
    }

    @Override
    public String toString() {
      return "generation " + generation + " up to page " + cursor;
    }

    /** Finds the area in image and checks that every page holds g up to a cursor and g-1 after. */
    static Snapshot of(ProcessImage image) {
      byte[] mem = memory(image);
      long base = -1;
      for (long off = 0; off + 2L * PAGE_BYTES <= mem.length; off += PAGE_BYTES) {
        if (getLong(mem, off + 8) == TAG && getLong(mem, off + PAGE_BYTES + 8) == (TAG | 1)) {
          base = off;
          break;
        }
      }
      assertTrue(base >= 0, "the image holds no generations area (page 0 not found)");
      assertTrue(base + (long) NPAGES * PAGE_BYTES <= mem.length, "the area is cut off");
      // Round 0 writes generation 0 into a zeroed area: there, "the one before" is a zero page.
      long g = getLong(mem, base);
      int cursor = NPAGES;
      for (int i = 0; i < NPAGES; i++) {
        long off = base + (long) i * PAGE_BYTES;
        long tag = getLong(mem, off + 8);
        long gen = getLong(mem, off);
        long last = getLong(mem, off + PAGE_BYTES - 8);
        if (cursor == NPAGES && (gen != g || tag == 0)) {
          cursor = i;
        }
        boolean ok;
        if (i >= cursor && g == 0) {
          ok = tag == 0 && gen == 0 && last == 0;
        } else {
          ok = tag == (TAG | i) && gen == (i < cursor ? g : g - 1) && last == gen;
        }
        if (!ok) {
          fail(
              String.format(
                  "in the image, page %d holds generation %d, tag %016x, last word %d; pages"
                      + " before %d should hold generation %d, the others %s",
                  i, gen, tag, last, cursor, g, g == 0 ? "zeros" : "generation " + (g - 1)));
        }
      }
      return new Snapshot(base, g, cursor);
    }
  }
}

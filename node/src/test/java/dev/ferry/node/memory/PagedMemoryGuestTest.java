package dev.ferry.node.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import dev.ferry.node.TestNodes;
import dev.ferry.node.runtime.LoadedModule;
import dev.ferry.node.runtime.ModuleRegistry;
import dev.ferry.node.runtime.WasmProcess;
import dev.ferry.node.service.Engine;
import dev.ferry.node.wasi.OutputSink;
import dev.ferry.node.wasi.Sandbox;
import dev.ferry.statestore.FerryStore;
import dev.ferry.transport.proto.ProcessImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Real guests run on PagedMemory, on both Chicory engines, exactly as on Chicory's default memory:
 * same stdout, stderr and exit code, also across a freeze, capture and restore.
 */
class PagedMemoryGuestTest {

  /** A guest program run with fixed arguments. */
  record Workload(String guest, List<String> args) {
    @Override
    public String toString() {
      return guest + " " + String.join(" ", args);
    }
  }

  /** What a run printed and how it ended. */
  record Run(byte[] stdout, byte[] stderr, WasmProcess.End end) {}

  static final List<Workload> WORKLOADS =
      List.of(
          new Workload("churn", List.of("40", "1000")),
          new Workload("datasize", List.of("300", "20000")),
          new Workload("pages", List.of("8", "20", "50")),
          new Workload("dirty", List.of("4", "10", "2000")),
          new Workload("files", List.of("30")),
          new Workload("lines", List.of("3000", "100")));

  @TempDir static Path dir;
  static FerryStore store;
  static ModuleRegistry modules;
  static final AtomicInteger ids = new AtomicInteger();
  static final Map<String, Run> references = new ConcurrentHashMap<>();

  @BeforeAll
  static void openStore() {
    store = FerryStore.open(dir.resolve("store"), 1L << 30);
    modules =
        new ModuleRegistry(store, TestNodes.settings(dir, Map.of()).runtime(), dir.resolve("tmp"));
  }

  @AfterAll
  static void closeStore() {
    store.close();
  }

  static LoadedModule module(String guest) {
    byte[] bytes = TestNodes.guest(guest);
    modules.putVerbatim(bytes);
    return modules.load(ModuleRegistry.sha256(bytes));
  }

  /** Collects a process's output, in order. */
  static final class Output implements OutputSink {
    final ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    final ByteArrayOutputStream stderr = new ByteArrayOutputStream();

    @Override
    public synchronized void write(int stream, byte[] data, int off, int len) {
      (stream == 1 ? stdout : stderr).write(data, off, len);
    }

    synchronized int stdoutBytes() {
      return stdout.size();
    }

    synchronized String stderrText() {
      return stderr.toString(StandardCharsets.UTF_8);
    }

    synchronized Run run(WasmProcess.End end) {
      return new Run(stdout.toByteArray(), stderr.toByteArray(), end);
    }
  }

  static WasmProcess.Spec spec(Workload w, Engine engine, Sandbox sandbox, Output out) {
    List<String> argv = new ArrayList<>();
    argv.add("main.wasm");
    argv.addAll(w.args());
    return new WasmProcess.Spec(
        "p" + ids.incrementAndGet(),
        module(w.guest()),
        engine,
        sandbox,
        argv,
        List.of(),
        out,
        1 << 20,
        16384);
  }

  static Sandbox sandbox() throws IOException {
    return new Sandbox(dir.resolve("sandbox-" + ids.incrementAndGet()));
  }

  static WasmProcess.End await(WasmProcess p) throws Exception {
    return p.end().toCompletableFuture().get(120, TimeUnit.SECONDS);
  }

  static Run run(Workload w, Engine engine, Function<MemoryLimits, Memory> memory)
      throws Exception {
    Output out = new Output();
    WasmProcess p = WasmProcess.start(spec(w, engine, sandbox(), out), memory);
    return out.run(await(p));
  }

  /** The run on Chicory's default memory, on the interpreter; both engines must agree with it. */
  static Run reference(Workload w) {
    return references.computeIfAbsent(
        w.toString(),
        k -> {
          try {
            Run r = run(w, Engine.INTERPRETER, null);
            assertEquals(WasmProcess.Outcome.EXITED, r.end().outcome(), "reference: " + r.end());
            assertEquals(0, r.end().exitCode(), "reference exit code");
            return r;
          } catch (Exception e) {
            throw new IllegalStateException(e);
          }
        });
  }

  static void assertSameRun(Run want, Run got) {
    assertEquals(WasmProcess.Outcome.EXITED, got.end().outcome(), "error: " + got.end().error());
    assertEquals(want.end().exitCode(), got.end().exitCode(), "exit code");
    assertArrayEquals(want.stdout(), got.stdout(), "stdout differs");
    assertArrayEquals(want.stderr(), got.stderr(), "stderr differs");
  }

  /** The output before a freeze followed by the output after it, ending as the second ended. */
  static Run joined(Run before, Run after) {
    ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    stdout.writeBytes(before.stdout());
    stdout.writeBytes(after.stdout());
    ByteArrayOutputStream stderr = new ByteArrayOutputStream();
    stderr.writeBytes(before.stderr());
    stderr.writeBytes(after.stderr());
    return new Run(stdout.toByteArray(), stderr.toByteArray(), after.end());
  }

  /** Makes PagedMemories and remembers them, to look inside after the run. */
  static final class Recorder implements Function<MemoryLimits, Memory> {
    final int pageSize;
    final List<PagedMemory> made = new CopyOnWriteArrayList<>();

    Recorder(int pageSize) {
      this.pageSize = pageSize;
    }

    @Override
    public Memory apply(MemoryLimits limits) {
      PagedMemory m = new PagedMemory(limits, pageSize, PageSource.zeros());
      made.add(m);
      return m;
    }
  }

  static Stream<Arguments> runs() {
    List<Arguments> all = new ArrayList<>();
    for (Workload w : WORKLOADS) {
      for (Engine e : Engine.values()) {
        for (int pageSize : new int[] {4096, 65536}) {
          all.add(Arguments.of(w, e, pageSize));
        }
      }
    }
    return all.stream();
  }

  @ParameterizedTest(name = "{0} on {1}, {2}-byte pages")
  @MethodSource("runs")
  void guestOutputIsIdenticalToARunOnTheDefaultMemory(Workload w, Engine engine, int pageSize)
      throws Exception {
    Run want = reference(w);
    assertSameRun(want, run(w, engine, null));
    Recorder paged = new Recorder(pageSize);
    assertSameRun(want, run(w, engine, paged));

    assertEquals(1, paged.made.size(), "the instance's memory is a PagedMemory");
    PagedMemory m = paged.made.get(0);
    assertTrue(m.dirtyCount() > 0, "the guest's writes were tracked");
    assertTrue(m.faults() > 0, "pages faulted in on first touch");
    assertEquals(m.faults(), m.zeroFills(), "a fresh memory's source has only zeros");
    assertTrue(m.residentPages() <= m.pageCount());
  }

  static Stream<Arguments> checkpoints() {
    List<Arguments> all = new ArrayList<>();
    // Workloads whose output comes out as they go (not buffered to the end), so a freeze can be
    // timed by it.
    for (Workload w :
        List.of(
            WORKLOADS.get(0),
            WORKLOADS.get(1),
            WORKLOADS.get(3),
            new Workload("lines", List.of("3000", "100", "unbuffered")))) {
      all.add(Arguments.of(w, Engine.INTERPRETER, Engine.COMPILED));
      all.add(Arguments.of(w, Engine.COMPILED, Engine.INTERPRETER));
      all.add(Arguments.of(w, Engine.COMPILED, Engine.COMPILED));
    }
    return all.stream();
  }

  /**
   * Frozen on PagedMemory (resumed once in place, then frozen again and stopped), captured and
   * restored on a fresh PagedMemory, possibly on the other engine: the output is unchanged.
   */
  @ParameterizedTest(name = "{0}: {1} -> {2}")
  @MethodSource("checkpoints")
  void checkpointAndRestoreOnPagedMemoryGiveIdenticalOutput(Workload w, Engine from, Engine to)
      throws Exception {
    // On a loaded machine the program may end between reaching half its output and the freeze:
    // that run shows nothing, so it is tried again (a few times at most).
    for (int attempt = 1; ; attempt++) {
      try {
        checkpointAndRestoreOnce(w, from, to);
        return;
      } catch (java.util.concurrent.ExecutionException e) {
        if (!(e.getCause() instanceof dev.ferry.node.runtime.FreezeFailedException)
            || !String.valueOf(e.getCause().getMessage()).contains("ended")
            || attempt == 3) {
          throw e;
        }
      }
    }
  }

  private void checkpointAndRestoreOnce(Workload w, Engine from, Engine to) throws Exception {
    Run want = reference(w);
    Sandbox sandbox = sandbox();
    Output first = new Output();
    Recorder source = new Recorder(4096);
    WasmProcess p = WasmProcess.start(spec(w, from, sandbox, first), source);

    waitForStdout(first, want.stdout().length / 4);
    WasmProcess.Frozen f = p.freeze(10_000).get(60, TimeUnit.SECONDS);
    f.resume();
    waitForStdout(first, want.stdout().length / 2);
    f = p.freeze(10_000).get(60, TimeUnit.SECONDS);
    ProcessImage image = f.image();
    f.stop();
    assertEquals(WasmProcess.Outcome.FROZEN, await(p).outcome());
    assertTrue(image.getMemory().getRunsCount() > 0, "the image holds memory");

    Output second = new Output();
    Recorder destination = new Recorder(4096);
    WasmProcess restored = WasmProcess.restore(spec(w, to, sandbox, second), image, destination);
    Run tail = second.run(await(restored));

    assertSameRun(want, joined(first.run(null), tail));
    assertEquals(1, destination.made.size());
    assertTrue(destination.made.get(0).dirtyCount() > 0);
  }

  /**
   * A process restored held (as a migration's destination does until it has answered the source)
   * runs nothing until released, and then continues exactly; killed while held, it never runs.
   */
  @Test
  void aProcessRestoredHeldRunsOnlyOnceReleased() throws Exception {
    Workload w = WORKLOADS.get(5); // lines
    Run want = reference(w);
    Sandbox sandbox = sandbox();
    Output first = new Output();
    WasmProcess p = WasmProcess.start(spec(w, Engine.COMPILED, sandbox, first), null);
    waitForStdout(first, want.stdout().length / 4);
    WasmProcess.Frozen f = p.freeze(10_000).get(60, TimeUnit.SECONDS);
    ProcessImage image = f.image();
    f.stop();
    assertEquals(WasmProcess.Outcome.FROZEN, await(p).outcome());

    Output killedOut = new Output();
    WasmProcess killed =
        WasmProcess.restoreHeld(spec(w, Engine.COMPILED, sandbox, killedOut), image, null);
    Thread.sleep(200);
    killed.kill();
    assertEquals(WasmProcess.Outcome.KILLED, await(killed).outcome());
    assertEquals(0, killedOut.run(null).stdout().length, "a killed held process ran");

    Output second = new Output();
    WasmProcess held =
        WasmProcess.restoreHeld(spec(w, Engine.INTERPRETER, sandbox, second), image, null);
    Thread.sleep(300);
    assertEquals(0, second.run(null).stdout().length, "a held process ran");
    assertTrue(!held.end().toCompletableFuture().isDone(), "a held process ended");
    held.release();
    Run tail = second.run(await(held));
    assertSameRun(want, joined(first.run(null), tail));
  }

  /** {@code dirty} verified every word of its area, and its checksum is that of a native build. */
  @Test
  void dirtyEndsWithTheChecksumOfANativeRun() {
    Run r = reference(WORKLOADS.get(3));
    String out = new String(r.stdout(), StandardCharsets.UTF_8);
    assertTrue(out.startsWith("filled 1024 pages, 102 hot\nstep 200\n"), out);
    assertTrue(out.endsWith("step 2000\nchecksum 4333ebe96914e6d7\ndirty ok\n"), out);
    assertEquals(0, r.stderr().length);
  }

  /**
   * {@code dirty} with timing on: frozen, left frozen 50 ms, restored on a fresh PagedMemory. The
   * guest sees the resume (its realtime clock jumped against its monotonic clock, which leaves the
   * frozen time out) and reports the step times of the windows before and after it, on stderr, as
   * the paging benchmark reads them.
   */
  @Test
  void dirtyReportsAResumeWithTheStepTimesAroundIt() throws Exception {
    Workload w = new Workload("dirty", List.of("2", "10", "1000000000", "1", "20"));
    Sandbox sandbox = sandbox();
    Output first = new Output();
    WasmProcess p = WasmProcess.start(spec(w, Engine.COMPILED, sandbox, first), new Recorder(4096));
    waitForStdout(first, "filled 512 pages, 51 hot\n".length());
    Thread.sleep(100); // more than 20 steps before the freeze
    WasmProcess.Frozen f = p.freeze(10_000).get(60, TimeUnit.SECONDS);
    ProcessImage image = f.image();
    f.stop();
    assertEquals(WasmProcess.Outcome.FROZEN, await(p).outcome());
    Thread.sleep(50);
    Output second = new Output();
    WasmProcess restored =
        WasmProcess.restore(spec(w, Engine.COMPILED, sandbox, second), image, new Recorder(4096));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!second.stderrText().contains("\n") && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    restored.kill();
    assertEquals(WasmProcess.Outcome.KILLED, await(restored).outcome());

    assertEquals("", first.stderrText(), "no resume before the freeze");
    String line = second.stderrText();
    Matcher m =
        Pattern.compile(
                "resume step=(\\d+) frozen_us=(\\d+) before_n=20 before_mean_ns=(\\d+)"
                    + " before_median_ns=(\\d+) after_n=20 after_mean_ns=(\\d+)"
                    + " after_median_ns=(\\d+) after_max_ns=(\\d+)\n")
            .matcher(line);
    assertTrue(m.matches(), line);
    assertTrue(Long.parseLong(m.group(1)) >= 20, line);
    assertTrue(Long.parseLong(m.group(2)) >= 50_000, "the guest saw the 50 ms frozen: " + line);
    assertTrue(Long.parseLong(m.group(7)) >= Long.parseLong(m.group(6)), line);
  }

  private static void waitForStdout(Output out, int bytes) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (out.stdoutBytes() < bytes && System.nanoTime() < deadline) {
      Thread.sleep(1);
    }
  }
}

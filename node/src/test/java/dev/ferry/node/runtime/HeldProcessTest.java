package dev.ferry.node.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.ferry.node.TestNodes;
import dev.ferry.node.service.Engine;
import dev.ferry.node.wasi.Sandbox;
import dev.ferry.statestore.FerryStore;
import dev.ferry.transport.proto.ProcessImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A process restored held (an incoming migration before its source has its answer) runs nothing
 * until released, then finishes as an uninterrupted run; one killed while held ends KILLED without
 * running; and processes started one after another each get a thread (the spare is taken, the next
 * one made on the spot).
 */
class HeldProcessTest {
  private static final List<String> ARGV = List.of("datasize.wasm", "50", "200000");

  @TempDir Path dir;
  private FerryStore store;
  private LoadedModule module;

  @BeforeEach
  void load() throws IOException {
    store = FerryStore.open(dir.resolve("store"), 1L << 30);
    ModuleRegistry modules =
        new ModuleRegistry(store, TestNodes.settings(dir, Map.of()).runtime(), dir.resolve("tmp"));
    byte[] bytes = TestNodes.guest("datasize");
    modules.putVerbatim(bytes);
    module = modules.load(ModuleRegistry.sha256(bytes));
  }

  @AfterEach
  void close() {
    store.close();
  }

  @Test
  void aHeldProcessRunsOnlyOnceReleasedAndAKilledOneNever() throws Exception {
    DeepStackFreezeTest.Output reference = new DeepStackFreezeTest.Output();
    WasmProcess ref = WasmProcess.start(spec("ref", reference));
    assertEquals(0, ref.end().toCompletableFuture().get(120, TimeUnit.SECONDS).exitCode());

    DeepStackFreezeTest.Output before = new DeepStackFreezeTest.Output();
    WasmProcess p = WasmProcess.start(spec("p", before));
    Thread.sleep(20);
    WasmProcess.Frozen f = p.freeze(10_000).get(60, TimeUnit.SECONDS);
    ProcessImage image = f.image();
    f.stop();
    p.end().toCompletableFuture().get(60, TimeUnit.SECONDS);
    byte[] head = before.bytes();

    // Released: it ran nothing while held, then finishes as the uninterrupted run did.
    DeepStackFreezeTest.Output out = new DeepStackFreezeTest.Output();
    out.write(1, head, 0, head.length);
    WasmProcess held = WasmProcess.restoreHeld(spec("p", out), image, null);
    Thread.sleep(300);
    assertFalse(held.end().toCompletableFuture().isDone(), "a held process ended on its own");
    assertArrayEquals(head, out.bytes(), "a held process wrote output before its release");
    held.release();
    WasmProcess.End end = held.end().toCompletableFuture().get(120, TimeUnit.SECONDS);
    assertEquals(WasmProcess.Outcome.EXITED, end.outcome(), "error: " + end.error());
    assertEquals(0, end.exitCode());
    assertArrayEquals(reference.bytes(), out.bytes());

    // Killed while held: it ends KILLED and never runs.
    DeepStackFreezeTest.Output none = new DeepStackFreezeTest.Output();
    WasmProcess killed = WasmProcess.restoreHeld(spec("k", none), image, null);
    killed.kill();
    assertEquals(
        WasmProcess.Outcome.KILLED,
        killed.end().toCompletableFuture().get(60, TimeUnit.SECONDS).outcome());
    assertEquals(0, none.bytes().length, "a process killed while held wrote output");

    // Several at once: each gets its thread, whether a spare waited or not.
    List<WasmProcess> many = new java.util.ArrayList<>();
    for (int i = 0; i < 4; i++) {
      many.add(WasmProcess.restore(spec("m" + i, new DeepStackFreezeTest.Output()), image));
    }
    for (WasmProcess m : many) {
      assertEquals(0, m.end().toCompletableFuture().get(120, TimeUnit.SECONDS).exitCode());
    }
  }

  private WasmProcess.Spec spec(String pid, DeepStackFreezeTest.Output out) throws IOException {
    return new WasmProcess.Spec(
        pid,
        module,
        Engine.COMPILED,
        new Sandbox(dir.resolve("sandbox-" + pid)),
        ARGV,
        List.of(),
        out,
        128 * 1024,
        16384);
  }
}

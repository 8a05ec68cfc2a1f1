package dev.ferry.node.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.TestNodes;
import dev.ferry.node.service.Engine;
import dev.ferry.node.wasi.OutputSink;
import dev.ferry.node.wasi.Sandbox;
import dev.ferry.statestore.FerryStore;
import dev.ferry.transport.proto.ProcessImage;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A call stack that fits the Asyncify buffer only by its exact size (not when every frame is
 * counted as the module's largest function) freezes, moves and resumes on both engines, and the
 * buffer borrowed for it is only what it needs.
 */
class DeepStackFreezeTest {
  private static final int BUFFER = 128 * 1024;
  private static final int DEPTH = 2000;

  @TempDir Path dir;

  /** Collects stdout across the restores of one process. */
  static final class Output implements OutputSink {
    final ByteArrayOutputStream stdout = new ByteArrayOutputStream();

    @Override
    public synchronized void write(int stream, byte[] data, int off, int len) {
      if (stream == 1) {
        stdout.write(data, off, len);
      }
    }

    synchronized byte[] bytes() {
      return stdout.toByteArray();
    }
  }

  @Test
  void aDeepStackThatFitsOnlyByItsExactSizeFreezesMovesAndFinishesOnBothEngines() throws Exception {
    FerryStore store = FerryStore.open(dir.resolve("store"), 1L << 30);
    try {
      ModuleRegistry modules =
          new ModuleRegistry(
              store, TestNodes.settings(dir, Map.of()).runtime(), dir.resolve("tmp"));
      byte[] bytes = TestNodes.guest("churn");
      modules.putVerbatim(bytes);
      LoadedModule module = modules.load(ModuleRegistry.sha256(bytes));
      long largest = module.unwindBound().largestFrame();
      assertTrue(
          DEPTH * largest > BUFFER,
          "the test needs a depth whose coarse bound (" + DEPTH * largest + ") exceeds the buffer");

      List<String> argv = List.of("churn.wasm", "40", String.valueOf(DEPTH));
      Output reference = new Output();
      WasmProcess ref = WasmProcess.start(spec(module, Engine.COMPILED, "ref", argv, reference));
      assertEquals(0, ref.end().toCompletableFuture().get(120, TimeUnit.SECONDS).exitCode());

      for (Engine engine : Engine.values()) {
        Output out = new Output();
        WasmProcess.Spec spec = spec(module, engine, "p-" + engine, argv, out);
        WasmProcess p = WasmProcess.start(spec);
        int deep = 0;
        int freezes = 0;
        while (deep < 3 && !p.end().toCompletableFuture().isDone()) {
          WasmProcess.Frozen f;
          try {
            f = p.freeze(10_000).get(60, TimeUnit.SECONDS);
          } catch (java.util.concurrent.ExecutionException e) {
            assertTrue(
                String.valueOf(e.getCause().getMessage()).contains("ended"),
                "freeze " + freezes + " on " + engine + " failed: " + e.getCause());
            break;
          }
          freezes++;
          ProcessImage image = f.image();
          int stack = image.getAsyncify().getData().size();
          if (stack > 32 * 1024) {
            deep++;
            // Move it: stop here, go on from the image in a new instance on the other engine.
            f.stop();
            assertEquals(
                WasmProcess.Outcome.FROZEN,
                p.end().toCompletableFuture().get(60, TimeUnit.SECONDS).outcome());
            Engine next = engine == Engine.COMPILED ? Engine.INTERPRETER : Engine.COMPILED;
            p = WasmProcess.restore(spec(module, next, "p-" + engine, argv, out), image);
          } else {
            f.resume();
          }
        }
        WasmProcess.End end = p.end().toCompletableFuture().get(120, TimeUnit.SECONDS);
        assertEquals(WasmProcess.Outcome.EXITED, end.outcome(), "error: " + end.error());
        assertEquals(0, end.exitCode());
        assertTrue(deep > 0, "no freeze on " + engine + " caught the deep stack in " + freezes);
        assertArrayEquals(reference.bytes(), out.bytes(), "output on " + engine);
      }
    } finally {
      store.close();
    }
  }

  private WasmProcess.Spec spec(
      LoadedModule module, Engine engine, String pid, List<String> argv, Output out)
      throws java.io.IOException {
    return new WasmProcess.Spec(
        pid,
        module,
        engine,
        new Sandbox(dir.resolve("sandbox-" + pid)),
        argv,
        List.of(),
        out,
        BUFFER,
        16384);
  }
}

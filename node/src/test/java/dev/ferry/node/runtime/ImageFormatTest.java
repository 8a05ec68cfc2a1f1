package dev.ferry.node.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ferry.node.TestNodes;
import dev.ferry.node.service.Engine;
import dev.ferry.node.wasi.Sandbox;
import dev.ferry.statestore.FerryStore;
import dev.ferry.transport.proto.LinearMemory;
import dev.ferry.transport.proto.MemoryRun;
import dev.ferry.transport.proto.ProcessImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The image leaves out the all-zero 4 KiB blocks of memory (format 2), a process resumes from it as
 * from an uninterrupted run, images of format 1 (whole 64 KiB pages, as nodes before format 2 wrote
 * them and stored checkpoints hold them) still restore, and an image of a format newer than the
 * node knows is refused with a clear error.
 */
class ImageFormatTest {
  private static final List<String> ARGV = List.of("datasize.wasm", "50", "300000");

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
  void aSparseImageOfEitherFormatResumesAsAnUninterruptedRun() throws Exception {
    DeepStackFreezeTest.Output reference = new DeepStackFreezeTest.Output();
    WasmProcess ref = WasmProcess.start(spec("ref", reference));
    assertEquals(0, ref.end().toCompletableFuture().get(120, TimeUnit.SECONDS).exitCode());

    DeepStackFreezeTest.Output before = new DeepStackFreezeTest.Output();
    WasmProcess p = WasmProcess.start(spec("p", before));
    Thread.sleep(50); // into its loop, the area written
    WasmProcess.Frozen f = p.freeze(10_000).get(60, TimeUnit.SECONDS);
    ProcessImage image = f.image();
    f.stop();
    p.end().toCompletableFuture().get(60, TimeUnit.SECONDS);

    assertEquals(WasmProcess.IMAGE_FORMAT, image.getFormatVersion());
    long memory = (long) image.getMemory().getPages() * WasmProcess.PAGE;
    long carried =
        image.getMemory().getRunsList().stream().mapToLong(r -> r.getData().size()).sum();
    // a 50 KiB area, libc's data and the used top of the stack, in memory of two 64 KiB pages
    assertTrue(
        carried < memory * 3 / 4,
        "the image carries " + carried + " bytes of " + memory + ": all-zero blocks left out?");
    ProcessImage pages = asFormat1(image);
    assertArrayEquals(memoryOf(image), memoryOf(pages));

    for (ProcessImage i : List.of(image, pages)) {
      DeepStackFreezeTest.Output out = new DeepStackFreezeTest.Output();
      byte[] head = before.bytes();
      out.write(1, head, 0, head.length);
      WasmProcess q = WasmProcess.restore(spec("p", out), i);
      WasmProcess.End end = q.end().toCompletableFuture().get(120, TimeUnit.SECONDS);
      assertEquals(WasmProcess.Outcome.EXITED, end.outcome(), "error: " + end.error());
      assertEquals(0, end.exitCode());
      assertArrayEquals(
          reference.bytes(), out.bytes(), "output after restoring format " + i.getFormatVersion());
    }
  }

  @Test
  void anImageOfANewerFormatIsRefused() throws Exception {
    DeepStackFreezeTest.Output out = new DeepStackFreezeTest.Output();
    WasmProcess p = WasmProcess.start(spec("p", out));
    WasmProcess.Frozen f = p.freeze(10_000).get(60, TimeUnit.SECONDS);
    ProcessImage newer =
        f.image().toBuilder().setFormatVersion(WasmProcess.IMAGE_FORMAT + 1).build();
    f.resume();
    IOException e =
        assertThrows(IOException.class, () -> WasmProcess.restore(spec("q", out), newer));
    assertTrue(e.getMessage().contains("format " + (WasmProcess.IMAGE_FORMAT + 1)), e.getMessage());
    // the process it came from runs on, undisturbed
    assertEquals(0, p.end().toCompletableFuture().get(120, TimeUnit.SECONDS).exitCode());
  }

  /** The whole linear memory an image describes. */
  private static byte[] memoryOf(ProcessImage image) {
    byte[] mem = new byte[image.getMemory().getPages() * WasmProcess.PAGE];
    for (MemoryRun r : image.getMemory().getRunsList()) {
      int start =
          image.getFormatVersion() >= 2 ? (int) r.getOffset() : r.getFirstPage() * WasmProcess.PAGE;
      r.getData().copyTo(mem, start);
    }
    return mem;
  }

  /** {@code image} as format 1 wrote it: runs of whole 64 KiB pages that are not all zero. */
  private static ProcessImage asFormat1(ProcessImage image) {
    byte[] mem = memoryOf(image);
    int pages = image.getMemory().getPages();
    LinearMemory.Builder lm = LinearMemory.newBuilder().setPages(pages);
    byte[] zero = new byte[WasmProcess.PAGE];
    for (int p = 0; p < pages; p++) {
      int from = p * WasmProcess.PAGE;
      if (!Arrays.equals(mem, from, from + WasmProcess.PAGE, zero, 0, WasmProcess.PAGE)) {
        lm.addRuns(
            MemoryRun.newBuilder()
                .setFirstPage(p)
                .setData(ByteString.copyFrom(mem, from, WasmProcess.PAGE)));
      }
    }
    return image.toBuilder().setFormatVersion(1).setMemory(lm).build();
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

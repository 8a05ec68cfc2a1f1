package dev.ferry.node.cluster;

import static dev.ferry.node.cluster.InJvmClusterMigrationTest.awaitMigration;
import static dev.ferry.node.cluster.InJvmClusterMigrationTest.get;
import static dev.ferry.node.cluster.InJvmClusterMigrationTest.stdout;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.FerryNode;
import dev.ferry.node.TestNodes;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.RunRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With {@code ferry.strategies.data-segment.files = shared} the nodes keep sandboxes in one shared
 * directory: a migrated process reopens its files there by path and offset and no file bytes travel
 * with it.
 */
class SharedFilesMigrationTest {
  @TempDir Path dir;

  @Test
  void filesAreReopenedInPlaceInTheSharedDirectory() throws Exception {
    try (TwoNodes c =
        startTwo(
            Map.of("ferry.node.engine", "interpreter"), Map.of("ferry.node.engine", "compiled"))) {
      ClusterService s1 = c.s1();
      Path shared = c.shared();
      String hash = get(s1.uploadModule(TestNodes.guest("files"), false)).hash();
      // a 2 MiB input file: copied with the process it would dominate the bytes moved
      byte[] big =
          "shared input line\n".repeat(2 * 1024 * 1024 / 18).getBytes(StandardCharsets.UTF_8);
      Map<String, byte[]> in = Map.of("/in.txt", big);
      ProcessInfo ref =
          get(s1.run(new RunRequest(hash, Engine.COMPILED, List.of("2000"), Map.of(), in)));
      get(s1.awaitExit(ref.id()));
      byte[] expectedOut = stdout(s1, ref.id());
      byte[] expectedA = get(s1.readFile(ref.id(), "/data/a.txt"));

      ProcessInfo p =
          get(s1.run(new RunRequest(hash, Engine.INTERPRETER, List.of("2000"), Map.of(), in)));
      int committed = 0;
      for (int i = 0; i < 4; i++) {
        ProcessInfo now = get(s1.status(p.id()));
        if (now.state().isFinal()) {
          break;
        }
        MigrationInfo m;
        try {
          m = get(s1.migrate(p.id(), now.node().equals("s1") ? "s2" : "s1", null));
        } catch (java.util.concurrent.ExecutionException e) {
          if (get(s1.status(p.id())).state().isFinal()) {
            break; // finished between the two requests
          }
          throw e;
        }
        MigrationInfo done = awaitMigration(s1, m.id());
        if (done.state().equals("committed")) {
          committed++;
          // the bundle carried image, logs and (once) the module, not the 2 MiB of files
          assertTrue(done.bytesMoved() < 1024 * 1024, done.toString());
        }
      }
      ProcessInfo end = get(s1.awaitExit(p.id()));
      assertEquals(0, end.exitCode(), "error: " + end.error());
      assertTrue(committed >= 1, "no migration committed");
      assertArrayEquals(expectedOut, stdout(s1, p.id()));
      assertArrayEquals(expectedA, get(s1.readFile(p.id(), "/data/a.txt")));
      assertTrue(Files.exists(shared.resolve(p.id()).resolve("data/a.txt")));
    }
  }

  /** Nodes s1 and s2 sharing one sandbox directory; closing stops them. */
  private record TwoNodes(Path shared, List<FerryNode> nodes) implements AutoCloseable {
    ClusterService s1() {
      return nodes.get(0).service();
    }

    @Override
    public void close() {
      for (int i = nodes.size() - 1; i >= 0; i--) {
        nodes.get(i).close();
      }
    }
  }

  /**
   * Starts s1 and s2 sharing a directory (each with its own extra settings), once s1 knows s2's
   * agent.
   */
  private TwoNodes startTwo(Map<String, Object> s1Extra, Map<String, Object> s2Extra)
      throws Exception {
    TwoNodes c = new TwoNodes(Files.createDirectories(dir.resolve("shared")), new ArrayList<>());
    try {
      int seed = TestNodes.freePort();
      for (int i = 0; i < 2; i++) {
        Map<String, Object> m = new HashMap<>(i == 0 ? s1Extra : s2Extra);
        m.put("ferry.node.name", "s" + (i + 1));
        m.put("ferry.node.port", i == 0 ? seed : TestNodes.freePort());
        m.put("ferry.node.seeds", List.of("127.0.0.1:" + seed));
        m.put("ferry.strategies.data-segment.files", "shared");
        m.put("ferry.strategies.data-segment.shared-dir", c.shared().toString());
        c.nodes().add(FerryNode.start(TestNodes.settings(dir.resolve("s" + (i + 1)), m)));
      }
      long deadline = System.currentTimeMillis() + 30_000;
      while (get(c.s1().nodes()).stream().filter(n -> n.engine() != null).count() < 2
          && System.currentTimeMillis() < deadline) {
        Thread.sleep(50); // until s1 knows s2's agent
      }
      return c;
    } catch (Exception | Error e) {
      c.close();
      throw e;
    }
  }

  /**
   * A destination that takes the bundle in but cannot restore it drops what arrived: with shared
   * files that must not include the sandbox, which is the one the process goes on using at its
   * source.
   */
  @Test
  void aMigrationTheDestinationCannotRestoreLeavesTheSharedFilesAlone() throws Exception {
    // s2 takes no process with more than two 64 KiB pages of memory
    try (TwoNodes c =
        startTwo(
            Map.of(),
            Map.of(
                "ferry.runtime.max-memory-pages",
                2,
                "ferry.runtime.asyncify-buffer-bytes",
                65536))) {
      ClusterService s1 = c.s1();
      Path shared = c.shared();
      String hash = get(s1.uploadModule(TestNodes.guest("files"), false)).hash();
      Map<String, byte[]> in =
          Map.of("/in.txt", "input line\n".repeat(20_000).getBytes(StandardCharsets.UTF_8));
      ProcessInfo ref = get(s1.run(new RunRequest(hash, null, List.of("3000"), Map.of(), in)));
      get(s1.awaitExit(ref.id()));
      byte[] expectedOut = stdout(s1, ref.id());
      byte[] expectedA = get(s1.readFile(ref.id(), "/data/a.txt"));

      ProcessInfo p = get(s1.run(new RunRequest(hash, null, List.of("3000"), Map.of(), in)));
      Thread.sleep(200);
      MigrationInfo done = awaitMigration(s1, get(s1.migrate(p.id(), "s2", null)).id());
      assertEquals("aborted", done.state(), done.toString());
      assertTrue(done.error().contains("max-memory-pages"), done.error());
      assertEquals("s1", get(s1.status(p.id())).node());
      assertTrue(Files.isDirectory(shared.resolve(p.id())), "the shared sandbox was deleted");

      ProcessInfo end = get(s1.awaitExit(p.id()));
      assertEquals(0, end.exitCode(), "error: " + end.error());
      assertArrayEquals(expectedOut, stdout(s1, p.id()));
      assertArrayEquals(expectedA, get(s1.readFile(p.id(), "/data/a.txt")));
    }
  }
}

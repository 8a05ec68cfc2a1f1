package dev.ferry.node.cluster;

import static dev.ferry.node.cluster.InJvmClusterMigrationTest.awaitMigration;
import static dev.ferry.node.cluster.InJvmClusterMigrationTest.get;
import static dev.ferry.node.cluster.InJvmClusterMigrationTest.stderr;
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
import dev.ferry.node.service.ProcessState;
import dev.ferry.node.service.RunRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The disk itself full, not the store's map: n2 keeps its data on a 24 MiB tmpfs (mounted for the
 * test, so it needs root; skipped otherwise). A process whose output fills that disk waits instead
 * of failing, and migrated to a node with room ends there with the output of an uninterrupted run.
 */
class DiskFullMigrationTest {
  @TempDir Path dir;

  @Test
  void aProcessWhoseOutputFillsItsNodesDiskWaitsAndFinishesElsewhere() throws Exception {
    Path disk = Files.createDirectories(dir.resolve("disk"));
    Assumptions.assumeTrue(
        run("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", disk.toString()),
        "cannot mount a small tmpfs here (needs root)");
    List<FerryNode> nodes = new ArrayList<>();
    try {
      int seedPort = TestNodes.freePort();
      for (int i = 0; i < 2; i++) {
        Map<String, Object> extra = new HashMap<>();
        extra.put("ferry.node.name", "n" + (i + 1));
        extra.put("ferry.node.port", i == 0 ? seedPort : TestNodes.freePort());
        extra.put("ferry.node.seeds", List.of("127.0.0.1:" + seedPort));
        extra.put("ferry.http.port", TestNodes.freePort());
        extra.put("ferry.store.map-size", "256MiB"); // more than the disk holds
        Path data = i == 1 ? disk.resolve("n2") : dir.resolve("n1");
        nodes.add(FerryNode.start(TestNodes.settings(data, extra)));
      }
      ClusterService n1 = nodes.get(0).service();
      ClusterService n2 = nodes.get(1).service();
      // 400000 lines of 45 bytes, and a line on stderr every 1000: 18 MB, and a store's own pages
      List<String> args = List.of("400000", "1000");
      String hash = get(n1.uploadModule(TestNodes.guest("lines"), false)).hash();
      ProcessInfo ref =
          get(n1.run(new RunRequest(hash, Engine.COMPILED, args, Map.of(), Map.of())));
      assertEquals(ProcessState.EXITED, get(n1.awaitExit(ref.id())).state());
      byte[] expected = stdout(n1, ref.id());
      byte[] expectedErr = stderr(n1, ref.id());

      get(n2.uploadModule(TestNodes.guest("lines"), false));
      ProcessInfo p = get(n2.run(new RunRequest(hash, Engine.COMPILED, args, Map.of(), Map.of())));
      long last = TestNodes.awaitOutputStops(n2::status, p.id());
      assertTrue(last < expected.length, "it wrote everything onto a full disk: " + last);

      MigrationInfo m = awaitMigration(n2, get(n2.migrate(p.id(), "n1", null)).id());
      assertEquals("committed", m.state(), m.toString());
      ProcessInfo end = get(n1.awaitExit(p.id()));
      assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
      assertEquals(0, end.exitCode());
      assertArrayEquals(expected, stdout(n2, p.id()));
      assertArrayEquals(expectedErr, stderr(n2, p.id()));
    } finally {
      for (int i = nodes.size() - 1; i >= 0; i--) {
        nodes.get(i).close();
      }
      if (!run("umount", disk.toString())) {
        run("umount", "-l", disk.toString());
      }
    }
  }

  private static boolean run(String... command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    p.getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
    return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
  }
}

package dev.ferry.node.cluster;

import dev.ferry.node.FerryNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
      FullStoreMigrationTest.startTwo(
          nodes,
          dir.resolve("n1"),
          disk.resolve("n2"),
          Map.of("ferry.store.map-size", "256MiB"), // more than the disk holds
          Map.of());
      FullStoreMigrationTest.outputFillsN2ThenTheProcessEndsOnN1(
          nodes.get(0).service(), nodes.get(1).service());
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

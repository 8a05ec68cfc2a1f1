package dev.ferry.node.process;

import static dev.ferry.node.process.ProcessHarness.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.TestNodes;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.statestore.FerryStore;
import dev.ferry.statestore.StoreFullException;
import dev.ferry.statestore.TableName;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a full store tells the operator to do — raise {@code ferry.store.map-size} and restart the
 * node — loses nothing: a process whose output filled the store, waiting for room when the node
 * stops, is checkpointed all the same (the store grows past its map size to take it) and, restored
 * at the next start, ends with the output of an uninterrupted run.
 */
class FullStoreShutdownTest {
  @TempDir Path tmp;

  @Test
  void aNodeStoppedWithAFullStoreKeepsItsProcessesAndTheirOutput() throws Exception {
    // 400000 lines of 45 bytes, and a line on stderr every 1000: 18 MB, more than 16 MiB holds
    List<String> args = List.of("400000", "1000");
    byte[] expected;
    byte[] expectedErr;
    try (ProcessHarness big = new ProcessHarness(tmp.resolve("ref"), Map.of())) {
      String hash = big.upload("lines");
      ProcessInfo ref = big.run(hash, Engine.COMPILED, args, Map.of());
      assertEquals(0, get(big.processes.awaitExit(ref.id())).exitCode());
      expected = big.log(ref.id(), LogStream.STDOUT);
      expectedErr = big.log(ref.id(), LogStream.STDERR);
    }

    Path dir = tmp.resolve("node");
    String pid;
    try (ProcessHarness node = new ProcessHarness(dir, Map.of("ferry.store.map-size", "16MiB"))) {
      String hash = node.upload("lines");
      pid = node.run(hash, Engine.COMPILED, args, Map.of()).id();
      // until its output stops growing: the store is full and it waits
      long last = TestNodes.awaitOutputStops(node.processes::status, pid);
      assertTrue(last < expected.length, "it wrote everything into a full store: " + last);
    } // the node stops: its processes are checkpointed

    try (ProcessHarness node = new ProcessHarness(dir, Map.of("ferry.store.map-size", "64MiB"))) {
      node.processes.recover();
      ProcessInfo end = get(node.processes.awaitExit(pid));
      assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
      assertEquals(0, end.exitCode());
      assertArrayEquals(expected, node.log(pid, LogStream.STDOUT));
      assertArrayEquals(expectedErr, node.log(pid, LogStream.STDERR));
    }
  }

  /**
   * A process that ends while its node's store is full has ended all the same (waiters hear it,
   * with its exit code and output), and the store records it at the latest when the node stops.
   */
  @Test
  void aProcessThatEndsWhileTheStoreIsFullIsRecordedAsEnded() throws Exception {
    // 20000 ticks, a 1 ms sleep every 10th: about two seconds
    List<String> args = List.of("20000", "1000");
    byte[] expected;
    try (ProcessHarness big = new ProcessHarness(tmp.resolve("ref"), Map.of())) {
      expected = big.referenceOutput(big.upload("clock"), args);
    }
    Path dir = tmp.resolve("node");
    String pid;
    try (ProcessHarness node = new ProcessHarness(dir, Map.of("ferry.store.map-size", "16MiB"))) {
      pid = node.run(node.upload("clock"), Engine.COMPILED, args, Map.of()).id();
      fill(node.store);
      assertEquals(
          ProcessState.RUNNING,
          get(node.processes.status(pid)).state(),
          "it ended before the store was full");
      ProcessInfo end = get(node.processes.awaitExit(pid));
      assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
      assertEquals(0, end.exitCode());
      assertArrayEquals(expected, node.log(pid, LogStream.STDOUT));
    } // the node stops: the store grows to take the process's end and output
    unfill(dir);
    try (ProcessHarness node = new ProcessHarness(dir, Map.of("ferry.store.map-size", "64MiB"))) {
      node.processes.recover();
      ProcessInfo after = get(node.processes.status(pid));
      assertEquals(ProcessState.EXITED, after.state(), "error: " + after.error());
      assertEquals(0, after.exitCode());
      assertArrayEquals(expected, node.log(pid, LogStream.STDOUT));
    }
  }

  /**
   * Fills the store with values of other keys, smaller and smaller, until not a byte fits: in META,
   * then in PROCESSES too (whose smaller tree may still find room where META's could not).
   */
  private static void fill(FerryStore store) {
    for (TableName table : List.of(TableName.META, TableName.PROCESSES)) {
      int n = 0;
      for (int size = 1 << 20; size >= 16; size /= 4) {
        try {
          while (true) {
            store.table(table).put(FILLER + n++, new byte[size]);
          }
        } catch (StoreFullException full) {
          // the next, smaller size
        }
      }
    }
  }

  /** Removes what {@link #fill} wrote (which a node would take for corrupt process records). */
  private static void unfill(Path dir) {
    try (FerryStore store = FerryStore.open(dir.resolve("store"), 64 << 20)) {
      for (TableName table : List.of(TableName.META, TableName.PROCESSES)) {
        for (String k : store.table(table).keys(FILLER)) {
          store.table(table).delete(k);
        }
      }
    }
  }

  private static final String FILLER = "filler-";
}

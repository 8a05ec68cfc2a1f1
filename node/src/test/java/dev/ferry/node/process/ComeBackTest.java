package dev.ferry.node.process;

import static dev.ferry.node.process.ProcessHarness.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.runtime.WasmProcess;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.statestore.TableName;
import dev.ferry.transport.proto.MigrationBundle;
import dev.ferry.transport.proto.ProcessImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node removes a process that left by a commit from its store after the commit, in the
 * background. A process that comes back before that is done waits for it: its old copy is removed
 * first, never the new one (a stop would otherwise find no record of a process that runs here).
 */
class ComeBackTest {
  private static final List<String> ARGS = List.of("1", "40");

  @TempDir Path tmp;

  @Test
  void aProcessBackBeforeItsOldCopyIsRemovedKeepsItsNewCopy() throws Exception {
    byte[] expected;
    try (ProcessHarness node = new ProcessHarness(tmp.resolve("a"), Map.of())) {
      String hash = node.upload("generations");
      expected = node.referenceOutput(hash, ARGS);
      String pid = node.runUntil(hash, ARGS, "round 1 ok");
      WasmProcess.Frozen frozen = node.processes.freezeForMigration(pid);
      MigrationBundle bundle = MigrationBundle.parseFrom(node.bundle(pid, frozen, false));

      // The store work of commits is held back: the process leaves, and is forgotten in memory.
      CountDownLatch hold = new CountDownLatch(1);
      node.processes.afterForgetting(
          () -> {
            try {
              hold.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          });
      CompletableFuture<Void> forgotten =
          node.processes.discardAfterCommit(pid, frozen, false, "b");
      assertFalse(node.processes.has(pid), "gone from this node at once");
      assertTrue(node.store.table(TableName.PROCESSES).contains(pid), "still in its store");

      // It comes straight back: taking it in waits until the old copy is gone.
      CompletableFuture<NodeProcesses.Arrival> back =
          CompletableFuture.supplyAsync(
              () ->
                  node.processes.receiveIncoming(
                      "m-back", bundle, parse(bundle), Engine.COMPILED, null));
      Thread.sleep(300);
      assertFalse(back.isDone(), "took the process in before its old copy was removed");
      hold.countDown();
      forgotten.get(30, TimeUnit.SECONDS);
      NodeProcesses.Arrival arrival = back.get(30, TimeUnit.SECONDS);
      arrival.run().run();
      assertTrue(node.store.table(TableName.PROCESSES).contains(pid), "its new record is kept");
      assertTrue(node.store.table(TableName.IMAGES).contains(pid), "its new image is kept");
      assertTrue(
          Files.isDirectory(node.settings.node().dataDir().resolve("sandboxes").resolve(pid)),
          "and sandbox");
      ProcessInfo end = get(node.processes.awaitExit(pid));
      assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
      assertArrayEquals(expected, node.log(pid, LogStream.STDOUT));
    }
  }

  private static ProcessImage parse(MigrationBundle b) {
    try {
      return ProcessImage.parseFrom(b.getImage());
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    }
  }
}
